"""Is a map faithful to the model? Deletion and insertion curves, Average Drop / Increase in Confidence,
and the model-free reference maps (random, uniform, Sobel edges) every method should beat.

Deletion (Petsiuk et al. 2018, RISE): pixels are replaced by a baseline image in the map's order, most
important first, and the probability of the explained class is read after each step; a faithful map makes
it fall fast (small area under the curve). Insertion starts from the baseline and puts the image's pixels
back in the same order; a faithful map makes the probability rise fast (large area). Both curves are read
on `steps + 1` evenly spaced shares of the pixels, and every perturbed image of every map goes through the
model in batches, not one by one.

Average Drop and Increase in Confidence (Chattopadhay et al. 2018, Grad-CAM++) as torch-cam publishes them:
the map, scaled to [0, 1], multiplies the normalised image (so a pixel with map 0 becomes the dataset mean),
and the class probability p on the image is compared with p' on that product:
drop = max(0, p - p') / p, increase = p' > p; both given in %. A constant map has no range to scale and
becomes 0 everywhere (as min-max scaling makes it in torch-cam and pytorch-grad-cam), so the uniform reference
map shows the drop of the mean image. Average Drop rewards broad, smooth maps (a sparse map multiplies most of
the image away): read it beside the curves, not alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .maps import normalize_map
from .methods import AttributionError, as_batch, predict
from .references import reference_batch, reference_labels, reference_names

DEFAULT_STEPS = 20  # 5% of the pixels per step: 21 points per curve
# What removed pixels become (named apart from the reference maps of references.py, which are saliency maps).
PERTURBATION_BASELINES: dict[str, str] = {
    "blur": "a Gaussian-blurred copy of the image (sigma = 1/16 of its side)",
    "mean": "the dataset mean image (0 everywhere after normalisation)",
}
# The dataset mean, as the app's Integrated Gradients and Occlusion use (baselines 0) and Average Drop implies.
# Measured on the bundled Shapes ResNet-20 (16 held-out images): it leaves 8% probability on the true class
# (chance is 10%), so the curves span the whole range; the blurred copy still left 50%, which squeezes every
# curve towards the top and the areas of a good and a random map together.
DEFAULT_BASELINE = "mean"
# Pixels per forward chunk: 512 images at 32 px, 41 at 224 px, so a resnet50 stays under ~1 GB of activations.
_PIXELS_PER_CHUNK = 2 ** 21


# --------------------------------------------------------------------------------------------
# Baselines and reference maps
# --------------------------------------------------------------------------------------------


def baseline_image(image: Tensor, baseline: str | Tensor = DEFAULT_BASELINE) -> Tensor:
    """The image a removed pixel takes its value from (C x H x W, normalised like `image`).

    "blur": a Gaussian blur with sigma = side / 16 (2 px at 32 px, 14 px at 224 px): it keeps the colours
    and removes the shape, and stays closer to natural images than a flat grey, which a model may read as a
    class of its own. "mean": zeros, i.e. the dataset mean after normalisation (what RISE's deletion and
    torch-cam's Average Drop use). A tensor is taken as the baseline itself.
    """
    image = _one_image(image)
    if isinstance(baseline, Tensor):
        base = baseline.detach().float().cpu()
        base = base[0] if base.dim() == 4 and base.shape[0] == 1 else base
        if base.shape != image.shape:
            raise AttributionError(f"baseline image {tuple(base.shape)} must match the image {tuple(image.shape)}")
        return base.clone()
    if baseline == "mean":
        return torch.zeros_like(image)
    if baseline == "blur":
        return gaussian_blur(image, sigma=max(image.shape[-2:]) / 16)
    raise AttributionError(f"unknown baseline {baseline!r}; choose one of {list(PERTURBATION_BASELINES)} "
                           "or give an image tensor")


def baseline_label(baseline: str | Tensor) -> str:
    """Words for the baseline, for a caption or the command line."""
    return "a baseline image given by the caller" if isinstance(baseline, Tensor) else PERTURBATION_BASELINES[baseline]


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """C x H x W blurred by a separable Gaussian (radius 3 sigma, reflected borders, at most the image size)."""
    image = _one_image(image)
    h, w = image.shape[-2:]
    radius = max(1, min(math.ceil(3 * sigma), h - 1, w - 1))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = image.shape[0]
    x = image[None]
    across, down = kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), across, groups=c)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), down, groups=c)
    return x[0]


def reference_maps(image: Tensor, seed: int = 0, mean: Sequence[float] | None = None,
                   std: Sequence[float] | None = None) -> dict[str, Tensor]:
    """Every registered reference map for one image, H x W each, by name (references.py): "random" (i.i.d.
    uniform, seeded: chance order), "uniform" (all ones: no order at all) and "sobel" (edges)."""
    x = _one_image(image)[None]
    return {name: reference_batch(name, x, seed, mean, std)[0] for name in reference_names()}


# --------------------------------------------------------------------------------------------
# The order of the pixels, with ties shared
# --------------------------------------------------------------------------------------------


def removal_weights(saliency: Tensor, counts: Sequence[int] | Tensor) -> Tensor:
    """How much of each pixel is removed after `k` pixels' worth, for each k in `counts`: K x (H*W) in [0, 1].

    Pixels are taken most salient first. Tied pixels have no order between them, so they are removed
    together, each by an equal share: with k reaching into a block of g tied pixels of which s were
    outranked, each of them is (k - s) / g removed. A map without ties gives the usual 0/1 top-k mask; a
    uniform map fades the whole image evenly to the baseline, whatever the pixels' positions. Sorting
    would instead let the memory layout decide (top-left first), a position bias no method asked for.
    """
    flat = torch.nan_to_num(torch.as_tensor(saliency).detach().float().cpu()).reshape(-1)
    ascending = torch.sort(flat).values
    n = flat.numel()
    above = n - torch.searchsorted(ascending, flat, right=True)  # pixels strictly more salient
    tied = torch.searchsorted(ascending, flat, right=True) - torch.searchsorted(ascending, flat, right=False)
    k = torch.as_tensor(counts, dtype=torch.float64).reshape(-1, 1)
    return ((k - above.double()) / tied.double()).clamp(0.0, 1.0).float()


def pixel_counts(n_pixels: int, steps: int) -> list[int]:
    """round(j / steps * n_pixels) for j = 0..steps: how many pixels are removed at each point of a curve."""
    if steps < 1:
        raise AttributionError(f"a curve needs at least one step, got steps={steps}")
    return [round(j * n_pixels / steps) for j in range(steps + 1)]


def auc(fractions: Tensor | Sequence[float], scores: Tensor | Sequence[float]) -> float:
    """Area under a curve by the trapezoid rule, over the share of pixels (0 to 1): in [0, 1] for probabilities."""
    x = torch.as_tensor(fractions, dtype=torch.float64)
    y = torch.as_tensor(scores, dtype=torch.float64)
    if x.shape != y.shape or x.dim() != 1 or x.numel() < 2:
        raise AttributionError(f"auc needs two 1-D sequences of the same length >= 2, got {tuple(x.shape)} "
                               f"and {tuple(y.shape)}")
    return float(torch.trapezoid(y, x))


# --------------------------------------------------------------------------------------------
# The measurements
# --------------------------------------------------------------------------------------------


@dataclass
class Curve:
    """One deletion or insertion curve: the class probability after removing (or inserting) each share."""

    mode: str  # "deletion" or "insertion"
    fractions: Tensor  # steps + 1 shares of the pixels, 0 to 1
    scores: Tensor  # the explained class's probability at each share
    auc: float

    def record(self) -> dict[str, Any]:
        return {"mode": self.mode, "fractions": self.fractions.tolist(), "scores": self.scores.tolist(),
                "auc": self.auc}


@dataclass
class Faithfulness:
    """How faithful one map is on one image (see the module docstring for each number)."""

    name: str
    label: str
    deletion: Curve
    insertion: Curve
    average_drop: float  # %, 0 (no drop) to 100
    increase_in_confidence: float  # %, 0 or 100 for one image
    probability: float  # the explained class's probability on the image itself
    masked_probability: float  # ... on the image multiplied by the map (Average Drop's input)
    target: int
    baseline: str

    @property
    def score(self) -> float:
        """Insertion area minus deletion area: one number, higher is more faithful; about 0 for a map in
        random order, negative for a map that points away from what the model uses."""
        return self.insertion.auc - self.deletion.auc

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "deletion_auc": self.deletion.auc,
                "insertion_auc": self.insertion.auc, "faithfulness": self.score, "average_drop": self.average_drop,
                "increase_in_confidence": self.increase_in_confidence, "probability": self.probability,
                "masked_probability": self.masked_probability, "target": self.target, "baseline": self.baseline,
                "fractions": self.deletion.fractions.tolist(), "deletion": self.deletion.scores.tolist(),
                "insertion": self.insertion.scores.tolist()}


def faithfulness_scores(model: nn.Module, image: Tensor, maps: Mapping[str, Tensor], target: int | None = None,
                        baseline: str | Tensor = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS,
                        labels: Mapping[str, str] | None = None,
                        batch_size: int | None = None) -> dict[str, Faithfulness]:
    """Deletion and insertion curves, their areas, Average Drop and Increase in Confidence, for each map of
    one image, with every perturbed image of every map batched through the model.

    `image`: normalised 3 x H x W (or 1 x 3 x H x W); `maps`: name -> H x W map (a smaller map, e.g. a
    Grad-CAM at 8 x 8, is upsampled bilinearly first); `target`: the class whose probability is read
    (None: the model's prediction on the image). `baseline`: what removed pixels become, "blur" (a Gaussian
    blur of the image, sigma = side / 16), "mean" (the dataset mean: 0 after normalisation) or an image
    tensor; Average Drop always blends towards the dataset mean, as torch-cam does.
    """
    x = _one_image(as_batch(model, image).cpu())
    h, w = x.shape[-2:]
    names = list(maps)
    if not names:
        return {}
    saliency = {name: _fit_map(maps[name], h, w, name) for name in names}
    base = baseline_image(x, baseline)
    counts = pixel_counts(h * w, steps)
    inner = counts[1:-1]  # k = 0 is the image itself and k = H*W the baseline, shared by every curve
    # Rows: the image, the baseline, then per map its inner deletion points, inner insertion points, and
    # the image times the map (Average Drop's input).
    batch = [x[None], base[None]]
    for name in names:
        weights = removal_weights(saliency[name], inner).view(-1, 1, h, w)
        batch.append(x * (1 - weights) + base * weights)  # deletion: the most salient pixels go first
        batch.append(base * (1 - weights) + x * weights)  # insertion: the most salient pixels come first
        batch.append((x * normalize_map(saliency[name]))[None])
    probs = _probabilities(model, torch.cat(batch), batch_size)
    if target is None:
        target = int(probs[0].argmax())
    elif not 0 <= int(target) < probs.shape[1]:
        raise AttributionError(f"target class {target} is out of range: the model has {probs.shape[1]} classes")
    p = probs[:, int(target)].double()
    fractions = torch.tensor([k / (h * w) for k in counts], dtype=torch.float64)
    original, emptied = p[0], p[1]
    label_of = {**reference_labels(), **(labels or {})}
    baseline_name = "custom" if isinstance(baseline, Tensor) else baseline
    results, row, m = {}, 2, len(inner)
    for name in names:
        deleted, inserted, masked = p[row:row + m], p[row + m:row + 2 * m], float(p[row + 2 * m])
        row += 2 * m + 1
        deletion = torch.cat([original[None], deleted, emptied[None]])
        insertion = torch.cat([emptied[None], inserted, original[None]])
        results[name] = Faithfulness(
            name=name, label=label_of.get(name, name),
            deletion=Curve("deletion", fractions, deletion, auc(fractions, deletion)),
            insertion=Curve("insertion", fractions, insertion, auc(fractions, insertion)),
            average_drop=_drop(float(original), masked), increase_in_confidence=100.0 * (masked > float(original)),
            probability=float(original), masked_probability=masked, target=int(target), baseline=baseline_name)
    return results


def perturbed_scores(model: nn.Module, image: Tensor, saliency: Tensor, counts: Sequence[int], target: int,
                     mode: str = "deletion", baseline: str | Tensor = DEFAULT_BASELINE,
                     batch_size: int | None = None) -> Tensor:
    """The class probability after removing (deletion) or inserting (insertion) exactly `counts[j]` pixels'
    worth in the map's order, one batch for all counts: the points of a curve at any spacing (e.g. to read
    it at the pixel counts another implementation's percentile thresholds give)."""
    if mode not in ("deletion", "insertion"):
        raise AttributionError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    x = _one_image(as_batch(model, image).cpu())
    h, w = x.shape[-2:]
    base = baseline_image(x, baseline)
    weights = removal_weights(_fit_map(saliency, h, w, "map"), counts).view(-1, 1, h, w)
    batch = x * (1 - weights) + base * weights if mode == "deletion" else base * (1 - weights) + x * weights
    probs = _probabilities(model, batch, batch_size)
    if not 0 <= int(target) < probs.shape[1]:
        raise AttributionError(f"target class {target} is out of range: the model has {probs.shape[1]} classes")
    return probs[:, int(target)].double()


def deletion_curve(model: nn.Module, image: Tensor, saliency: Tensor, target: int | None = None,
                   baseline: str | Tensor = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS) -> Curve:
    """One map's deletion curve (see `faithfulness_scores`, which batches several maps and both curves)."""
    return faithfulness_scores(model, image, {"map": saliency}, target, baseline, steps)["map"].deletion


def insertion_curve(model: nn.Module, image: Tensor, saliency: Tensor, target: int | None = None,
                    baseline: str | Tensor = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS) -> Curve:
    """One map's insertion curve (see `faithfulness_scores`)."""
    return faithfulness_scores(model, image, {"map": saliency}, target, baseline, steps)["map"].insertion


def confidence_change(model: nn.Module, images: Tensor, maps: Tensor,
                      targets: Sequence[int] | None = None) -> dict[str, Tensor]:
    """Average Drop and Increase in Confidence per image, for N images and their N maps (torch-cam's
    definition; see the module docstring). Returns tensors of N: "average_drop" (%, 0 to 100),
    "increase_in_confidence" (%, 0 or 100), "probability" (p) and "masked_probability" (p'); their means
    over the images are the published figures."""
    x = as_batch(model, images).cpu()
    maps = torch.as_tensor(maps).detach().float().cpu()
    maps = maps[None] if maps.dim() == 2 else maps
    if maps.shape[0] != x.shape[0]:
        raise AttributionError(f"{x.shape[0]} images but {maps.shape[0]} maps")
    scaled = torch.stack([normalize_map(_fit_map(m, *x.shape[-2:], f"map {i}")) for i, m in enumerate(maps)])
    probs = _probabilities(model, torch.cat([x, x * scaled[:, None]]), None)
    n = x.shape[0]
    if targets is None:
        targets = probs[:n].argmax(dim=1).tolist()
    index = torch.as_tensor([int(t) for t in targets])
    if index.numel() != n or (index < 0).any() or (index >= probs.shape[1]).any():
        raise AttributionError(f"need one target class per image, each from 0 to {probs.shape[1] - 1}")
    p = probs[torch.arange(n), index].double()
    q = probs[torch.arange(n) + n, index].double()
    drop = torch.tensor([_drop(float(a), float(b)) for a, b in zip(p, q)], dtype=torch.float64)
    return {"average_drop": drop, "increase_in_confidence": 100.0 * (q > p).double(),
            "probability": p, "masked_probability": q}


def _drop(p: float, masked: float) -> float:
    # torch-cam divides by p + 1e-7; clamping keeps the % in [0, 100] for a p that underflows to 0.
    return 100.0 * min(1.0, max(0.0, p - masked) / max(p, 1e-7))


def _probabilities(model: nn.Module, batch: Tensor, batch_size: int | None) -> Tensor:
    size = batch_size or max(8, min(512, _PIXELS_PER_CHUNK // (batch.shape[-1] * batch.shape[-2])))
    return torch.cat([predict(model, batch[i:i + size]) for i in range(0, batch.shape[0], size)]).float()


def _one_image(image: Tensor) -> Tensor:
    if not isinstance(image, Tensor):
        raise AttributionError(f"expected a normalised image tensor, got {type(image).__name__}")
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3:
        raise AttributionError(f"expected one image, 3 x H x W, got shape {tuple(image.shape)}")
    return image.detach().float().cpu()


def _fit_map(m: Tensor, h: int, w: int, name: str) -> Tensor:
    m = torch.nan_to_num(torch.as_tensor(m).detach().float().cpu())
    m = m.reshape(m.shape[-2:]) if m.dim() > 2 and all(s == 1 for s in m.shape[:-2]) else m
    if m.dim() != 2:
        raise AttributionError(f"map {name!r}: expected H x W, got shape {tuple(m.shape)}")
    if m.shape != (h, w):
        m = F.interpolate(m[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    return m
