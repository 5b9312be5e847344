"""Honest endings: whether a run that reached its planned end learned anything, and the likely cause if not."""

from __future__ import annotations

from collections.abc import Sequence

from ..model.config import ResNetConfig
from .config import USUAL_LR, TrainConfig

# Runs shorter than this are not judged: a few steps are a smoke test, not an attempt to learn.
MIN_JUDGED_STEPS = 20
# "Near chance": final validation accuracy at most this many times 1/num_classes.
CHANCE_FACTOR = 1.5
# "Rose far above its start": the last steps' mean loss this many times the first step's, and 1 nat above.
# The first step's loss is the untrained model's; a too-high learning rate has inflated the next ones already.
LOSS_RISE_FACTOR = 2.0
LOSS_RISE_MIN = 1.0
# How many steps make "the end" of the loss curve.
WINDOW = 10
# Far fewer steps than this at a usual learning rate: the likely cause is "too few steps".
FEW_STEPS = 500


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _lr_cause(config: TrainConfig) -> str | None:
    usual = USUAL_LR.get(config.optimizer, 0.1)
    if config.lr > 3 * usual:
        return (f"the learning rate {config.lr:g} is too high for {config.optimizer} (it usually starts near "
                f"{usual:g}): lower it, or add warm-up")
    if config.lr < usual / 100:
        return f"the learning rate {config.lr:g} is very low for {config.optimizer} (usually near {usual:g}): raise it"
    return None


def did_not_learn(config: TrainConfig, steps: int, num_classes: int, first_loss: float | None,
                  last_losses: Sequence[float], val_acc: float | None,
                  model_config: ResNetConfig | None = None) -> str | None:
    """Why a run that ran all its `steps` "did not learn", or None when it did (or is too short to judge).
    `first_loss`: the training loss of its first step; `last_losses`: those of its last steps; `val_acc`: its
    final validation accuracy (None without a validation set)."""
    if steps < MIN_JUDGED_STEPS:
        return None
    start = first_loss
    end = _mean(last_losses) if last_losses else None
    if start is not None and end is not None and end > LOSS_RISE_FACTOR * start and end - start > LOSS_RISE_MIN:
        cause = _lr_cause(config) or (f"the learning rate {config.lr:g} is too high for this model and batch size: "
                                      "lower it (try a tenth), or add warm-up")
        return (f"did not learn: the training loss rose from {start:.3g} to {end:.4g} over {steps} steps; "
                f"likely cause: {cause}")
    if val_acc is None or num_classes < 2:
        return None
    chance = 1.0 / num_classes
    if val_acc > CHANCE_FACTOR * chance:
        return None
    cause = _lr_cause(config)
    if cause is None and steps < FEW_STEPS:
        cause = f"too few steps ({steps}): train for more epochs or on more images"
    if cause is None and model_config is not None and not model_config.residual and model_config.depth >= 32:
        cause = (f"a plain (non-residual) net {model_config.depth} layers deep is hard to optimise (the degradation "
                 "problem): try its residual version, or a shallower net")
    if cause is None:
        cause = "check that the labels match the images, then try another learning rate or a longer run"
    return (f"did not learn: validation accuracy {100 * val_acc:.1f}% is near chance ({100 * chance:.1f}% for "
            f"{num_classes} classes) after {steps} steps; likely cause: {cause}")


__all__ = ["CHANCE_FACTOR", "MIN_JUDGED_STEPS", "did_not_learn"]
