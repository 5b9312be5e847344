"""What the trust checks support over several images: each method's and each layer's scores as a mean with its
95% interval, and a verdict (faithful, sensitive to the weights, the best layer, above chance) only where the
difference is larger than its uncertainty (resnet_core.stats).

One image has no spread, so it decides nothing: its numbers are given and the sentence says so. An image that is
not from the model's dataset (a photo through a Shapes model) gets no verdict at all, whatever its numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..stats import Interval, against, mean_interval, paired
from .references import reference_words

if TYPE_CHECKING:
    from .layers import LayerScore
    from .trust_table import TrustRow

# A map whose rank correlation with the trained model's map stays above this, on average over the cascade,
# has kept most of its ordering with the weights gone: it is read as "not sensitive". Adebayo et al. read
# correlations near 1 as "unchanged"; half way is the cut used here, and the numbers are shown beside it.
SENSITIVE_RHO = 0.5
ONE_IMAGE = "one image cannot decide it"
NOT_OWN_DATA = ("this image is not from the model's dataset, so its scores rank nothing (the page marks its answer "
                "not meaningful)")


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _decided(comparison_verdict: str | None, higher: str = "a") -> bool | None:
    """True / False when a comparison decided for / against, None when it is within the noise."""
    return None if comparison_verdict is None else comparison_verdict == higher


# ---- the trust table ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """One method (or reference map) over n images: each score's mean and interval, and what they support.

    faithful: True when its insertion − deletion area beats every reference map's beyond the noise, False when
    some reference map's beats it, None when the images do not decide. sensitive: True when its mean ρ under
    randomization lies below SENSITIVE_RHO beyond the noise, False when above, None undecided or not measured.
    """

    method: str
    label: str
    reference: bool
    faithfulness: Interval
    rho: Interval | None
    pointing_game: Interval | None
    energy_inside: Interval | None
    faithful: bool | None
    sensitive: bool | None

    def record(self) -> dict[str, Any]:
        """A flat dict for a chart: means and interval bounds (None where not measured)."""
        def bounds(i: Interval | None, key: str) -> dict[str, float | None]:
            if i is None:
                return {key: None, f"{key}_low": None, f"{key}_high": None}
            return {key: i.mean, f"{key}_low": i.low if i.known else None, f"{key}_high": i.high if i.known else None}
        return {"method": self.method, "label": self.label, "reference": self.reference,
                **bounds(self.faithfulness, "faithfulness"), **bounds(self.rho, "randomization_rho")}


@dataclass(frozen=True)
class TrustVerdict:
    """The trust table's rows summed up over n images, the method it supports (or None) and the sentence."""

    n: int
    standings: list[Standing]
    verdict: str | None
    sentence: str
    own_data: bool

    def standing(self, method: str) -> Standing:
        return next(s for s in self.standings if s.method == method)


def trust_verdict(per_image: Sequence[Sequence[TrustRow]], own_data: bool = True) -> TrustVerdict:
    """What the trust tables of several images (each a list of TrustRow, the same maps in the same order)
    support together. `own_data=False`: the images are not from the model's dataset, so nothing is decided."""
    if not per_image or not per_image[0]:
        return TrustVerdict(0, [], None, "No attribution method was measured.", own_data)
    n, names = len(per_image), [r.method for r in per_image[0]]
    by_name = {name: [next(r for r in rows if r.method == name) for rows in per_image] for name in names}
    scores = {name: [r.faithfulness for r in rows] for name, rows in by_name.items()}
    references = [name for name in names if by_name[name][0].reference]
    decide = own_data and n >= 2
    standings = []
    for name in names:
        rows = by_name[name]
        first = rows[0]
        rhos = [r.randomization_rho for r in rows]
        measured = not first.reference and all(r is not None for r in rhos)
        faithful = sensitive = None
        if decide and not first.reference:
            calls = [paired(scores[name], scores[ref]).verdict for ref in references]
            faithful = True if calls and all(c == "a" for c in calls) else (False if "b" in calls else None)
            if measured:
                sensitive = _decided(against(rhos, SENSITIVE_RHO).verdict, higher="b")
        located = all(r.pointing_game is not None for r in rows)
        standings.append(Standing(
            name, first.label, first.reference, mean_interval(scores[name]),
            mean_interval(rhos) if measured else None,
            mean_interval([r.pointing_game for r in rows]) if located else None,
            mean_interval([r.energy_inside for r in rows]) if located else None, faithful, sensitive))
    verdict, sentence = _trust_sentence(standings, scores, n, own_data)
    return TrustVerdict(n, standings, verdict, sentence, own_data)


