"""Training: a Trainer that runs in a background thread and reports metric events.

The Trainer makes no Streamlit calls. It writes events into a lock-protected list that a
page (or the command line) reads with `snapshot()`, and it watches a `threading.Event`
for Stop, checked before every step. The whole dataset stays as uint8 tensors on the
training device when it fits; random crop and flip run there, per batch, as tensor ops,
so no DataLoader worker ever stalls the loop (the airbench approach).

Command line:
    python -m resnet_core.train --preset resnet20 --dataset shapes --epochs 3 --runs-dir runs
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import itertools
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ConfigError, ResNetConfig, dataclass_from_dict, get_preset
from .device import best_device
from .model import build_model
from .runs import Run
from .worker import OneShotWorker

if TYPE_CHECKING:
    from .data import DataBundle, ImageSet

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
# Where each optimizer's learning rate usually starts: Adam takes steps ~50x smaller than SGD's.
USUAL_LR = {"sgd": 0.1, "adam": 2e-3, "adamw": 2e-3}
STATUSES = ("idle", "running", "stopped", "finished", "diverged", "failed")

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


# --------------------------------------------------------------------------------------------
# Devices, schedules, augmentation, gradient norm: small pure helpers
# --------------------------------------------------------------------------------------------


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
    steps_per_epoch = max(1, n_train // config.batch_size)
    total = config.epochs * steps_per_epoch
    if config.max_steps:
        total = min(total, config.max_steps)
    return lr_schedule(config, min(total, max_points), steps_per_epoch)


def augment_batch(images: Tensor, padding: int, flip: bool, generator: torch.Generator | None = None) -> Tensor:
    """Random crop (after zero padding) and horizontal flip of a uint8 N x C x H x W batch, on its device."""
    n, _, h, w = images.shape
    device = images.device
    if padding > 0:
        padded = F.pad(images, (padding, padding, padding, padding))
        oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
        ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
        rows = (oy[:, None] + torch.arange(h, device=device))[:, :, None]
        cols = (ox[:, None] + torch.arange(w, device=device))[:, None, :]
        batch = torch.arange(n, device=device)[:, None, None]
        # One gather for the whole batch: advanced indices give N x H x W x C.
        images = padded[batch, :, rows, cols].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(n, generator=generator, device=device) < 0.5
        images = torch.where(mask[:, None, None, None], images.flip(3), images)
    return images


def global_grad_norm(params: list[nn.Parameter]) -> Tensor:
    """L2 norm of all gradients together, as one tensor (no per-parameter host sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def make_optimizer(config: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                               weight_decay=config.weight_decay)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def build_model_for(cfg: ResNetConfig, num_classes: int, seed: int = 0) -> nn.Module:
    """A fresh model with `num_classes` outputs whose initial weights depend only on `seed`."""
    cfg = cfg if cfg.num_classes == num_classes else cfg.replace(num_classes=num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(cfg)


def with_pretrained_stats(data: DataBundle) -> DataBundle:
    """The same data normalised with ImageNet's mean/std, as torchvision's pretrained weights expect."""
    from .data import IMAGENET_MEAN, IMAGENET_STD

    return dataclasses.replace(data, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def check_idle(trainer: Trainer | None) -> None:
    """TrainerBusyError when `trainer` (e.g. the one a browser session holds) is still training."""
    if trainer is not None and trainer.is_running:
        raise TrainerBusyError(f"a training run is already in progress (step {trainer.step} of "
                               f"{trainer.total_steps}); press Stop or wait for it to finish before starting another")


def preprocess_of(data: DataBundle) -> dict[str, Any]:
    """What an inference page needs to feed images to the trained model."""
    return {"mean": list(data.mean), "std": list(data.std), "image_size": int(data.train.images.shape[-1])}


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainerSnapshot:
    """A consistent copy of a trainer's state: every event so far plus status and progress."""

    events: list[dict[str, Any]]
    status: str
    message: str
    step: int
    total_steps: int
    progress: float
    eta_s: float | None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.of_type("step")

    @property
    def epochs(self) -> list[dict[str, Any]]:
        return self.of_type("epoch")

    @property
    def validated_epochs(self) -> list[dict[str, Any]]:
        """The epochs that ended with a validation pass (val_acc, val_loss)."""
        return [e for e in self.epochs if e.get("val_acc") is not None]

    @property
    def running(self) -> bool:
        return self.status == "running"


class _Diverged(Exception):
    def __init__(self, step: int, value: float, lr: float):
        kind = "NaN" if math.isnan(value) else "infinite"
        super().__init__(f"diverged at step {step}: the training loss became {kind} (learning rate {lr:.3g}) "
                         "— lower the learning rate or add warm-up")


class Trainer(OneShotWorker):
    """Trains `model` on `data` in a background thread; see the module docstring."""

    def __init__(self, model: nn.Module, data: DataBundle, config: TrainConfig, run: Run | None = None):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        super().__init__("resnet-trainer")
        self.model, self.data, self.config, self.run = model, data, config, run
        n = len(data.train.labels)
        if n == 0:
            raise TrainerError("the training set is empty: give the dataset at least one image per class")
        self._check_classes(model, data)
        self.batch_size = min(config.batch_size, n)
        self.steps_per_epoch = n // self.batch_size  # the last partial batch is dropped each epoch
        planned = config.epochs * self.steps_per_epoch
        self.total_steps = min(planned, config.max_steps) if config.max_steps else planned
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.device: torch.device | None = None
        self._events: list[dict[str, Any]] = []
        self._status = "idle"
        self._message = ""
        self._step = 0
        self._t0 = 0.0
        self._last_val: dict[str, Any] = {}

    @staticmethod
    def _check_classes(model: nn.Module, data: DataBundle) -> None:
        cfg = getattr(model, "config", None)
        outputs = cfg.num_classes if isinstance(cfg, ResNetConfig) else None
        if outputs is not None and outputs != len(data.classes):
            raise TrainerError(f"the model has {outputs} outputs but the dataset has {len(data.classes)} classes; "
                               f"build it with num_classes={len(data.classes)}")
        top = int(data.train.labels.max()) if len(data.train.labels) else -1
        if outputs is not None and top >= outputs:
            raise TrainerError(f"a training label is {top} but the model has only {outputs} outputs")

    # ---- public API -----------------------------------------------------------------------

    def start(self) -> Trainer:
        """Start training in a background thread; TrainerBusyError if it is running or has run."""
        def busy(alive: bool) -> TrainerBusyError:
            what = "is still running" if alive else f"has already run (status {self._status})"
            return TrainerBusyError(f"this training {what}; press Stop and wait, or start a new run")

        def mark_running() -> None:
            self._status, self._message = "running", "starting"

        self._start_once(busy, mark_running)
        return self

    @property
    def status(self) -> str:
        return self._status

    @property
    def message(self) -> str:
        return self._message

    @property
    def is_running(self) -> bool:
        """True from start() until the final status is set (files are written by then)."""
        return self._status == "running"

    @property
    def step(self) -> int:
        return self._step

    @property
    def progress(self) -> tuple[float, float | None]:
        """(fraction of the planned steps done, seconds left or None before the first step)."""
        with self._lock:
            return self._progress_locked()

    def _progress_locked(self) -> tuple[float, float | None]:
        frac = self._step / self.total_steps if self.total_steps else 1.0
        if self._status != "running":
            return frac, 0.0 if self._status != "idle" else None
        if self._step == 0:
            return frac, None
        elapsed = time.perf_counter() - self._t0
        return frac, elapsed / self._step * (self.total_steps - self._step)

    def snapshot(self) -> TrainerSnapshot:
        with self._lock:
            frac, eta = self._progress_locked()
            return TrainerSnapshot(list(self._events), self._status, self._message, self._step,
                                   self.total_steps, frac, eta)

    # ---- thread body ----------------------------------------------------------------------

    def _emit(self, event: dict[str, Any], status: str | None = None, message: str | None = None) -> None:
        if self.run is not None:
            self.run.log(event)
        with self._lock:
            self._events.append(event)
            if "step" in event and event.get("type") == "step":
                self._step = event["step"]
            if status is not None:
                self._status = status
            if message is not None:
                self._message = message

    def _now(self) -> float:
        return round(time.perf_counter() - self._t0, 4)

    def _main(self) -> None:
        self._t0 = time.perf_counter()
        try:
            status, message = self._train()
        except _Diverged as exc:
            status, message = "diverged", str(exc)
        except torch.OutOfMemoryError:
            status, message = "failed", self._oom_message()
        except Exception as exc:  # noqa: BLE001 - a training bug must never take the server down
            if "out of memory" in str(exc).lower():
                status, message = "failed", self._oom_message()
            else:
                status, message = "failed", f"training failed: {type(exc).__name__}: {exc}"
        self._free_memory()
        status, message = self._finish_run(status, message)
        self._emit({"type": "status", "status": status, "message": message, "step": self._step,
                    "time": self._now()}, status=status, message=message)

    def _oom_message(self) -> str:
        return (f"out of memory on {self.device} with batch size {self.batch_size}: lower the batch size, "
                "pick a smaller model or a smaller image size, or train on the CPU")

    def _free_memory(self) -> None:
        """Model back to the host and the device cache emptied, whatever the outcome (an OOM included)."""
        try:
            self.model.to("cpu")
        except Exception:  # noqa: BLE001, S110 - a model that cannot move stays where it is
            pass
        # The exception's frames held the batch until now; collect them before emptying the cache.
        gc.collect()
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _finish_run(self, status: str, message: str) -> tuple[str, str]:
        """Save the model (finished or stopped runs) and the final status; file errors fail the run."""
        if self.run is None:
            return status, message
        final = {"steps": self._step, "epochs": self._last_val.get("epoch"),
                 "val_acc": self._last_val.get("val_acc"), "val_loss": self._last_val.get("val_loss")}
        try:
            if status in ("finished", "stopped"):
                self.run.save_model(self.model, self.data.classes, preprocess_of(self.data),
                                    extra={"train": self.config.to_dict(), "status": status})
        except Exception as exc:  # noqa: BLE001
            status, message = "failed", f"could not save the model to {self.run.path}: {exc}"
        try:
            self.run.finish(status, message, final)
        except Exception as exc:  # noqa: BLE001
            status, message = "failed", f"could not write the run's status to {self.run.path}: {exc}"
        return status, message

    def _train(self) -> tuple[str, str]:
        cfg = self.config
        device = self.device = resolve_device(cfg.device)
        bf16 = cfg.bf16 if cfg.bf16 is not None else device.type == "cuda"
        channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = self.model.to(device=device, memory_format=memory_format)
        forward = torch.compile(model) if cfg.compile else model
        train_x, train_y, on_device = _place(self.data.train, device)
        val_x, val_y, _ = _place(self.data.val, device)
        norm = _Normalizer(self.data.mean, self.data.std, device, memory_format)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise TrainerError("the model has no trainable parameters (is every layer frozen?)")
        optimizer = make_optimizer(cfg, params)
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        shuffle = torch.Generator().manual_seed(cfg.seed)
        augment_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
        # A host sync per step is free on the CPU but stalls a GPU's queue: batch them there.
        sync_every = 1 if device.type == "cpu" else 16
        where = "data on the device" if on_device else "data in host memory"
        message = (f"training on {device} ({where}{', bf16' if bf16 else ''}{', channels_last' if channels_last else ''}"
                   f"): {self.total_steps} steps, {self.epochs} epoch(s) of {self.steps_per_epoch} batches of "
                   f"{self.batch_size}")
        self._emit({"type": "status", "status": "running", "time": self._now(), "step": 0, "message": message,
                    "device": str(device), "total_steps": self.total_steps, "steps_per_epoch": self.steps_per_epoch,
                    "batch_size": self.batch_size}, message=message)

        step = 0
        n, bs = len(train_y), self.batch_size
        for epoch in range(1, self.epochs + 1):
            model.train()
            order = torch.randperm(n, generator=shuffle).to(train_y.device)
            pending: list[tuple] = []
            correct = torch.zeros((), dtype=torch.long, device=device)
            loss_sum = torch.zeros((), device=device)
            seen = 0
            window_start = time.perf_counter()
            for i in range(self.steps_per_epoch):
                if step >= self.total_steps:
                    break
                if self._stop.is_set():
                    self._flush(pending, window_start)
                    return "stopped", f"stopped at step {step} of {self.total_steps} (epoch {epoch})"
                idx = order[i * bs:(i + 1) * bs]
                x = train_x[idx].to(device, non_blocking=True)
                y = train_y[idx].to(device, non_blocking=True)
                if cfg.augment_crop or cfg.augment_flip:
                    x = augment_batch(x, cfg.crop_padding if cfg.augment_crop else 0, cfg.augment_flip, augment_gen)
                lr = lr_at(cfg, step, self.total_steps, self.steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                with autocast():
                    logits = forward(norm(x))
                loss = criterion(logits.float(), y)
                loss.backward()
                grad_norm = global_grad_norm(params)
                optimizer.step()
                step += 1
                loss = loss.detach()
                loss_sum += loss
                correct += (logits.detach().argmax(1) == y).sum()
                seen += len(y)
                pending.append((step, epoch, loss, grad_norm, lr))
                if len(pending) >= sync_every:
                    self._flush(pending, window_start)
                    window_start = time.perf_counter()
            self._flush(pending, window_start)
            done = step >= self.total_steps
            if seen:
                train_stats = {"train_loss": float(loss_sum) * bs / seen, "train_acc": int(correct) / seen}
                if not self._evaluate(model, val_x, val_y, norm, autocast, epoch, step, train_stats):
                    return "stopped", f"stopped at step {step} of {self.total_steps} (epoch {epoch})"
            if done:
                break
        acc = self._last_val.get("val_acc")
        summary = f"; validation accuracy {100 * acc:.2f}%" if acc is not None else ""
        return "finished", f"finished {step} steps ({self.epochs} epochs){summary}"

    def _flush(self, pending: list[tuple], window_start: float) -> None:
        """Turn the steps since the last sync into events (one host sync for all of them)."""
        if not pending:
            return
        losses = torch.stack([p[2] for p in pending]).tolist()
        norms = torch.stack([p[3] for p in pending]).tolist()
        elapsed = max(time.perf_counter() - window_start, 1e-9)
        rate = len(pending) * self.batch_size / elapsed
        now = self._now()
        for (step, epoch, _, _, lr), loss, gnorm in zip(pending, losses, norms):
            if not math.isfinite(loss):
                pending.clear()
                raise _Diverged(step, loss, lr)
            self._emit({"type": "step", "step": step, "epoch": epoch, "train_loss": loss, "lr": lr,
                        "samples_per_s": rate, "grad_norm": gnorm, "time": now})
        pending.clear()

    @torch.no_grad()
    def _evaluate(self, model: nn.Module, x: Tensor, y: Tensor, norm: _Normalizer, autocast: Any,
                  epoch: int, step: int, train_stats: dict[str, float]) -> bool:
        """Validation loss and accuracy as an epoch event; False when Stop came in the middle."""
        event: dict[str, Any] = {"type": "epoch", "epoch": epoch, "step": step, **train_stats}
        if len(y):
            model.eval()
            loss_sum = torch.zeros((), device=self.device)
            correct = torch.zeros((), dtype=torch.long, device=self.device)
            for start in range(0, len(y), self.config.eval_batch_size):
                if self._stop.is_set():
                    return False
                xb = x[start:start + self.config.eval_batch_size].to(self.device, non_blocking=True)
                yb = y[start:start + self.config.eval_batch_size].to(self.device, non_blocking=True)
                with autocast():
                    logits = model(norm(xb)).float()
                loss_sum += F.cross_entropy(logits, yb, reduction="sum")
                correct += (logits.argmax(1) == yb).sum()
            model.train()
            event.update(val_loss=float(loss_sum) / len(y), val_acc=int(correct) / len(y))
            self._last_val = {"epoch": epoch, "val_loss": event["val_loss"], "val_acc": event["val_acc"]}
        event["time"] = self._now()
        self._emit(event)
        return True


class _Normalizer:
    """uint8 -> float (x/255 - mean)/std in one fused multiply-add, in the training memory format."""

    def __init__(self, mean: Any, std: Any, device: torch.device, memory_format: torch.memory_format):
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -mean_t / std_t
        self.memory_format = memory_format

    def __call__(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.shift, x.float(), self.scale).contiguous(memory_format=self.memory_format)


def _place(images: ImageSet, device: torch.device) -> tuple[Tensor, Tensor, bool]:
    """The set's tensors on `device` when they fit (half the free GPU memory at most), else on the host."""
    x, y = images.images, images.labels
    if device.type == "cpu":
        return x.cpu(), y.cpu(), True
    need = x.numel() * x.element_size() + y.numel() * y.element_size()
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        fits = need < free // 2
    else:
        fits = need < 2 * 1024**3
    if fits:
        return x.to(device), y.to(device), True
    if device.type == "cuda":
        return x.cpu().pin_memory(), y.cpu().pin_memory(), False
    return x.cpu(), y.cpu(), False


def create_trainer(model: nn.Module, data: DataBundle, config: TrainConfig,
                   runs_dir: str | Path | None = None, name: str | None = None,
                   save: bool = True) -> Trainer:
    """A Trainer with its run folder made (config.json written); call .start() on it."""
    run = None
    if save:
        cfg = getattr(model, "config", None)
        if not isinstance(cfg, ResNetConfig):
            raise TrainerError("only ResNet models built by resnet_core can be saved as runs")
        trainer = Trainer(model, data, config)  # validates model/data before a folder is made
        run = Run.create(runs_dir, cfg, config.to_dict(), dict(data.description), list(data.classes),
                         preprocess_of(data), name=name)
        trainer.run = run
        return trainer
    return Trainer(model, data, config, run)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m resnet_core.train",
        description="Train a ResNet from resnet_core and save the run (config.json, metrics.jsonl, model.pt).")
    d = TrainConfig()
    model = p.add_argument_group("model")
    model.add_argument("--preset", default="resnet20", help="a preset name, e.g. resnet20, plain20, resnet18")
    model.add_argument("--model-config", type=Path, help="a ResNetConfig JSON file (overrides --preset)")
    model.add_argument("--finetune", action="store_true",
                       help="start from torchvision ImageNet weights of --preset (resnet18/34/50/101/152)")
    model.add_argument("--freeze-backbone", action="store_true", help="with --finetune: train only the new head")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="shapes", choices=["shapes", "cifar10", "cifar100", "imagefolder"])
    data.add_argument("--data-root", help="folder of CIFAR files or an ImageFolder (folder or .zip)")
    data.add_argument("--n-train", type=int, default=5000, help="training images (Shapes; cap for others)")
    data.add_argument("--n-val", type=int, default=1000, help="validation images")
    data.add_argument("--image-size", type=int, default=32)
    data.add_argument("--data-seed", type=int, default=0, help="seed of the generated/sampled dataset")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=d.epochs)
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    t.add_argument("--lr", type=float, default=d.lr)
    t.add_argument("--momentum", type=float, default=d.momentum)
    t.add_argument("--nesterov", action="store_true")
    t.add_argument("--weight-decay", type=float, default=d.weight_decay)
    t.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    t.add_argument("--milestones", type=float, nargs="+", default=list(d.milestones))
    t.add_argument("--gamma", type=float, default=d.gamma)
    t.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    t.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    t.add_argument("--no-crop", action="store_true", help="no random crop")
    t.add_argument("--no-flip", action="store_true", help="no random flip")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--device", choices=DEVICES, default=d.device)
    t.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="default: on for CUDA")
    t.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="default: on for CUDA")
    t.add_argument("--compile", action="store_true")
    t.add_argument("--max-steps", type=int)
    out = p.add_argument_group("output")
    out.add_argument("--runs-dir", type=Path, help="default: $RESNET_EXPLORER_RUNS_DIR or ./runs")
    out.add_argument("--name", help="run folder name (default: time-arch-dataset)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        momentum=args.momentum, nesterov=args.nesterov, weight_decay=args.weight_decay, schedule=args.schedule,
        milestones=tuple(args.milestones), gamma=args.gamma, warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing, augment_crop=not args.no_crop, augment_flip=not args.no_flip,
        seed=args.seed, device=args.device, bf16=args.bf16, channels_last=args.channels_last,
        compile=args.compile, max_steps=args.max_steps)


