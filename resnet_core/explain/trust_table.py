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
    Faithfulness,
    baseline_label,
    faithfulness_scores,
    reference_maps,
)
from .methods import (
    LAYER_METHODS,
    METHOD_LABELS,
    METHODS,
    AttributionError,
    as_batch,
    explain,
    explain_batch,
    predict,
    resolve_layer,
)
from .references import reference_labels, reference_names
from .trust import RandomizationResult, energy_inside, pointing_game, randomization_check, randomization_checks
from .verdicts import SENSITIVE_RHO, trust_verdict

__all__ = ["SENSITIVE_RHO", "TrustRow", "TrustTable", "trust_table", "trust_tables", "trust_verdict"]


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
    # On this image alone, a comparison and not a verdict (one image has no spread): see verdicts.trust_verdict.
    faithful: bool  # beats every reference map's faithfulness here
    sensitive: bool | None  # mean ρ below SENSITIVE_RHO here; None: not measured (references never are)

    def record(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TrustTable:
    """The trust table for one model and image, and what it supports."""

    rows: list[TrustRow]
    verdict: str | None  # always None for one image: one image decides nothing (verdicts.trust_verdict)
    sentence: str  # this image's numbers, and that they decide nothing (or that the image is not the model's data)
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
                randomization: RandomizationResult | None = None, own_data: bool = True) -> TrustTable:
    """The trust table of `model` on one normalised image (3 x H x W).

    Rows: each of `methods` (Grad-CAM and Guided Grad-CAM at `layer`, None = the last stage), then the
    reference maps (random, uniform, Sobel edges of the picture: give the normalisation's `mean` and
    `std`). Columns: pointing game and energy inside `mask` (H x W booleans; None leaves them out),
    deletion and insertion areas with pixels replaced by `baseline` ("mean" = the dataset mean, 0 after
    normalisation, the default; "blur"; or an image), Average Drop and Increase in Confidence (torch-cam's
    definition), and the mean Spearman ρ with the trained map over a cascading randomization
    (`granularity` "stage" or "block"; `randomize=False` skips it). `target`: the class explained, None =
    the prediction. Pass `maps` (method -> H x W) or `randomization` already computed to reuse them.
    `own_data=False`: the image is not from the model's dataset (its sentence then says it decides nothing).
    The verdict over several images is `trust_verdict` of their tables' rows (see `trust_tables`).
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
    labels = {**METHOD_LABELS, **reference_labels()}
    faithful = faithfulness_scores(model, x, all_maps, target=target, baseline=baseline, steps=steps, labels=labels)
    seconds["faithfulness"] = time.perf_counter() - t

    t = time.perf_counter()
    if randomization is None and randomize and methods:
        randomization = randomization_check(model, x, methods, target=target, layer=layer_name,
                                            granularity=granularity, seed=seed, keep_maps=False)
    seconds["randomization"] = time.perf_counter() - t

    refs = reference_names()
    best_reference = max((faithful[r].score for r in refs), default=float("-inf"))
    rows = []
    for name in all_maps:
        f = faithful[name]
        rho = final = None
        if randomization is not None and name in randomization.correlations:
            after = randomization.correlations[name][1:]
            if after:
                rho, final = sum(after) / len(after), after[-1]
        rows.append(TrustRow(
            method=name, label=labels.get(name, name), reference=name in refs,
            pointing_game=located[name][0], energy_inside=located[name][1],
            deletion_auc=f.deletion.auc, insertion_auc=f.insertion.auc, faithfulness=f.score,
            average_drop=f.average_drop, increase_in_confidence=f.increase_in_confidence,
            randomization_rho=rho, randomization_final=final,
            faithful=name not in refs and f.score > best_reference,
            sensitive=None if rho is None else rho < SENSITIVE_RHO))
    summary = trust_verdict([rows], own_data=own_data)
    seconds["total"] = time.perf_counter() - start
    first = next(iter(faithful.values()))
    return TrustTable(rows, summary.verdict, summary.sentence, int(target), first.probability, baseline_label(baseline),
                      list(randomization.steps) if randomization is not None else [], seconds, faithful, all_maps)


def trust_tables(model: nn.Module, images: Tensor, targets: Sequence[int], masks: Sequence[Tensor | None] | None = None,
                 methods: Sequence[str] = ("gradcam", "guided_gradcam"), layer: str | None = None,
                 baseline: str | Tensor = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS, randomize: bool = True,
                 granularity: str = "stage", seed: int = 0, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> list[TrustTable]:
    """`trust_table` of each of N images (normalised N x 3 x H x W; `targets`, one class each; `masks`, one
    H x W mask or None each), with the maps and the randomization cascade batched over the images. Give their
    rows to `trust_verdict` for what they support together."""
    x = as_batch(model, images)
    targets = [int(t) for t in targets]
    if len(targets) != x.shape[0]:
        raise AttributionError(f"{x.shape[0]} images but {len(targets)} targets")
    masks = list(masks) if masks is not None else [None] * len(targets)
    layer_name = resolve_layer(model, layer)[0]
    maps = {m: explain_batch(model, x, m, targets, layer_name if m in LAYER_METHODS else None).maps for m in methods}
    randomized = (randomization_checks(model, x, methods, targets, layer_name, granularity, seed)
                  if randomize and methods else [None] * len(targets))
    return [trust_table(model, x[i], targets[i], masks[i], methods, layer_name, baseline, steps, randomize,
                        granularity, seed, mean, std, {m: maps[m][i] for m in methods}, randomized[i])
            for i in range(len(targets))]
