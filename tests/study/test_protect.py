"""A run directory protects its finished trials. Each case once lost work: a 0-byte study.db made
`edgetune run` start a new study and write over trials 0 and 1 (and the backup it had told the
user to restore); `--name other` put a second study into the same database; `trials/` replaced
by a file failed each trial and still exited 0; a refused experiment rewrote
experiment.resolved.yaml; `edgetune report` wrote Optuna's schema into an empty study.db; and
`edgetune report` crashed on every study run with `--sweep FILE`."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.errors import EdgetuneError, RunDirError
from edgetune.study import run_study
from edgetune.study.storage.protect import database_problem, set_aside
from tests.helpers import ROOT, experiment

pytestmark = pytest.mark.slow


def _digest(run: Path) -> dict[str, str]:
    """Every file of the run directory but the lock, by content."""
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _finish(folder: Path) -> None:
    run_study(load_experiment(experiment(folder, trials=2, epochs=0))[0])


@pytest.fixture
def finished(tmp_path: Path, built_once) -> Path:
    """A finished two-trial study in this test's folder: run once per session, copied here with
    its experiment file written again to name this copy's run directory."""
    import shutil

    shutil.copytree(built_once("protect-finished", _finish), tmp_path, dirs_exist_ok=True)
    experiment(tmp_path, trials=2, epochs=0)
    return tmp_path / "run"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetune.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.mark.parametrize("damage", ["empty", "garbage", "missing", "no-study"])
def test_a_damaged_database_beside_finished_trials_is_refused_and_nothing_is_written(tmp_path, finished, damage):
    db = finished / "study.db"
    if damage == "missing":
        db.unlink()
    elif damage == "no-study":
        import sqlite3

        db.unlink()
        sqlite3.connect(db).execute("CREATE TABLE other (x)").connection.commit()
    else:
        db.write_bytes(b"" if damage == "empty" else b"\x00garbage" * 100)
    before = _digest(finished)
    done = _cli("run", str(tmp_path / "experiment.yaml"), cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr + done.stdout
    assert "study.db.bak" in done.stderr and "--run-dir" in done.stderr
    assert _digest(finished) == before  # no trial, no trials.csv, no backup, not the resolved experiment


def test_a_reader_never_writes_a_schema_into_an_empty_database(tmp_path, finished):
    db = finished / "study.db"
    db.write_bytes(b"")
    for command in (["report", str(finished), "--format", "md"], ["export", str(finished), "--out", "x"]):
        done = _cli(*command, cwd=tmp_path)
        assert done.returncode != 0 and "is empty" in done.stderr and "Traceback" not in done.stderr
    assert db.stat().st_size == 0


def test_one_run_directory_holds_one_study(tmp_path, finished):
    before = _digest(finished)
    with pytest.raises(EdgetuneError, match=r"holds study 'tiny', not 'other': one run directory holds one study"):
        run_study(load_experiment(experiment(tmp_path, trials=2, epochs=0), {"name": "other"})[0])
    assert _digest(finished) == before


def test_a_refused_experiment_leaves_the_record_of_the_last_one(tmp_path, finished):
    resolved = (finished / "experiment.resolved.yaml").read_text()
    with pytest.raises(EdgetuneError, match="different experiment"):
        run_study(load_experiment(experiment(tmp_path, trials=3, epochs=1))[0])
    assert (finished / "experiment.resolved.yaml").read_text() == resolved


def test_a_run_that_cannot_write_its_trials_stops_naming_the_path(tmp_path, finished):
    import shutil

    shutil.rmtree(finished / "trials")
    (finished / "trials").write_text("not a folder")
    with pytest.raises(RunDirError, match=r"trial 2's files cannot be written to .*trials"):
        run_study(load_experiment(experiment(tmp_path, trials=3, epochs=0))[0])
    done = _cli("run", str(tmp_path / "experiment.yaml"), "--trials", "4", cwd=tmp_path)  # trial 2 counted failed
    assert done.returncode != 0 and "cannot be written" in done.stderr


def test_a_trial_folder_already_on_disk_is_set_aside_not_written_over(tmp_path):
    folder = tmp_path / "trials" / "0003"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text("{}")
    aside = set_aside(folder)
    assert aside is not None and (aside / "metrics.json").read_text() == "{}" and not folder.exists()
    assert set_aside(folder) is None


def test_database_problems_are_read_without_writing(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert database_problem(empty) == "is empty (0 bytes)" and empty.stat().st_size == 0
    assert database_problem(tmp_path / "none.db") is None


def test_the_report_reads_a_study_run_with_the_seeds_two_files_as_flags(tmp_path):
    examples = ROOT / "examples" / "resnet56-fmnist"
    sweep = yaml.safe_load((examples / "figure3.9.sweep.yaml").read_text())
    sweep["parameters"] = {k: v for k, v in list(sweep["parameters"].items())[:1]}
    sweep["constraints"] = [{"metric": "top1", "min": 10}]
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    spec = yaml.safe_load(experiment(tmp_path, trials=1, epochs=0).read_text())
    for key in ("recipe", "sweep"):
        spec.pop(key)
    spec["model"] = {"checkpoint": str(ROOT / "models" / "resnet56-fmnist.pt")}
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(spec))
    done = _cli("run", str(tmp_path / "experiment.yaml"), "--schedule", str(examples / "resnet56-table3.2.schedule.yaml"),
                "--sweep", str(tmp_path / "sweep.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    resolved = yaml.safe_load((tmp_path / "run" / "experiment.resolved.yaml").read_text())
    assert resolved["sweep_file"] == str(tmp_path / "sweep.yaml") and resolved["sweep"]["constraints"]
    report = _cli("report", str(tmp_path / "run"), "--format", "md", "--format", "png", cwd=tmp_path)
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]


def test_an_unreadable_enqueued_checkpoint_is_refused_before_the_run_directory_is_touched(tmp_path):
    import os

    bad = tmp_path / "sibling.pt"
    bad.write_bytes(os.urandom(256))
    path = experiment(tmp_path, trials=1, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"]["enqueue"] = [str(bad)]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(EdgetuneError, match="sibling.pt"):
        run_study(load_experiment(path)[0])
    assert not (tmp_path / "run").exists()
