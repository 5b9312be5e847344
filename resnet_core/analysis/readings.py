"""What each Plain vs Residual chart shows, read off its numbers: one or two sentences per chart.

A caption that states a size or a trend is computed here from the result object the chart draws, so it
says what this chart shows ("13× at depth 20; 5,090× at 56") and, when the expected trend is absent,
says that instead of claiming it. The literature's findings stay with the page's words (ui/captions.py).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from ..train.verdict import CHANCE_FACTOR
from .bands import epochs_to_reach, final_loss, separated
from .lesion import HARDLY, LesionResult, lesion_comparison, veit_agreement
from .partial import common_step, latest_step
from .profiles import PairProfile, ProfileBands
from .shattering import ShatteringSweep
from .sweep import SweepResult

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def number(x: float) -> str:
    """A ratio for a person: 1.63 -> "1.6", 13.2 -> "13", 5093 -> "5,090", 2.3e7 -> "2.3×10⁷"."""
    if math.isnan(x):
        return "?"
    if math.isinf(x):
        return "∞"
    if x >= 1e6:
        exponent = math.floor(math.log10(x))
        return f"{x / 10 ** exponent:.2g}×10{str(exponent).translate(_SUPERSCRIPT)}"
    if x >= 100:
        digits = math.floor(math.log10(x)) - 2
        return f"{round(x, -digits):,.0f}"
    if x >= 10:
        return f"{x:.0f}"
    return f"{x:.2g}"


def times(x: float) -> str:
    """ "13×", "1.6×", "∞×"."""
    return f"{number(x)}×"


def _magnitude(ratio: float) -> str:
    """How much a ratio grows, in words: "about tenfold", "by about 4 orders of magnitude"."""
    decades = math.log10(ratio) if ratio > 0 else 0.0
    if decades < 0.7:
        return f"only {times(ratio)}"
    if decades < 1.5:
        return "about tenfold"
    return f"by about {round(decades)} orders of magnitude"


def _join(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# ---- gradient profile (section 1) --------------------------------------------------------------------------


def _plain_and_residual(pair: PairProfile) -> tuple[ProfileBands, ProfileBands] | None:
    sides = (pair.a, pair.b)
    plain = [s for s in sides if not s.config.residual]
    residual = [s for s in sides if s.config.residual]
    return (plain[0], residual[0]) if len(plain) == 1 and len(residual) == 1 else None


def profile_reading(pair: PairProfile) -> str:
    """The first conv's gradient over the last conv's, for both nets, and whether the plain one grows more."""
    a, b = pair.a, pair.b
    said = (f"Measured here: {a.label}'s first-conv gradient is {times(a.median_ratio)} its last conv's, "
            f"{b.label}'s {times(b.median_ratio)}")
    if any(math.isinf(s.median_ratio) for s in (a, b)):
        return said + " (∞: the last conv gets exactly zero gradient at step 0)."
    kinds = _plain_and_residual(pair)
    if kinds is None:
        return said + "."
    plain, residual = kinds
    pr, rr = plain.median_ratio, residual.median_ratio
    if pr >= 10 and pr > 3 * rr:
        return (said + f": the plain net's gradient grows {_magnitude(pr)} towards the input at depth "
                f"{plain.config.depth}, the residual net's {_magnitude(rr)}. Deeper plain nets grow more (the depth "
                "sweep below).")
    if pr > rr:
        return (said + f": at depth {plain.config.depth} the plain net's gradient grows more towards the input, but by "
                "less than an order of magnitude over the residual net's; the gap widens with depth (the depth sweep "
                "below).")
    return said + ": here the plain net's gradient does not grow more towards the input than the residual net's."


def blocks_reading(pair: PairProfile) -> str:
    """The first block's output gradient over the last block's, and the factor per block, for both nets."""
    parts, per_block = [], {}
    for side in (pair.a, pair.b):
        norms = side.blocks.mean
        if len(norms) < 2 or norms[-1] <= 0:
            continue
        growth = norms[0] / norms[-1]
        factor = growth ** (1 / (len(norms) - 1)) if growth > 0 else math.nan
        per_block[side.label] = factor
        parts.append(f"{side.label}'s is {times(growth)} ({times(factor)} per block)")
    if not parts:
        return ""
    said = "Measured here, the gradient at the first block's output over the last block's: " + "; ".join(parts)
    kinds = _plain_and_residual(pair)
    if kinds is None or len(per_block) < 2:
        return said + "."
    plain, residual = kinds
    if per_block[plain.label] > per_block[residual.label] * 1.05:
        return said + ": the plain net's rises faster per block towards the input."
    return said + ": the plain net's does not rise faster per block than the residual net's here."


# ---- depth sweep (section 2) --------------------------------------------------------------------------------


def _picked(series: list[tuple[int, float, float, float]]) -> list[tuple[int, float]]:
    """The shallowest and deepest depths, and 20 and 56 (the page's usual pair) when measured: at most four."""
    depths = [d for d, *_ in series]
    keep = {depths[0], depths[-1]} | ({20, 56} & set(depths))
    return [(d, med) for d, med, _, _ in series if d in keep]


def sweep_reading(result: SweepResult, norm: str = "batch") -> str:
    """The plain net's ratio at a few depths, the residual net's range, and whether the plain one climbs."""
    plain, residual = result.series(False, norm), result.series(True, norm)
    if not plain:
        return ""
    bn = "With BatchNorm" if norm == "batch" else "Without normalization"
    at = "; ".join(f"{times(med)} at {'depth ' if i == 0 else ''}{d}" for i, (d, med) in enumerate(_picked(plain)))
    said = f"{bn}, the plain net's ratio is {at}"
    if residual:
        meds = [med for _, med, _, _ in residual]
        said += (f"; the residual net's {times(meds[0])}" if len(meds) == 1 else
                 f"; the residual net's stays between {times(min(meds))} and {times(max(meds))}")
    if len(plain) < 2:
        return said + "."
    (d0, first, _, _), (d1, last, _, _) = plain[0], plain[-1]
    climb = last / first if first > 0 else math.inf
    deepest_res = residual[-1][1] if residual and residual[-1][0] == d1 else None
    if climb >= 100 and (deepest_res is None or last > 10 * deepest_res):
        return said + f". From depth {d0} to {d1} the plain net's ratio climbs {_magnitude(climb)}."
    if norm == "none" and climb < 100:
        return said + (f". Neither climbs by orders of magnitude from depth {d0} to {d1} (the plain net's changes "
                       f"{times(climb)}).")
    return said + (f". Here the plain net's ratio does not climb by orders of magnitude from depth {d0} to {d1} "
                   f"({times(climb)}).")


# ---- side-by-side training (section 3) -------------------------------------------------------------------


def _depth(label: str) -> int:
    return int(label.rsplit("-", 1)[1].split()[0])


def spread(values: Sequence[float], digits: int = 2, percent: bool = False) -> str:
    """One number over several seeds as the cards and the captions both write it: "1.23 (1.20–1.26 over 3
    seeds)", "53.2% (50.0–57.4% over 3 seeds)"; one seed: just the number. A loss below 0.1 keeps `digits`
    significant digits ("0.0068", not "0.01"): a net that fits its training set is not written as loss 0."""
    fmt = (lambda v: f"{100 * v:.1f}") if percent else (
        lambda v: f"{v:.{digits}f}" if abs(v) >= 0.1 or v == 0 else f"{v:.{digits}g}")
    unit = "%" if percent else ""
    if not values:
        return "?"
    mean = fmt(statistics.fmean(values)) + unit
    if len(values) == 1:
        return mean
    return f"{mean} ({fmt(min(values))}–{fmt(max(values))}{unit} over {len(values)} seeds)"


def _pair(named: Mapping[str, Any], residual: bool) -> tuple[str, str] | None:
    """(shallow label, deep label) of the plain (or residual) nets, when there are two depths."""
    labels = sorted((_depth(n), n) for n in named if n.startswith("ResNet") == residual)
    return (labels[0][1], labels[-1][1]) if len(labels) >= 2 else None


def band_reading(finals: Mapping[str, tuple[Sequence[float], Sequence[float]]], num_classes: int = 10) -> str:
    """The recorded run's verdict over its seeds. `finals`: per net, its seeds' final training losses (the mean
    over the last epoch's steps) and final validation accuracies. An ordering is stated only where the two nets'
    ranges over the seeds do not overlap (and there are at least two seeds); otherwise the sentence says the seeds
    cannot order them."""
    parts = []
    plain, residual = _pair(finals, False), _pair(finals, True)
    if plain is not None:
        shallow, deep = plain
        ls, ld = finals[shallow][0], finals[deep][0]
        order = separated(ld, ls) if min(len(ld), len(ls)) >= 2 else None
        if order is None:
            parts.append(f"{deep}'s final training loss is {spread(ld)} against {shallow}'s {spread(ls)}: one seed "
                         "has no spread to judge the gap by, so it cannot order them")
        elif order > 0 and finals[deep][1] and max(finals[deep][1]) <= CHANCE_FACTOR / num_classes:
            parts.append(f"{deep}'s final training loss, {spread(ld)}, is above {shallow}'s, {spread(ls)}, in every "
                         f"seed, but {deep} is still near chance in validation accuracy: in this budget it has barely "
                         "started to learn, which is more than the degradation He et al. show (their plain-56 learns, "
                         "only worse than plain-20)")
        elif order > 0:
            parts.append(f"{deep}'s final training loss, {spread(ld)}, is above {shallow}'s, {spread(ls)}, in every "
                         "seed: the deeper plain net fits its own training images worse (degradation)")
        elif order < 0:
            parts.append(f"{deep}'s final training loss, {spread(ld)}, is below {shallow}'s, {spread(ls)}, in every "
                         "seed: no degradation in this recording")
        else:
            parts.append(f"{deep}'s final training loss, {spread(ld)}, and {shallow}'s, {spread(ls)}, overlap over "
                         "the seeds: these seeds cannot order them")
    if residual is not None:
        shallow, deep = residual
        ls, ld = finals[shallow][0], finals[deep][0]
        order = separated(ld, ls) if min(len(ld), len(ls)) >= 2 else None
        if order is None:
            parts.append(f"{deep}'s is {spread(ld)} against {shallow}'s {spread(ls)}, one seed each")
        elif order < 0:
            parts.append(f"{deep}'s, {spread(ld)}, is below {shallow}'s, {spread(ls)}, in every seed: with shortcuts "
                         "the deeper net fits better")
        elif order > 0:
            parts.append(f"{deep}'s, {spread(ld)}, is above {shallow}'s, {spread(ls)}, in every seed: the shortcuts "
                         "have not closed the gap in this recording")
        else:
            parts.append(f"{deep}'s, {spread(ld)}, and {shallow}'s, {spread(ls)}, overlap over the seeds: with "
                         "shortcuts the extra depth costs nothing the seeds can tell apart")
    if not parts:
        return ""
    accs = ", ".join(f"{n} {spread(a, percent=True)}" for n, (_, a) in finals.items() if a)
    return f"At the end, {'; '.join(parts)}{'; validation accuracy ' + accs if accs else ''}."


def slow_start_reading(runs: Mapping[str, Sequence[Mapping[str, Any]]], steps_per_epoch: int,
                       short_epochs: int | None = None, num_classes: int = 10) -> str:
    """How long the deepest plain net of a recording sat near chance, per seed: the epoch of its first validation
    at twice chance or above (analysis.bands.epochs_to_reach); `short_epochs`: the lecture's budget, said to be
    shorter than every seed's wait only when it is. Empty without a plain net."""
    plain = _pair(runs, False)
    deep = plain[1] if plain else next((n for n in runs if not n.startswith("ResNet")), None)
    if deep is None or not runs[deep]:
        return ""
    level = 2.0 / num_classes
    reached = epochs_to_reach(runs[deep], steps_per_epoch, level)
    done = [e for e in reached if e is not None]
    seeds = len(reached)
    which = "its seeds" if seeds > 1 else "its one seed"
    if not done:
        return f"{deep}'s validation accuracy never passed {100 * level:g}% (twice chance) in {which}"
    where = _join([f"{e:.0f}" for e in sorted(done)])
    text = f"{deep}'s validation accuracy first passed {100 * level:g}% (twice chance) after {where} epochs ({which})"
    if len(done) < seeds:
        text += f"; in {seeds - len(done)} of its {seeds} seeds it never did"
    if len(done) > 1 and max(done) >= 1.5 * min(done):
        text += ": how long a deep plain net sits near chance varies with the seed"
    if short_epochs is not None and len(done) == seeds and min(done) > short_epochs:
        text += (f", and every seed waited longer than the lecture's {short_epochs} epochs" if seeds > 1 else
                 f", longer than the lecture's {short_epochs} epochs")
    return text


def training_reading(curves: Mapping[str, Mapping[str, Any]], total_steps: int | None = None,
                     steps_per_epoch: int | None = None,
                     seed_spread: Mapping[str, Sequence[float]] | None = None) -> str:
    """Where one run's training losses end (or stand so far), and whether they show degradation and its cure.

    The final loss is analysis.bands.final_loss: the mean over the last epoch's steps (`steps_per_epoch`; unknown:
    a tenth of the run). A partial run is read at the step every net has reached: deep nets take longer per step,
    and comparing each net at its own latest step would set a deep net's warm-up against a shallow net's progress.
    `seed_spread`: per net, the final losses of a recording of the same recipe over several seeds; an ordering of
    this one run is then stated only where the gap is wider than the recorded seeds' spread of both nets, and each
    net is said to end inside or outside its recorded range."""
    if not curves or not all(c["step"] for c in curves.values()):
        return ""
    at = common_step(curves)
    done = total_steps is None or at >= total_steps
    ahead = max(latest_step(c) for c in curves.values()) > at
    when = (f"At the end (step {at})" if done else
            f"So far, at step {at} of {total_steps}{' (the slowest net is there)' if ahead else ''}")
    window = steps_per_epoch or max(1, at // 10)
    final = {n: final_loss(c, window, at) for n, c in curves.items()}
    # One recorded seed has no spread: the gap is then read as a single run's, without a noise level.
    width = lambda n: (max(seed_spread[n]) - min(seed_spread[n])) if seed_spread and len(seed_spread.get(n) or ()) > 1 \
        else None
    parts, plain_gap = [], 0.0
    for residual in (False, True):
        pair = _pair(curves, residual)
        if pair is None or final[pair[0]] is None or final[pair[1]] is None:
            continue
        shallow, deep = pair
        ls, ld = final[shallow], final[deep]
        noise = [w for w in (width(shallow), width(deep)) if w is not None]
        if len(noise) == 2 and abs(ld - ls) <= max(noise):
            parts.append(f"{deep}'s training loss is {ld:.2f} against {shallow}'s {ls:.2f}: a gap within the spread "
                         f"of the recorded seeds ({max(noise):.2f}), so this one run cannot order them")
        elif not residual:
            parts.append(f"{deep}'s training loss is {ld:.2f}, above {shallow}'s {ls:.2f}: the deeper plain net fits "
                         "its own training images worse (degradation)" if ld > ls else
                         f"{deep}'s training loss ({ld:.2f}) is not above {shallow}'s ({ls:.2f}): no degradation "
                         f"{'in this run' if done else 'yet'}")
        elif ld <= ls * 1.05:
            parts.append(f"{deep}'s is {ld:.2f} against {shallow}'s {ls:.2f}: with shortcuts the deeper net keeps up")
        elif 0 < plain_gap and ld - ls < 0.5 * plain_gap:
            parts.append(f"{deep}'s is {ld:.2f} against {shallow}'s {ls:.2f}: with shortcuts the gap between the "
                         f"depths shrinks from {plain_gap:.2f} to {ld - ls:.2f}")
        else:
            parts.append(f"{deep}'s ({ld:.2f}) is above {shallow}'s ({ls:.2f}): the shortcuts have not closed the "
                         f"gap {'in this run' if done else 'yet'}")
        if not residual:
            plain_gap = ld - ls
    if not parts:
        return ""
    if seed_spread and done:
        ranged = [n for n, v in final.items() if v is not None and len(seed_spread.get(n) or ()) > 1]
        inside = [n for n in ranged if min(seed_spread[n]) <= final[n] <= max(seed_spread[n])]
        outside = [n for n in ranged if n not in inside]
        if outside:
            parts.append(f"{_names(outside)} ended outside the recorded seeds' range")
        elif inside:
            parts.append("every net ended inside the recorded seeds' range: a typical run")
    accs = [(n, acc) for n, c in curves.items()
            for acc in [next((a for s, a in zip(reversed(c["val_step"]), reversed(c["val_acc"])) if s <= at), None)]
            if acc is not None]
    acc = ("; validation accuracy " + ", ".join(f"{n} {100 * a:.0f}%" for n, a in accs)) if accs else ""
    return f"{when}, {'; '.join(parts)}{acc}."


def _names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def heatmap_reading(snaps: Mapping[str, tuple]) -> str:
    """How much larger each net's gradient is at its first block than at its last, at the first and last
    recorded steps."""
    spans: dict[str, tuple[int, float, int, float]] = {}
    for label, (paths, steps, matrix) in snaps.items():
        if not steps or len(paths) < 2:
            continue
        first, last = matrix[0], matrix[-1]
        span = [a / b if b > 0 else math.inf for a, b in ((first[0], last[0]), (first[-1], last[-1]))]
        spans[label] = (steps[0], span[0], steps[-1], span[1])
    if not spans:
        return ""
    first_step, last_step = next(iter(spans.values()))[0], next(iter(spans.values()))[2]
    start = ", ".join(f"{label}'s {times(s[1])}" for label, s in spans.items())
    said = f"At step {first_step} the first block's gradient is {start} the last block's"
    if last_step != first_step:
        said += f"; at step {last_step}, " + ", ".join(f"{times(s[3])}" for s in spans.values())
    plain = [s[1] for label, s in spans.items() if label.startswith("plain")]
    residual = [s[1] for label, s in spans.items() if label.startswith("ResNet")]
    if plain and residual and not max(plain) > max(residual):
        return said + ": here the plain net's rows do not spread wider than the residual net's."
    return said + "."


# ---- lesion study (section 4) ----------------------------------------------------------------------------


def lesion_reading(results: Sequence[LesionResult]) -> str:
    """What one deletion costs each net on average (with its 95% interval over the images) and at worst, whether
    the residual net suffers less beyond the noise, and whether this run agrees with Veit et al.'s finding."""
    parts = []
    for res in results:
        if not res.drops:
            continue
        path, worst = res.worst
        interval = res.drop_interval
        mean = f"{100 * res.mean_drop:.1f}" if interval is None else interval.text(1, 100)
        parts.append(f"{res.label} {mean} points on average (intact {100 * res.baseline:.1f}%; "
                     f"at worst {100 * worst:.1f}, deleting {path})")
    if not parts:
        return ""
    n = next((len(r.intact) for r in results if r.intact), 0)
    over = f" (mean ± 95% interval over {n} validation images)" if n else ""
    said = f"Measured here{over}, deleting one block costs " + "; ".join(parts)
    plain = [r for r in results if r.label.startswith("plain") and r.drops]
    residual = [r for r in results if r.label.startswith("ResNet") and r.drops]
    skipped = [f" {r.label}'s {sum(e.accuracy is None for e in r.entries)} shape-changing blocks cannot be skipped "
               "(n/a)." for r in results if any(e.accuracy is None for e in r.entries)]
    tail = "".join(skipped)
    if any(r.near_chance for r in results):
        near = _join([r.label for r in results if r.near_chance])
        return said + f". {near} was near chance before any deletion, so its small losses mean nothing." + tail
    if plain and residual:
        compared = lesion_comparison(plain[0], residual[0])
        if compared is None:
            said += ": without each image's answers the two nets are not compared"
        elif compared.verdict == "a":
            said += (f": the residual net loses less per deletion, beyond the noise (difference "
                     f"{compared.difference.text(1, 100)} points)")
        elif compared.verdict == "b":
            said += (f": here the residual net loses more per deletion than the plain net, beyond the noise "
                     f"(difference {compared.difference.text(1, 100)} points)")
        else:
            said += (f": the difference between the nets ({compared.difference.text(1, 100)} points) is within the "
                     "noise, so this run does not rank them")
    said += "." + tail
    for res in residual:
        said += _veit(res)
    return said


def _veit(res: LesionResult) -> str:
    """This run beside Veit et al. 2016's finding that one deleted block hardly changes a residual net's error."""
    agreement = veit_agreement(res)
    if agreement is None:
        return ""
    lost = res.drop_interval.text(1, 100)
    blocks = sum(e.accuracy is not None for e in res.entries)
    if agreement == "agrees":
        return (f" Beside Veit et al. 2016 (below): this run agrees, {res.label} loses {lost} points per deleted "
                f"block, under {100 * HARDLY:.0f}.")
    if agreement == "disagrees":
        return (f" Beside Veit et al. 2016 (below): this run disagrees. {res.label} loses {lost} points per deleted "
                f"block here, not the few points they measured; their ResNet-110 has 54 blocks to spread the work "
                f"over, this net {blocks} deletable ones, so each carries more of it.")
    return (f" Beside Veit et al. 2016 (below): {res.label} loses {lost} points per deleted block, and these images "
            f"cannot tell whether that is under the {100 * HARDLY:.0f} points they would call hardly a change.")


# ---- shattering (section 5) ------------------------------------------------------------------------------


def shattering_reading(sweep: ShatteringSweep) -> str:
    """The neighbour correlation at the shallowest and deepest depths, plain and residual."""
    plain, residual = sweep.series(False), sweep.series(True)
    if not plain:
        return ""
    (d0, p0, _, _), (d1, p1, _, _) = plain[0], plain[-1]
    said = (f"Measured here, neighbouring input-gradients correlate {p0:.2f} in plain-{d0}" +
            (f" and {p1:.2f} in plain-{d1}" if d1 != d0 else ""))
    r1 = next((m for d, m, _, _ in residual if d == d1), None)
    if r1 is not None:
        said += f", {r1:.2f} in ResNet-{d1}"
    if d1 != d0 and p1 > p0 - 0.1:
        return said + f": here the plain net's correlation does not fall from depth {d0} to {d1}."
    if r1 is not None and r1 <= p1 + 0.05:
        return said + f": at depth {d1} the residual net's is no higher than the plain net's here."
    return said + "."
