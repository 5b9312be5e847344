"""Reading a side-by-side training part-way: when its warm-up ends, when its first validation and heatmap columns
appear, and which nets are still too early to read. Sentences for the page, from the run's plan and curves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..status import Status
from ..train.config import TrainConfig
from ..train.schedule import RunPlan, warmup_length

_FRACTIONS = {0.25: "a quarter of an epoch in", 0.5: "half an epoch in", 0.75: "three quarters of an epoch in",
              1.0: "at the end of the first epoch"}


def warmup_end(config: TrainConfig, plan: RunPlan) -> int:
    """The step at which the learning-rate warm-up ends (0: no warm-up); the schedule's own rule."""
    if config.schedule == "onecycle":
        return 0  # one-cycle's rise is its schedule, not a warm-up
    return warmup_length(config, plan.steps_per_epoch, plan.total_steps)


def first_validation_step(config: TrainConfig, plan: RunPlan) -> int:
    """The step after which the first validation pass runs (the trainer's rule: `val_per_epoch` passes evenly
    spaced in each epoch, the last at its end)."""
    spe, per = plan.steps_per_epoch, config.val_per_epoch
    midway = {round(k * spe / per) for k in range(1, per)} - {0}
    return min(min(midway, default=spe), plan.total_steps)


def epoch_words(step: int, steps_per_epoch: int) -> str:
    """Where `step` falls in a run, for a person: "a quarter of an epoch in", "1.5 epochs in"."""
    frac = step / max(steps_per_epoch, 1)
    for value, words in _FRACTIONS.items():
        if abs(frac - value) < 0.04:
            return words
    return f"{frac:.2g} epochs in" if frac >= 1 else f"{frac:.2g} of an epoch in"


def latest_step(curve: Mapping[str, Any]) -> int:
    return curve["step"][-1] if curve["step"] else 0


def _live(curve: Mapping[str, Any]) -> bool:
    return Status.of(curve["status"]) in (Status.RUNNING, Status.QUEUED, Status.IDLE)


def warming_up(curves: Mapping[str, Mapping[str, Any]], warm_end: int) -> list[str]:
    """The nets not past their learning-rate warm-up: still in it, or stopped inside it."""
    return [name for name, c in curves.items() if latest_step(c) < warm_end and (_live(c) or c["step"])]


def common_step(curves: Mapping[str, Mapping[str, Any]]) -> int:
    """The latest step every net has reached: deep nets take longer per step, so a partial run compares the
    nets there, not at their own ends."""
    return min((latest_step(c) for c in curves.values()), default=0)


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def too_early_note(curves: Mapping[str, Mapping[str, Any]], warm_end: int, steps_per_epoch: int) -> str:
    """"Too early to read: ..." while a net is not past its warm-up (training in it, or stopped in it), else ""."""
    early = warming_up(curves, warm_end)
    if not early:
        return ""
    live = [name for name in early if _live(curves[name])]
    ended = [name for name in early if name not in live]
    said = []
    if live:
        said.append(f"{_names(live)} {'is' if len(live) == 1 else 'are'} still in")
    if ended:
        said.append(f"{_names(ended)} stopped inside")
    return (f"Too early to read: {' and '.join(said)} the learning-rate warm-up, which lasts until step {warm_end} "
            f"({epoch_words(warm_end, steps_per_epoch)}). While the rate climbs, a loss can rise before it falls (a "
            f"deep net's often does), so the order of the curves means nothing{' yet' if live else ''}.")


def validation_note(curves: Mapping[str, Mapping[str, Any]], first_val: int, steps_per_epoch: int) -> str:
    """What the empty validation chart will show and when, else "" (once any net has validated)."""
    if any(c["val_step"] for c in curves.values()):
        return ""
    at = max((latest_step(c) for c in curves.values()), default=0)
    now = f" (the runs are at step {at})" if at else ""
    return f"Validation accuracy appears at step {first_val}, {epoch_words(first_val, steps_per_epoch)}{now}."


def heatmap_note(every: int) -> str:
    """What the empty heatmaps will show and when."""
    return (f"The heatmaps appear once step 1 is recorded, and gain a column every {every} steps: each block's "
            "gradient norm during training.")
