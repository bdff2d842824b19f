"""A search beside a real CPU hog (busy processes on every core): whatever the hog does to the
timings, a latency the interleaved rounds do not agree on is marked, kept and never picked."""

import os
import subprocess
import sys

import pytest

from edgetune.config.experiment import load_experiment
from edgetune.study import run_study
from tests.helpers import experiment, read_csv


@pytest.mark.slow
def test_no_unreliable_measurement_is_picked_beside_a_cpu_hog(tmp_path):
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 2))]
    try:
        outcome = run_study(load_experiment(experiment(tmp_path, trials=4, epochs=0))[0])
    finally:
        for hog in hogs:
            hog.kill()
    trials = [t for t in outcome.study.trials if t.state.name == "COMPLETE"]
    assert len(trials) == 4
    for t in outcome.feasible() + outcome.best():
        assert not t.user_attrs.get("latency_unreliable")
    rows = {r["trial"]: r for r in read_csv(tmp_path / "run" / "trials.csv")}
    for t in trials:
        if t.user_attrs.get("latency_unreliable"):  # shown, with why, and not feasible
            assert rows[str(t.number)]["feasible"] == "False" and "busy host" in rows[str(t.number)]["latency_unreliable"]
