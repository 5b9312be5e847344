"""Learning-rate schedules (warm-up, step, cosine, one-cycle) and the run plan: steps per epoch, total steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import ONECYCLE_DIV, ONECYCLE_FINAL_DIV, ONECYCLE_PCT_START, TrainConfig


@dataclass(frozen=True)
class RunPlan:
    """How a run on `n_train` images is cut into steps: the batch (capped at the set's size), full batches
    per epoch (the last partial batch is dropped each epoch), total steps (capped by max_steps) and the
    epochs they span. The trainer, the schedule preview and the time estimates all read this one plan."""

    batch_size: int
    steps_per_epoch: int
    total_steps: int
    epochs: int

    @classmethod
    def of(cls, config: TrainConfig, n_train: int) -> RunPlan:
        batch = max(1, min(config.batch_size, n_train))
        per_epoch = max(1, n_train // batch)
        planned = config.epochs * per_epoch
        total = min(planned, config.max_steps) if config.max_steps else planned
        return cls(batch, per_epoch, total, math.ceil(total / per_epoch))

    @property
    def images_trained(self) -> int:
        return self.total_steps * self.batch_size


def warmup_length(config: TrainConfig, steps_per_epoch: int, total_steps: int) -> int:
    steps = config.warmup_steps or round(config.warmup_epochs * steps_per_epoch)
    return min(steps, max(total_steps - 1, 0))


def lr_at(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The learning rate of the 0-based optimizer step `step` out of `total_steps`."""
    base = config.lr
    total = max(total_steps, 1)
    if config.schedule == "onecycle":
        return _onecycle(base, step, total)
    warm = warmup_length(config, steps_per_epoch, total)
    if step < warm:
        return base * (step + 1) / warm
    if config.schedule == "constant":
        return base
    if config.schedule == "step":
        drops = sum(step >= round(m * total) for m in config.milestones)
        return base * config.gamma ** drops
    t = (step - warm) / max(total - warm, 1)  # cosine over what remains after the warm-up
    return base * 0.5 * (1 + math.cos(math.pi * t))


def _onecycle(base: float, step: int, total: int) -> float:
    # Same shape as torch's OneCycleLR (cosine annealing, three_phase=False).
    initial = base / ONECYCLE_DIV
    final = initial / ONECYCLE_FINAL_DIV
    peak_step = ONECYCLE_PCT_START * total - 1
    if step <= peak_step:
        frac = step / peak_step if peak_step > 0 else 1.0
        start, end = initial, base
    else:
        frac = (step - peak_step) / max(total - 1 - peak_step, 1e-12)
        start, end = base, final
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))


def lr_schedule(config: TrainConfig, total_steps: int, steps_per_epoch: int) -> list[float]:
    """The learning rate at every step, e.g. for a preview chart."""
    return [lr_at(config, s, total_steps, steps_per_epoch) for s in range(total_steps)]


def schedule_preview(config: TrainConfig, n_train: int, max_points: int = 20_000) -> list[float]:
    """The learning rate at every step of a run on `n_train` images (up to `max_points` steps), before it starts."""
    plan = RunPlan.of(config, n_train)
    return lr_schedule(config, min(plan.total_steps, max_points), plan.steps_per_epoch)
