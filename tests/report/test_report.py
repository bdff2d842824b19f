"""`edgetune report` on a real (small) study: every format written, and the HTML page opened
in a real headless Chromium with no network, every section and figure rendered, no script
errors, and a screenshot saved."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from edgetune.catalog import REPORT_RENDERERS, Plugin, RendererTraits
from edgetune.config.experiment import load_experiment
from edgetune.report.build import write_report
from edgetune.study import run_study
from tests.browser import open_page, open_page_url
from tests.helpers import experiment

# Runs studies or trains networks: the `slow` tier (`pytest -m 'not slow'` leaves it out).
pytestmark = pytest.mark.slow

SECTIONS = ["headline", "summary", "pareto", "progress", "histogram", "correlations", "binned", "importance", "screen",
            "metric_matrix",
            "stages", "layers", "listing"]


def _study(folder):
    spec, _ = load_experiment(experiment(folder, trials=6, epochs=0))
    run_study(spec)


@pytest.fixture(scope="module")
def finished_run(built_once):
    """One study per test session, whichever worker asks first; each module copy its own."""
    return built_once("report-study", _study) / "run"


def _report(run_dir, *args):
    return subprocess.run([sys.executable, "-m", "edgetune.cli", "report", str(run_dir), *args], check=False,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.browser
def test_the_html_report_renders_in_a_real_browser(finished_run, tmp_path):
    done = _report(finished_run, "--out", str(tmp_path / "r"))
    assert done.returncode == 0, done.stderr[-3000:]
    html = tmp_path / "r" / "report.html"
    assert html.is_file() and "cdn.plot.ly" not in html.read_text()[:2000]  # plotly.js embedded, not fetched
    shot = tmp_path / "r" / "screenshot.png"
    page = open_page(html, shot)
    assert page.errors == [] and page.failed_requests == []
    assert page.sections == SECTIONS
    pngs = {p.stem for p in (tmp_path / "r" / "figures").glob("*.png")}
    assert set(page.figures) == pngs and len(pngs) >= 8  # the same figures in both renderers
    assert all(n >= 1 for n in page.figures.values()), page.figures  # each plotly figure drew its SVG
    assert shot.stat().st_size > 50_000


def test_markdown_and_csv_reports(finished_run, tmp_path):
    done = _report(finished_run, "--out", str(tmp_path / "r"), "--format", "md", "--format", "csv",
                   "--no-per-layer")
    assert done.returncode == 0, done.stderr[-3000:]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| unpruned baseline | 1 |" in md and "## Pareto front" in md
    for link in [line[line.rindex("](") + 2:-1] for line in md.splitlines() if line.startswith("![")]:
        assert (tmp_path / "r" / link).is_file(), link
    with open(tmp_path / "r" / "tables" / "baseline_comparison.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["row"] == "unpruned baseline" and float(rows[0]["latency_ms"]) > 0
    with open(tmp_path / "r" / "tables" / "correlations.csv") as fh:
        assert {"param", "metric", "n", "pearson", "spearman"} <= set(next(csv.DictReader(fh)))
    assert not (tmp_path / "r" / "tables" / "layer_latency.csv").exists()  # --no-per-layer
    # Where each trial's time went: the stages add up to the trial, the overhead is the rest.
    with open(tmp_path / "r" / "tables" / "stage_seconds.csv") as fh:
        stages = list(csv.DictReader(fh))
    assert len(stages) == 6 and "## Where the time went" in md
    for row in stages:
        parts = sum(float(v) for k, v in row.items() if k.startswith("seconds_") and k != "seconds_trial" and v)
        assert parts == pytest.approx(float(row["seconds_trial"]), abs=0.01)
        assert float(row["seconds_benchmark"]) > 0 and float(row["seconds_evaluate"]) > 0
        assert 0 < float(row["overhead_share"]) < 1


@pytest.mark.parametrize("name", list(REPORT_RENDERERS))
def test_every_registered_renderer_writes_its_files(finished_run, tmp_path, name):
    """Each renderer of the registry, alone, through the library call the CLI makes."""
    _, written = write_report(finished_run, tmp_path / "r", [name], per_layer=False)
    assert written and all(p.is_file() and p.stat().st_size > 0 for p in written)
    suffixes = {p.suffix for p in written}
    assert {"html": ".html", "png": ".png", "csv": ".csv", "md": ".md"}[name] in suffixes


def toy_renderer(report, out_dir):
    """A format registered by one catalog row: a list of the figures the png renderer drew first."""
    path = out_dir / "figures.txt"
    path.write_text("\n".join(sorted(p.name for p in (out_dir / "figures").glob("*.png"))))
    return [path]


def test_a_new_format_is_one_row_and_gets_what_it_needs_drawn_first(finished_run, tmp_path, monkeypatch):
    monkeypatch.setitem(REPORT_RENDERERS, "toy", Plugin(__name__, "toy_renderer", None, (), RendererTraits(("png",))))
    _, written = write_report(finished_run, tmp_path / "r", ["toy"], per_layer=False)
    listed = (tmp_path / "r" / "figures.txt").read_text().split()
    assert listed and sorted(p.name for p in written if p.suffix == ".png") == listed


def test_report_errors_name_the_problem(tmp_path):
    done = _report(tmp_path)
    assert done.returncode == 2 and "holds no edgetune study" in done.stderr and "Traceback" not in done.stderr
    done = _report(tmp_path, "--format", "pdf")
    assert done.returncode == 2 and "'pdf' is not a report format" in done.stderr


@pytest.mark.browser
def test_the_live_dashboard_serves_the_study(finished_run, tmp_path):
    """`edgetune dashboard` runs optuna-dashboard on the run's study: its API lists the study and
    its page renders in Chromium without script errors."""
    import json
    import time
    import urllib.request

    from tests.servers import _free_port

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "edgetune.cli", "dashboard", str(finished_run), "--port",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as reply:
                    studies = json.load(reply)["study_summaries"]
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stdout.read()
                time.sleep(0.3)
        assert [s["study_name"] for s in studies] == ["tiny"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}?after=0",
                                    timeout=10) as reply:
            assert len(json.load(reply)["trials"]) >= 6
        page = open_page_url(f"http://127.0.0.1:{port}/dashboard", tmp_path / "dashboard.png", text="tiny")
        assert page.errors == []
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_trials_bar_counts_only_the_trials_asked_for():
    """A reference or a skipped candidate is run beside the trials asked for: the bar, like the
    stopping rule, does not count it (make run's bar once ended at 13/12)."""
    import io

    from rich.console import Console
    from rich.progress import Progress

    from edgetune.report.progress import RichReporter

    reporter = RichReporter(Console(file=io.StringIO()))
    reporter.progress = Progress(console=reporter.console)
    reporter.task = reporter.progress.add_task("trials", total=2)
    reporter.trial_done(0, {}, None, "a reference", None, counts=False)
    assert reporter.progress.tasks[0].completed == 0
    reporter.trial_done(1, {"x": 1}, None, "broken", None)
    assert reporter.progress.tasks[0].completed == 1


def test_an_output_path_that_cannot_be_written_is_said_not_a_traceback(finished_run, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = _report(finished_run, "--format", "md", "--out", str(blocker / "report"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"cannot write {blocker}" in done.stderr and "give a path in a folder you can write to" in done.stderr
    export = subprocess.run([sys.executable, "-m", "edgetune.cli", "export", str(finished_run), "--trial", "0",
                             "--out", str(blocker / "deploy")], check=False, capture_output=True, text=True, timeout=300)
    assert export.returncode == 2 and "Traceback" not in export.stderr and "cannot write" in export.stderr


def test_the_headline_says_what_trials_csv_says(finished_run, tmp_path):
    import pandas as pd

    done = _report(finished_run, "--format", "md", "--out", str(tmp_path / "r"))
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "r" / "report.md").read_text()
    rows = pd.read_csv(finished_run / "trials.csv")
    refs = rows["reference"].notna() if "reference" in rows else pd.Series(False, index=rows.index)
    searched = rows[(rows["state"] == "COMPLETE") & (rows["feasible"] == True) & ~refs]
    best = searched.loc[searched["latency_adj_ms"].idxmin()]
    assert text.index("What to deploy") < text.index("Baseline, reference and best trials")  # the first thing read
    assert (f"Deploy trial {int(best['trial'])}: {1 / best['latency_ratio']:.2f}x faster than the unpruned network "
            f"({best['latency_ratio']:.3f} of its latency") in text
    assert f"top-1 {best['top1']:.2f} %" in text


def test_the_overhead_of_fine_tuned_trials_is_over_their_summed_time():
    """A reference (timed, never trained) is all overhead and stays out; the share is of the
    summed seconds, not a mean of shares."""
    import pandas as pd

    from edgetune.report.content import finetuned_overhead

    table = pd.DataFrame({"trial": [0, 1, 2], "seconds_finetune": [8.0, 18.0, None],
                          "seconds_evaluate": [1.0, 1.0, 1.0], "seconds_benchmark": [1.0, 1.0, 3.0],
                          "seconds_trial": [10.0, 20.0, 4.0], "overhead_share": [0.1, 0.05, 0.75]})
    count, share, median = finetuned_overhead(table)
    assert count == 2 and share == pytest.approx(2 / 30) and median == pytest.approx(0.075)
    assert finetuned_overhead(table.drop(columns="seconds_finetune")) is None
