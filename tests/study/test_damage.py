"""A study that is damaged, interrupted or mistyped: what a user is told and what is kept.
A damaged database is named with its recovery (the copy taken after the last trial); readers
never create a database; trials.csv and that copy are current before every trial, so an
interrupted run leaves both; odd characters in a run directory keep the database inside it; a
study that never ran a trial does not block the corrected experiment."""

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.study.records.results import open_study
from edgetune.study.storage.rundir import RunDir
from tests.helpers import experiment, read_csv

ROOT = Path(__file__).parents[2]


def _run_dir(tmp_path: Path, name: str = "run") -> Path:
    run = tmp_path / name
    run.mkdir()
    (run / "experiment.resolved.yaml").write_text(yaml.safe_dump({"name": "tiny"}))
    study = optuna.create_study(study_name="tiny", storage=RunDir(run).default_storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    return run


def test_odd_characters_in_a_run_directory_keep_the_database_inside_it(tmp_path):
    run = _run_dir(tmp_path, "a?b#c d")
    assert (run / "study.db").is_file() and not (tmp_path / "a").exists()
    assert len(open_study(run).trials) == 2


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "missing"])
def test_a_damaged_study_is_named_with_how_to_recover_and_readers_create_nothing(tmp_path, damage):
    run = _run_dir(tmp_path)
    db = run / "study.db"
    good = db.read_bytes()
    (run / "study.db.bak").write_bytes(good)
    {"empty": lambda: db.write_bytes(b""), "truncated": lambda: db.write_bytes(good[: len(good) // 3]),
     "random": lambda: db.write_bytes(os.urandom(len(good))), "missing": db.unlink}[damage]()
    with pytest.raises(EdgetuneError, match=r"study.db.bak beside it is the copy taken after the last completed "
                                            r"trial: move it over study.db"):
        open_study(run)
    assert db.exists() == (damage != "missing")  # reading did not create a database
    done = subprocess.run([sys.executable, "-m", "edgetune.cli", "report", str(run)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout
    assert "study.db" in done.stderr
    os.replace(run / "study.db.bak", db)
    assert len(open_study(run).trials) == 2  # the recovery the message gives works


def test_export_names_a_trial_that_is_not_there(tmp_path):
    from edgetune.study.records.trial_export import export_trial

    run = _run_dir(tmp_path)
    for trial, says in (("abc", r"--trial 'abc': give 'best' or a trial number \(this study's: 0-1\)"),
                        ("99", r"--trial 99: the study has no such trial \(its trials: 0-1\)"),
                        ("-1", r"--trial -1: the study has no such trial")):
        with pytest.raises(ConfigError, match=says):
            export_trial(run, trial, tmp_path / "out")


@pytest.mark.slow
def test_an_interrupted_search_leaves_trials_csv_and_a_database_copy_with_every_finished_trial(tmp_path,
                                                                                             monkeypatch):
    from edgetune.study import run_study
    from edgetune.study.trial.evaluator import Evaluator

    real = Evaluator.__call__

    def interrupted(self, trial, params):
        if trial.number == 1:
            raise KeyboardInterrupt  # Ctrl-C while the second candidate trains
        return real(self, trial, params)

    monkeypatch.setattr(Evaluator, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(load_experiment(experiment(tmp_path, trials=3))[0])
    rows = read_csv(tmp_path / "run" / "trials.csv")
    # Written as trial 1 began: trial 0 finished, trial 1 shown as what it was when stopped.
    assert [(r["trial"], r["state"]) for r in rows] == [("baseline", "BASELINE"), ("0", "COMPLETE"), ("1", "RUNNING")]
    copy = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'run' / 'study.db.bak'}")
    assert [t.state.name for t in copy.trials] == ["COMPLETE", "RUNNING"]  # a resume reclaims the running one


def test_a_study_that_never_ran_a_trial_does_not_block_the_corrected_experiment(tmp_path):
    from edgetune.search.base import get_strategy
    from edgetune.study.planning.plan import plan_study
    from edgetune.study.runner import _open_study

    first = plan_study(load_experiment(experiment(tmp_path, epochs=1))[0])
    first.run_dir.mkdir()
    _open_study(first, get_strategy("random"), first.storage)
    corrected = plan_study(load_experiment(experiment(tmp_path, epochs=2))[0])
    again, _ = _open_study(corrected, get_strategy("random"), corrected.storage)
    assert again.user_attrs["fingerprint"] == corrected.fingerprint != first.fingerprint
    again.optimize(lambda t: 1.0, n_trials=1)  # now it holds work: a different experiment is refused
    with pytest.raises(EdgetuneError, match="of a different experiment"):
        _open_study(first, get_strategy("random"), first.storage)
    # With the experiment it recorded at hand, the refusal says which setting differs.
    from edgetune.study.planning.resolved import resolved_experiment

    corrected.paths.resolved_experiment.write_text(resolved_experiment(corrected))
    with pytest.raises(EdgetuneError, match=r"different experiment \(finetune.epochs: 2 then, 1 now\)"):
        _open_study(first, get_strategy("random"), first.storage)
