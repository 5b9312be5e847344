"""The lesion study (Veit et al. 2016): delete one block at test time and measure accuracy."""

from __future__ import annotations

import math
import statistics
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..background import BackgroundJob
from ..data.containers import ImageSet, Progress
from ..data.transforms import normalize
from ..model.blocks import PreActBasicBlock, PreActBottleneck
from ..model.config import ResNetConfig
from ..stats import Comparison, Interval, mean_interval, paired
from .common import GradientError, check_batch, check_model, config_label, measuring

# A net within this many points of chance has learned too little for deleting its blocks to mean anything.
NEAR_CHANCE_MARGIN = 0.1
LESION_IMAGES = 500  # validation images per study: enough to resolve percent-level differences
# Veit et al. 2016 (Fig. 3a, ResNet-110 on CIFAR-10): deleting one block "hardly changes" the error, a rise of a
# few points at most. A residual net losing less than this per deleted block here agrees with them; one whose
# whole interval lies above it disagrees.
HARDLY = 0.05


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
    correct: tuple[bool, ...] = ()  # per image, right with this block deleted (empty: not recorded)


@dataclass(frozen=True)
class LesionResult:
    label: str
    baseline: float
    entries: tuple[LesionEntry, ...]
    chance: float
    intact: tuple[bool, ...] = ()  # per image, right with every block in place (empty: not recorded)

    @property
    def image_drops(self) -> list[float]:
        """Per image: what one deletion costs it on average (1 if the intact net gets it right, minus the share of
        the deletable blocks whose deletion leaves it right). Their mean is `mean_drop`; empty when not recorded."""
        measured = [e.correct for e in self.entries if e.accuracy is not None]
        if not self.intact or not measured or any(len(c) != len(self.intact) for c in measured):
            return []
        return [float(ok) - statistics.fmean(float(c[i]) for c in measured) for i, ok in enumerate(self.intact)]

    @property
    def drop_interval(self) -> Interval | None:
        """The mean accuracy lost per deleted block with its 95% interval over the images (None: not recorded)."""
        drops = self.image_drops
        return mean_interval(drops) if drops else None

    def rows(self) -> list[tuple[str, float | None]]:
        return [(e.path, e.accuracy) for e in self.entries]

    @property
    def near_chance(self) -> bool:
        """Intact accuracy within 10 points of chance: too little learned for deletions to mean much."""
        return self.baseline < self.chance + NEAR_CHANCE_MARGIN

    @property
    def drops(self) -> list[tuple[str, float]]:
        """(block, accuracy lost) for every block that could be deleted."""
        return [(e.path, self.baseline - e.accuracy) for e in self.entries if e.accuracy is not None]

    @property
    def mean_drop(self) -> float:
        """Mean accuracy lost over the blocks that could be deleted."""
        drops = [d for _, d in self.drops]
        return statistics.fmean(drops) if drops else math.nan

    @property
    def worst(self) -> tuple[str, float] | None:
        """The block whose deletion costs the most, and what it costs."""
        return max(self.drops, key=lambda row: row[1], default=None)


def lesion_comparison(a: LesionResult, b: LesionResult) -> Comparison | None:
    """a's loss per deleted block against b's, image by image on the same images (None: not recorded, or not the
    same images)."""
    da, db = a.image_drops, b.image_drops
    return paired(da, db) if da and db and len(da) == len(db) else None


def veit_agreement(result: LesionResult) -> str | None:
    """Whether a residual net's loss per deleted block agrees with Veit et al.'s "hardly changes its error":
    "agrees" (the whole interval below HARDLY), "disagrees" (above it) or "undecided"; None: not recorded."""
    interval = result.drop_interval
    if interval is None:
        return None
    if interval.below(HARDLY):
        return "agrees"
    return "disagrees" if interval.above(HARDLY) else "undecided"


def lesion_refusal(accuracies: Mapping[str, float | None], num_classes: int) -> str | None:
    """Why a lesion study of nets with these (intact validation) accuracies would mean nothing, or None.

    A net near chance (within 10 points) has nothing left for a deletion to destroy: its study reads "0 points
    lost", which looks like robustness and is not. Said before the study runs, from the accuracies the trainings
    already measured.
    """
    chance = 1.0 / max(num_classes, 1)
    untrained = [label for label, acc in accuracies.items() if acc is None]
    low = {label: acc for label, acc in accuracies.items() if acc is not None and acc < chance + NEAR_CHANCE_MARGIN}
    if untrained:
        return (f"{' and '.join(untrained)} measured no validation accuracy yet, so there is no trained accuracy "
                "for a deletion to lose")
    if not low:
        return None
    names = " and ".join(f"{label} ({100 * acc:.1f}%)" for label, acc in low.items())
    verb = "is" if len(low) == 1 else "are"
    return (f"{names} {verb} within {100 * NEAR_CHANCE_MARGIN:.0f} points of chance ({100 * chance:.0f}%): such a "
            "net has learned too little for deleting its blocks to cost anything, so the study would read about "
            "0 points lost and say nothing about shortcuts")


