"""Plain versus residual, measured: gradient profiles, depth sweep, lesions, shattering.

Everything here runs real networks from `resnet_core.model` and measures them; nothing is
simulated. The definitions the charts rely on:

* **Gradient profile** (`gradient_norms`): for one batch, in train mode (BatchNorm uses the
  batch's statistics, as in training), the loss is cross-entropy between the logits and the
  given labels (random labels when the batch is random). We record the L2 norm of the gradient
  of every convolution weight, in the order the forward pass runs them (input to output), and
  the L2 norm of the gradient with respect to each block's output. Nothing is left on the model:
  gradients come from `torch.autograd.grad` (no `.grad` is written), BatchNorm running
  statistics and train/eval modes are restored afterwards.
* **First / last ratio**: "first" is the stem's first convolution (the one that sees the image,
  `conv1`, or `conv1.0` for the deep stem); "last" is the last convolution on the main path
  before the pooling and the fc (`layer3.{n-1}.conv2` in a CIFAR net). Shortcut projections are
  not on the main path. A ratio far above 1 means the gradient grows towards the input.
* **Depth sweep** (`depth_sweep`): CIFAR ResNets of depth 6n+2 (He et al. 2015: three stages of
  n basic blocks, widths 16/32/64, option-A shortcuts) and their plain twins, at
  initialization, on a random Gaussian batch with random labels; the same seed builds the
  residual net and its plain twin and draws the same batch.
* **Lesion study** (`lesion_study`, Veit et al. 2016): delete one block at test time (eval
  mode). In a residual net only the shortcut path remains (`y = relu(shortcut(x))`, or
  `shortcut(x)` for a pre-activation block); in a plain net the block is skipped (`y = x`)
  where its input and output shapes agree; blocks that change the shape cannot be skipped in a
  plain net and are reported as not applicable.
* **Gradient shattering** (`gradient_shattering`, Balduzzi et al. 2017): the gradient of a
  fixed random projection of the logits with respect to the input, at `n_points` inputs evenly
  spaced on the segment between two images. The points form one batch in train mode (as the
  paper's 1-D grid does), and we report the Pearson correlation between gradients at
  neighbouring points (and at larger lags): near 1 means a smooth gradient field, near 0 means
  shattered, white-noise-like gradients.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import PreActBasicBlock, PreActBottleneck
from .config import ConfigError, ResNetConfig, get_preset
from .data import normalize
from .model import build_model
from .worker import OneShotWorker


class GradientError(ValueError):
    """An analysis cannot run on what it was given; the message says what is wrong and what to do."""


# CIFAR family depths swept by default (He et al. 2015 used 20, 32, 44, 56, 110).
SWEEP_DEPTHS: tuple[int, ...] = (8, 14, 20, 32, 44, 56, 110)
MIN_DEPTH = 8
# Beyond ~300 layers a plain net's stem gradient heads for float32 overflow at initialization
# and one CPU measurement takes tens of seconds; 302 = 6 * 50 + 2.
MAX_DEPTH = 302

# Each caption: what to look for, then what the literature found.
CAPTIONS: dict[str, str] = {
    "profile": (
        "Each line is the gradient norm of one convolution's weights, input on the left and output on the right, "
        "with a band over the seeds: look for the plain net's gradients growing by orders of magnitude towards the "
        "input while the residual net's stay within about one. "
        "With BatchNorm the plain net's gradients do not vanish — at initialization they explode towards the input "
        "as depth grows (Yang et al. 2019) — and He et al. 2015 found plain nets with BN keep healthy gradient "
        "norms yet train worse as they get deeper."
    ),
    "blocks": (
        "The gradient norm at each block's output, input to output: look for the residual net's curve rising only "
        "gently towards the input (every shortcut passes the output's gradient back unchanged) while the plain "
        "net's rises by a roughly constant factor per block. "
        "Veit et al. 2016 describe a residual net as an ensemble of paths of many lengths, in which most of the "
        "gradient flows through the short paths."
    ),
    "sweep": (
        "The ratio of the stem convolution's gradient norm to the last convolution's at initialization, against "
        "depth on a log axis: look for the plain net's ratio climbing by orders of magnitude while the residual "
        "net's grows slowly. "
        "Yang et al. 2019 proved that batch-normalized plain nets' gradients explode with depth at initialization, "
        "and He et al. 2015 had observed that deeper plain nets with BN train worse (degradation) even though "
        "their gradients do not vanish."
    ),
    "sweep_no_bn": (
        "The same sweep without normalization: look for the plain net's exponential climb disappearing — without "
        "BatchNorm neither ratio trends exponentially with depth (both stayed between about 0.05 and 15 in our "
        "runs), so the explosion in the chart above comes from BatchNorm in a plain stack, not from depth alone. "
        "Yang et al. 2019 showed that batch normalization itself causes the gradient explosion of deep plain nets "
        "at initialization, and Zhang et al. 2019 (Fixup) trained deep residual nets without any normalization by "
        "rescaling their initialization."
    ),
    "training": (
        "Training loss and validation accuracy of plain and residual nets at two depths, trained with the same "
        "data, seed and recipe: look for the deeper plain net's loss staying above the shallower plain net's while "
        "the deeper residual net does at least as well as the shallower one. "
        "He et al. 2015 (Figure 6) found plain-56 has higher training error than plain-20 — degradation is an "
        "optimization difficulty, not overfitting — and residual nets reverse that ordering."
    ),
    "heatmap": (
        "Each row is a block (input at the top), each column a recorded training step, and the colour the log10 "
        "gradient norm at that block's output: look for the plain net's rows spreading over orders of magnitude "
        "and the residual net's staying close together. "
        "Yang et al. 2019 predict this explosion towards the input for batch-normalized plain nets at "
        "initialization; the later columns show how training reshapes it."
    ),
    "lesion": (
        "Validation accuracy after deleting one block at test time, with the intact network as a dashed line: "
        "look for the residual net barely moving for most blocks while the plain net drops towards chance. "
        "Veit et al. 2016 found that removing a single block from a trained residual net hardly changes its error "
        "while a plain VGG-style net breaks down, and read residual nets as ensembles of many paths."
    ),
    "shattering": (
        "Correlation between input-gradients at neighbouring points on a line between two images, against depth: "
        "look for the plain net's correlation falling towards 0 (white noise) while the residual net's stays well "
        "above it. "
        "Balduzzi et al. 2017 named this the shattered gradients problem: in deep plain nets the gradients "
        "decorrelate exponentially with depth and look like white noise, while residual nets keep them "
        "correlated (brown noise)."
    ),
    "zero_init": (
        "With zero_init_residual every block's last BatchNorm starts with gamma = 0, so each residual branch starts "
        "as the zero function: look for the branch convolutions missing from the log-scale profile, because at "
        "step 0 their gradient is exactly zero and only the gammas, the stem, the projections and the fc move on "
        "the first step. "
        "Goyal et al. 2017 use this initialization so that the network starts out behaving like a shallower one, "
        "which helps large-batch training."
    ),
}

# Progress callback of long analyses: (done, total, message, partial result so far).
Progress = Callable[[int, int, str, Any], None]


# --------------------------------------------------------------------------------------------
# Inputs and validation
# --------------------------------------------------------------------------------------------


def check_depth(depth: Any) -> int:
    """`depth` as an int if it is a CIFAR ResNet depth this module can sweep, else GradientError."""
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise GradientError(f"depth {depth!r}: must be a whole number of the form 6n+2 (8, 14, 20, ..., 110)")
    if depth < MIN_DEPTH:
        raise GradientError(f"depth {depth}: the smallest CIFAR ResNet has {MIN_DEPTH} layers (one block per stage)")
    if depth > MAX_DEPTH:
        raise GradientError(f"depth {depth}: above the maximum of {MAX_DEPTH} for this analysis "
                            "(the plain net's gradients overflow float32 and one measurement takes minutes)")
    if (depth - 2) % 6:
        below = depth - (depth - 2) % 6
        above = below + 6
        near = f"{below} or {above}" if below >= MIN_DEPTH else f"{above}"
        raise GradientError(f"depth {depth}: CIFAR ResNets have depth 6n+2 (three stages of n two-conv blocks, "
                            f"plus the stem and the fc); the nearest are {near}")
    return depth


def cifar_config(depth: int, residual: bool = True, norm: str = "batch", num_classes: int = 10) -> ResNetConfig:
    """He et al. 2015's CIFAR ResNet (option A shortcuts) of `depth` layers, or its plain twin."""
    n = (check_depth(depth) - 2) // 6
    cfg = get_preset("resnet20").replace(stage_blocks=(n, n, n), norm=norm, num_classes=num_classes)
    return cfg if residual else cfg.plain_twin()


