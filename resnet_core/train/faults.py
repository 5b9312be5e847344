"""Training faults told plainly: configurations refused before they start, memory errors and BatchNorm errors
turned into what to change."""

from __future__ import annotations

import errno
import re

import torch
from torch import nn

from ..model.config import ResNetConfig
from ..model.model import build_model

BN_ERROR = "Expected more than 1 value per channel"
_ALLOC = re.compile(r"tried to allocate ([0-9.]+) ?(bytes|[KMGT]i?B)", re.IGNORECASE)
_OOM_TEXTS = ("out of memory", "can't allocate memory", "cannot allocate memory", "defaultcpuallocator",
              "failed to allocate")


def smallest_bn_map(cfg: ResNetConfig, image_size: tuple[int, int], in_channels: int | None = None
                    ) -> tuple[str, int, int] | None:
    """(name, height, width) of the BatchNorm layer that sees the smallest feature map when `cfg` is fed
    images of `image_size`; None when the model has no BatchNorm. Measured on the meta device: no memory,
    no compute, whatever the model's size."""
    with torch.device("meta"):
        model = build_model(cfg)
    seen: list[tuple[int, str, int, int]] = []
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            hooks.append(module.register_forward_hook(
                lambda m, inputs, out, name=name: seen.append(
                    (int(inputs[0].shape[2:].numel()), name, *map(int, inputs[0].shape[2:4])))))
    model.eval()
    with torch.no_grad():
        model(torch.empty(1, in_channels or cfg.in_channels, *image_size, device="meta"))
    for hook in hooks:
        hook.remove()
    if not seen:
        return None
    _, name, h, w = min(seen)
    return name, h, w


def untrainable_reason(cfg: ResNetConfig, image_size: tuple[int, int], batch_per_process: int) -> str | None:
    """Why a model built from `cfg` cannot train on batches of `batch_per_process` images of `image_size`
    (BatchNorm in training mode needs more than one value per channel: batch x height x width > 1), or None."""
    try:
        smallest = smallest_bn_map(cfg, image_size)
    except (RuntimeError, ValueError):
        return None  # the image is too small for the model's downsampling: the forward pass says so itself
    if smallest is None:
        return None
    name, h, w = smallest
    if batch_per_process * h * w > 1:
        return None
    return (f"batch size {batch_per_process} cannot train this model: at {name} the feature map is {h}x{w}, so "
            f"BatchNorm would see a single value per channel and cannot normalise it. Use a batch size of 2 or "
            f"more, larger images, or a model that downsamples less")


def is_out_of_memory(exc: BaseException) -> bool:
    """A CPU, CUDA or MPS allocation failure, whatever its wording."""
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(t in text for t in _OOM_TEXTS)


def out_of_memory_message(exc: BaseException, device: object, batch_size: int, image_size: int | None) -> str:
    """The friendly message of a memory error: where, how much was asked, and the three things to lower."""
    found = _ALLOC.search(str(exc))
    asked = ""
    if found:
        amount, unit = found.groups()
        if unit == "bytes":
            amount, unit = f"{float(amount) / 1024**3:.1f}", "GiB"
        asked = f" (it tried to allocate {amount} {unit})"
    where = str(device) if device is not None else "this machine"
    size = f", image size {image_size}" if image_size else ""
    other = "train on a GPU" if str(device).startswith("cpu") else "train on the CPU"
    return (f"out of memory on {where} with batch size {batch_size}{size}{asked}: lower the batch size, the image "
            f"size or the model's size (fewer or narrower layers), or {other}")


def friendly_failure(exc: BaseException, device: object, batch_size: int, image_size: int | None) -> str:
    """The message of a training that raised `exc`: memory and BatchNorm errors say what to change."""
    if is_out_of_memory(exc):
        return out_of_memory_message(exc, device, batch_size, image_size)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return ("disk full: the disk holding the run folder has no space left, so the run ended; its config.json "
                "and its last whole epoch's checkpoint are intact. Free some space (remove old runs) and start again")
    if BN_ERROR in str(exc):
        return (f"batch size {batch_size} cannot train this model: one of its BatchNorm layers got a single value "
                "per channel. Use a batch size of 2 or more, or larger images")
    return f"training failed: {type(exc).__name__}: {exc}"


__all__ = ["friendly_failure", "is_out_of_memory", "out_of_memory_message", "smallest_bn_map",
           "untrainable_reason"]
