"""Rung 0 before the fine-tuning rung: who is trained, who is held back and why, and how a held-back
candidate is recorded (its own figures, deployed, rung 0, its latency measured)."""

import csv

import optuna
import pytest

from edgetune.metrics.objectives import Constraint
from edgetune.search.base import record_constraints
from edgetune.study.trial.rungs import Rung0


def _study(*trials: dict) -> optuna.Study:
    study = optuna.create_study(direction="minimize")
    for attrs in trials:
        trial = study.ask()
        for key, value in {"rung": 1, "precision": "fp32", **attrs}.items():
            trial.set_user_attr(key, value)
        record_constraints(trial, ["top1"], [attrs.pop("violation", -1.0)])
        study.tell(trial, attrs["latency_ratio"])
    return study


FLOOR = [Constraint("top1", min=90.0)]


def test_a_candidate_dominated_at_rung_0_by_a_feasible_fine_tuned_one_is_held_back():
    study = _study({"top1_before_ft": 88.0, "latency_ratio": 0.5})
    rung0 = Rung0(study, FLOOR, "fp32", slack=2.0)
    assert "trial 0" in rung0.held_back({"top1_before_ft": 87.0, "latency_ratio": 0.6})
    assert rung0.held_back({"top1_before_ft": 89.0, "latency_ratio": 0.6}) is None  # better at rung 0
    assert rung0.held_back({"top1_before_ft": 87.0, "latency_ratio": 0.4}) is None  # faster
    # Another precision is not compared, nor a candidate without rung-0 figures.
    assert Rung0(study, FLOOR, "int8", 2.0).held_back({"top1_before_ft": 87.0, "latency_ratio": 0.6}) is None
    assert rung0.held_back({"latency_ratio": 0.6}) is None


def test_only_feasible_fine_tuned_candidates_hold_others_back():
    study = _study({"top1_before_ft": 88.0, "latency_ratio": 0.5, "violation": 1.5},  # infeasible after training
                   {"top1_before_ft": 88.0, "latency_ratio": 0.5, "rung": 0})  # never trained
    assert Rung0(study, FLOOR, "fp32", 2.0).held_back({"top1_before_ft": 80.0, "latency_ratio": 0.9}) is None


def test_the_floor_rule_waits_for_evidence_and_keeps_its_slack():
    one = _study({"top1_before_ft": 85.0, "latency_ratio": 0.3})
    assert Rung0(one, FLOOR, "fp32", 2.0).held_back({"top1_before_ft": 70.0, "latency_ratio": 0.2}) is None
    two = _study({"top1_before_ft": 85.0, "latency_ratio": 0.3}, {"top1_before_ft": 90.0, "latency_ratio": 0.6})
    rung0 = Rung0(two, FLOOR, "fp32", 2.0)
    reason = rung0.held_back({"top1_before_ft": 82.9, "latency_ratio": 0.2})
    assert reason is not None and "85.00" in reason and "2 points" in reason
    assert rung0.held_back({"top1_before_ft": 83.5, "latency_ratio": 0.2}) is None
    assert Rung0(two, [], "fp32", 2.0).held_back({"top1_before_ft": 50.0, "latency_ratio": 0.2}) is None  # no floor


@pytest.mark.slow
def test_a_held_back_candidate_is_recorded_with_its_own_figures_at_rung_0(tmp_path, monkeypatch):
    from edgetune.config.experiment import load_experiment
    from edgetune.study import run_study
    from tests.helpers import experiment

    asked = []

    def second_held_back(self, metrics):
        asked.append(metrics["top1_before_ft"])
        return "held back by the test" if len(asked) == 2 else None

    monkeypatch.setattr(Rung0, "held_back", second_held_back)
    monkeypatch.setattr(Rung0, "may_hold_back", lambda self: True)
    spec, _ = load_experiment(experiment(tmp_path, trials=2, epochs=1))
    run_study(spec)
    with open(tmp_path / "run" / "trials.csv") as fh:
        first, second = list(csv.DictReader(fh))[1:]
    assert len(asked) == 2  # both timed before fine-tuning, so that rung 0 could decide
    assert first["rung"] == "1" and float(first["finetune_seconds"]) > 0
    assert second["rung"] == "0" and float(second["finetune_seconds"]) == 0
    assert float(second["top1"]) == float(second["top1_before_ft"]) == asked[1]
    assert float(second["latency_ratio"]) > 0 and "held back by the test" in second["stopped"]
    assert (tmp_path / "run" / "trials" / "0001" / "model.pt").is_file()


def test_candidates_are_timed_before_fine_tuning_only_once_one_could_be_held_back():
    assert not Rung0(_study(), FLOOR, "fp32", 2.0).may_hold_back()
    assert not Rung0(_study({"top1_before_ft": 88.0, "latency_ratio": 0.5, "violation": 1.0}), FLOOR, "fp32",
                     2.0).may_hold_back()
    assert Rung0(_study({"top1_before_ft": 88.0, "latency_ratio": 0.5}), FLOOR, "fp32", 2.0).may_hold_back()
