"""Objective directions end to end and constraint verdicts, pinned: a sweep's `goal: maximize`
must reach the study and the ranking; `min` and `max` constraints must judge both ways; accuracy
constraints are judged after fine-tuning, resource ones before it as well."""

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from edgetune.config.sweep import parse_sweep
from edgetune.metrics.objectives import Constraint, constraints_of, objectives_of, violations
from edgetune.study.records.results import best_trials


def _trial(value: float) -> optuna.trial.FrozenTrial:
    return create_trial(value=value, params={"x": value}, distributions={"x": FloatDistribution(0, 100)})


@pytest.mark.parametrize("goal, best", [("maximize", 93.0), ("minimize", 71.0)])
def test_a_sweeps_goal_reaches_the_objective_the_study_and_the_ranking(goal, best):
    sweep = parse_sweep({"metric": {"name": "top1", "goal": goal}})
    (objective,) = objectives_of(sweep, "s.yaml")
    assert (objective.metric, objective.goal) == ("top1", goal)
    study = optuna.create_study(direction=objective.goal)
    assert study.direction.name == goal.upper()
    ranked = best_trials([_trial(v) for v in (80.0, 93.0, 71.0)], [objective])
    assert ranked[0].value == best


def test_constraint_verdicts_for_min_and_max_and_their_phase():
    sweep = parse_sweep({"constraints": [{"metric": "top1", "min": 92.0}, {"metric": "latency_ms", "max": 1.5}]})
    top1, latency = constraints_of(sweep, "s.yaml")
    assert top1.violation({"top1": 91.0}) == pytest.approx(1.0) and top1.violation({"top1": 93.0}) < 0
    assert latency.violation({"latency_ms": 2.0}) == pytest.approx(0.5) and latency.violation({"latency_ms": 1.0}) < 0
    assert Constraint("top1", min=92.0).violation({}) == float("inf")  # a missing figure is never feasible
    both = Constraint("macs", min=10.0, max=20.0)
    assert both.violation({"macs": 5.0}) > 0 and both.violation({"macs": 25.0}) > 0 and both.violation({"macs": 15}) < 0
    metrics = {"top1": 91.0, "latency_ms": 2.0}
    _, before_finetuning = violations([top1, latency], metrics, resources_only=True)
    _, after = violations([top1, latency], metrics)
    assert len(before_finetuning) == 1 and before_finetuning[0].startswith("latency_ms")
    assert len(after) == 2 and after[0].startswith("top1")  # accuracy judged once it is final
