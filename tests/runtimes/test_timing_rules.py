"""The latency ratio is the median of the per-round ratios: a few rounds inflated by a slow spell
of the host must not move it (a mean would)."""

import pytest

from edgetune.runtimes.timing import ratio_statistics


def test_the_ratio_is_the_median_of_the_rounds_and_its_spread_the_iqr_over_it():
    ratios = [0.50, 0.52, 0.49, 0.51, 1.90, 0.50, 2.40]  # two rounds caught a busy host
    ratio, spread = ratio_statistics(ratios)
    assert ratio == pytest.approx(0.51)  # the mean would be 0.97
    assert spread == pytest.approx((1.21 - 0.50) / 0.51)  # numpy's linear quartiles: 0.50 and 1.21


class _Clock:
    """A host whose every call takes a set time: the candidate 1 ms, the reference 2 ms, and the
    candidate's fourth round caught by a slow spell (10 ms a call)."""

    def __init__(self) -> None:
        self.now, self.calls = 0.0, 0

    def perf_counter(self) -> float:
        return self.now

    def candidate(self) -> None:
        self.calls += 1
        self.now += 0.010 if 10 <= self.calls <= 12 else 0.001

    def reference(self) -> None:
        self.now += 0.002


def test_time_interleaved_keeps_the_median_round_not_the_mean(monkeypatch):
    """The ratio a study keeps comes from the timing loop itself, not only from its helper: one
    slow round must not move it (the mean of these rounds' ratios is 1.4)."""
    from edgetune.runtimes import timing

    clock = _Clock()
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)
    t = timing.time_interleaved(clock.candidate, clock.reference, warmup=0, runs_per_round=3, min_rounds=5,
                                max_rounds=5, target_spread=10.0)
    assert t.rounds == 5 and t.runs == 15
    assert t.latency_ratio == pytest.approx(0.5)
    assert t.latency_ms == pytest.approx(1.0) and t.reference_ms == pytest.approx(2.0)
    assert t.latency_mean_ms == pytest.approx((12 * 1 + 3 * 10) / 15)


def _timing(**fields):
    from edgetune.runtimes.timing import Timing

    base = {"latency_ms": 0.57, "latency_mean_ms": 0.6, "latency_std_ms": 0.1, "latency_p90_ms": 0.7,
            "latency_p99_ms": 0.8, "latency_min_ms": 0.5, "runs": 100, "rounds": 5, "reference_ms": 1.0,
            "latency_ratio": 0.56, "ratio_spread": 0.05}
    return Timing(**{**base, **fields})


def test_a_measurement_the_rounds_do_not_agree_on_is_not_trusted():
    from edgetune.runtimes.timing import distrust

    assert distrust(_timing()) is None
    assert "ratio spread 66%" in distrust(_timing(ratio_spread=0.66))
    # The busy-host case seen: a ratio of 0.14 beside milliseconds that say 0.57.
    assert "ratio 0.140 disagrees with the milliseconds' 0.570" in distrust(_timing(latency_ratio=0.14))
    assert distrust(_timing(reference_ms=None)) is None  # nothing interleaved: nothing to compare


def test_an_untrusted_measurement_is_taken_again_after_a_pause_and_the_steadiest_kept():
    import itertools

    from edgetune.runtimes import timing as timing_module

    measurements = iter([_timing(ratio_spread=0.9), _timing(ratio_spread=0.4), _timing(ratio_spread=0.03)])
    pauses = []
    original = timing_module.time_repeated
    timing_module.time_repeated = lambda *a, **k: next(measurements)
    try:
        kept, reason = timing_module.time_trusted(lambda: None, lambda: None, sleep=pauses.append)
        assert reason is None and kept.ratio_spread == 0.03 and pauses == [1.0, 3.0]
        noisy = itertools.repeat(_timing(ratio_spread=0.7))
        timing_module.time_repeated = lambda *a, **k: next(noisy)
        kept, reason = timing_module.time_trusted(lambda: None, lambda: None, sleep=lambda _: None)
        assert "busy host" in reason and kept.latency_ms == 0.57  # kept, and said to be untrusted
    finally:
        timing_module.time_repeated = original


def test_an_unreliable_latency_is_never_feasible_so_never_picked():
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from edgetune.search.base import is_feasible

    def trial(**attrs):
        return create_trial(value=0.1, params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                            user_attrs=attrs, system_attrs={"constraints": [-1.0]})

    assert is_feasible(trial())
    assert not is_feasible(trial(latency_unreliable="the interleaved rounds disagree"))
