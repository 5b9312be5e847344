"""Trust checks of attribution maps: localization against object masks, cascading weight randomization."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .methods import (
    LAYER_METHODS,
    METHOD_LABELS,
    AttributionError,
    as_batch,
    explain_batch,
    model_lock,
    predict,
    resolve_layer,
    stage_names,
)
from .references import reference_batch, reference_labels, reference_names


def pointing_game(maps: Tensor, masks: Tensor) -> Tensor:
    """Per image: the share of the map's maximal pixels that lie inside the mask.

    With a single maximum this is the usual hit (1) or miss (0). Ties are split evenly, so a
    uniform map scores the mask's area fraction, the chance level, instead of whatever the
    first pixel happens to be.
    """
    maps, masks = _paired(maps, masks)
    flat = maps.reshape(maps.shape[0], -1)
    top = flat == flat.max(dim=1, keepdim=True).values
    inside = masks.reshape(masks.shape[0], -1)
    return (top & inside).sum(dim=1).double() / top.sum(dim=1).double()


def energy_inside(maps: Tensor, masks: Tensor) -> Tensor:
    """Per image: the share of the map's positive mass inside the mask (a map with no positive
    mass says nothing and scores the mask's area fraction, like a uniform map)."""
    maps, masks = _paired(maps, masks)
    flat = maps.clamp_min(0).reshape(maps.shape[0], -1).double()
    inside = masks.reshape(masks.shape[0], -1)
    total = flat.sum(dim=1)
    share = (flat * inside).sum(dim=1) / total.clamp_min(torch.finfo(torch.float64).tiny)
    return torch.where(total > 0, share, inside.double().mean(dim=1))


