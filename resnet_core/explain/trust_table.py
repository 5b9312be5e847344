"""One trust table per model: each method's localization, faithfulness and sensitivity to the weights side
by side, with model-free reference maps as rows, and a sentence computed from it.

A map can point at the object (localization) and still not be what the model uses, or be what the image's
edges alone would give. The table puts the three checks together so that one method has to pass all of
them: beat every reference map on faithfulness (insertion − deletion area), and change when the model's
weights are randomized (Adebayo et al. 2018), which no reference map can do since none reads the weights.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .faithfulness import (
    DEFAULT_BASELINE,
    DEFAULT_STEPS,
    REFERENCE_LABELS,
    REFERENCES,
    Faithfulness,
    baseline_label,
    faithfulness_scores,
    reference_maps,
)
from .methods import LAYER_METHODS, METHOD_LABELS, METHODS, AttributionError, as_batch, explain, predict, resolve_layer
from .trust import RandomizationResult, energy_inside, pointing_game, randomization_check

# A map whose rank correlation with the trained model's map stays above this, on average over the cascade,
# has kept most of its ordering with the weights gone: it is read as "not sensitive". Adebayo et al. read
# correlations near 1 as "unchanged"; half way is the cut used here, and the numbers are shown beside it.
SENSITIVE_RHO = 0.5


@dataclass
class TrustRow:
    """One method (or reference map) on one image."""

    method: str
    label: str
    reference: bool  # a model-free reference map (random, uniform, Sobel)
    pointing_game: float | None  # None: no object mask
    energy_inside: float | None
    deletion_auc: float
    insertion_auc: float
    faithfulness: float  # insertion − deletion area
    average_drop: float  # %
    increase_in_confidence: float  # %
    randomization_rho: float | None  # mean Spearman ρ with the trained map over the cascade; None: not measured
    randomization_final: float | None  # ... once every layer is randomized
    faithful: bool  # beats every reference map's faithfulness
    sensitive: bool | None  # mean ρ below SENSITIVE_RHO; None: not measured (references never are)

    def record(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TrustTable:
    """The trust table for one model and image, and what it supports."""

    rows: list[TrustRow]
    verdict: str | None  # the method that is both faithful and sensitive (the most faithful such), or None
    sentence: str
    target: int
    probability: float
    baseline: str  # words for the deletion / insertion baseline
    randomization_steps: list[str]
    seconds: dict[str, float]  # per family: maps, localization, faithfulness, randomization, total
    faithfulness_results: dict[str, Faithfulness] = field(default_factory=dict, repr=False)  # curves, for charts
    maps: dict[str, Tensor] = field(default_factory=dict, repr=False)

    def records(self) -> list[dict[str, Any]]:
        return [r.record() for r in self.rows]

    def row(self, method: str) -> TrustRow:
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(method)


def trust_table(model: nn.Module, image: Tensor, target: int | None = None, mask: Tensor | None = None,
                methods: Sequence[str] = METHODS, layer: str | None = None,
                baseline: str | Tensor = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS, randomize: bool = True,
                granularity: str = "stage", seed: int = 0, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None, maps: Mapping[str, Tensor] | None = None,
                randomization: RandomizationResult | None = None) -> TrustTable:
    """The trust table of `model` on one normalised image (3 x H x W).

    Rows: each of `methods` (Grad-CAM and Guided Grad-CAM at `layer`, None = the last stage), then the
    reference maps (random, uniform, Sobel edges of the picture: give the normalisation's `mean` and
    `std`). Columns: pointing game and energy inside `mask` (H x W booleans; None leaves them out),
    deletion and insertion areas with pixels replaced by `baseline` ("mean" = the dataset mean, 0 after
    normalisation, the default; "blur"; or an image), Average Drop and Increase in Confidence (torch-cam's
    definition), and the mean Spearman ρ with the trained map over a cascading randomization
    (`granularity` "stage" or "block"; `randomize=False` skips it). `target`: the class explained, None =
    the prediction. Pass `maps` (method -> H x W) or `randomization` already computed to reuse them.
    """
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise AttributionError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    x = as_batch(model, image)[:1]
    if target is None:
        target = int(predict(model, x)[0].argmax())
    layer_name = resolve_layer(model, layer)[0]

    t = time.perf_counter()
    given = dict(maps or {})
    all_maps: dict[str, Tensor] = {}
    for method in methods:
        all_maps[method] = given[method] if method in given else explain(
            model, x, method, target=target, layer=layer_name if method in LAYER_METHODS else None)
    references = reference_maps(x[0].cpu(), seed=seed, mean=mean, std=std)
    all_maps.update(references)
    seconds["maps"] = time.perf_counter() - t

    t = time.perf_counter()
    located: dict[str, tuple[float | None, float | None]] = {name: (None, None) for name in all_maps}
    if mask is not None:
        m = torch.as_tensor(mask).bool().reshape(x.shape[-2:])
        for name, saliency in all_maps.items():
            located[name] = (float(pointing_game(saliency, m)[0]), float(energy_inside(saliency, m)[0]))
    seconds["localization"] = time.perf_counter() - t

    t = time.perf_counter()
    labels = {**METHOD_LABELS, **REFERENCE_LABELS}
    faithful = faithfulness_scores(model, x, all_maps, target=target, baseline=baseline, steps=steps, labels=labels)
    seconds["faithfulness"] = time.perf_counter() - t

    t = time.perf_counter()
    if randomization is None and randomize and methods:
        randomization = randomization_check(model, x, methods, target=target, layer=layer_name,
                                            granularity=granularity, seed=seed, keep_maps=False)
    seconds["randomization"] = time.perf_counter() - t

    best_reference = max((faithful[r].score for r in REFERENCES), default=float("-inf"))
    rows = []
    for name in all_maps:
        f = faithful[name]
        rho = final = None
        if randomization is not None and name in randomization.correlations:
            after = randomization.correlations[name][1:]
            if after:
                rho, final = sum(after) / len(after), after[-1]
        rows.append(TrustRow(
            method=name, label=labels.get(name, name), reference=name in REFERENCES,
            pointing_game=located[name][0], energy_inside=located[name][1],
            deletion_auc=f.deletion.auc, insertion_auc=f.insertion.auc, faithfulness=f.score,
            average_drop=f.average_drop, increase_in_confidence=f.increase_in_confidence,
            randomization_rho=rho, randomization_final=final,
            faithful=name not in REFERENCES and f.score > best_reference,
            sensitive=None if rho is None else rho < SENSITIVE_RHO))
    verdict, sentence = trust_sentence(rows)
    seconds["total"] = time.perf_counter() - start
    first = next(iter(faithful.values()))
    return TrustTable(rows, verdict, sentence, int(target), first.probability, baseline_label(baseline),
                      list(randomization.steps) if randomization is not None else [], seconds, faithful, all_maps)


def trust_sentence(rows: Sequence[TrustRow]) -> tuple[str | None, str]:
    """(the method both faithful and sensitive to the weights, or None; a sentence saying so from the numbers).

    Faithful: an insertion − deletion area above every reference map's. Sensitive: a mean rank correlation
    with the trained map below SENSITIVE_RHO while the weights are randomized. Among the methods that are
    both, the most faithful is named.
    """
    methods = [r for r in rows if not r.reference]
    references = [r for r in rows if r.reference]
    if not methods:
        return None, "No attribution method was measured."
    ref = max(references, key=lambda r: r.faithfulness) if references else None
    ref_text = f"the best reference map, {_plain(ref)}, reaches {ref.faithfulness:.2f}" if ref else "no reference map"
    measured = any(r.randomization_rho is not None for r in methods)
    if not measured:
        faithful = sorted((r for r in methods if r.faithful), key=lambda r: r.faithfulness, reverse=True)
        if not faithful:
            return None, (f"On this image no method's map is more faithful than a reference map "
                          f"(insertion − deletion area; {ref_text}); the weights were not randomized.")
        top = faithful[0]
        return None, (f"On this image {top.label} is the most faithful map: insertion − deletion area "
                      f"{top.faithfulness:.2f} ({ref_text}); the weights were not randomized, so whether it "
                      f"depends on them is not known.")
    both = sorted((r for r in methods if r.faithful and r.sensitive), key=lambda r: r.faithfulness, reverse=True)
    insensitive = [r for r in methods if r.faithful and r.sensitive is False]
    unfaithful = [r for r in methods if not r.faithful]
    if both:
        top = both[0]
        text = (f"On this image {top.label} is both faithful and sensitive to the weights: its insertion − deletion "
                f"area is {top.faithfulness:.2f} ({ref_text}), and its map keeps a mean Spearman ρ of "
                f"{top.randomization_rho:.2f} with the trained one as the weights are randomized "
                f"(below {SENSITIVE_RHO}: it depends on them).")
        verdict = top.method
    else:
        most = max(methods, key=lambda r: r.faithfulness)
        rho = "not measured" if most.randomization_rho is None else f"{most.randomization_rho:.2f}"
        text = (f"On this image no method is both faithful (an insertion − deletion area above every reference "
                f"map's; {ref_text}) and sensitive to the weights (a mean Spearman ρ below {SENSITIVE_RHO} under "
                f"randomization); the most faithful is {most.label} ({most.faithfulness:.2f}, ρ {rho}).")
        verdict = None
    if insensitive:
        names = _join([f"{r.label} (ρ {r.randomization_rho:.2f})" for r in insensitive])
        one = len(insensitive) == 1
        text += (f" {names} {'is' if one else 'are'} faithful too but {'keeps' if one else 'keep'} most of "
                 f"{'its' if one else 'their'} map when the weights are randomized, so part of what "
                 f"{'it shows' if one else 'they show'} comes from the image, not the model.")
    if unfaithful:
        names = _join([r.label for r in unfaithful])
        text += f" {names} {'does' if len(unfaithful) == 1 else 'do'} no better than a reference map here."
    return verdict, text


_REFERENCE_WORDS = {"random": "a random map", "uniform": "the uniform map", "sobel": "Sobel edges"}


def _plain(row: TrustRow) -> str:
    return _REFERENCE_WORDS.get(row.method, row.label)


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
