"""Side-by-side training of plain and residual CIFAR nets (He et al. 2015, Figure 6 in miniature).

The twins train as one job of the server's training queue: one worker process per net, started together,
each writing its run folder and its blocks' gradient norms (train.block_grads). SideBySide follows those
folders, so the page draws curves and heatmaps from disk and the lesion study loads the saved weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..background import BackgroundJob
from ..data.containers import DataBundle
from ..data.spec import DatasetSpec
from ..jobs.training_queue import JobView, TrainingQueue
from ..model.config import ResNetConfig
from ..status import Status
from ..train.block_grads import read_block_grads
from ..train.config import TrainConfig
from ..train.follow import RunFollower
from ..train.launch import TrainRequest
from ..train.run_reading import load_run_model
from ..train.runs import run_name
from ..train.schedule import RunPlan
from ..train.snapshot import TrainerSnapshot
from .common import GradientError, check_depths, cifar_config, config_label
from .lesion import LESION_IMAGES, lesion_job_on, lesion_refusal


def curve_of(snap: TrainerSnapshot) -> dict[str, Any]:
    """One run's curves as the charts read them: step/train_loss for every step, val_step/val_acc/val_loss for
    every validation (mid-epoch ones included), its status (a Status), message and progress."""
    steps, vals = snap.steps, snap.validations
    return {
        "step": [e.step for e in steps], "train_loss": [e.train_loss for e in steps],
        "val_step": [e.step for e in vals], "val_acc": [e.val_acc for e in vals],
        "val_loss": [e.val_loss for e in vals],
        "status": snap.status, "message": snap.message, "progress": snap.progress,
    }


def heatmaps_of(run_dirs: dict[str, Path]) -> tuple[dict[str, tuple], tuple[float, float] | None]:
    """Per run folder: its (block paths, steps, gradient-norm matrix) as the worker recorded them, and one log10
    colour range shared by them (None until a step was recorded), so the maps compare at a glance."""
    snaps = {label: read_block_grads(path) for label, path in run_dirs.items()}
    values = [v for _, _, matrix in snaps.values() for row in matrix for v in row if v > 0]
    if not values:
        return snaps, None
    return snaps, (math.log10(min(values)), math.log10(max(values)))


def label_depth(label: str) -> int:
    """The depth in a net's label: "plain-56" -> 56, "ResNet-20 (no BN)" -> 20."""
    return int(label.rsplit("-", 1)[1].split()[0])


class SideBySide:
    """Plain-N and ResNet-N (CIFAR family) for each depth, trained with the same data, seed and recipe.

    The same seed builds both twins of a depth: with option-A shortcuts they start from identical weights.
    `submit()` queues all of them as one job (they start together, sharing the device's slot and its cores).
    """

    def __init__(self, data: DatasetSpec, train_config: TrainConfig, depths: Sequence[int] = (20, 56),
                 record_every: int = 10, norm: str = "batch", num_classes: int = 10):
        if isinstance(depths, Sequence) and not isinstance(depths, str) and len(set(depths)) < len(depths):
            raise GradientError(f"nothing to compare: depths {list(depths)} repeat a depth; pick different depths "
                                "(e.g. 20 and 56)")
        self.depths = check_depths(depths)
        self.data, self.train_config, self.record_every = data, train_config, record_every
        self.configs: dict[str, ResNetConfig] = {}
        for depth in self.depths:
            for residual in (False, True):
                cfg = cifar_config(depth, residual, norm, num_classes)
                self.configs[config_label(cfg)] = cfg
        self.queue: TrainingQueue | None = None
        self.job_id: str | None = None
        self.run_dirs: dict[str, Path] = {}
        self._followers: dict[str, RunFollower] = {}

    @property
    def names(self) -> list[str]:
        return list(self.configs)

    def submit(self, queue: TrainingQueue, estimate_s: float, device: str = "cpu", **share: Any) -> SideBySide:
        """Queue the four trainings as one job; `share` (actor, limits) as TrainingQueue.submit takes them."""
        requests = []
        for label, cfg in self.configs.items():
            name = queue.unique_name(run_name("twins", label))
            requests.append(TrainRequest(cfg, self.data, self.train_config, name,
                                         record_block_grads=self.record_every))
            self.run_dirs[label] = queue.runs_dir / name
        view = queue.submit(f"plain vs residual, depths {list(self.depths)}", requests, estimate_s, device, **share)
        self.queue, self.job_id = queue, view.id
        self._followers = {label: RunFollower(path) for label, path in self.run_dirs.items()}
        return self

    def view(self) -> JobView | None:
        return None if self.queue is None or self.job_id is None else self.queue.view(self.job_id)

    @property
    def running(self) -> bool:
        view = self.view()
        return view is not None and view.active

    def stop(self) -> None:
        if self.queue is not None and self.job_id is not None:
            self.queue.cancel(self.job_id)

    def curves(self) -> dict[str, dict[str, Any]]:
        """Per run: curve_of its folder's events so far."""
        return {label: curve_of(follower.poll()) for label, follower in self._followers.items()}

    @property
    def plan(self) -> RunPlan:
        """How each run is cut into steps (the same for all: same data and recipe)."""
        return RunPlan.of(self.train_config, self.data.n_train)

    def heatmaps(self, depth: int) -> tuple[dict[str, tuple], tuple[float, float] | None]:
        """heatmaps_of the runs of `depth`."""
        return heatmaps_of({label: self.run_dirs[label] for label, cfg in self.configs.items()
                            if cfg.depth == depth and label in self.run_dirs})

    def final_accuracies(self, depth: int) -> dict[str, float | None]:
        """The last validation accuracy each run of `depth` measured (None before its first)."""
        curves = self.curves()
        return {label: (curves[label]["val_acc"] or [None])[-1] if label in curves else None
                for label, cfg in self.configs.items() if cfg.depth == depth}

    def lesion_refusal(self, depth: int) -> str | None:
        """Why the lesion study of the nets of `depth` would mean nothing (lesion.lesion_refusal), or None."""
        classes = next(cfg.num_classes for cfg in self.configs.values())
        return lesion_refusal(self.final_accuracies(depth), classes)

    def lesion_job(self, depth: int, data: DataBundle, n_images: int = LESION_IMAGES) -> BackgroundJob:
        """The lesion study of the saved plain and residual nets of `depth`, on the first `n_images` validation
        images of `data` (the twins' dataset; 500 resolve percent-level differences)."""
        models = []
        for label, cfg in self.configs.items():
            if cfg.depth != depth:
                continue
            info_status = self._followers[label].poll().status if label in self._followers else Status.IDLE
            if not info_status.kept_weights:
                raise GradientError(f"{label} has no saved weights (its run is {info_status}); train the pair "
                                    "again")
            models.append(load_run_model(self.run_dirs[label])[0])
        return lesion_job_on(models, data.val, data.mean, data.std, n_images)
