"""What every experiment script shares: run a study through the CLI a user would type, write its
report with `edgetune report`, read its trials back, and keep a JSON summary beside the docs.

The scripts drive `python -m edgetune.cli` rather than the library so that what docs/results.md
reports is exactly what `edgetune run` and `edgetune report` produce.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUNS = ROOT / "runs" / "experiments"
SUMMARIES = ROOT / "docs" / "results"
CHANCE = 10.0  # Fashion-MNIST: ten classes


def edgetune(*args: str) -> float:
    """Run one edgetune command, streaming its output; return its wall time in seconds."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edgetune.cli", *args], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def run_and_report(experiment: str, run_dir: Path, *flags: str) -> float:
    """`edgetune run` then `edgetune report` (HTML, PNG, CSV, Markdown); returns the study's
    seconds from its first trial's start to its last trial's end (a resumed run counts whole)."""
    seconds = edgetune("run", str(HERE / experiment), "--run-dir", str(run_dir), *flags)
    edgetune("report", str(run_dir), "--format", "html", "--format", "png", "--format", "csv", "--format", "md")
    return study_seconds(run_dir) or seconds


def study_seconds(run_dir: Path) -> float | None:
    from edgetune.study.records.results import open_study

    trials = open_study(run_dir).get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    return (max(ends) - min(starts)).total_seconds() if starts and ends else None


def trials(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "trials.csv")


def table(run_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run_dir / "report" / "tables" / f"{name}.csv")


def machine() -> str:
    import onnxruntime
    import torch

    cores = len(__import__("os").sched_getaffinity(0))
    return (f"{platform.processor() or platform.machine()}, {cores} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}")


def save(name: str, summary: dict) -> Path:
    SUMMARIES.mkdir(parents=True, exist_ok=True)
    path = SUMMARIES / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "date": time.strftime("%Y-%m-%d"), **summary}, indent=1,
                               default=float))
    print(f"summary: {path.relative_to(ROOT)}")
    return path


def ruined(frame: pd.DataFrame, margin: float = 2.0) -> int:
    """Networks left at chance (the seed's 'ruined': they never recovered in fine-tuning)."""
    done = frame[(frame["trial"] != "baseline") & frame["state"].isin(["COMPLETE", "PRUNED"])]
    at_chance = pd.to_numeric(done["top1"], errors="coerce") <= CHANCE + margin
    collapsed = done.get("stopped", pd.Series("", index=done.index)).fillna("").astype(str).str.startswith("collapsed")
    return int((at_chance | collapsed).sum())


PRUNERS = ["filter_pruner_layer_1", "filter_pruner_layer_2", "filter_pruner_layer_3.1", "filter_pruner_layer_3.2"]


def correlation_table(run_dir: Path, params: list[str], metrics: tuple[str, ...] = ("latency_ratio", "top1")
                      ) -> dict[str, dict]:
    """Pearson r of each parameter with each metric, as the seed's tables 4.1-4.3 give it."""
    corr = table(run_dir, "correlations")
    out: dict[str, dict] = {}
    for metric in metrics:
        rows = corr[corr["metric"] == metric].set_index("param")
        out[metric] = {p: float(rows.loc[p, "pearson"]) if p in rows.index else None for p in params}
        out[metric]["n"] = int(rows["n"].max()) if len(rows) else 0
    return out


def print_correlations(title: str, ours: dict[str, dict], seeds: dict[str, list[float]]) -> None:
    print(f"\n{title}: Pearson r of each parameter with the metric (the seed's beside)")
    params = [p for p in next(iter(ours.values())) if p != "n"]
    print(f"{'':28}" + "".join(f"{p.removeprefix('filter_pruner_'):>16}" for p in params))
    for metric, row in ours.items():
        cells = [f"{row[p]:+.3f}" if row[p] is not None else "-" for p in params]
        print(f"{metric + ' (ours, n=' + str(row['n']) + ')':28}" + "".join(f"{c:>16}" for c in cells))
        seed = seeds.get(metric)
        if seed:
            print(f"{metric + ' (seed)':28}" + "".join(f"{v:>+16.3f}" for v in seed))


def search_summary(run_dir: Path, seconds: float, params: list[str]) -> dict:
    """What docs/results.md says of a search: its size, time, best points and ruined networks."""
    frame = trials(run_dir)
    done = frame[(frame["trial"] != "baseline") & (frame["state"] == "COMPLETE")]
    base = frame[frame["trial"] == "baseline"].iloc[0]
    fastest = done.loc[pd.to_numeric(done["latency_ratio"]).idxmin()] if len(done) else None
    best = done.loc[pd.to_numeric(done["top1"]).idxmax()] if len(done) else None
    n = int((frame["trial"] != "baseline").sum())
    pick = ["trial", "latency_ms", "latency_ratio", "top1", "top5", "macs"]
    lost = ruined(frame)
    return {"trials": n, "complete": len(done), "seconds": seconds, "ruined": lost,
            "ruined_fraction": lost / n if n else None,
            "baseline": {k: base.get(k) for k in pick},
            "fastest": None if fastest is None else {k: fastest.get(k) for k in pick},
            "most_accurate": None if best is None else {k: best.get(k) for k in pick},
            "correlations": correlation_table(run_dir, params)}


def keep_figure(run_dir: Path, name: str, as_name: str) -> None:
    """Copy a report figure into docs/images for docs/results.md."""
    import shutil

    src = run_dir / "report" / "figures" / f"{name}.png"
    if src.is_file():
        shutil.copy(src, ROOT / "docs" / "images" / f"results-{as_name}.png")


def search_experiment(name: str, seed_table: dict[str, list[float]], figures: dict[str, str],
                      params: list[str] = PRUNERS) -> dict:
    """Run `<name>.experiment.yaml`, report it, print its correlations beside the seed's, copy the
    figures docs/results.md shows, and save the summary."""
    run_dir = RUNS / name
    seconds = run_and_report(f"{name}.experiment.yaml", run_dir)
    summary = search_summary(run_dir, seconds, params)
    print_correlations(name, summary["correlations"], seed_table)
    print({k: summary[k] for k in ("trials", "seconds", "fastest", "most_accurate", "ruined", "ruined_fraction")})
    for figure, as_name in figures.items():
        keep_figure(run_dir, figure, as_name)
    save(name, {**summary, "seed_correlations": seed_table})
    return summary
