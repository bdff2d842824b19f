"""Early rejection: the bound on the full subset's top-1 from the images seen, checked against a
simulation, and a study that stops scoring hopeless candidates, says so, and keeps the rest."""

import numpy as np
import pytest
import yaml

from edgetune.config.experiment import load_experiment
from edgetune.metrics.objectives import Constraint
from edgetune.study import run_study
from edgetune.study.trial.reject import rejection, top1_lower_bound, top1_upper_bound
from tests.helpers import experiment


def test_the_bound_covers_the_full_subset_at_its_confidence():
    """2,000 images of true accuracy 0.9: after 500 the bound is under the full top-1 far less
    often than 1 - confidence (it is conservative), and it rejects a hopeless candidate at once."""
    rng = np.random.default_rng(0)
    misses = 0
    for _ in range(2000):
        right = rng.random(2000) < 0.9
        bound = top1_upper_bound(int(right[:500].sum()), 500, 2000, 0.99)
        misses += bound < 100 * right.mean()
    assert misses / 2000 <= 0.01
    assert top1_upper_bound(50, 500, 2000, 0.999) < 40.0 < top1_upper_bound(450, 500, 2000, 0.999)
    assert top1_upper_bound(500, 500, 2000, 0.999) == 100.0
    assert top1_upper_bound(1500, 2000, 2000, 0.999) == pytest.approx(75.0)  # nothing left unseen


def test_the_lower_bound_covers_the_full_subset_and_accepts_only_when_top1_is_not_an_objective():
    """The mirror image: under the full top-1 at least `confidence` of the time, and a rule that
    accepts stops on a candidate clear of the floor; one that does not (top-1 is an objective,
    whose exact value decides) scores every image."""
    rng = np.random.default_rng(1)
    misses = 0
    for _ in range(2000):
        right = rng.random(2000) < 0.9
        misses += top1_lower_bound(int(right[:500].sum()), 500, 2000, 0.99) > 100 * right.mean()
    assert misses / 2000 <= 0.01
    assert top1_lower_bound(0, 500, 2000, 0.999) == 0.0
    assert top1_lower_bound(1500, 2000, 2000, 0.999) == pytest.approx(75.0)
    floor = [Constraint("top1", min=80.0)]
    accepting = rejection(floor, 2000, 0.999, accepts=True)
    assert accepting.stop(490, 500) and accepting.accepted(490, 500) and not accepting.rejected(490, 500)
    assert accepting.reason(490, 500).startswith("accepted after 500 of 2000")
    assert not accepting.stop(420, 500)  # 84 % seen: not yet clear of 80 at 99.9 %
    assert not rejection(floor, 2000, 0.999).stop(490, 500)  # the default: rejects only


def test_only_a_top1_floor_rejects():
    assert rejection([Constraint("macs_ratio", max=0.5)], 2000, 0.999) is None
    assert rejection([Constraint("top1", min=90.0)], 2000, None) is None
    rule = rejection([Constraint("top1", min=90.0), Constraint("top1", min=94.0)], 2000, 0.999)
    assert rule.floor == 94.0 and rule.stop(100, 500) and not rule.stop(490, 500) and not rule.stop(100, 2000)


@pytest.mark.slow
def test_a_study_stops_scoring_hopeless_candidates_and_keeps_their_latency(tmp_path):
    path = experiment(tmp_path, trials=2, epochs=0)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["val_subset"] = 1000
    raw["sweep"]["parameters"] = {"stage_1": {"value": 0.9}, "stage_3": {"values": [0.9, 0.1]}}
    raw["sweep"]["method"] = "grid"
    raw["sweep"]["constraints"] = [{"metric": "top1", "min": 20.0}]
    path.write_text(yaml.safe_dump(raw))
    outcome = run_study(load_experiment(path)[0])
    trials = {t.params["stage_3"]: t for t in outcome.study.get_trials()}
    hopeless = trials[0.9].user_attrs  # 90 % of both stages' filters gone, no fine-tuning: near chance
    assert hopeless["top1_images"] < 1000 and hopeless["rejected_early"].startswith("rejected after ")
    assert hopeless["latency_ms"] > 0 and hopeless["latency_ratio"] > 0  # measured all the same
    assert trials[0.9].number not in {t.number for t in outcome.feasible()}
    assert "infeasible" in hopeless and hopeless["top1"] < 20.0
    # Clear of the floor after the first batch, and top-1 is not the objective (latency is): the
    # rest of the images would not change the verdict, so they are not scored.
    kept = trials[0.1].user_attrs
    assert kept["top1_images"] < 1000 and kept["accepted_early"].startswith("accepted after ")
    assert "rejected_early" not in kept and "infeasible" not in kept and kept["top1"] > 20.0
    assert trials[0.1].number in {t.number for t in outcome.feasible()}
