"""The latency ratio is the median of the per-round ratios: a few rounds inflated by a slow spell
of the host must not move it (a mean would)."""

import pytest

from edgetune.runtimes.timing import ratio_statistics


def test_the_ratio_is_the_median_of_the_rounds_and_its_spread_the_iqr_over_it():
    ratios = [0.50, 0.52, 0.49, 0.51, 1.90, 0.50, 2.40]  # two rounds caught a busy host
    ratio, spread = ratio_statistics(ratios)
    assert ratio == pytest.approx(0.51)  # the mean would be 0.97
    assert spread == pytest.approx((1.21 - 0.50) / 0.51)  # numpy's linear quartiles: 0.50 and 1.21
