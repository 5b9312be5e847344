"""The loss landscape around trained weights (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets").

Definitions the charts and captions rely on:

* **Filter-normalized direction**: a Gaussian random tensor the shape of every weight; each filter of it (one
  output channel of a convolution, one row of the fc) is rescaled to the norm of the same filter of the trained
  weights, so a step of 1 moves every filter by its own size and nets with different weight scales compare.
  Parameters with one dimension (BatchNorm's gamma and beta, biases) get a zero direction, as in the paper's
  plots ("ignore biasbn"). Directions come from a seeded generator: the same seed and net give the same ones.
* **1-D slice**: loss(θ + α·d1) for α in [-span, span], along several independent directions (d1 of each draw);
  **2-D surface**: loss(θ + α·d1 + β·d2) on a square grid. The first 1-D direction is the surface's α axis, so
  the slice through β = 0 of the surface is the first 1-D curve at the grid's points.
* The loss is the mean cross-entropy on a fixed set of held-out images, in eval mode (BatchNorm uses its running
  statistics, which a perturbation does not change), so each point is a deterministic function of the weights.
  The model is given back exactly: weights, buffers and modes.

What the slices and surfaces show (loss-doubling radius, local convexity) is read off them in
`landscape_reading`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..background import BackgroundJob
from ..data.containers import Progress
from ..model.config import ResNetConfig
from .common import GradientError, check_batch, check_model, config_label, measuring

# Bounds: a grid of 51 x 51 (the paper's resolution) on a 56-layer net is minutes on a GPU and hours on a CPU.
MAX_STEPS_1D = 201
MAX_STEPS_2D = 51
MAX_DIRECTIONS = 10
MAX_IMAGES = 5_000
MAX_SPAN = 5.0


class LandscapeError(GradientError):
    """A landscape cannot be computed from what was given; the message says what to change."""


@dataclass(frozen=True)
class LandscapeSpec:
    """How much of the landscape to compute: grid points per axis (odd, so the trained weights lie on the grid),
    the slice's half-width in units of the filter-normalized direction, held-out images, direction seed."""

    steps_1d: int = 41
    steps_2d: int = 21
    span: float = 1.0
    n_images: int = 256
    directions: int = 3  # independent 1-D slices (their spread is the radius's uncertainty)
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self) -> None:
        for name, low, high in (("steps_1d", 3, MAX_STEPS_1D), ("steps_2d", 3, MAX_STEPS_2D),
                                ("n_images", 2, MAX_IMAGES), ("directions", 1, MAX_DIRECTIONS),
                                ("seed", 0, 2**31 - 1), ("batch_size", 1, 4096)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise LandscapeError(f"landscape {name} {value!r}: must be a whole number from {low} to {high}")
        for name in ("steps_1d", "steps_2d"):
            if getattr(self, name) % 2 == 0:
                raise LandscapeError(f"landscape {name} {getattr(self, name)}: must be odd, so that the trained "
                                     f"weights (α = 0) lie on the grid; try {getattr(self, name) + 1}")
        if isinstance(self.span, bool) or not isinstance(self.span, (int, float)) or not 0 < self.span <= MAX_SPAN:
            raise LandscapeError(f"landscape span {self.span!r}: must be a number above 0 and at most {MAX_SPAN}")

    @property
    def evaluations(self) -> int:
        """Loss evaluations per net: the 1-D slices, then the 2-D grid (its centre is the 1-D slices' centre)."""
        return self.directions * self.steps_1d + self.steps_2d**2

    def axis(self, steps: int) -> list[float]:
        return [round(-self.span + 2 * self.span * i / (steps - 1), 10) for i in range(steps)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LandscapeSpec:
        try:
            return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})
        except TypeError as exc:
            raise LandscapeError(f"landscape spec: {exc}") from None


# The live 20-layer pair on the page: sized so both nets' slices and surfaces take under a minute on 2 CPU
# cores (368 evaluations of 64 images; estimates.landscape_seconds says it on the page). Measured by
# benchmarks/bench_landscape.py on the shared 2-core machine at load 12-16 with 1 thread: 59.6 s, 31.7 s at its
# least-disturbed pace. The recorded 56-layer pair gets a finer grid and more images.
LIVE_DEPTH = 20  # the live pair: the bundled Shapes plain-20 and ResNet-20
LIVE_SPEC = LandscapeSpec(steps_1d=21, steps_2d=11, n_images=64, directions=3)
RECORDED_SPEC = LandscapeSpec(steps_1d=25, steps_2d=15, n_images=128, directions=3)


