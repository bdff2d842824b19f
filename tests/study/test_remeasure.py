"""A latency not trusted is timed again, from the trial's own file, when the search ends and when
a study resumes: the candidate gets a fair figure as a new trial and may then be picked."""

import pytest

from edgetune.config.experiment import load_experiment
from edgetune.runtimes import timing
from edgetune.study import run_study
from edgetune.study.records.results import counted
from tests.helpers import experiment, read_csv


@pytest.mark.slow
def test_latencies_not_trusted_are_timed_again_and_may_then_be_picked(tmp_path, monkeypatch):
    path = experiment(tmp_path, trials=2, epochs=0)
    with monkeypatch.context() as m:  # a host so busy that no interleaved measurement is trusted
        m.setattr(timing, "MAX_RATIO_SPREAD", -1.0)
        m.setattr(timing, "BACKOFF_SECONDS", ())
        first = run_study(load_experiment(path)[0])
    trials = first.study.get_trials()
    # The search's two trials, and each timed again when it ended: still not trusted.
    assert len(trials) == 4 and all(t.user_attrs.get("latency_unreliable") for t in trials)
    assert [t.user_attrs.get("remeasure_of") for t in trials] == [None, None, 0, 1]
    assert first.feasible() == [] and counted(first.study) == 2

    again = run_study(load_experiment(path)[0])  # the host quiet again: resuming times them again
    trials = again.study.get_trials()
    assert [t.user_attrs.get("remeasure_of") for t in trials] == [None, None, 0, 1, 2, 3]
    assert counted(again.study) == 2  # no candidate was built for a timing
    for old, new in zip(trials[:2], trials[4:], strict=True):
        assert not new.user_attrs.get("latency_unreliable")
        assert new.params == old.params and new.user_attrs["top1"] == old.user_attrs["top1"]
        assert new.values == [new.user_attrs["latency_adj_ms"]]
        assert (tmp_path / "run" / "trials" / f"{new.number:04d}" / "model.onnx").is_file()
    assert {t.number for t in again.feasible()} <= {4, 5} and again.feasible()
    rows = {r["trial"]: r for r in read_csv(tmp_path / "run" / "trials.csv")}
    assert rows["0"]["feasible"] == "False" and "busy host" in rows["0"]["latency_unreliable"]
    assert rows["4"]["remeasure_of"] == "2" and rows["4"]["latency_unreliable"] == ""
