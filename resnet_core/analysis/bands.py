"""Several seeds of one net as a band, and the degradation demo's orderings, read the same way by the page, the
asset builder and benchmarks/bench_degradation_robustness.py.

One definition of "final training loss" for all of them (cards, captions, provenance, benchmark): the mean of
the training losses of the last epoch's steps (`final_loss`). Per-step losses are one batch each, so orderings
are read on means over windows of steps (`window_means`), never on single batches.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def final_loss(curve: Mapping[str, Any], steps_per_epoch: int, upto: int | None = None) -> float | None:
    """The mean training loss over the last epoch's steps of a curve (up to step `upto` for a partial run: the
    last `steps_per_epoch` steps it has); None without a finite loss."""
    losses = [v for step, v in zip(curve["step"], curve["train_loss"])
              if math.isfinite(v) and (upto is None or step <= upto)]
    if not losses:
        return None
    return statistics.fmean(losses[-max(1, steps_per_epoch):])


def window_means(curve: Mapping[str, Any], start: int, window: int, end: int | None = None) -> list[tuple[int, float]]:
    """(last step, mean loss) of consecutive windows of `window` steps after step `start` (up to `end`); a
    trailing partial window counts when it holds at least half a window."""
    pairs = [(s, v) for s, v in zip(curve["step"], curve["train_loss"])
             if s > start and (end is None or s <= end) and math.isfinite(v)]
    out = []
    for i in range(0, len(pairs), max(1, window)):
        chunk = pairs[i:i + window]
        if len(chunk) * 2 >= window or not out:
            out.append((chunk[-1][0], statistics.fmean(v for _, v in chunk)))
    return out


def stays_above(upper: Mapping[str, Any], lower: Mapping[str, Any], start: int, window: int) -> bool:
    """Whether `upper`'s windowed training loss is above `lower`'s in every window from step `start` to the end
    both reached (False when they share no window)."""
    end = min(upper["step"][-1] if upper["step"] else 0, lower["step"][-1] if lower["step"] else 0)
    a, b = window_means(upper, start, window, end), window_means(lower, start, window, end)
    pairs = list(zip(a, b))
    return bool(pairs) and all(u > v for (_, u), (_, v) in pairs)


LEARNED = 3.0  # a net has learned when its last validation accuracy is at least this many times chance


@dataclass(frozen=True)
class Lesson:
    """The degradation demo's claims about one seed's four runs (None where a net of the pair is missing):
    `degraded`: the deep plain net's training loss stays above the shallow one's from the end of the warm-up
    (stays_above, windows of a quarter epoch); `cured`: the deep residual net's final loss is at or below the
    shallow one's; `learned`: every net ends at LEARNED x chance or more in validation accuracy."""

    degraded: bool | None
    cured: bool | None
    learned: bool

    @property
    def holds(self) -> bool:
        return bool(self.learned and self.degraded is not False and self.cured is not False)


def lesson(curves: Mapping[str, Mapping[str, Any]], steps_per_epoch: int, warmup_step: int,
           depths: Sequence[int] = (20, 56), num_classes: int = 10) -> Lesson:
    """Read the Lesson from `curves` keyed by the nets' labels ("plain-20", "ResNet-56", ...): the one reading
    the page's recording test, bench_degradation_robustness.py and bench_demos.py's live run share."""
    shallow, deep = min(depths), max(depths)
    get = lambda kind, depth: curves.get(f"{kind}-{depth}")
    p_deep, p_shallow, r_deep, r_shallow = get("plain", deep), get("plain", shallow), get("ResNet", deep), get(
        "ResNet", shallow)
    window = max(1, steps_per_epoch // 4)
    degraded = None if p_deep is None or p_shallow is None else stays_above(p_deep, p_shallow, warmup_step, window)
    finals = [None if c is None else final_loss(c, steps_per_epoch) for c in (r_deep, r_shallow)]
    cured = None if None in finals else finals[0] <= finals[1]
    learned = bool(curves) and all(c["val_acc"] and c["val_acc"][-1] >= LEARNED / num_classes
                                   for c in curves.values())
    return Lesson(degraded, cured, learned)


def epochs_to_reach(curves: Sequence[Mapping[str, Any]], steps_per_epoch: int, acc: float) -> list[float | None]:
    """Per curve (one seed each): the epoch (fractional) of its first validation at `acc` or above, None if it
    never got there."""
    out: list[float | None] = []
    for c in curves:
        hit = next((step for step, a in zip(c["val_step"], c["val_acc"]) if a >= acc), None)
        out.append(None if hit is None else hit / max(1, steps_per_epoch))
    return out


@dataclass(frozen=True)
class CurveBand:
    """One net over several seeds: at each step, the mean and the min-max of its runs' (smoothed) values (per
    step; analysis.profiles.Band is the same over a network's layers)."""

    step: list[int]
    mean: list[float]
    low: list[float]
    high: list[float]
    runs: int


def band(series: Sequence[tuple[Sequence[int], Sequence[float]]]) -> CurveBand | None:
    """The band of several (steps, values) series over the steps they all have (None when they share none).
    NaN values are left out at their step; a step where every run is NaN is dropped."""
    if not series:
        return None
    common = set(series[0][0])
    for steps, _ in series[1:]:
        common &= set(steps)
    lookup = [dict(zip(steps, values)) for steps, values in series]
    out = CurveBand([], [], [], [], len(series))
    for step in sorted(common):
        vals = [d[step] for d in lookup if math.isfinite(d[step])]
        if not vals:
            continue
        out.step.append(step)
        out.mean.append(statistics.fmean(vals))
        out.low.append(min(vals))
        out.high.append(max(vals))
    return out if out.step else None


def smoothed(steps: Sequence[int], values: Sequence[float], window: int) -> tuple[list[int], list[float]]:
    """A trailing mean over `window` steps (fewer at the start): the curve a band is drawn from, so one batch's
    noise does not widen it."""
    out_s, out_v, acc = [], [], []
    for s, v in zip(steps, values):
        if not math.isfinite(v):
            continue
        acc.append(v)
        if len(acc) > window:
            acc.pop(0)
        out_s.append(s)
        out_v.append(statistics.fmean(acc))
    return out_s, out_v


def separated(a: Sequence[float], b: Sequence[float]) -> int:
    """+1 when every value of `a` is above every value of `b` (their seed ranges do not overlap), -1 when every
    value is below, 0 when the ranges overlap: an ordering worth stating only when it is not 0."""
    if not a or not b:
        return 0
    if min(a) > max(b):
        return 1
    if max(a) < min(b):
        return -1
    return 0


def same_recipe(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Runs (name -> its config.json) grouped by what they trained, the training seed aside: model, dataset (its
    own seed included: other images are another experiment), recipe. Groups keep the runs' order; a run whose
    config lacks a part is a group of its own."""
    groups: dict[str, list[str]] = {}
    for name, config in configs.items():
        parts = [config.get(k) for k in ("model", "dataset", "train")]
        if not all(isinstance(p, Mapping) for p in parts):
            groups[f"run:{name}"] = [name]
            continue
        train = {k: v for k, v in parts[2].items() if k not in ("seed", "device")}
        key = json.dumps([parts[0], parts[1], train], sort_keys=True, default=str)
        groups.setdefault(key, []).append(name)
    return groups
