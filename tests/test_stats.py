"""The one interval helper every ranking sentence uses: t-intervals and paired comparisons on known data."""

from __future__ import annotations

import math

import pytest

from resnet_core.stats import against, mean_interval, paired, t_quantile


@pytest.mark.parametrize("df, value", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423),
                                       (1000, 1.9623)])
def test_t_quantiles_match_the_published_table(df, value):
    assert t_quantile(0.975, df) == pytest.approx(value, abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-value, abs=1e-4)


def test_mean_interval_of_known_data():
    # 1..5: mean 3, sd sqrt(2.5), half-width t(0.975, 4) * sd / sqrt(5) = 2.7764 * 0.7071 = 1.9632
    i = mean_interval([1, 2, 3, 4, 5])
    assert i.mean == 3 and i.n == 5
    assert (i.low, i.high) == pytest.approx((3 - 1.9632, 3 + 1.9632), abs=1e-4)
    assert i.text() == "3.00 ± 1.96" and i.text(0, 100, "%") == "300 ± 196%"
    flat = mean_interval([0.4, 0.4, 0.4])
    assert flat.known and flat.half_width == 0 and flat.above(0.3)
    assert mean_interval([-0.001, 0.0005]).text().startswith("0.00 ± ")  # never "-0.00"
    one = mean_interval([0.43])
    assert not one.known and math.isnan(one.low) and one.text() == "0.43" and not one.above(0.0)
    with pytest.raises(ValueError):
        mean_interval([])


def test_paired_comparison_decides_only_when_the_difference_excludes_zero():
    a = [0.50, 0.61, 0.42, 0.55, 0.47]
    clear = paired(a, [v - 0.1 for v in a])  # every image 0.1 lower: no spread in the difference
    assert clear.verdict == "a" and clear.difference.mean == pytest.approx(0.1)
    near = paired(a, [0.51, 0.60, 0.43, 0.54, 0.47])  # differences -0.01..+0.01 around 0
    assert near.verdict is None and near.difference.low < 0 < near.difference.high
    assert paired([v - 0.1 for v in a], a).verdict == "b"
    # Pairing matters: the same two sets unpaired overlap (image-to-image spread 0.19), paired they separate.
    assert clear.a.low < clear.b.high
    assert paired([0.5], [0.1]).verdict is None  # one image: no spread, no verdict
    assert against([0.1, 0.2, 0.15, 0.12], 0.5).verdict == "b"
    assert against([0.1, 0.9, 0.4, 0.7], 0.5).verdict is None
    with pytest.raises(ValueError):
        paired([1, 2], [1])
