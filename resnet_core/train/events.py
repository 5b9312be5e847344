"""The Trainer's typed events and their JSON form, one line each of a run's metrics.jsonl."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

from ..status import Status


@dataclass(frozen=True)
class StepEvent:
    """One optimizer step: its training loss (NaN allowed: a diverging run), learning rate, speed, gradient norm."""

    step: int
    epoch: int
    train_loss: float
    lr: float
    samples_per_s: float
    grad_norm: float
    time: float  # seconds since the run started


@dataclass(frozen=True)
class EpochEvent:
    """The end of an epoch: training loss/accuracy over its batches, validation loss/accuracy when measured."""

    epoch: int
    step: int
    train_loss: float
    train_acc: float
    val_loss: float | None = None  # None without a validation set
    val_acc: float | None = None
    time: float = 0.0


@dataclass(frozen=True)
class ValEvent:
    """A validation pass inside an epoch (TrainConfig.val_per_epoch > 1), so a short run's accuracy curve has
    points before its first epoch ends. `epoch` is fractional: 1.25 is a quarter into epoch 2."""

    step: int
    epoch: float
    val_loss: float
    val_acc: float
    time: float


@dataclass(frozen=True)
class StatusEvent:
    """A change of the run's status; the first one (running) also says the device and the plan."""

    status: Status
    message: str
    step: int
    time: float
    device: str | None = None
    total_steps: int | None = None
    steps_per_epoch: int | None = None
    batch_size: int | None = None


Event = Union[StepEvent, EpochEvent, ValEvent, StatusEvent]

_TYPES: dict[type, str] = {StepEvent: "step", EpochEvent: "epoch", ValEvent: "val", StatusEvent: "status"}
_OPTIONAL = ("val_loss", "val_acc", "device", "total_steps", "steps_per_epoch", "batch_size")


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as the JSON object metrics.jsonl holds: "type" first, then its fields; an optional field
    that is None is left out, as the Trainer always wrote it."""
    if isinstance(event, StepEvent):
        out: dict[str, Any] = {"type": "step", "step": event.step, "epoch": event.epoch,
                               "train_loss": event.train_loss, "lr": event.lr, "samples_per_s": event.samples_per_s,
                               "grad_norm": event.grad_norm, "time": event.time}
    elif isinstance(event, EpochEvent):
        out = {"type": "epoch", "epoch": event.epoch, "step": event.step, "train_loss": event.train_loss,
               "train_acc": event.train_acc, "val_loss": event.val_loss, "val_acc": event.val_acc, "time": event.time}
    elif isinstance(event, ValEvent):
        out = {"type": "val", "step": event.step, "epoch": event.epoch, "val_loss": event.val_loss,
               "val_acc": event.val_acc, "time": event.time}
    elif isinstance(event, StatusEvent):
        out = {"type": "status", "status": Status(event.status).value, "message": event.message,
               "step": event.step, "time": event.time, "device": event.device, "total_steps": event.total_steps,
               "steps_per_epoch": event.steps_per_epoch, "batch_size": event.batch_size}
    else:
        raise TypeError(f"not a training event: {type(event).__name__}")
    return {k: v for k, v in out.items() if not (k in _OPTIONAL and v is None)}


class _Invalid(Exception):
    pass


def _int(d: dict, key: str, optional: bool = False) -> int | None:
    value = d.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(key)
    return value


def _float(d: dict, key: str, optional: bool = False, finite: bool = True) -> float | None:
    value = d.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(key)
    value = float(value)
    if finite and not math.isfinite(value):
        raise _Invalid(key)
    return value


def _str(d: dict, key: str, optional: bool = False) -> str | None:
    value = d.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _Invalid(key)
    return value


def event_from_dict(d: Any) -> Event | None:
    """The typed event a metrics.jsonl object describes, or None for anything else (an unknown "type", a field
    missing or of the wrong type). Run folders are outside input: this never raises. Losses and gradient norms
    may be NaN or infinite (a diverging run measured them); the other numbers must be finite."""
    if not isinstance(d, dict):
        return None
    kind = d.get("type")
    try:
        if kind == "step":
            return StepEvent(step=_int(d, "step"), epoch=_int(d, "epoch"),
                             train_loss=_float(d, "train_loss", finite=False), lr=_float(d, "lr"),
                             samples_per_s=_float(d, "samples_per_s"), grad_norm=_float(d, "grad_norm", finite=False),
                             time=_float(d, "time"))
        if kind == "epoch":
            return EpochEvent(epoch=_int(d, "epoch"), step=_int(d, "step"),
                              train_loss=_float(d, "train_loss", finite=False), train_acc=_float(d, "train_acc"),
                              val_loss=_float(d, "val_loss", optional=True, finite=False),
                              val_acc=_float(d, "val_acc", optional=True), time=_float(d, "time"))
        if kind == "val":
            return ValEvent(step=_int(d, "step"), epoch=_float(d, "epoch"),
                            val_loss=_float(d, "val_loss", finite=False), val_acc=_float(d, "val_acc"),
                            time=_float(d, "time"))
        if kind == "status":
            status = Status.of(d.get("status")) if isinstance(d.get("status"), str) else None
            if status is None:
                return None
            return StatusEvent(status=status, message=_str(d, "message"), step=_int(d, "step"),
                               time=_float(d, "time"), device=_str(d, "device", optional=True),
                               total_steps=_int(d, "total_steps", optional=True),
                               steps_per_epoch=_int(d, "steps_per_epoch", optional=True),
                               batch_size=_int(d, "batch_size", optional=True))
    except _Invalid:
        return None
    return None


__all__ = ["EpochEvent", "Event", "StatusEvent", "StepEvent", "ValEvent", "event_from_dict", "event_to_dict"]
