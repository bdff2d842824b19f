"""W&B's sweep keys where they act on a study: `run_cap` caps it, `metric.target` ends it once a
feasible trial reaches the target, and a transformed value is the one the candidate and
trials.csv get."""

import pytest
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.study import run_study
from edgetune.study.planning.plan import plan_study
from tests.helpers import experiment, read_csv


def _with_sweep(tmp_path, trials=None, **sweep):
    path = experiment(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["sweep"].update(sweep)
    if trials is None:
        raw.pop("trials")
    else:
        raw["trials"] = trials
    path.write_text(yaml.safe_dump(raw))
    return load_experiment(path)[0]


def test_run_cap_is_the_count_when_no_trials_are_asked_and_caps_them_when_they_are(tmp_path):
    assert plan_study(_with_sweep(tmp_path, run_cap=7)).limit == 7
    assert plan_study(_with_sweep(tmp_path, trials=12, run_cap=7)).limit == 7
    assert plan_study(_with_sweep(tmp_path, trials=3, run_cap=7)).limit == 3


@pytest.mark.slow
def test_a_target_reached_ends_the_search_and_the_value_given_is_recorded(tmp_path):
    spec = _with_sweep(tmp_path, trials=4, metric={"name": "latency_ratio", "goal": "minimize", "target": 10.0},
                       parameters={"stage_1": {"distribution": "q_normal", "mu": 0.5, "sigma": 0.05, "q": 0.05},
                                   "stage_3": {"min": 0.3, "max": 0.9}})
    outcome = run_study(spec)
    trials = outcome.study.trials
    assert len(trials) == 1 and outcome.study.user_attrs["target_reached"] == 0  # any ratio is under 10
    given = trials[0].user_attrs["applied_params"]["stage_1"]
    assert round(given / 0.05, 6) == round(given / 0.05) and 0.25 <= given <= 0.75
    row = read_csv(tmp_path / "run" / "trials.csv")[1]
    assert float(row["param.stage_1"]) == given
    recipe = yaml.safe_load((tmp_path / "run" / "trials" / "0000" / "recipe.yaml").read_text())
    assert recipe["params"]["stage_1"] == given
