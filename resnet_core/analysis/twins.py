"""Side-by-side training of plain and residual CIFAR nets (He et al. 2015, Figure 6 in miniature)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..data.transforms import normalize
from ..jobs import BackgroundJob
from ..model.config import ResNetConfig
from ..model.model import build_seeded
from ..train.trainer import Trainer
from .common import GradientError, check_depths, cifar_config, config_label
from .lesion import lesion_job
from .recorder import BlockGradRecorder


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
                model = build_seeded(cfg, seed, num_classes)
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
        """Per run: step/train_loss for every step, val_step/val_acc/val_loss per epoch, and status (a Status)."""
        out: dict[str, dict[str, Any]] = {}
        for run in self.runs:
            snap = run.trainer.snapshot()
            steps = snap.steps
            epochs = snap.validated_epochs
            out[run.name] = {
                "step": [e.step for e in steps], "train_loss": [e.train_loss for e in steps],
                "val_step": [e.step for e in epochs], "val_acc": [e.val_acc for e in epochs],
                "val_loss": [e.val_loss for e in epochs],
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