def _paired(maps: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    maps = torch.nan_to_num(torch.as_tensor(maps).detach().float().cpu())
    masks = torch.as_tensor(masks).detach().cpu().bool()
    if maps.dim() == 2:
        maps, masks = maps[None], masks.reshape(1, *masks.shape[-2:])
    if maps.shape != masks.shape:
        raise AttributionError(f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} must have the same shape")
    return maps, masks


def localization_scores(model: nn.Module, images: Tensor, masks: Tensor,
                        methods: Sequence[str] = ("gradcam",), targets: Sequence[int] | None = None,
                        layer: nn.Module | str | None = None, batch_size: int = 32, seed: int = 0,
                        method_options: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Pointing game and energy inside the object mask, averaged over images, per method.

    `images` are normalised N x 3 x H x W, `masks` boolean N x H x W; `targets` the class to
    explain per image (pass the true labels; None explains the predictions). The reference maps that know
    neither model nor image are scored after them (references.py: a seeded random map and a uniform one); both
    sit at chance, the mean mask area fraction. Returns one row per map: method, label, reference (False for
    the methods), pointing_game, energy_inside, mask_fraction (means over the images), n, and per_image (the
    same three, image by image).
    """
    x = torch.as_tensor(images)
    masks = torch.as_tensor(masks).bool().cpu()
    if x.dim() != 4 or masks.shape != (x.shape[0], *x.shape[2:]):
        raise AttributionError(f"images {tuple(x.shape)} and masks {tuple(masks.shape)} do not match "
                               "(need N x 3 x H x W and N x H x W)")
    options = method_options or {}
    fraction = masks.reshape(masks.shape[0], -1).double().mean(dim=1)
    rows = []
    for method in methods:
        maps = []
        for start in range(0, x.shape[0], batch_size):
            part_targets = None if targets is None else list(targets)[start:start + batch_size]
            maps.append(explain_batch(model, x[start:start + batch_size], method, part_targets, layer,
                                      **options.get(method, {})).maps)
        rows.append(_score_row(method, METHOD_LABELS[method], torch.cat(maps), masks, fraction))
    labels = reference_labels()
    for name in reference_names(at_chance=True):
        maps = reference_batch(name, x, seed)
        rows.append(_score_row(name, labels[name], maps, masks, fraction, reference=True))
    return rows


def _score_row(method: str, label: str, maps: Tensor, masks: Tensor, fraction: Tensor,
               reference: bool = False) -> dict[str, Any]:
    # The per-image values travel with the means, so a sentence can give each mean its interval.
    pointing, energy = pointing_game(maps, masks), energy_inside(maps, masks)
    return {
        "method": method,
        "label": label,
        "reference": reference,
        "pointing_game": float(pointing.mean()),
        "energy_inside": float(energy.mean()),
        "mask_fraction": float(fraction.mean()),
        "n": int(masks.shape[0]),
        "per_image": {"pointing_game": pointing.tolist(), "energy_inside": energy.tolist(),
                      "mask_fraction": fraction.tolist()},
    }


# --------------------------------------------------------------------------------------------
# Trust check 2: cascading randomization (Adebayo et al. 2018)
# --------------------------------------------------------------------------------------------


def rank(values: Tensor) -> Tensor:
    """1-based ranks of a 1-D tensor, ties given their average rank (float64)."""
    values = values.detach().reshape(-1)
    sorted_values, order = torch.sort(values)
    _, inverse, counts = torch.unique_consecutive(sorted_values, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    average = ends - (counts.double() - 1) / 2
    ranks = torch.empty(values.numel(), dtype=torch.float64, device=values.device)
    ranks[order] = average[inverse]
    return ranks


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation of two maps (ties averaged). 0.0 if either map is constant,
    since a constant map shares no ordering with anything."""
    ra, rb = rank(torch.nan_to_num(a.float())), rank(torch.nan_to_num(b.float()))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    return float((ra * rb).sum()) / denominator if denominator > 0 else 0.0


def randomization_steps(model: nn.Module, granularity: str = "block") -> list[tuple[str, list[nn.Module]]]:
    """The cascade, head first: ("fc", [...]), then each block (or stage) from the last down,
    then ("stem", [...]). Each step lists the modules whose weights it re-initialises."""
    if granularity not in ("block", "stage"):
        raise AttributionError(f"granularity must be 'block' or 'stage', got {granularity!r}")
    stages = stage_names(model)
    staged = {id(m) for s in stages for m in getattr(model, s).modules()}
    head = [m for n, m in model.named_children() if n in ("fc", "final_bn")]
    steps: list[tuple[str, list[nn.Module]]] = [("fc", head)] if head else []
    for stage in reversed(stages):
        module = getattr(model, stage)
        if granularity == "stage":
            steps.append((stage, [module]))
        else:
            steps.extend((f"{stage}.{name}", [block]) for name, block in reversed(list(module.named_children())))
    stem = [m for n, m in model.named_children()
            if id(m) not in staged and m not in head and any(p.numel() for p in m.parameters())]
    if stem:
        steps.append(("stem", stem))
    return steps


def _reinitialise(modules: Sequence[nn.Module], gen: torch.Generator) -> None:
    """Fresh random weights (the model's own init scheme); BN reset to the identity."""
    with torch.no_grad():
        for top in modules:
            for m in top.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                    if m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(m.in_features), generator=gen)
                    if m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.reset_parameters()


@dataclass
class RandomizationResult:
    """Spearman correlation with the trained model's map, per method, per cascade step.

    `steps[0]` is "original" (correlation 1); step i has every module of steps 1..i re-initialised.
    `maps[method][i]` is the H x W map at step i, for display.
    """

    steps: list[str]
    correlations: dict[str, list[float]]
    maps: dict[str, list[Tensor]] = field(default_factory=dict)
    target: int = 0

    def rows(self) -> list[dict[str, Any]]:
        return [{"step": s, "method": m, "label": METHOD_LABELS.get(m, m), "spearman": c[i]}
                for m, c in self.correlations.items() for i, s in enumerate(self.steps)]


def randomization_check(model: nn.Module, image: Tensor, methods: Sequence[str] = ("gradcam", "guided_gradcam"),
                        target: int | None = None, layer: str | None = None, granularity: str = "block",
                        seed: int = 0, keep_maps: bool = True,
                        progress: Callable[[float, str], None] | None = None) -> RandomizationResult:
    """Cascading randomization on a deep copy of `model` (the model itself is not touched).

    The target is fixed to the trained model's class (its prediction if None) at every step, and
    the layer is given by module path so it resolves in each copy.
    """
    x = as_batch(model, image)[:1]
    return randomization_checks(model, x, methods, None if target is None else [target], layer, granularity, seed,
                                keep_maps, progress)[0]


def randomization_checks(model: nn.Module, images: Tensor, methods: Sequence[str] = ("gradcam", "guided_gradcam"),
                         targets: Sequence[int] | None = None, layer: str | None = None, granularity: str = "block",
                         seed: int = 0, keep_maps: bool = False,
                         progress: Callable[[float, str], None] | None = None) -> list[RandomizationResult]:
    """`randomization_check` of N images at once: one cascade of weights, every image's maps in one batch per
    method and step, one result per image (each the same as checking that image alone: the model is in eval
    mode, so an image's map does not depend on the others in its batch)."""
    x = as_batch(model, images)
    if targets is None:
        targets = predict(model, x).argmax(dim=1).tolist()
    targets = [int(t) for t in targets]
    if len(targets) != x.shape[0]:
        raise AttributionError(f"{x.shape[0]} images but {len(targets)} targets")
    layer_name = resolve_layer(model, layer)[0]
    with model_lock(model):
        randomized = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    steps = randomization_steps(randomized, granularity)
    names = ["original"] + [name for name, _ in steps]
    originals: dict[str, Tensor] = {}
    results = [RandomizationResult(names, {m: [] for m in methods}, {m: [] for m in methods}, t) for t in targets]
    for i, name in enumerate(names):
        if i > 0:
            _reinitialise(steps[i - 1][1], gen)
        for method in methods:
            layer_arg = layer_name if method in LAYER_METHODS else None
            maps = explain_batch(randomized, x, method, targets, layer_arg).maps
            originals.setdefault(method, maps)
            for j, result in enumerate(results):
                result.correlations[method].append(1.0 if i == 0 else spearman(originals[method][j], maps[j]))
                if keep_maps:
                    result.maps[method].append(maps[j])
        if progress is not None:
            progress((i + 1) / len(names), name)
    return results


def randomization_granularity(model: nn.Module) -> tuple[str, int]:
    """("block" or "stage", number of blocks): past ~20 blocks (resnet50 has 16, resnet152 50) a
    block-by-block cascade takes minutes on a CPU, so whole stages are randomized at a time."""
    blocks = len(randomization_steps(model, "block")) - 2
    return ("block" if blocks <= 20 else "stage"), blocks