def twin_configs(cfg: ResNetConfig) -> tuple[ResNetConfig, ResNetConfig]:
    """(residual, plain) versions of `cfg`: whichever the user built, plus its twin."""
    if cfg.residual:
        return cfg, cfg.plain_twin()
    return cfg.residual_twin(), cfg


def config_label(cfg: ResNetConfig) -> str:
    """A short name for legends: "ResNet-20", "plain-56", "ResNet-20 (no BN)"."""
    name = f"{'ResNet' if cfg.residual else 'plain'}-{cfg.depth}"
    if cfg.preact:
        name = "pre-act " + name
    if cfg.norm == "none":
        name += " (no BN)"
    return name


def check_pair(a: ResNetConfig, b: ResNetConfig) -> None:
    """GradientError when two configs would compare a network with itself."""
    for name, cfg in (("first", a), ("second", b)):
        if not isinstance(cfg, ResNetConfig):
            raise GradientError(f"the {name} model must be a ResNetConfig, got {type(cfg).__name__}")
    if a == b:
        raise GradientError(f"nothing to compare: both sides are the same network ({config_label(a)}); "
                            "pick a plain and a residual net, or change depth or normalization on one side")


def random_batch(batch_size: int, image_size: int, num_classes: int, seed: int = 0,
                 in_channels: int = 3) -> tuple[Tensor, Tensor]:
    """A standard-normal image batch (what normalised inputs look like) and uniform random labels."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise GradientError(f"batch size {batch_size!r}: needs at least 2 images (BatchNorm in train mode "
                            "needs more than one value per channel)")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 8 <= image_size <= 512:
        raise GradientError(f"image size {image_size!r}: must be a whole number from 8 to 512 pixels")
    gen = torch.Generator().manual_seed(10_000 + int(seed))
    images = torch.randn(batch_size, in_channels, image_size, image_size, generator=gen)
    labels = torch.randint(0, num_classes, (batch_size,), generator=gen)
    return images, labels


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module) or not hasattr(model, "named_blocks"):
        raise GradientError(f"expected a ResNet built by resnet_core (with named_blocks()), got "
                            f"{type(model).__name__}")


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _check_batch(model: nn.Module, images: Any, labels: Any) -> tuple[Tensor, Tensor]:
    """Images/labels on the model's device, or GradientError naming the mismatch."""
    if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise GradientError(f"images must be a float N x C x H x W tensor (normalised), got {shape}")
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise GradientError(f"labels must be a 1-D tensor with one label per image ({images.shape[0]}), got {shape}")
    if images.shape[0] < 2:
        raise GradientError("give at least 2 images: BatchNorm in train mode needs more than one value per channel")
    cfg = getattr(model, "config", None)
    if isinstance(cfg, ResNetConfig):
        if images.shape[1] != cfg.in_channels:
            raise GradientError(f"the images have {images.shape[1]} channels but the model expects {cfg.in_channels}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= cfg.num_classes):
            raise GradientError(f"labels must lie in 0..{cfg.num_classes - 1} (the model has {cfg.num_classes} "
                                f"outputs); got {int(labels.min())}..{int(labels.max())}")
    device = _device_of(model)
    return images.to(device), labels.to(device=device, dtype=torch.long)


@contextlib.contextmanager
def _measuring(model: nn.Module, train: bool) -> Iterator[None]:
    """Put `model` in train/eval mode and give back every module's mode and every buffer afterwards.

    Train-mode BatchNorm updates its running statistics on each forward; a measurement must not
    change the model the user trained, so the buffers are copied and written back.
    """
    modes = {m: m.training for m in model.modules()}
    saved = {name: buf.detach().clone() for name, buf in model.named_buffers()}
    model.train(train)
    try:
        yield
    finally:
        with torch.no_grad():
            for name, buf in model.named_buffers():
                if name in saved:
                    buf.copy_(saved[name])
        for m, mode in modes.items():
            m.training = mode


# --------------------------------------------------------------------------------------------
# Gradient profile of one batch
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GradientProfile:
    """Gradient norms of one model on one batch, input to output.

    Attributes:
        conv_paths / conv_norms: every Conv2d weight in forward order and its gradient's L2 norm.
        on_shortcut: True for convolutions in a shortcut projection (not on the main path).
        block_paths / block_norms: every block and the L2 norm of the gradient at its output.
        loss: the cross-entropy of the batch.
        warnings: things a reader must know to interpret the numbers (zero-init).
    """

    conv_paths: tuple[str, ...]
    conv_norms: tuple[float, ...]
    on_shortcut: tuple[bool, ...]
    block_paths: tuple[str, ...]
    block_norms: tuple[float, ...]
    loss: float
    warnings: tuple[str, ...] = ()

    @property
    def first_conv(self) -> str:
        """The stem convolution that sees the image."""
        return self.conv_paths[0]

    @property
    def last_conv(self) -> str:
        """The last main-path convolution before the pooling and the fc."""
        return self.conv_paths[self._last_index]

    @property
    def _last_index(self) -> int:
        return max(i for i, s in enumerate(self.on_shortcut) if not s)

    @property
    def first_last_ratio(self) -> float:
        """Gradient norm of the first conv over that of the last (inf when the last is exactly 0)."""
        first, last = self.conv_norms[0], self.conv_norms[self._last_index]
        return first / last if last > 0 else math.inf


def zero_init_warning(model_or_config: nn.Module | ResNetConfig) -> str | None:
    """The warning to show when the residual branches start at zero, else None."""
    cfg = model_or_config if isinstance(model_or_config, ResNetConfig) else getattr(model_or_config, "config", None)
    if isinstance(cfg, ResNetConfig) and cfg.zero_init_residual:
        return ("zero_init_residual is on: the last BatchNorm gamma of every block is 0, so at step 0 every "
                "residual branch's convolutions get exactly zero gradient (they are missing from the log-scale "
                "profile); the stem, the gammas, the projections and the fc still learn.")
    return None


def gradient_norms(model: nn.Module, images: Tensor, labels: Tensor) -> GradientProfile:
    """Per-conv weight and per-block output gradient norms for one batch (see the module docstring).

    The model is measured in train mode and returned in the modes it had, with its BatchNorm
    statistics untouched and no `.grad` written.
    """
    _check_model(model)
    images, labels = _check_batch(model, images, labels)
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    block_paths = [path for path, _ in model.named_blocks()]
    outputs: dict[str, Tensor] = {}
    # Forward order, not registration order: a block's projection runs after its branch convs.
    conv_paths: list[str] = []
    handles = [block.register_forward_hook(lambda _m, _i, out, path=path: outputs.__setitem__(path, out))
               for path, block in model.named_blocks()]
    handles += [conv.register_forward_pre_hook(lambda _m, _i, name=name: conv_paths.append(name))
                for name, conv in convs.items()]
    frozen = [p for p in model.parameters() if not p.requires_grad]
    try:
        with _measuring(model, train=True):
            for p in frozen:  # frozen layers still have a gradient worth showing
                p.requires_grad_(True)
            with torch.enable_grad():
                loss = F.cross_entropy(model(images), labels)
                weights = [convs[p].weight for p in conv_paths]
                grads = torch.autograd.grad(loss, weights + [outputs[p] for p in block_paths])
    finally:
        for h in handles:
            h.remove()
        for p in frozen:
            p.requires_grad_(False)
    norms = torch.stack([g.detach().float().norm() for g in grads]).cpu().tolist()
    warning = zero_init_warning(model)
    return GradientProfile(
        conv_paths=tuple(conv_paths),
        conv_norms=tuple(norms[:len(conv_paths)]),
        on_shortcut=tuple(".downsample" in p for p in conv_paths),
        block_paths=tuple(block_paths),
        block_norms=tuple(norms[len(conv_paths):]),
        loss=float(loss.detach()),
        warnings=(warning,) if warning else (),
    )


# --------------------------------------------------------------------------------------------
# Bands over seeds, for a model and its plain twin
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """Mean, min and max over seeds of one norm per path."""

    paths: tuple[str, ...]
    mean: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def of(cls, paths: Sequence[str], runs: Sequence[Sequence[float]]) -> Band:
        columns = list(zip(*runs))
        return cls(tuple(paths), tuple(statistics.fmean(c) for c in columns),
                   tuple(min(c) for c in columns), tuple(max(c) for c in columns))


@dataclass(frozen=True)
class ProfileBands:
    """One network's gradient profile over several seeds."""

    label: str
    config: ResNetConfig
    convs: Band
    on_shortcut: tuple[bool, ...]
    blocks: Band
    ratios: tuple[float, ...]
    profiles: tuple[GradientProfile, ...]
    warnings: tuple[str, ...]

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios)