def _trust_sentence(standings: Sequence[Standing], scores: Mapping[str, Sequence[float]], n: int,
                    own_data: bool) -> tuple[str | None, str]:
    methods = [s for s in standings if not s.reference]
    references = [s for s in standings if s.reference]
    if not methods:
        return None, "No attribution method was measured."
    ref = max(references, key=lambda s: s.faithfulness.mean) if references else None
    if not own_data:
        return None, (f"No verdict: {NOT_OWN_DATA}. The table's numbers are shown, but no method is called "
                      "faithful or sensitive to the weights on it.")
    if n == 1:
        said = "; ".join(f"{s.label} {s.faithfulness.mean:.2f}"
                         + ("" if s.rho is None else f" (ρ {s.rho.mean:.2f})") for s in methods)
        words = reference_words().get(ref.method, ref.label) if ref else ""
        best = f", the best reference map ({words}) {ref.faithfulness.mean:.2f}" if ref else ""
        return None, (f"On this one image the insertion − deletion areas are {said}{best}. No verdict: {ONE_IMAGE} "
                      "(whether a method beats the reference maps, or changes with the weights, needs several "
                      "images from the model's dataset, each with its own numbers, so their spread is known).")
    head = f"Over these {n} images (mean ± 95% interval)"
    ref_text = f"the best reference map's ({reference_words().get(ref.method, ref.label)}) {ref.faithfulness.text()}" \
        if ref else "no reference map"
    both = sorted((s for s in methods if s.faithful and s.sensitive), key=lambda s: s.faithfulness.mean, reverse=True)
    if both:
        top = both[0]
        text = (f"{head}, {top.label} is both faithful and sensitive to the weights: its insertion − deletion area "
                f"{top.faithfulness.text()} beats {ref_text}, and its map keeps a mean Spearman ρ of "
                f"{top.rho.text()} with the trained one as the weights are randomized (below {SENSITIVE_RHO}: it "
                "depends on them).")
        for other in both[1:]:
            diff = paired(scores[top.method], scores[other.method])
            text += (f" {other.label} passes both too ({other.faithfulness.text()}), "
                     + ("less faithful beyond the noise." if diff.verdict == "a" else
                        f"and the two are not ranked: their difference, {diff.difference.text()}, is within the "
                        "noise."))
        verdict = top.method
    else:
        text = (f"{head}, no method is shown to be both faithful (an insertion − deletion area above every reference "
                f"map's, beyond the noise; {ref_text}) and sensitive to the weights (a mean ρ below {SENSITIVE_RHO}, "
                "beyond the noise).")
        verdict = None
    for s in methods:
        if s in both:
            continue
        if s.faithful is False:
            text += f" {s.label} ({s.faithfulness.text()}) does no better than a reference map here."
        elif s.faithful and s.sensitive is False:
            text += (f" {s.label} is faithful ({s.faithfulness.text()}) but keeps most of its map when the weights "
                     f"are randomized (ρ {s.rho.text()}), so part of what it shows comes from the image, not the "
                     "model.")
        else:
            open_ = [] if s.faithful else [f"whether its area ({s.faithfulness.text()}) beats every reference map's"]
            if s.rho is not None and s.sensitive is None:
                open_.append(f"whether its ρ ({s.rho.text()}) is below {SENSITIVE_RHO}")
            text += f" For {s.label} these images do not decide {_join(open_)}: the difference is within the noise." \
                if open_ else ""
            if s.sensitive is False:
                text += f" {s.label} keeps most of its map when the weights are randomized (ρ {s.rho.text()})."
    return verdict, text


# ---- which layer --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerStanding:
    layer: str
    label: str
    faithfulness: Interval
    pointing_game: Interval | None
    energy_inside: Interval | None


@dataclass(frozen=True)
class LayerVerdict:
    """Grad-CAM's layers over n images: the best layer where it beats every other beyond the noise, else None."""

    n: int
    standings: list[LayerStanding]
    best: str | None
    sentence: str
    own_data: bool

    def standing(self, layer: str) -> LayerStanding:
        return next(s for s in self.standings if s.layer == layer)


