"""How sure a number is: a mean with its 95% confidence interval, and a paired comparison that gives a verdict
only when the interval of the difference excludes 0.

Every sentence in the app that ranks two things measured on the same images (two attribution methods, two
layers, two nets, a score against chance) goes through `paired` or `against`, so a difference within the noise
is never read as a ranking. Intervals are Student t-intervals over the items (images, seeds): exact for normal
data, and for n >= 10 or so close to the bootstrap's on bounded scores like these. One item has no spread, so
its interval is unknown (NaN) and it decides nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


# ---- Student's t quantile, without scipy -------------------------------------------------------------------

def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t value below which a share `p` of Student's t with `df` degrees of freedom lies (bisection)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
        if high - low < 1e-12:
            break
    return 0.5 * (low + high)


# ---- intervals ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """A mean over n items and its confidence interval (low, high); NaN bounds when n < 2 (no spread known)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def known(self) -> bool:
        """Whether the interval could be computed (at least two items)."""
        return self.n >= 2 and not math.isnan(self.low)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0 if self.known else math.nan

    def above(self, value: float) -> bool:
        """The whole interval lies above `value` (a verdict "higher than value" is supported)."""
        return self.known and self.low > value

    def below(self, value: float) -> bool:
        return self.known and self.high < value

    def text(self, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
        """"0.43 ± 0.05" (the half-width of the interval), or "0.43" alone when it is unknown. `scale`=100
        with unit="%" writes shares as percentages."""
        m = f"{scale * self.mean:.{digits}f}"
        m = m.lstrip("-") if float(m) == 0 else m  # no "-0.00" for a mean that rounds to zero
        return f"{m}{unit}" if not self.known else f"{m} ± {scale * self.half_width:.{digits}f}{unit}"


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The mean of `values` with its t-interval (the item-to-item spread; NaN bounds for fewer than 2)."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("mean_interval needs at least one value")
    mean = statistics.fmean(data)
    if len(data) < 2:
        return Interval(mean, math.nan, math.nan, len(data), confidence)
    half = t_quantile(0.5 + confidence / 2.0, len(data) - 1) * statistics.stdev(data) / math.sqrt(len(data))
    return Interval(mean, mean - half, mean + half, len(data), confidence)


@dataclass(frozen=True)
class Comparison:
    """a − b, item by item, and what it supports: "a" (a higher), "b" (b higher) or None (within the noise,
    or too few items to tell)."""

    a: Interval
    b: Interval
    difference: Interval

    @property
    def verdict(self) -> str | None:
        if self.difference.above(0.0):
            return "a"
        if self.difference.below(0.0):
            return "b"
        return None

    @property
    def decided(self) -> bool:
        return self.verdict is not None


def paired(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Comparison:
    """Two scores measured on the same items (a[i] and b[i] on item i): the mean difference with its
    t-interval. Pairing removes the item-to-item spread both share (an easy image is easy for both)."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need one value each per item, got {len(a)} and {len(b)}")
    diffs = [float(x) - float(y) for x, y in zip(a, b)]
    return Comparison(mean_interval(a, confidence), mean_interval(b, confidence), mean_interval(diffs, confidence))


def against(values: Sequence[float], reference: float | Sequence[float],
            confidence: float = CONFIDENCE) -> Comparison:
    """Scores against a fixed level (a threshold) or a per-item level (e.g. each image's chance)."""
    levels = [float(reference)] * len(values) if isinstance(reference, (int, float)) else list(reference)
    return paired(values, levels, confidence)


ONE_ITEM = "one image cannot decide it"