def _model_config_from_args(args: argparse.Namespace) -> ResNetConfig:
    """Checked before the data is loaded, so a typo fails at once."""
    if args.model_config is None:
        return get_preset(args.preset)
    try:
        return ResNetConfig.from_json(args.model_config.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--model-config: cannot read {args.model_config} ({exc.strerror})") from None


def _model_from_args(args: argparse.Namespace, cfg: ResNetConfig, num_classes: int, seed: int) -> nn.Module:
    if args.finetune:
        from .weights import finetune_model

        return finetune_model(args.preset, num_classes, freeze_backbone=args.freeze_backbone)
    return build_model_for(cfg, num_classes, seed)


def _watch(trainer: Trainer, show_progress: bool) -> None:
    """Follow the trainer from the main thread with a progress bar; Ctrl-C stops it cleanly."""
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=trainer.total_steps, unit="step", file=sys.stderr, dynamic_ncols=True)
    try:
        while not trainer.join(0.25):
            if bar is not None:
                _update_bar(bar, trainer.snapshot())
    except KeyboardInterrupt:
        print("\nstopping (finishing the current step)...", file=sys.stderr)
        trainer.stop()
        trainer.join()
    if bar is not None:
        _update_bar(bar, trainer.snapshot())
        bar.close()


def _update_bar(bar: Any, snap: TrainerSnapshot) -> None:
    bar.update(snap.step - bar.n)
    steps, epochs = snap.steps, snap.epochs
    post = {}
    if steps:
        post["loss"] = f"{steps[-1]['train_loss']:.3f}"
        post["img/s"] = f"{steps[-1]['samples_per_s']:.0f}"
    if epochs and epochs[-1].get("val_acc") is not None:
        post["val_acc"] = f"{100 * epochs[-1]['val_acc']:.1f}%"
    bar.set_postfix(post, refresh=False)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from .data import DatasetError, DatasetSpec, load_dataset
    from .weights import WeightsUnavailableError

    try:
        config = _config_from_args(args)
        spec = DatasetSpec(kind=args.dataset, root=args.data_root, n_train=args.n_train, n_val=args.n_val,
                           seed=args.data_seed, image_size=args.image_size)
        resolve_device(config.device)
        model_cfg = _model_config_from_args(args)
        data = load_dataset(spec)
        if args.finetune:
            data = with_pretrained_stats(data)
        model = _model_from_args(args, model_cfg, len(data.classes), config.seed)
        trainer = create_trainer(model, data, config, runs_dir=args.runs_dir, name=args.name)
    except (TrainConfigError, ConfigError, DatasetError, TrainerError, WeightsUnavailableError, ValueError,
            OSError) as exc:
        parser.error(str(exc))
    print(f"run folder: {trainer.run.path}", file=sys.stderr)
    trainer.start()
    _watch(trainer, not args.no_progress)
    snap = trainer.snapshot()
    if snap.status in ("diverged", "failed"):
        print(f"error: {snap.message}", file=sys.stderr)
        return 1
    print(snap.message, file=sys.stderr)
    epochs = snap.validated_epochs
    if epochs:
        print(f"final validation accuracy: {100 * epochs[-1]['val_acc']:.2f}%")
    else:
        print("final validation accuracy: n/a (stopped before the first validation)")
    return 0


__all__ = [
    "TrainConfig",
    "TrainConfigError",
    "Trainer",
    "TrainerBusyError",
    "TrainerError",
    "TrainerSnapshot",
    "USUAL_LR",
    "augment_batch",
    "build_model_for",
    "check_idle",
    "create_trainer",
    "global_grad_norm",
    "lr_at",
    "lr_schedule",
    "main",
    "make_optimizer",
    "preprocess_of",
    "resolve_device",
    "schedule_preview",
    "validate_train_config",
    "with_pretrained_stats",
]


if __name__ == "__main__":
    sys.exit(main())

