"""The Trainer: trains a model on in-memory data in a background thread and reports typed events."""

from __future__ import annotations

import dataclasses
import gc
import math
import time
from collections import deque
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..background import OneShotWorker
from ..data.containers import IMAGENET_MEAN, IMAGENET_STD, DataBundle, ImageSet
from ..data.transforms import Normalizer, augment_batch
from ..model.config import ResNetConfig
from ..status import Status
from .config import TrainConfig, TrainerBusyError, TrainerError, resolve_device
from .distributed import DistContext, broadcast_buffers, rank_device, shard, sum_all, take, wrap
from .events import EpochEvent, Event, StatusEvent, StepEvent, ValEvent
from .faults import friendly_failure, untrainable_reason
from .optim import global_grad_norm, make_optimizer
from .precision import Precision, choose_precision
from .runs import Run
from .schedule import RunPlan, lr_at
from .snapshot import TrainerSnapshot
from .verdict import WINDOW, did_not_learn


def with_pretrained_stats(data: DataBundle) -> DataBundle:
    """The same data normalised with ImageNet's mean/std, as torchvision's pretrained weights expect."""
    return dataclasses.replace(data, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def check_idle(trainer: Trainer | None) -> None:
    """TrainerBusyError when `trainer` (e.g. the one a browser session holds) is still training."""
    if trainer is not None and trainer.is_running:
        raise TrainerBusyError(f"a training run is already in progress (step {trainer.step} of "
                               f"{trainer.total_steps}); press Stop or wait for it to finish before starting another")


def preprocess_of(data: DataBundle) -> dict[str, Any]:
    """What an inference page needs to feed images to the trained model."""
    return {"mean": list(data.mean), "std": list(data.std), "image_size": int(data.train.images.shape[-1])}


class _Diverged(Exception):
    def __init__(self, step: int, value: float, lr: float):
        kind = "NaN" if math.isnan(value) else "infinite"
        super().__init__(f"diverged at step {step}: the training loss became {kind} (learning rate {lr:.3g}) "
                         "— lower the learning rate or add warm-up")


class Trainer(OneShotWorker):
    """Trains `model` on `data` in a background thread; see the module docstring."""

    def __init__(self, model: nn.Module, data: DataBundle, config: TrainConfig, run: Run | None = None,
                 dist: DistContext | None = None):
        """`dist`: this process's rank under torchrun (distributed.start()); None trains in this process alone."""
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        super().__init__("resnet-trainer")
        self.model, self.data, self.config, self.run, self.dist = model, data, config, run, dist
        n = len(data.train.labels)
        if n == 0:
            raise TrainerError("the training set is empty: give the dataset at least one image per class")
        self._check_classes(model, data)
        plan = RunPlan.of(config, n)
        self.batch_size, self.steps_per_epoch = plan.batch_size, plan.steps_per_epoch
        self.total_steps, self.epochs = plan.total_steps, plan.epochs
        if dist is not None and plan.batch_size < dist.world_size:
            raise TrainerError(f"batch size {plan.batch_size} is smaller than the {dist.world_size} processes: each "
                               f"process needs at least one image of every batch; use a batch of {dist.world_size} "
                               "or more, or fewer processes")
        cfg = getattr(model, "config", None)
        if isinstance(cfg, ResNetConfig):  # refused here, not with BatchNorm's error at the first step
            per_process = plan.batch_size // (dist.world_size if dist is not None else 1)
            reason = untrainable_reason(cfg, tuple(data.train.images.shape[-2:]), per_process)
            if reason:
                raise TrainerError(reason)
        self.device: torch.device | None = None
        self._agreed_stop = False  # under torchrun: the Stop every rank agreed on at the last flush
        self._events: list[Event] = []
        self._status = Status.IDLE
        self._message = ""
        self._step = 0
        self._t0 = 0.0
        self._last_val: EpochEvent | None = None  # the newest epoch that ended with a validation pass
        self._first_loss: float | None = None  # the first and last training losses: did the run learn?
        self._last_losses: deque[float] = deque(maxlen=WINDOW)
        self._saved_epoch: int | None = None  # the newest epoch end checkpointed in the run folder

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
            self._status, self._message = Status.RUNNING, "starting"

        self._start_once(busy, mark_running)
        return self

    @property
    def status(self) -> Status:
        return self._status

    @property
    def message(self) -> str:
        return self._message

    @property
    def is_running(self) -> bool:
        """True from start() until the final status is set (files are written by then)."""
        return self._status is Status.RUNNING

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
        if self._status is not Status.RUNNING:
            return frac, 0.0 if self._status is not Status.IDLE else None
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

    def _emit(self, event: Event, status: Status | None = None, message: str | None = None) -> None:
        if self.run is not None:
            self.run.log(event)
        with self._lock:
            self._events.append(event)
            if isinstance(event, StepEvent):
                self._step = event.step
            if status is not None:
                self._status = status
            if message is not None:
                self._message = message

    def _now(self) -> float:
        return round(time.perf_counter() - self._t0, 4)

    def _stop_asked(self) -> bool:
        """Stop pressed in this process, or the run folder's stop file (request_stop) written by anyone."""
        return self._stop.is_set() or (self.run is not None and self.run.stop_requested())

    def _stop_wanted(self) -> bool:
        # Under torchrun every rank must leave at the same step (a rank that stops alone leaves the others
        # waiting in a collective), so they follow the decision taken together at the last flush.
        return self._agreed_stop if self.dist is not None else self._stop_asked()

    def _main(self) -> None:
        self._t0 = time.perf_counter()
        try:
            status, message = self._train()
        except _Diverged as exc:
            status, message = Status.DIVERGED, str(exc)
        except Exception as exc:  # noqa: BLE001 - a training bug must never take the server down
            # Memory errors (CPU, CUDA, MPS) and BatchNorm's single-value error say what to change.
            status, message = Status.FAILED, friendly_failure(exc, self.device, self.batch_size,
                                                              int(self.data.train.images.shape[-1]))
        self._free_memory()
        if status is Status.FINISHED:
            cfg = getattr(self.model, "config", None)
            verdict = did_not_learn(self.config, self._step, len(self.data.classes), self._first_loss,
                                    list(self._last_losses), self._last_val.val_acc if self._last_val else None,
                                    cfg if isinstance(cfg, ResNetConfig) else None)
            if verdict:
                status, message = Status.DID_NOT_LEARN, verdict
        status, message, logged = self._finish_run(status, message)
        # _finish_run wrote the closing event to metrics.jsonl before closing it: the same one in memory.
        same = logged is not None and logged.status is status and logged.message == message
        self._emit(logged if same else StatusEvent(status, message, self._step, self._now()), status=status,
                   message=message)

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

    def _finish_run(self, status: Status, message: str) -> tuple[Status, str, StatusEvent | None]:
        """Save the model (finished, stopped or did-not-learn runs; the others keep their last epoch's
        checkpoint) and the final status: the closing event in metrics.jsonl, then config.json. File errors
        fail the run."""
        if self.run is None:
            return status, message, None
        last = self._last_val
        final = {"steps": self._step, "epochs": last.epoch if last else None,
                 "val_acc": last.val_acc if last else None, "val_loss": last.val_loss if last else None}
        try:
            if status.kept_weights:
                self.run.save_model(self.model, self.data.classes, preprocess_of(self.data),
                                    extra={"train": self.config.to_dict(), "status": status.value,
                                           "step": self._step, "epoch": self._saved_epoch})
        except Exception as exc:  # noqa: BLE001
            status, message = Status.FAILED, f"could not save the model to {self.run.path}: {exc}"
        event = StatusEvent(status, message, self._step, self._now())
        try:
            self.run.finish(status, message, final, event=event)
        except Exception as exc:  # noqa: BLE001
            status, message = Status.FAILED, f"could not write the run's status to {self.run.path}: {exc}"
        return status, message, event

    def _save_epoch(self, epoch: int, step: int) -> None:
        """The atomic checkpoint of an epoch end: a run killed later keeps these weights."""
        if self.run is None:
            return
        last = self._last_val if self._last_val is not None and self._last_val.epoch == epoch else None
        self.run.save_epoch(self.model, self.data.classes, preprocess_of(self.data), epoch, step,
                            last.val_acc if last else None, last.val_loss if last else None,
                            extra={"train": self.config.to_dict(), "status": Status.RUNNING.value})
        self._saved_epoch = epoch

    def _train(self) -> tuple[Status, str]:
        cfg = self.config
        device = resolve_device(cfg.device)
        device = self.device = rank_device(device, self.dist.local_rank) if self.dist else device
        if self.dist is not None and device.type == "cpu":  # every rank must agree: no per-rank measurement
            precision = Precision(bool(cfg.bf16), bool(cfg.channels_last), "several processes: fp32 unless asked")
        else:  # measured on this CPU for this model and batch (precision.py); the probe's time counts in the run's
            precision = choose_precision(self.model, device, self.batch_size, int(self.data.train.images.shape[-1]),
                                         cfg.bf16, cfg.channels_last)
        bf16, channels_last = precision.bf16, precision.channels_last
        if self.run is not None:
            self.run.note(precision=precision.to_dict())
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = self.model.to(device=device, memory_format=memory_format)
        ddp = model
        if self.dist is not None:
            # Keep the bare model (SyncBatchNorm-converted if asked): it is what gets saved and validated.
            model, ddp = wrap(model, self.dist, device)
            self.model = model
        forward = torch.compile(ddp) if cfg.compile else ddp
        train_x, train_y, on_device = _place(self.data.train, device)
        val_x, val_y, _ = _place(shard(self.data.val, self.dist) if self.dist else self.data.val, device)
        norm = Normalizer(self.data.mean, self.data.std, device, memory_format)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise TrainerError("the model has no trainable parameters (is every layer frozen?)")
        optimizer = make_optimizer(cfg, params)
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        if self.dist is not None:
            # Each rank's loss is its slice's summed loss over the global batch's length (all-reduced with SUM,
            # the global batch's mean loss, as logged). DDP averages gradients over the ranks, so backward runs
            # on world_size times it: the average is then exactly the gradient of that global mean.
            summed = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing, reduction="sum")
            criterion = lambda out, target: summed(out, target) / self.batch_size
        augment = cfg.augment_crop or cfg.augment_flip
        shuffle = torch.Generator().manual_seed(cfg.seed)
        augment_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
        # A host sync per step is free on the CPU but stalls a GPU's queue: batch them there.
        sync_every = 1 if device.type == "cpu" else 16
        where = "data on the device" if on_device else "data in host memory"
        on = f"{self.dist.world_size} processes ({device.type}, " if self.dist else f"{device} ("
        message = (f"training on {on}{where}, {precision.describe()}"
                   f"): {self.total_steps} steps, {self.epochs} epoch(s) of {self.steps_per_epoch} batches of "
                   f"{self.batch_size}")
        self._emit(StatusEvent(Status.RUNNING, message, step=0, time=self._now(), device=str(device),
                               total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
                               batch_size=self.batch_size), message=message)

        step = 0
        n, bs = len(train_y), self.batch_size
        # The steps of an epoch after which a validation pass runs before the epoch's end (val_per_epoch > 1).
        midway = {round(k * self.steps_per_epoch / cfg.val_per_epoch) for k in range(1, cfg.val_per_epoch)} - {0}
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
                if self._stop_wanted():
                    self._flush(pending, window_start)
                    return Status.STOPPED, f"stopped at step {step} of {self.total_steps} (epoch {epoch})"
                idx = order[i * bs:(i + 1) * bs]
                mine = take(idx, self.dist) if self.dist else idx  # this rank's contiguous slice of the batch
                x = train_x[idx if augment else mine].to(device, non_blocking=True)
                y = train_y[mine].to(device, non_blocking=True)
                if augment:
                    # The whole global batch, so every rank draws the crops and flips one process would draw.
                    x = augment_batch(x, cfg.crop_padding if cfg.augment_crop else 0, cfg.augment_flip, augment_gen)
                    x = take(x, self.dist) if self.dist else x
                lr = lr_at(cfg, step, self.total_steps, self.steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                with autocast():
                    logits = forward(norm(x))
                loss = criterion(logits.float(), y)
                (loss * self.dist.world_size if self.dist else loss).backward()
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
                if i + 1 in midway and i + 1 < self.steps_per_epoch and step < self.total_steps:
                    self._flush(pending, window_start)
                    if not self._validate_midway(model, val_x, val_y, norm, autocast, epoch, i + 1, step):
                        return Status.STOPPED, f"stopped at step {step} of {self.total_steps} (epoch {epoch})"
                    window_start = time.perf_counter()
            self._flush(pending, window_start)
            done = step >= self.total_steps
            if seen:
                if self.dist is not None:  # every rank saw its slice: the epoch's sums over all of them
                    loss_sum, correct, seen = sum_all(torch.stack([
                        loss_sum.double(), correct.double(), torch.tensor(float(seen), device=device).double(),
                    ])).tolist()
                train_stats = (float(loss_sum) * bs / seen, int(correct) / seen)  # training loss, accuracy
                if not self._evaluate(model, val_x, val_y, norm, autocast, epoch, step, train_stats):
                    return Status.STOPPED, f"stopped at step {step} of {self.total_steps} (epoch {epoch})"
                self._save_epoch(epoch, step)
            if done:
                break
        acc = self._last_val.val_acc if self._last_val else None
        summary = f"; validation accuracy {100 * acc:.2f}%" if acc is not None else ""
        return Status.FINISHED, f"finished {step} steps ({self.epochs} epochs){summary}"

    def _flush(self, pending: list[tuple], window_start: float) -> None:
        """Turn the steps since the last sync into events (one host sync for all of them)."""
        if not pending:
            return
        if self.dist is None:
            losses = torch.stack([p[2] for p in pending]).tolist()
        else:
            # One small all-reduce per flush: the ranks' loss parts (summing to the global batch's mean loss, so
            # every rank sees the same values and a divergence stops them all) and a Stop flag: any rank's Stop,
            # or rank 0's stop file, stops every rank at the same step.
            stop = torch.tensor([float(self._stop_asked())], device=pending[0][2].device)
            *losses, agreed = sum_all(torch.cat([torch.stack([p[2] for p in pending]).float(), stop])).tolist()
            self._agreed_stop = agreed > 0
        # Grad norms need no all-reduce: after DDP's all-reduce every rank holds the same gradients.
        norms = torch.stack([p[3] for p in pending]).tolist()
        self._first_loss = losses[0] if self._first_loss is None else self._first_loss
        self._last_losses.extend(losses)
        elapsed = max(time.perf_counter() - window_start, 1e-9)
        rate = len(pending) * self.batch_size / elapsed
        now = self._now()
        for (step, epoch, _, _, lr), loss, gnorm in zip(pending, losses, norms):
            if not math.isfinite(loss):
                pending.clear()
                raise _Diverged(step, loss, lr)
            self._emit(StepEvent(step=step, epoch=epoch, train_loss=loss, lr=lr, samples_per_s=rate,
                                 grad_norm=gnorm, time=now))
        pending.clear()

    @torch.no_grad()
    def _measure_val(self, model: nn.Module, x: Tensor, y: Tensor, norm: Normalizer,
                     autocast: Any) -> tuple[float, float] | bool:
        """(validation loss, accuracy); True without a validation set; False when Stop came in the middle."""
        total = len(self.data.val.labels)  # under torchrun `x`, `y` are this rank's shard (perhaps empty)
        if not total:
            return True
        # Under torchrun the agreed Stop cannot change here, so all ranks leave (or stay) together.
        if self._stop_wanted():
            return False
        if self.dist is not None:
            broadcast_buffers(model)
        model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        for start in range(0, len(y), self.config.eval_batch_size):
            if self._stop_wanted():
                model.train()
                return False
            xb = x[start:start + self.config.eval_batch_size].to(self.device, non_blocking=True)
            yb = y[start:start + self.config.eval_batch_size].to(self.device, non_blocking=True)
            with autocast():
                logits = model(norm(xb)).float()
            loss_sum += F.cross_entropy(logits, yb, reduction="sum")
            correct += (logits.argmax(1) == yb).sum()
        model.train()
        if self.dist is not None:
            loss_sum, correct = sum_all(torch.stack([loss_sum.double(), correct.double()])).tolist()
        return float(loss_sum) / total, int(correct) / total

    def _validate_midway(self, model: nn.Module, x: Tensor, y: Tensor, norm: Normalizer, autocast: Any,
                         epoch: int, step_in_epoch: int, step: int) -> bool:
        """A validation pass inside epoch `epoch`, as a ValEvent; False when Stop came in the middle."""
        measured = self._measure_val(model, x, y, norm, autocast)
        if measured is False:
            return False
        if measured is not True:
            self._emit(ValEvent(step=step, epoch=round(epoch - 1 + step_in_epoch / self.steps_per_epoch, 4),
                                val_loss=measured[0], val_acc=measured[1], time=self._now()))
        return True

    def _evaluate(self, model: nn.Module, x: Tensor, y: Tensor, norm: Normalizer, autocast: Any,
                  epoch: int, step: int, train_stats: tuple[float, float]) -> bool:
        """Validation loss and accuracy as an epoch event; False when Stop came in the middle."""
        measured = self._measure_val(model, x, y, norm, autocast)
        if measured is False:
            return False
        val_loss, val_acc = (None, None) if measured is True else measured
        train_loss, train_acc = train_stats
        event = EpochEvent(epoch=epoch, step=step, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                           val_acc=val_acc, time=self._now())
        if val_acc is not None:
            self._last_val = event
        self._emit(event)
        return True


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
                   save: bool = True, dist: DistContext | None = None, owner: str = "terminal") -> Trainer:
    """A Trainer with its run folder made (config.json written); call .start() on it. Under torchrun (`dist`)
    only rank 0 makes the folder: the other ranks train the same run without one."""
    run = None
    if save and (dist is None or dist.is_main):
        cfg = getattr(model, "config", None)
        if not isinstance(cfg, ResNetConfig):
            raise TrainerError("only ResNet models built by resnet_core can be saved as runs")
        trainer = Trainer(model, data, config, dist=dist)  # validates model/data before a folder is made
        run = Run.create(runs_dir, cfg, config.to_dict(), dict(data.description), list(data.classes),
                         preprocess_of(data), name=name, world_size=dist.world_size if dist else 1,
                         owner=owner)
        trainer.run = run
        return trainer
    return Trainer(model, data, config, run, dist=dist)
