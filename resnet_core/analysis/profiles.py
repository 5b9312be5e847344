"""Gradient profiles: per-conv and per-block gradient norms of one batch; bands over seeds for a net and its twin."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model.config import ResNetConfig
from ..model.model import build_seeded
from .common import (
    GradientError,
    check_batch,
    check_model,
    check_pair,
    config_label,
    measuring,
    random_batch,
    twin_configs,
)


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
    check_model(model)
    images, labels = check_batch(model, images, labels)
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
        with measuring(model, train=True):
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
            profiles.append(gradient_norms(build_seeded(cfg, seed), x, y))
        first = profiles[0]
        sides.append(ProfileBands(
            label=config_label(cfg), config=cfg,
            convs=Band.of(first.conv_paths, [p.conv_norms for p in profiles]), on_shortcut=first.on_shortcut,
            blocks=Band.of(first.block_paths, [p.block_norms for p in profiles]),
            ratios=tuple(p.first_last_ratio for p in profiles), profiles=tuple(profiles), warnings=first.warnings,
        ))
    return PairProfile(sides[0], sides[1], seeds, batch_size, image_size)