@dataclass(frozen=True)
class Landscape:
    """One net's slices and surface. `lines[k][i]` is the loss at alphas_1d[i] along direction k;
    `surface[j][i]` the loss at (alphas_2d[i], alphas_2d[j]) (rows are β); NaN where not computed yet."""

    label: str
    spec: LandscapeSpec
    alphas_1d: tuple[float, ...]
    lines: tuple[tuple[float, ...], ...]
    alphas_2d: tuple[float, ...]
    surface: tuple[tuple[float, ...], ...]
    center_loss: float
    center_acc: float
    seconds: float = 0.0
    classes: int = 0  # the net's outputs (0: unknown); chance accuracy is 1 / classes

    @property
    def complete(self) -> bool:
        return all(not math.isnan(v) for row in (*self.lines, *self.surface) for v in row)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["spec"] = self.spec.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Landscape:
        try:
            spec = LandscapeSpec.from_dict(data["spec"])
            alphas_1d, alphas_2d = _floats(data["alphas_1d"]), _floats(data["alphas_2d"])
            lines = tuple(_floats(row) for row in data["lines"])
            surface = tuple(_floats(row) for row in data["surface"])
            if any(len(r) != len(alphas_1d) for r in lines) or len(surface) != len(alphas_2d) or any(
                    len(r) != len(alphas_2d) for r in surface) or not lines:
                raise ValueError("the grid's sizes do not agree")
            return cls(str(data["label"]), spec, alphas_1d, lines, alphas_2d, surface, float(data["center_loss"]),
                       float(data["center_acc"]), float(data.get("seconds", 0.0)),
                       int(data.get("classes", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise LandscapeError(f"not a loss landscape: {exc}") from None


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(math.nan if v is None else float(v) for v in values)


# ---- directions and evaluation ---------------------------------------------------------------------------


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> list[Tensor]:
    """A random direction in weight space, one tensor per parameter (in `model.parameters()` order), each filter
    scaled to the norm of the same filter of the weights; zero for BatchNorm parameters and biases."""
    direction = []
    for p in model.parameters():
        if p.dim() <= 1:
            direction.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=generator, dtype=torch.float32).to(p.device, p.dtype)
        d_norm = d.flatten(1).norm(dim=1).clamp_min(1e-12)
        w_norm = p.detach().flatten(1).norm(dim=1)
        direction.append(d * (w_norm / d_norm).view(-1, *([1] * (p.dim() - 1))))
    return direction


def directions(model: nn.Module, seed: int, count: int) -> list[list[Tensor]]:
    """`count` filter-normalized directions from one seeded generator (CPU, so the same on every device)."""
    generator = torch.Generator().manual_seed(int(seed))
    return [filter_normalized_direction(model, generator) for _ in range(count)]


@torch.no_grad()
def evaluate(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `model` on the images, as it is (its mode is the caller's)."""
    total, correct = 0.0, 0
    for start in range(0, len(labels), batch_size):
        logits = model(images[start:start + batch_size])
        y = labels[start:start + batch_size]
        total += float(F.cross_entropy(logits.float(), y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    return total / len(labels), correct / len(labels)


class Perturbation:
    """Moves a model's weights to θ + a·d1 + b·d2 and back to θ exactly on close (use it as a context)."""

    def __init__(self, model: nn.Module):
        self.params = list(model.parameters())
        self.theta = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def move(self, steps: Sequence[tuple[float, list[Tensor]]]) -> None:
        for i, p in enumerate(self.params):
            p.copy_(self.theta[i])
            for coef, d in steps:
                if coef:
                    p.add_(d[i], alpha=coef)

    def __enter__(self) -> Perturbation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.move(())


def landscape(model: nn.Module, images: Tensor, labels: Tensor, spec: LandscapeSpec = RECORDED_SPEC,
              progress: Progress | None = None, stop: threading.Event | None = None,
              label: str | None = None) -> Landscape:
    """The 1-D slices and the 2-D surface of `model`'s loss around its weights on (normalised) `images`.

    `progress(done, total, message, partial Landscape)` follows each row; `stop` ends it early (the points not
    yet computed stay NaN). The model comes back exactly as it was.
    """
    check_model(model)
    if not isinstance(spec, LandscapeSpec):
        raise LandscapeError(f"spec must be a LandscapeSpec, got {type(spec).__name__}")
    images, labels = check_batch(model, images, labels)
    if len(labels) < spec.n_images:
        raise LandscapeError(f"the landscape needs {spec.n_images} held-out images, got {len(labels)}")
    images, labels = images[:spec.n_images], labels[:spec.n_images]
    cfg = getattr(model, "config", None)
    label = label or (config_label(cfg) if isinstance(cfg, ResNetConfig) else type(model).__name__)
    classes = cfg.num_classes if isinstance(cfg, ResNetConfig) else 0
    a1, a2 = spec.axis(spec.steps_1d), spec.axis(spec.steps_2d)
    lines = [[math.nan] * len(a1) for _ in range(spec.directions)]
    surface = [[math.nan] * len(a2) for _ in range(len(a2))]
    start = time.perf_counter()
    total, done = spec.evaluations, 0

    def snapshot(center: tuple[float, float]) -> Landscape:
        return Landscape(label, spec, tuple(a1), tuple(map(tuple, lines)), tuple(a2), tuple(map(tuple, surface)),
                         center[0], center[1], round(time.perf_counter() - start, 3), classes)

    def loss() -> float:
        value, _ = evaluate(model, images, labels, spec.batch_size)
        return value if math.isfinite(value) else math.inf  # a diverged point is "off the chart", not missing

    with measuring(model, train=False), Perturbation(model) as moved:
        center = evaluate(model, images, labels, spec.batch_size)
        dirs = directions(model, spec.seed, spec.directions + 1)  # the last is the surface's β axis
        for k in range(spec.directions):
            for i, a in enumerate(a1):
                if stop is not None and stop.is_set():
                    return snapshot(center)
                moved.move([(a, dirs[k])])
                lines[k][i] = center[0] if a == 0 else loss()
                done += 1
            if progress is not None:
                progress(done, total, f"{label}: 1-D slice {k + 1} of {spec.directions}", snapshot(center))
        for j, b in enumerate(a2):
            for i, a in enumerate(a2):
                if stop is not None and stop.is_set():
                    return snapshot(center)
                moved.move([(a, dirs[0]), (b, dirs[-1])])
                surface[j][i] = center[0] if a == 0 and b == 0 else loss()
                done += 1
            if progress is not None:
                progress(done, total, f"{label}: 2-D surface, row {j + 1} of {len(a2)}", snapshot(center))
    return snapshot(center)


def landscape_job(models: Sequence[nn.Module], images: Tensor, labels: Tensor,
                  spec: LandscapeSpec = LIVE_SPEC, labels_text: Sequence[str] | None = None) -> BackgroundJob:
    """The landscapes of several trained models, one after the other, in the background (result: a list of
    Landscape in the order of `models`, the unfinished one last while it runs). Do not train them meanwhile."""
    models = list(models)
    if not models:
        raise LandscapeError("give at least one trained model")
    for model in models:
        check_model(model)
    names = list(labels_text) if labels_text is not None else [None] * len(models)

    def work(progress: Progress, stop: threading.Event) -> list[Landscape]:
        results: list[Landscape] = []
        total = spec.evaluations * len(models)
        for i, model in enumerate(models):
            offset = i * spec.evaluations

            def report(done: int, _total: int, message: str, partial: Any, offset: int = offset) -> None:
                progress(offset + done, total, message, [*results, partial])

            results.append(landscape(model, images, labels, spec, report, stop, names[i]))
            if stop.is_set():
                break
        return results

    return BackgroundJob(work, "loss landscape")


# ---- files ----------------------------------------------------------------------------


def save_landscapes(results: Sequence[Landscape], path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write the landscapes as JSON (NaN and inf as null and "inf"), atomically."""
    def clean(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else ("inf" if math.isinf(v) else round(v, 6))
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return v

    path = Path(path)
    data = {"landscapes": [clean(r.to_dict()) for r in results], **(extra or {})}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    tmp.replace(path)


def load_landscapes(path: str | Path) -> list[Landscape]:
    """The landscapes saved by save_landscapes; LandscapeError when the file is missing or damaged."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        items = data["landscapes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LandscapeError(f"{Path(path).name}: no landscapes could be read ({type(exc).__name__})") from None
    if not isinstance(items, list) or not items:
        raise LandscapeError(f"{Path(path).name}: holds no landscapes")
    return [Landscape.from_dict(_unclean(item)) for item in items]


def _unclean(v: Any) -> Any:
    if v == "inf":
        return math.inf
    if isinstance(v, list):
        return [_unclean(x) for x in v]
    if isinstance(v, dict):
        return {k: _unclean(x) for k, x in v.items()}
    return v


def held_out(n_images: int, preprocess: dict[str, Any], seed: int) -> tuple[Tensor, Tensor]:
    """A fixed held-out subset: the first `n_images` Shapes images of `seed` (the app passes recipes.CHECK_SEED,
    apart from every training seed), normalised with the model's training statistics."""
    from ..data.shapes import make_shapes
    from ..data.transforms import normalize

    try:
        size, mean, std = int(preprocess.get("image_size", 32)), preprocess["mean"], preprocess["std"]
    except (KeyError, TypeError, ValueError):
        raise LandscapeError("the model records no training mean and std, so its inputs cannot be prepared") from None
    data = make_shapes(n_images, seed=seed, size=size)
    return normalize(data.images, mean, std), data.labels
