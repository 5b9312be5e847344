"""TrainConfig: every training hyper-parameter, validated on construction, and the device it asks for."""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch

from ..device import best_device
from ..validation import dataclass_from_dict

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
# Where each optimizer's learning rate usually starts: Adam takes steps ~50x smaller than SGD's.
USUAL_LR = {"sgd": 0.1, "adam": 2e-3, "adamw": 2e-3}


# OneCycle's shape, as in torch.optim.lr_scheduler.OneCycleLR's defaults.
ONECYCLE_PCT_START = 0.3
ONECYCLE_DIV = 25.0
ONECYCLE_FINAL_DIV = 1e4


class TrainConfigError(ValueError):
    """A TrainConfig field holds a value training cannot use."""


class TrainerError(RuntimeError):
    """The trainer cannot start with this model and data."""


class TrainerBusyError(TrainerError):
    """Start was asked for while this trainer is already running (or has already run)."""


@dataclass(frozen=True)
class TrainConfig:
    """Every training hyper-parameter, JSON round-trippable and validated on construction.

    Attributes:
        epochs: passes over the training set.
        batch_size: images per step (capped at the training-set size).
        optimizer: "sgd", "adam" or "adamw".
        lr: peak learning rate.
        momentum: SGD momentum (ignored by Adam/AdamW).
        nesterov: Nesterov momentum (SGD only).
        weight_decay: L2 penalty (decoupled for AdamW).
        schedule: "constant", "step" (multiply by `gamma` at each milestone), "cosine"
            (to zero at the end) or "onecycle" (warm up over 30%, then anneal; its own warm-up).
        milestones: fractions of training where "step" drops the lr; (0.5, 0.75) is He et
            al.'s 32k and 48k of 64k iterations.
        gamma: the factor of each "step" drop (the paper divides by 10).
        warmup_epochs / warmup_steps: linear warm-up from ~0 to `lr` (set one of them).
        label_smoothing: cross-entropy label smoothing in [0, 1).
        augment_crop: random crop after zero padding by `crop_padding` pixels.
        augment_flip: random horizontal flip.
        seed: shuffling and augmentation are drawn from generators seeded with it.
        device: "auto" picks CUDA, then MPS, then CPU.
        bf16: bfloat16 autocast; None means on for CUDA, off elsewhere.
        channels_last: NHWC memory layout; None means on for CUDA, off elsewhere.
        compile: run the model through torch.compile (slow first steps).
        max_steps: stop after this many steps even if epochs remain.
        eval_batch_size: images per validation batch.
    """

    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    warmup_steps: int = 0
    label_smoothing: float = 0.0
    augment_crop: bool = True
    augment_flip: bool = True
    crop_padding: int = 4
    seed: int = 0
    device: str = "auto"
    bf16: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    max_steps: int | None = None
    eval_batch_size: int = 512

    def __post_init__(self) -> None:
        if isinstance(self.milestones, list):
            object.__setattr__(self, "milestones", tuple(self.milestones))
        validate_train_config(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["milestones"] = list(self.milestones)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return dataclass_from_dict(cls, data, TrainConfigError, "train config")

    @classmethod
    def paper_cifar(cls, **overrides: Any) -> TrainConfig:
        """He et al. 2015's CIFAR recipe: SGD 0.9, wd 1e-4, batch 128, lr 0.1 /10 at 50% and 75%, 64k steps."""
        base = {"epochs": 182, "batch_size": 128, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                "weight_decay": 1e-4, "schedule": "step", "milestones": (0.5, 0.75), "gamma": 0.1,
                "max_steps": 64_000}
        return cls(**{**base, **overrides})


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _need(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise TrainConfigError(f"{name}: {value!r} is not allowed; {allowed}")


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)


def validate_train_config(c: TrainConfig) -> None:
    """Raise TrainConfigError for the first field that training cannot use."""
    _need(_is_int(c.epochs) and 1 <= c.epochs <= 100_000, "epochs", c.epochs, "use a whole number from 1 to 100000")
    _need(_is_int(c.batch_size) and 1 <= c.batch_size <= 65_536, "batch_size", c.batch_size,
          "use a whole number from 1 to 65536")
    _need(c.optimizer in OPTIMIZERS, "optimizer", c.optimizer, f"choose one of {list(OPTIMIZERS)}")
    _need(_is_number(c.lr) and c.lr > 0, "lr", c.lr, "use a finite number > 0 (0.1 for SGD, 1e-3 for Adam)")
    _need(_is_number(c.momentum) and 0 <= c.momentum < 1, "momentum", c.momentum, "use a number in [0, 1)")
    _need(isinstance(c.nesterov, bool), "nesterov", c.nesterov, "use true or false")
    if c.nesterov and (c.optimizer != "sgd" or c.momentum == 0):
        raise TrainConfigError(f"nesterov: True needs optimizer 'sgd' with momentum > 0 "
                               f"(got optimizer {c.optimizer!r}, momentum {c.momentum!r})")
    _need(_is_number(c.weight_decay) and c.weight_decay >= 0, "weight_decay", c.weight_decay, "use a number >= 0")
    _need(c.schedule in SCHEDULES, "schedule", c.schedule, f"choose one of {list(SCHEDULES)}")
    ms = c.milestones
    _need(isinstance(ms, tuple) and all(_is_number(m) and 0 < m < 1 for m in ms)
          and all(a < b for a, b in itertools.pairwise(ms)), "milestones", ms,
          "use increasing fractions of training strictly between 0 and 1, e.g. (0.5, 0.75)")
    _need(_is_number(c.gamma) and 0 < c.gamma <= 1, "gamma", c.gamma, "use a number in (0, 1] (0.1 divides by 10)")
    _need(_is_number(c.warmup_epochs) and c.warmup_epochs >= 0, "warmup_epochs", c.warmup_epochs,
          "use a number >= 0")
    _need(_is_int(c.warmup_steps) and c.warmup_steps >= 0, "warmup_steps", c.warmup_steps,
          "use a whole number >= 0")
    if c.warmup_epochs and c.warmup_steps:
        raise TrainConfigError("warmup_steps: set warmup_steps or warmup_epochs, not both")
    if c.schedule == "onecycle" and (c.warmup_epochs or c.warmup_steps):
        raise TrainConfigError("warmup_epochs: the 'onecycle' schedule warms up by itself over its first 30%; "
                               "set warm-up to 0 or pick another schedule")
    _need(_is_number(c.label_smoothing) and 0 <= c.label_smoothing < 1, "label_smoothing", c.label_smoothing,
          "use a number in [0, 1)")
    for name in ("augment_crop", "augment_flip", "compile"):
        _need(isinstance(getattr(c, name), bool), name, getattr(c, name), "use true or false")
    _need(_is_int(c.crop_padding) and 0 <= c.crop_padding <= 64, "crop_padding", c.crop_padding,
          "use a whole number from 0 to 64")
    _need(_is_int(c.seed) and c.seed >= 0, "seed", c.seed, "use a whole number >= 0")
    _need(c.device in DEVICES, "device", c.device, f"choose one of {list(DEVICES)}")
    for name in ("bf16", "channels_last"):
        _need(getattr(c, name) is None or isinstance(getattr(c, name), bool), name, getattr(c, name),
              "use true, false or null (automatic: on for CUDA)")
    _need(c.max_steps is None or (_is_int(c.max_steps) and c.max_steps >= 1), "max_steps", c.max_steps,
          "use a whole number >= 1, or null for no limit")
    _need(_is_int(c.eval_batch_size) and c.eval_batch_size >= 1, "eval_batch_size", c.eval_batch_size,
          "use a whole number >= 1")


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" -> CUDA, then MPS, then CPU; an explicit device that is not there is an error."""
    if name == "auto":
        return torch.device(best_device())
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "cuda" and not cuda:
        raise TrainConfigError("device: 'cuda' is not available on this machine (no CUDA GPU found); "
                               "choose 'auto' or 'cpu'")
    if name == "mps" and not mps:
        raise TrainConfigError("device: 'mps' is not available on this machine (no Apple GPU found); "
                               "choose 'auto' or 'cpu'")
    if name not in DEVICES:
        raise TrainConfigError(f"device: {name!r} is not allowed; choose one of {list(DEVICES)}")
    return torch.device(name)
