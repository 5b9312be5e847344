"""The lesion study (Veit et al. 2016): delete one block at test time and measure accuracy."""

from __future__ import annotations

import math
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data.containers import Progress
from ..jobs import BackgroundJob
from ..model.blocks import PreActBasicBlock, PreActBottleneck
from ..model.config import ResNetConfig
from .common import GradientError, check_batch, check_model, config_label, measuring


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
    check_model(model)
    images, labels = check_batch(model, images, labels)
    cfg = getattr(model, "config", None)
    classes = cfg.num_classes if isinstance(cfg, ResNetConfig) else int(labels.max()) + 1
    blocks = list(model.named_blocks())
    entries = []
    with measuring(model, train=False):
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
        check_model(model)
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
