"""What every analysis shares: CIFAR nets by depth, labels, checked inputs, a measuring context."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..device import device_of
from ..model.config import ResNetConfig, get_preset


class GradientError(ValueError):
    """An analysis cannot run on what it was given; the message says what is wrong and what to do."""


# CIFAR family depths swept by default (He et al. 2015 used 20, 32, 44, 56, 110).
SWEEP_DEPTHS: tuple[int, ...] = (8, 14, 20, 32, 44, 56, 110)
MIN_DEPTH = 8
# Beyond ~300 layers a plain net's stem gradient heads for float32 overflow at initialization
# and one CPU measurement takes tens of seconds; 302 = 6 * 50 + 2.
MAX_DEPTH = 302




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


def check_model(model: Any) -> None:
    if not isinstance(model, nn.Module) or not hasattr(model, "named_blocks"):
        raise GradientError(f"expected a ResNet built by resnet_core (with named_blocks()), got "
                            f"{type(model).__name__}")


def check_batch(model: nn.Module, images: Any, labels: Any) -> tuple[Tensor, Tensor]:
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
    device = device_of(model)
    return images.to(device), labels.to(device=device, dtype=torch.long)


@contextlib.contextmanager
def measuring(model: nn.Module, train: bool) -> Iterator[None]:
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