def layer_verdict(per_image: Sequence[Sequence[LayerScore]], own_data: bool = True) -> LayerVerdict:
    """What Grad-CAM at each layer scores over several images (each a list of LayerScore, the same layers in the
    same order; repeats of a stage's map left out) and which layer, if any, is the most faithful beyond the noise."""
    rows = [[r for r in image if not r.same_as] for image in per_image]
    if not rows or not rows[0]:
        return LayerVerdict(len(rows), [], None, "No layer was compared.", own_data)
    n = len(rows)
    layers = [(r.layer, r.label) for r in rows[0]]
    scores = {layer: [next(r for r in image if r.layer == layer).faithfulness.score for image in rows]
              for layer, _ in layers}

    def located(layer: str, key: str) -> Interval | None:
        values = [getattr(next(r for r in image if r.layer == layer), key) for image in rows]
        return None if any(v is None for v in values) else mean_interval(values)

    standings = [LayerStanding(layer, label, mean_interval(scores[layer]), located(layer, "pointing_game"),
                               located(layer, "energy_inside")) for layer, label in layers]
    ranked = sorted(standings, key=lambda s: s.faithfulness.mean, reverse=True)
    top = ranked[0]
    if not own_data:
        return LayerVerdict(n, standings, None, (
            f"No verdict: {NOT_OWN_DATA}. The layers' scores are shown, but they name no best layer."), own_data)
    if n == 1:
        said = "; ".join(f"{s.label} {s.faithfulness.mean:.2f}" for s in standings)
        return LayerVerdict(n, standings, None, (
            f"On this one image Grad-CAM's insertion − deletion areas are {said}. No verdict: {ONE_IMAGE} (which "
            "layer is most faithful needs several images from the model's dataset)."), own_data)
    head = f"Over these {n} images (mean ± 95% interval)"
    others = "; ".join(f"{s.label} {s.faithfulness.text()}" for s in ranked[1:])
    ties = [s for s in ranked[1:] if paired(scores[top.layer], scores[s.layer]).verdict != "a"]
    if not ties:
        text = (f"{head}, {top.label} is the most faithful layer: its Grad-CAM's insertion − deletion area is "
                f"{top.faithfulness.text()}" + (f", above every other layer's beyond the noise ({others})." if others
                                                else "."))
        best = top.layer
    else:
        diffs = _join([f"{s.label} ({s.faithfulness.text()}; difference "
                       f"{paired(scores[top.layer], scores[s.layer]).difference.text()})" for s in ties])
        text = (f"{head}, the highest insertion − deletion area is {top.label}'s, {top.faithfulness.text()}, but it "
                f"does not beat {diffs} beyond the noise: these images do not decide which layer is most faithful.")
        best = None
    if top.energy_inside is not None:
        energy = sorted(standings, key=lambda s: s.energy_inside.mean, reverse=True)
        lead = energy[0]
        def shares(layer: str) -> list[float]:
            return [next(r for r in image if r.layer == layer).energy_inside for image in rows]
        clear = all(paired(shares(lead.layer), shares(s.layer)).verdict == "a" for s in energy[1:])
        text += (f" On the object: {lead.label} puts the most of its map's energy there "
                 f"({lead.energy_inside.text(0, 100, '%')})" + (", beyond the noise." if clear else
                                                                 ", but not beyond the noise of every other layer."))
    return LayerVerdict(n, standings, best, text, own_data)


# ---- localization ---------------------------------------------------------------------------------------------


# times chance at which a pointing game counts as far above chance (once it is above chance beyond the noise)
FAR_ABOVE = 2.0


@dataclass(frozen=True)
class ChanceReading:
    """One method's pointing game over n images against chance (each image's object share)."""

    method: str
    label: str
    pointing_game: Interval
    energy_inside: Interval
    chance: float  # the mean object share
    verdict: str  # "far above chance", "above chance", "below chance", "not decided" or ONE_IMAGE

    @property
    def times_chance(self) -> float:
        return self.pointing_game.mean / self.chance if self.chance > 0 else float("inf")


def chance_reading(row: Mapping[str, Any]) -> ChanceReading:
    """A localization_scores row read against chance, image by image (the pointing game on each image against
    that image's object share)."""
    values = row["per_image"]
    pointing, chance = values["pointing_game"], values["mask_fraction"]
    call = against(pointing, chance)
    interval = mean_interval(pointing)
    mean_chance = sum(chance) / len(chance)
    if call.verdict == "a":
        far = interval.known and interval.low >= FAR_ABOVE * mean_chance
        verdict = "far above chance" if far else "above chance"
    elif call.verdict == "b":
        verdict = "below chance"
    else:
        verdict = "not decided" if len(pointing) >= 2 else ONE_IMAGE
    return ChanceReading(row["method"], row["label"], interval, mean_interval(values["energy_inside"]), mean_chance,
                         verdict)


def localization_sentence(rows: Sequence[Mapping[str, Any]], methods: Mapping[str, str]) -> str:
    """What the localization rows (localization_scores) show for the attribution methods (`methods`: name ->
    label), each mean with its interval, compared with chance and with each other only beyond the noise."""
    readings = [chance_reading(r) for r in rows if r["method"] in methods]
    if not readings:
        return ""
    n = rows[0]["n"]
    said = "; ".join(f"{r.label}'s peak lies on the object in {r.pointing_game.text(0, 100, '%')} of them "
                     f"({r.verdict}" + (f": {r.times_chance:.1f} times" if "above" in r.verdict else "")
                     + f"), with {r.energy_inside.text(0, 100, '%')} of its "
                     "energy there" for r in readings)
    text = (f"On these {n} held-out images (mean ± 95% interval), {said}. Chance is "
            f"{100 * readings[0].chance:.0f}%: the share of the image an object covers on average.")
    if len(readings) >= 2:
        by = {r["method"]: r["per_image"]["pointing_game"] for r in rows}
        top = max(readings, key=lambda r: r.pointing_game.mean)
        rest = [r for r in readings if r is not top]
        calls = {r.method: paired(by[top.method], by[r.method]) for r in rest}
        beaten = [r.label for r in rest if calls[r.method].verdict == "a"]
        tied = [f"{r.label} (difference {calls[r.method].difference.text(0, 100, ' points')})" for r in rest
                if calls[r.method].verdict != "a"]
        if beaten:
            text += f" {top.label} points at the object more often than {_join(beaten)}, beyond the noise."
        if tied:
            text += f" {top.label} and {_join(tied)} are not ranked: the difference is within the noise."
    return text
