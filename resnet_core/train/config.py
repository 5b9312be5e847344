"""TrainConfig: every training hyper-parameter, validated on construction, and the device it asks for."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

import torch

from ..device import best_device
from ..validation import dataclass_from_dict, is_int, is_number, need, need_bool, need_choice, need_int, need_number

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
# Where each optimizer's learning rate usually starts: Adam takes steps ~50x smaller than SGD's.
USUAL_LR = {"sgd": 0.1, "adam": 2e-3, "adamw": 2e-3}

# The accepted range of each numeric field, both ends included: validate_train_config reads it, and so
# do the Train page's widgets and its link parser. Whole-number fields have int ends, the others floats.
LIMITS: dict[str, tuple[Any, Any]] = {
    "epochs": (1, 10_000),
    "batch_size": (1, 4096),
    "lr": (1e-6, 10.0),
    "momentum": (0.0, 0.999),
    "weight_decay": (0.0, 1.0),
    "gamma": (1e-6, 1.0),
    "warmup_epochs": (0.0, 100.0),
    "warmup_steps": (0, 10_000_000),
    "label_smoothing": (0.0, 0.99),
    "crop_padding": (0, 64),
    "seed": (0, 2**31 - 1),
    "max_steps": (1, 10_000_000),  # or None: no limit
    "eval_batch_size": (1, 65_536),
    "val_per_epoch": (1, 20),
}
# The allowed values of each choice field.
CHOICES: dict[str, tuple[str, ...]] = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "device": DEVICES}
_BOOLS = ("nesterov", "augment_crop", "augment_flip", "compile")
_AUTO_BOOLS = ("bf16", "channels_last")  # None: automatic
_HINTS = {"lr": f" ({USUAL_LR['sgd']:g} for SGD, {USUAL_LR['adam']:g} for Adam)", "gamma": " (0.1 divides by 10)",
          "max_steps": ", or null for no limit"}


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
        bf16: bfloat16 autocast; None: automatic (on for CUDA; on a CPU with native bf16 when measured faster
            for this run's model and batch: train.precision).
        channels_last: NHWC memory layout; None: automatic (on for CUDA; on a CPU when measured faster).
        compile: run the model through torch.compile (slow first steps).
        max_steps: stop after this many steps even if epochs remain.
        eval_batch_size: images per validation batch.
        val_per_epoch: validation passes per epoch, evenly spaced, the last at the epoch's end: a short run's
            accuracy curve then has points before its first epoch ends (each pass costs one look at the
            validation set).
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
    val_per_epoch: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.milestones, list):
            object.__setattr__(self, "milestones", tuple(self.milestones))
        validate_train_config(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def with_choices(self, **changes: Any) -> TrainConfig:
        """This config with a person's choices (the Train page's form, the command line's flags), where an
        option that does not apply to the chosen optimizer or schedule is dropped rather than refused:
        Nesterov needs SGD with momentum, and one-cycle brings its own warm-up."""
        merged = {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, **changes}
        merged["nesterov"] = (bool(merged["nesterov"]) and merged["optimizer"] == "sgd"
                              and is_number(merged["momentum"]) and merged["momentum"] > 0)
        if merged["schedule"] == "onecycle":
            merged["warmup_epochs"] = 0.0
        return TrainConfig(**merged)

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


def _check_limit(c: TrainConfig, name: str) -> None:
    """`name`'s value within LIMITS: a whole number when both ends are ints, else any finite number."""
    value, (low, high) = getattr(c, name), LIMITS[name]
    hint = _HINTS.get(name, "")
    if is_int(low) and is_int(high):
        need_int(TrainConfigError, name, value, low, high, hint=hint)
    else:
        need_number(TrainConfigError, name, value, low, high, hint=hint)


def validate_train_config(c: TrainConfig) -> None:
    """Raise TrainConfigError for the first field that training cannot use (ranges from LIMITS)."""
    for f in dataclasses.fields(c):
        name, value = f.name, getattr(c, f.name)
        if name in CHOICES:
            need_choice(TrainConfigError, name, value, CHOICES[name])
        elif name in _BOOLS:
            need_bool(TrainConfigError, name, value)
        elif name in _AUTO_BOOLS:
            need(value is None or isinstance(value, bool), TrainConfigError, name, value,
                 "must be true, false or null (automatic: on for CUDA)")
        elif name == "max_steps" and value is None:
            continue  # no limit
        elif name in LIMITS:
            _check_limit(c, name)
    ms = c.milestones
    need(isinstance(ms, tuple) and all(is_number(m) and 0 < m < 1 for m in ms)
         and all(a < b for a, b in itertools.pairwise(ms)), TrainConfigError, "milestones", ms,
         "must be increasing fractions of training strictly between 0 and 1, e.g. (0.5, 0.75)")
    if c.nesterov and (c.optimizer != "sgd" or c.momentum == 0):
        raise TrainConfigError(f"nesterov: True needs optimizer 'sgd' with momentum > 0 "
                               f"(got optimizer {c.optimizer!r}, momentum {c.momentum!r})")
    if c.warmup_epochs and c.warmup_steps:
        raise TrainConfigError("warmup_steps: set warmup_steps or warmup_epochs, not both")
    if c.schedule == "onecycle" and (c.warmup_epochs or c.warmup_steps):
        raise TrainConfigError("warmup_epochs: the 'onecycle' schedule warms up by itself over its first 30%; "
                               "set warm-up to 0 or pick another schedule")


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