@dataclass(frozen=True)
class PairProfile:
    """Two networks (usually a ResNet and its plain twin) measured with the same seeds and batches."""

    a: ProfileBands
    b: ProfileBands
    seeds: tuple[int, ...]
    batch_size: int
    image_size: int


def _seeded_model(cfg: ResNetConfig, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(cfg)


def _batch_for(cfg: ResNetConfig, seed: int, batch_size: int, image_size: int,
               images: Tensor | None, labels: Tensor | None) -> tuple[Tensor, Tensor]:
    if images is None:
        return random_batch(batch_size, image_size, cfg.num_classes, seed, cfg.in_channels)
    if labels is None or len(labels) != len(images):
        raise GradientError("give one label per image, or no images at all to use a random batch")
    gen = torch.Generator().manual_seed(20_000 + seed)
    idx = torch.randperm(len(images), generator=gen)[:batch_size]
    return images[idx], labels[idx]


def profile_pair(a: ResNetConfig, b: ResNetConfig | None = None, seeds: Sequence[int] = (0, 1, 2),
                 batch_size: int = 32, image_size: int = 32, images: Tensor | None = None,
                 labels: Tensor | None = None) -> PairProfile:
    """Gradient profiles of `a` and `b` (default: `a`'s twin) over seeds: mean/min/max bands.

    For each seed both networks are initialised from that seed and measured on the same batch
    (random, or drawn from `images`/`labels`, which must be normalised floats).
    """
    if b is None:
        residual, plain = twin_configs(a)
        a, b = (residual, plain)
    check_pair(a, b)
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise GradientError("give at least one seed")
    sides = []
    for cfg in (a, b):
        profiles = []
        for seed in seeds:
            x, y = _batch_for(cfg, seed, batch_size, image_size, images, labels)
            profiles.append(gradient_norms(_seeded_model(cfg, seed), x, y))
        first = profiles[0]
        sides.append(ProfileBands(
            label=config_label(cfg), config=cfg,
            convs=Band.of(first.conv_paths, [p.conv_norms for p in profiles]), on_shortcut=first.on_shortcut,
            blocks=Band.of(first.block_paths, [p.block_norms for p in profiles]),
            ratios=tuple(p.first_last_ratio for p in profiles), profiles=tuple(profiles), warnings=first.warnings,
        ))
    return PairProfile(sides[0], sides[1], seeds, batch_size, image_size)


# --------------------------------------------------------------------------------------------
# Depth sweep
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPoint:
    depth: int
    residual: bool
    norm: str
    seed: int
    ratio: float
    first_norm: float
    last_norm: float
    loss: float


@dataclass
class SweepResult:
    """Points of a depth sweep; filled in as the sweep runs (a page may read it meanwhile)."""

    depths: tuple[int, ...]
    norms: tuple[str, ...]
    seeds: tuple[int, ...]
    batch_size: int
    image_size: int
    points: list[SweepPoint] = field(default_factory=list)
    stopped: bool = False
    seconds: float = 0.0

    def series(self, residual: bool, norm: str = "batch") -> list[tuple[int, float, float, float]]:
        """(depth, median, min, max) of the first/last ratio over seeds, for depths measured so far."""
        out = []
        points = list(self.points)
        for depth in self.depths:
            ratios = [p.ratio for p in points if p.depth == depth and p.residual == residual and p.norm == norm]
            if ratios:
                out.append((depth, statistics.median(ratios), min(ratios), max(ratios)))
        return out


def check_depths(depths: Sequence[Any]) -> tuple[int, ...]:
    """Sorted unique valid depths, or GradientError for the first bad one."""
    if isinstance(depths, (str, bytes)) or not isinstance(depths, Sequence) or not depths:
        raise GradientError("give at least one depth of the form 6n+2, e.g. 20, 56, 110")
    return tuple(sorted({check_depth(d) for d in depths}))


def parse_depths(text: str) -> list[int]:
    """Comma-separated depths typed by a person (e.g. "74, 164"); GradientError names the first bad one."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise GradientError(f"depth {part!r} is not a whole number; type depths like 62, 74") from None
        out.append(check_depth(value))
    return out


def depth_sweep(depths: Sequence[int] = SWEEP_DEPTHS, norms: Sequence[str] = ("batch",),
                seeds: Sequence[int] = (0,), batch_size: int = 32, image_size: int = 32,
                progress: Progress | None = None, stop: threading.Event | None = None,
                result: SweepResult | None = None) -> SweepResult:
    """First/last gradient-norm ratio at initialization against depth, plain vs residual.

    For every depth, norm and seed, a CIFAR ResNet and its plain twin are built from the seed and
    measured on the same random batch with random labels. `progress(done, total, message, result)`
    is called after each network; setting `stop` ends the sweep after the network in flight, with
    `result.stopped` True and the points measured so far. Pass `result` to have it filled in place.
    """
    depths = check_depths(depths)
    norms = tuple(norms)
    for norm in norms:
        if norm not in ("batch", "none"):
            raise GradientError(f"normalization {norm!r}: choose 'batch' or 'none'")
    seeds = tuple(int(s) for s in seeds) or (0,)
    if result is None:
        result = SweepResult(depths, norms, seeds, batch_size, image_size)
    jobs = [(norm, depth, seed, residual) for norm in norms for depth in depths for seed in seeds
            for residual in (False, True)]
    start = time.perf_counter()
    for done, (norm, depth, seed, residual) in enumerate(jobs):
        if stop is not None and stop.is_set():
            result.stopped = True
            break
        cfg = cifar_config(depth, residual, norm)
        x, y = random_batch(batch_size, image_size, cfg.num_classes, seed)
        profile = gradient_norms(_seeded_model(cfg, seed), x, y)
        first, last = profile.conv_norms[0], profile.conv_norms[profile._last_index]
        result.points.append(SweepPoint(depth, residual, norm, seed, profile.first_last_ratio, first, last,
                                        profile.loss))
        result.seconds = time.perf_counter() - start
        if progress is not None:
            progress(done + 1, len(jobs), f"{config_label(cfg)} (seed {seed}): ratio {profile.first_last_ratio:.3g}",
                     result)
    result.seconds = time.perf_counter() - start
    return result


# --------------------------------------------------------------------------------------------
# Background jobs for pages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSnapshot:
    status: str  # "idle", "running", "finished", "stopped", "failed"
    done: int
    total: int
    message: str
    result: Any
    error: str | None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class BackgroundJob(OneShotWorker):
    """Runs `work(progress, stop)` in a daemon thread; a page polls `snapshot()` and may `stop()`.

    `work` must call `progress(done, total, message, partial_result)` now and then and return its
    result; it makes no Streamlit calls. Errors of type GradientError/ConfigError become the
    snapshot's `error` message; anything else too, prefixed with its type, never a traceback.
    """

    def __init__(self, work: Callable[[Progress, threading.Event], Any], name: str = "analysis"):
        super().__init__(f"resnet-{name}")
        self._work, self.name = work, name
        self._state: dict[str, Any] = {"status": "idle", "done": 0, "total": 0, "message": "", "result": None,
                                       "error": None}

    def start(self) -> BackgroundJob:
        self._start_once(lambda _alive: GradientError(f"this {self.name} has already been started; make a new one"),
                         lambda: self._state.update(status="running"))
        return self

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return JobSnapshot(**self._state)

    def _progress(self, done: int, total: int, message: str, partial: Any = None) -> None:
        with self._lock:
            self._state.update(done=done, total=total, message=message)
            if partial is not None:
                self._state["result"] = partial

    def _main(self) -> None:
        try:
            result = self._work(self._progress, self._stop)
            status = "stopped" if self._stop.is_set() else "finished"
            error = None
        except (GradientError, ConfigError) as exc:
            result, status, error = None, "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a failed analysis must not take the server down
            result, status, error = None, "failed", f"{type(exc).__name__}: {exc}"
        with self._lock:
            if result is not None:
                self._state["result"] = result
            self._state.update(status=status, error=error)


def sweep_job(depths: Sequence[int] = SWEEP_DEPTHS, norms: Sequence[str] = ("batch",), seeds: Sequence[int] = (0,),
              batch_size: int = 32, image_size: int = 32) -> BackgroundJob:
    """A not-yet-started depth sweep in the background (validated now, so bad input fails here)."""
    depths = check_depths(depths)
    random_batch(batch_size, image_size, 10)  # validates the sizes before a thread exists

    def work(progress: Progress, stop: threading.Event) -> SweepResult:
        return depth_sweep(depths, norms, seeds, batch_size, image_size, progress, stop)

    return BackgroundJob(work, "depth sweep")


# --------------------------------------------------------------------------------------------
# Block-output gradients during training (heatmap)
# --------------------------------------------------------------------------------------------


class BlockGradRecorder:
    """Records each block's output-gradient norm every `every` training steps, through hooks.

    Attach it to a model before training; it needs nothing from the trainer. A forward pre-hook on
    the model counts training forward passes (train mode with grad enabled: the trainer's steps;
    validation runs in eval mode without grad and is not counted), and on step 1 and every
    `every`-th step the blocks' outputs get tensor hooks that store their gradient's norm during
    backward. The norm stays a device tensor until `snapshot()` (no host sync in the loop). Cost:
    one norm per block on recorded steps only. This assumes one forward per optimizer step, as
    `resnet_core.train.Trainer` does.
    """

    def __init__(self, model: nn.Module, every: int = 10):
        _check_model(model)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise GradientError(f"record every {every!r} steps: must be a whole number >= 1")
        self.every = every
        self.block_paths = tuple(path for path, _ in model.named_blocks())
        self._model = model
        self._lock = threading.Lock()
        self._count = 0
        self._armed = False
        self._rows: dict[int, list[Tensor | None]] = {}
        self._handles = [model.register_forward_pre_hook(self._on_model_forward)]
        self._handles += [block.register_forward_hook(self._block_hook(i)) for i, (_, block)
                          in enumerate(model.named_blocks())]

    def _on_model_forward(self, module: nn.Module, _inputs: Any) -> None:
        if module.training and torch.is_grad_enabled():
            self._count += 1
            self._armed = self._count == 1 or self._count % self.every == 0
        else:
            self._armed = False

    def _block_hook(self, index: int) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
            if not self._armed or not output.requires_grad:
                return
            step = self._count
            with self._lock:
                row = self._rows.setdefault(step, [None] * len(self.block_paths))

            def store(grad: Tensor) -> None:
                norm = grad.detach().float().norm()
                with self._lock:  # backward may run on an autograd device thread
                    row[index] = norm

            output.register_hook(store)
        return hook

    def remove(self) -> None:
        """Detach every hook (the model then trains as if never recorded)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def snapshot(self) -> tuple[tuple[str, ...], list[int], list[list[float]]]:
        """(block paths, recorded steps, matrix[block][step]) of complete rows only."""
        with self._lock:
            items = sorted(self._rows.items())
        steps, columns = [], []
        for step, row in items:
            if all(v is not None for v in row):
                steps.append(step)
                columns.append(torch.stack(row).cpu().tolist())  # type: ignore[arg-type]
        matrix = [[col[i] for col in columns] for i in range(len(self.block_paths))]
        return self.block_paths, steps, matrix


# --------------------------------------------------------------------------------------------
# Side-by-side training (He et al. 2015, Figure 6 in miniature)
# --------------------------------------------------------------------------------------------


@dataclass
class ComparisonRun:
    name: str
    config: ResNetConfig
    model: nn.Module
    trainer: Any  # resnet_core.train.Trainer
    recorder: BlockGradRecorder


class SideBySide:
    """Plain-N and ResNet-N (CIFAR family) for each depth, trained with the same data, seed and recipe.

    Each run has its own Trainer (background thread) and a BlockGradRecorder on its model. All
    runs start together so the page can overlay their curves live; `stop()` stops all of them.
    """

    def __init__(self, data: Any, train_config: Any, depths: Sequence[int] = (20, 56), seed: int = 0,
                 record_every: int = 10, norm: str = "batch"):
        from .train import Trainer, build_model_for  # lazy: train.py pulls in the data stack

        if isinstance(depths, Sequence) and not isinstance(depths, str) and len(set(depths)) < len(depths):
            raise GradientError(f"nothing to compare: depths {list(depths)} repeat a depth; pick different depths "
                                "(e.g. 20 and 56)")
        depths = check_depths(depths)
        num_classes = len(data.classes)
        self.data = data
        self.depths = depths
        self.runs: list[ComparisonRun] = []
        for depth in depths:
            for residual in (False, True):
                cfg = cifar_config(depth, residual, norm, num_classes)
                # The same seed for both twins: with option-A shortcuts they start from identical weights.
                model = build_model_for(cfg, num_classes, seed)
                recorder = BlockGradRecorder(model, record_every)
                self.runs.append(ComparisonRun(config_label(cfg), cfg, model,
                                               Trainer(model, data, train_config), recorder))

    def start(self) -> SideBySide:
        for run in self.runs:
            run.trainer.start()
        return self

    def stop(self) -> None:
        for run in self.runs:
            run.trainer.stop()

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.perf_counter() + timeout
        for run in self.runs:
            left = None if deadline is None else max(0.0, deadline - time.perf_counter())
            if not run.trainer.join(left):
                return False
        return True

    @property
    def running(self) -> bool:
        return any(run.trainer.is_running for run in self.runs)

    def curves(self) -> dict[str, dict[str, Any]]:
        """Per run: step/train_loss for every step, val_step/val_acc/val_loss per epoch, and status."""
        out: dict[str, dict[str, Any]] = {}
        for run in self.runs:
            snap = run.trainer.snapshot()
            steps = snap.steps
            epochs = snap.validated_epochs
            out[run.name] = {
                "step": [e["step"] for e in steps], "train_loss": [e["train_loss"] for e in steps],
                "val_step": [e["step"] for e in epochs], "val_acc": [e["val_acc"] for e in epochs],
                "val_loss": [e["val_loss"] for e in epochs],
                "status": snap.status, "message": snap.message, "progress": snap.progress,
            }
        return out

    def heatmaps(self, depth: int) -> tuple[dict[str, tuple], tuple[float, float] | None]:
        """Per run of `depth`: its recorder's (block paths, steps, gradient-norm matrix), and one log10
        colour range shared by them (None until a step was recorded), so the maps compare at a glance."""
        snaps = {run.name: run.recorder.snapshot() for run in self.runs if run.config.depth == depth}
        values = [v for _, _, matrix in snaps.values() for row in matrix for v in row if v > 0]
        if not values:
            return snaps, None
        return snaps, (math.log10(min(values)), math.log10(max(values)))

    def lesion_job(self, depth: int, n_images: int = 500) -> BackgroundJob:
        """The lesion study of the trained plain and residual nets of `depth`, on the first `n_images`
        validation images (500 resolve percent-level differences)."""
        val = self.data.val
        images = normalize(val.images[:n_images], self.data.mean, self.data.std)
        return lesion_job([run.model for run in self.runs if run.config.depth == depth], images,
                          val.labels[:n_images])

    def run(self, name: str) -> ComparisonRun:
        for run in self.runs:
            if run.name == name:
                return run
        raise GradientError(f"no run named {name!r}; the runs are {[r.name for r in self.runs]}")


# --------------------------------------------------------------------------------------------
# Lesion study (Veit et al. 2016)
# --------------------------------------------------------------------------------------------


def _is_preact(block: nn.Module) -> bool:
    return isinstance(block, (PreActBasicBlock, PreActBottleneck))


def _keeps_shape(block: nn.Module) -> bool:
    """Whether the block's output has its input's shape (so a plain net can skip it)."""
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    strided = any(s != 1 for conv in convs for s in conv.stride)
    return not strided and convs[0].in_channels == convs[-1].out_channels


class _Lesioned(nn.Module):
    """Stands in for a deleted block: the shortcut path only (residual) or the identity (plain)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: Tensor) -> Tensor:
        b = self.block
        if not b.residual:
            return x
        if _is_preact(b):
            return x if b.downsample is None else b.downsample(b.relu1(b.bn1(x)))
        shortcut = x if b.downsample is None else b.downsample(x)
        final_relu = b.relu3 if hasattr(b, "relu3") else b.relu2
        return final_relu(shortcut)


@dataclass(frozen=True)
class LesionEntry:
    path: str
    accuracy: float | None  # None: this block cannot be deleted (plain block that changes the shape)
    note: str = ""


@dataclass(frozen=True)
class LesionResult:
    label: str
    baseline: float
    entries: tuple[LesionEntry, ...]
    chance: float

    def rows(self) -> list[tuple[str, float | None]]:
        return [(e.path, e.accuracy) for e in self.entries]

    @property
    def near_chance(self) -> bool:
        """Intact accuracy within 10 points of chance: too little learned for deletions to mean much."""
        return self.baseline < self.chance + 0.1

    @property
    def mean_drop(self) -> float:
        """Mean accuracy lost over the blocks that could be deleted."""
        drops = [self.baseline - e.accuracy for e in self.entries if e.accuracy is not None]
        return statistics.fmean(drops) if drops else math.nan


@torch.no_grad()
def _accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int) -> float:
    correct = 0
    for start in range(0, len(labels), batch_size):
        logits = model(images[start:start + batch_size])
        correct += int((logits.argmax(1) == labels[start:start + batch_size]).sum())
    return correct / len(labels)


def lesion_study(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256,
                 progress: Progress | None = None, stop: threading.Event | None = None) -> LesionResult:
    """Test accuracy with each block deleted in turn, plus the intact baseline (eval mode).

    `images` are normalised floats. The model is restored exactly (same modules, same modes).
    `progress(done, total, message, None)` follows each evaluation; `stop` ends the study early
    (the blocks not yet measured are left out of the result).
    """
    _check_model(model)
    images, labels = _check_batch(model, images, labels)
    cfg = getattr(model, "config", None)
    classes = cfg.num_classes if isinstance(cfg, ResNetConfig) else int(labels.max()) + 1
    blocks = list(model.named_blocks())
    entries = []
    with _measuring(model, train=False):
        baseline = _accuracy(model, images, labels, batch_size)
        for done, (path, block) in enumerate(blocks, start=1):
            if stop is not None and stop.is_set():
                break
            if not block.residual and not _keeps_shape(block):
                entries.append(LesionEntry(path, None, "n/a: changes the shape, a plain net cannot skip it"))
            else:
                stage_name, index = path.rsplit(".", 1)
                stage = getattr(model, stage_name)
                stage[int(index)] = _Lesioned(block)
                try:
                    entries.append(LesionEntry(path, _accuracy(model, images, labels, batch_size)))
                finally:
                    stage[int(index)] = block
            if progress is not None:
                progress(done, len(blocks), f"deleted {path}", None)
    label = config_label(cfg) if isinstance(cfg, ResNetConfig) else type(model).__name__
    return LesionResult(label, baseline, tuple(entries), 1.0 / classes)


def lesion_job(models: Sequence[nn.Module], images: Tensor, labels: Tensor, batch_size: int = 256) -> BackgroundJob:
    """Lesion studies of several trained models, one after the other, in the background.

    The result is the list of LesionResult in the order of `models`. Do not train the models meanwhile:
    the study swaps blocks in and out of them.
    """
    models = list(models)
    for model in models:
        _check_model(model)
    if not models:
        raise GradientError("give at least one trained model for the lesion study")

    def work(progress: Progress, stop: threading.Event) -> list[LesionResult]:
        results: list[LesionResult] = []
        per_model = [len(list(m.named_blocks())) for m in models]
        total = sum(per_model)
        for i, model in enumerate(models):
            offset = sum(per_model[:i])

            def report(done: int, _total: int, message: str, _partial: Any, offset: int = offset) -> None:
                progress(offset + done, total, message, list(results))

            results.append(lesion_study(model, images, labels, batch_size, report, stop))
            if stop.is_set():
                break
        return results

    return BackgroundJob(work, "lesion study")


# --------------------------------------------------------------------------------------------
# Gradient shattering (Balduzzi et al. 2017)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShatteringProfile:
    """Input-gradient correlations along a line between two inputs.

    Attributes:
        neighbour: correlation between gradients at points i and i+1, for every i.
        lags / autocorrelation: mean correlation between points i and i+lag.
    """

    label: str
    n_points: int
    neighbour: tuple[float, ...]
    lags: tuple[int, ...]
    autocorrelation: tuple[float, ...]
    depth: int = 0
    seed: int = 0

    @property
    def mean_neighbour(self) -> float:
        return statistics.fmean(self.neighbour)


def _line(x0: Tensor, x1: Tensor, n_points: int) -> Tensor:
    t = torch.linspace(0, 1, n_points, device=x0.device).view(-1, *([1] * (x0.dim())))
    return (1 - t) * x0.unsqueeze(0) + t * x1.unsqueeze(0)


def gradient_shattering(model: nn.Module, x0: Tensor, x1: Tensor, n_points: int = 64, seed: int = 0,
                        max_lag: int | None = None) -> ShatteringProfile:
    """Correlation of input-gradients at neighbouring points of the segment x0 -> x1.

    The scalar differentiated is r . logits with a fixed random unit vector r (from `seed`), summed
    over the points, which form one train-mode batch. Each gradient is flattened, centred and
    normalised; the Pearson correlation of points i and i+lag is then a dot product.
    """
    _check_model(model)
    if not (isinstance(x0, Tensor) and isinstance(x1, Tensor)) or x0.shape != x1.shape or x0.dim() != 3:
        raise GradientError("give two images of the same C x H x W shape for the ends of the line")
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 4:
        raise GradientError(f"points on the line: {n_points!r} must be a whole number >= 4")
    max_lag = max(1, min(max_lag or n_points // 4, n_points - 1))
    device = _device_of(model)
    x = _line(x0.float().to(device), x1.float().to(device), n_points).requires_grad_(True)
    with _measuring(model, train=True), torch.enable_grad():
        logits = model(x)
        gen = torch.Generator().manual_seed(30_000 + seed)
        r = torch.randn(logits.shape[1], generator=gen).to(device)
        (g,) = torch.autograd.grad((logits @ (r / r.norm())).sum(), x)
    g = g.detach().flatten(1).double()
    g = g - g.mean(1, keepdim=True)
    g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-300)
    lags = tuple(range(1, max_lag + 1))
    auto = tuple(float((g[:-k] * g[k:]).sum(1).mean()) for k in lags)
    neighbour = tuple((g[:-1] * g[1:]).sum(1).cpu().tolist())
    cfg = getattr(model, "config", None)
    label = config_label(cfg) if isinstance(cfg, ResNetConfig) else type(model).__name__
    depth = cfg.depth if isinstance(cfg, ResNetConfig) else 0
    return ShatteringProfile(label, n_points, neighbour, lags, auto, depth, seed)


@dataclass
class ShatteringSweep:
    depths: tuple[int, ...]
    seeds: tuple[int, ...]
    n_points: int
    image_size: int
    points: list[tuple[int, bool, int, float]] = field(default_factory=list)  # depth, residual, seed, mean corr
    profiles: list[ShatteringProfile] = field(default_factory=list)
    stopped: bool = False

    def deepest_profiles(self) -> list[ShatteringProfile]:
        """The first seed's profiles at the deepest depth measured so far (plain, then residual)."""
        profiles = list(self.profiles)
        if not profiles:
            return []
        depth = max(p.depth for p in profiles)
        seed = min(p.seed for p in profiles if p.depth == depth)
        return [p for p in profiles if p.depth == depth and p.seed == seed]

    def series(self, residual: bool) -> list[tuple[int, float, float, float]]:
        """(depth, mean, min, max) over seeds of the mean neighbour correlation."""
        out = []
        points = list(self.points)
        for depth in self.depths:
            vals = [c for d, r, _, c in points if d == depth and r == residual]
            if vals:
                out.append((depth, statistics.fmean(vals), min(vals), max(vals)))
        return out


def shattering_sweep(depths: Sequence[int] = (8, 20, 56), seeds: Sequence[int] = (0,), n_points: int = 64,
                     image_size: int = 16, progress: Progress | None = None,
                     stop: threading.Event | None = None, norm: str = "batch") -> ShatteringSweep:
    """Mean neighbour correlation of input-gradients against depth, plain vs residual, at initialization.

    The line joins two standard-normal images drawn from the seed; both twins see the same line.
    """
    depths = check_depths(depths)
    random_batch(2, image_size, 10)
    seeds = tuple(int(s) for s in seeds) or (0,)
    result = ShatteringSweep(depths, seeds, n_points, image_size)
    jobs = [(d, s, r) for d in depths for s in seeds for r in (False, True)]
    for done, (depth, seed, residual) in enumerate(jobs):
        if stop is not None and stop.is_set():
            result.stopped = True
            break
        cfg = cifar_config(depth, residual, norm)
        ends, _ = random_batch(2, image_size, 10, seed)
        prof = gradient_shattering(_seeded_model(cfg, seed), ends[0], ends[1], n_points, seed)
        result.points.append((depth, residual, seed, prof.mean_neighbour))
        result.profiles.append(prof)
        if progress is not None:
            progress(done + 1, len(jobs), f"{config_label(cfg)}: neighbour correlation {prof.mean_neighbour:.2f}",
                     result)
    return result


def shattering_job(depths: Sequence[int] = (8, 20, 56), seeds: Sequence[int] = (0,), n_points: int = 64,
                   image_size: int = 16) -> BackgroundJob:
    depths = check_depths(depths)
    random_batch(2, image_size, 10)

    def work(progress: Progress, stop: threading.Event) -> ShatteringSweep:
        return shattering_sweep(depths, seeds, n_points, image_size, progress, stop)

    return BackgroundJob(work, "shattering sweep")


__all__ = [
    "CAPTIONS",
    "MAX_DEPTH",
    "MIN_DEPTH",
    "SWEEP_DEPTHS",
    "BackgroundJob",
    "Band",
    "BlockGradRecorder",
    "ComparisonRun",
    "GradientError",
    "GradientProfile",
    "JobSnapshot",
    "LesionEntry",
    "LesionResult",
    "PairProfile",
    "ProfileBands",
    "ShatteringProfile",
    "ShatteringSweep",
    "SideBySide",
    "SweepPoint",
    "SweepResult",
    "check_depth",
    "check_depths",
    "check_pair",
    "cifar_config",
    "config_label",
    "depth_sweep",
    "gradient_norms",
    "gradient_shattering",
    "lesion_job",
    "lesion_study",
    "parse_depths",
    "profile_pair",
    "random_batch",
    "shattering_job",
    "shattering_sweep",
    "sweep_job",
    "twin_configs",
    "zero_init_warning",
]