def _blocks_in_order(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return list(model.named_blocks())


def _decomposes(model: nn.Module) -> bool:
    """A resnet_core ResNet: stem, then the blocks in order, then final norm and head."""
    return all(hasattr(model, name) for name in ("forward_stem", "stages", "forward_head", "final_bn", "final_relu"))


@torch.no_grad()
def _run(model: nn.Module, h: Tensor, blocks: Sequence[nn.Module], labels: Tensor | None, batch_size: int
         ) -> tuple[Tensor | None, list[bool]]:
    """Feed block inputs `h` through `blocks`; with `labels`: through the head too and say which answers are
    right, image by image, else return the output (the next block's input)."""
    outs, correct = [], []
    for start in range(0, len(h), batch_size):
        z = h[start:start + batch_size]
        for block in blocks:
            z = block(z)
        if labels is None:
            outs.append(z)
            continue
        logits = model.forward_head(model.final_relu(model.final_bn(z)))
        correct += (logits.argmax(1) == labels[start:start + batch_size]).tolist()
    return (torch.cat(outs) if outs else None), correct


@torch.no_grad()
def _correct(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int) -> list[bool]:
    correct: list[bool] = []
    for start in range(0, len(labels), batch_size):
        logits = model(images[start:start + batch_size])
        correct += (logits.argmax(1) == labels[start:start + batch_size]).tolist()
    return correct


def _accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int) -> float:
    return sum(_correct(model, images, labels, batch_size)) / len(labels)


def lesion_study(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256,
                 progress: Progress | None = None, stop: threading.Event | None = None) -> LesionResult:
    """Test accuracy with each block deleted in turn, plus the intact baseline (eval mode).

    `images` are normalised floats. The model is restored exactly (same modules, same modes).
    `progress(done, total, message, None)` follows each evaluation; `stop` ends the study early
    (the blocks not yet measured are left out of the result).

    Deleting block i leaves blocks 0..i-1 as they were, so their output is computed once: the study walks
    the blocks in order, keeping the intact input of the current block, and runs only block i's stand-in
    and the blocks after it (about half the work of re-running the whole net per deletion).
    """
    check_model(model)
    images, labels = check_batch(model, images, labels)
    cfg = getattr(model, "config", None)
    classes = cfg.num_classes if isinstance(cfg, ResNetConfig) else int(labels.max()) + 1
    named = _blocks_in_order(model)
    blocks = [block for _, block in named]
    entries = []
    n = len(labels)
    with measuring(model, train=False), torch.no_grad():
        intact = _correct(model, images, labels, batch_size)
        fast = _decomposes(model)
        h = None
        if fast:
            h = torch.cat([model.forward_stem(images[s:s + batch_size]) for s in range(0, n, batch_size)])
        for done, (path, block) in enumerate(named, start=1):
            if stop is not None and stop.is_set():
                break
            if not block.residual and not _keeps_shape(block):
                entries.append(LesionEntry(path, None, "n/a: changes the shape, a plain net cannot skip it"))
            elif fast:
                _, correct = _run(model, h, [_Lesioned(block), *blocks[done:]], labels, batch_size)
                entries.append(LesionEntry(path, sum(correct) / n, correct=tuple(correct)))
            else:  # any other net with named_blocks(): swap the block out and run it whole
                stage_name, index = path.rsplit(".", 1)
                stage = getattr(model, stage_name)
                stage[int(index)] = _Lesioned(block)
                try:
                    correct = _correct(model, images, labels, batch_size)
                    entries.append(LesionEntry(path, sum(correct) / n, correct=tuple(correct)))
                finally:
                    stage[int(index)] = block
            if fast and done < len(named):
                h, _ = _run(model, h, [block], None, batch_size)  # the intact input of the next block
            if progress is not None:
                progress(done, len(named), f"deleted {path}", None)
    label = config_label(cfg) if isinstance(cfg, ResNetConfig) else type(model).__name__
    return LesionResult(label, sum(intact) / n, tuple(entries), 1.0 / classes, tuple(intact))


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


def lesion_job_on(models: Sequence[nn.Module], val: ImageSet, mean: Sequence[float], std: Sequence[float],
                  n_images: int = LESION_IMAGES) -> BackgroundJob:
    """The lesion study of trained `models` on the first `n_images` of a validation set (uint8 images,
    normalised here with the models' training mean and std)."""
    images = normalize(val.images[:n_images], mean, std)
    return lesion_job(models, images, val.labels[:n_images])
