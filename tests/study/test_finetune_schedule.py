"""A candidate's learning rate over its fine-tuning: a cosine over every step unless the recipe
schedules the rate itself, constant when asked, and a study begun before the cosine was the
default goes on at a constant rate (its trials are not mixed)."""

import copy
import sqlite3

import pytest

from edgetune.config.experiment import load_experiment
from edgetune.errors import ConfigError
from edgetune.study import run_study
from tests.helpers import RECIPE, experiment, read_csv

pytestmark = pytest.mark.slow

NO_LR_SCHEDULER = {**copy.deepcopy(RECIPE), "lr_schedulers": {},
                   "policies": [p for p in RECIPE["policies"] if "lr_scheduler" not in p]}


def _final_lrs(tmp_path) -> list[float]:
    return [float(r["final_lr"]) for r in read_csv(tmp_path / "run" / "trials.csv")[1:]]


def test_fine_tuning_follows_a_cosine_to_zero_and_an_earlier_study_keeps_its_constant_rate(tmp_path):
    spec, _ = load_experiment(experiment(tmp_path, trials=1, epochs=1, recipe=NO_LR_SCHEDULER))
    run_study(spec)
    assert _final_lrs(tmp_path) == [pytest.approx(0.0, abs=1e-9)]  # it was 0.01 throughout
    with sqlite3.connect(tmp_path / "run" / "study.db") as db:  # as the studies before the cosine were
        db.execute("DELETE FROM study_user_attributes WHERE key = 'finetune_schedule'")
    spec, _ = load_experiment(experiment(tmp_path, trials=2, epochs=1, recipe=NO_LR_SCHEDULER))
    run_study(spec)
    assert _final_lrs(tmp_path) == [pytest.approx(0.0, abs=1e-9), pytest.approx(0.01)]


def test_a_constant_rate_when_asked(tmp_path):
    spec, _ = load_experiment(experiment(tmp_path, trials=1, epochs=1, recipe=NO_LR_SCHEDULER))
    spec.finetune.schedule = "constant"
    run_study(spec)
    assert _final_lrs(tmp_path) == [pytest.approx(0.01)]


def test_a_cosine_asked_beside_the_recipes_scheduler_is_refused_before_anything_is_written(tmp_path):
    spec, _ = load_experiment(experiment(tmp_path, trials=1, epochs=1))  # RECIPE steps ExponentialLR
    spec.finetune.schedule = "cosine"
    with pytest.raises(ConfigError, match="finetune.schedule.*lr_scheduler"):
        run_study(spec)
    assert not (tmp_path / "run").exists()
