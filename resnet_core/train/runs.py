"""Run folders on disk: one folder per training run, readable after a restart.

Layout of a run folder (`<runs dir>/<name>/`):
    config.json    model config, train config, dataset description, classes, preprocess,
                   created time, name, status, and "checkpoint" (the epoch model.pt holds, its
                   validation numbers); rewritten atomically at each epoch end and when the status changes
    metrics.jsonl  one JSON object per metric event, appended and flushed while training; the last one is
                   the closing status event
    model.pt       the weights (checkpoint.save_checkpoint: atomic, weights_only-loadable), rewritten at every
                   epoch end and at the end: a killed run keeps its last whole epoch
    heartbeat      touched every few seconds by the training process (liveness.py): a "running" run whose
                   heartbeat went stale is listed as interrupted, whatever became of its pid
    stop           present when someone asked the run to stop (request_stop); the trainer polls for it
                   every step, so a run stops the same way whoever started it (the app, a terminal)

This module writes them (Run, request_stop); run_reading.py reads them back, treating them as outside input.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

from torch import nn

from ..model.checkpoint import atomic_write_bytes, save_checkpoint
from ..model.config import PRESETS, ResNetConfig
from ..status import Status
from .events import Event, StatusEvent, event_to_dict
from .liveness import Heartbeat

RUNS_DIR_ENV = "RESNET_EXPLORER_RUNS_DIR"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
MODEL_FILE = "model.pt"
STOP_FILE = "stop"
FORMAT_VERSION = 1
RESERVE_FILE = ".reserve"  # space held back while a run trains, freed to record its end on a full disk
RESERVE_BYTES = 256 * 1024

# Columns of metrics_csv, in order; events carry a subset of them.
METRIC_COLUMNS = ("type", "step", "epoch", "train_loss", "lr", "samples_per_s", "grad_norm",
                  "val_loss", "val_acc", "train_acc", "status", "message", "time")


class RunError(ValueError):
    """A run folder is missing or cannot be read."""


def default_runs_dir() -> Path:
    """$RESNET_EXPLORER_RUNS_DIR when set, else ./runs (relative to the working directory)."""
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


def arch_name(cfg: ResNetConfig) -> str:
    """The preset a config comes from (ignoring its class count), else e.g. 'resnet20'/'plain56'."""
    for name, preset in PRESETS.items():
        if preset.replace(num_classes=cfg.num_classes, in_channels=cfg.in_channels) == cfg:
            return name
    return f"{'resnet' if cfg.residual else 'plain'}{cfg.depth}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"


def run_name(*parts: str) -> str:
    """A new run folder's name: the time it starts, then `parts` as slugs ("20261205-130501-resnet-20-shapes"),
    so folders list in the order they were made and say what they hold. The one naming for every run."""
    return "-".join([time.strftime("%Y%m%d-%H%M%S"), *(_slug(p) for p in parts)])


class Run:
    """A run folder being written by one trainer. Methods are safe to call from its thread."""

    def __init__(self, path: Path, info: dict[str, Any]):
        self.path = Path(path)
        self._info = info
        self._lock = threading.Lock()
        self._metrics = open(self.path / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115 - open for the run's life
        self._heartbeat = Heartbeat(self.path)
        try:  # a disk that fills mid-run must still let the run write how it ended (finish frees this first)
            (self.path / RESERVE_FILE).write_bytes(b"\0" * RESERVE_BYTES)
        except OSError:
            (self.path / RESERVE_FILE).unlink(missing_ok=True)

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def create(
        cls,
        runs_dir: str | Path | None,
        model_config: ResNetConfig,
        train_config: dict[str, Any],
        dataset: dict[str, Any],
        classes: list[str],
        preprocess: dict[str, Any],
        name: str | None = None,
        world_size: int = 1,
        owner: str = "terminal",
    ) -> Run:
        """Make a new, uniquely named run folder and write its config.json (status running). `world_size`: the
        processes training it together (torchrun), recorded as "world_size". `owner`: who may stop or remove it
        (a hash of the visitor's id when the app started it; "terminal" from a command line)."""
        runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        runs_dir.mkdir(parents=True, exist_ok=True)
        base = _slug(name) if name else run_name(arch_name(model_config), str(dataset.get("kind", "data")))
        path = _unique_folder(runs_dir, base)
        info = {
            "version": FORMAT_VERSION,
            "name": path.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "status": Status.RUNNING.value,
            "message": "",
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "world_size": int(world_size),
            "owner": str(owner),
            "arch": arch_name(model_config),
            "model": model_config.to_dict(),
            "train": train_config,
            "dataset": dataset,
            "classes": list(classes),
            "preprocess": preprocess,
            "final": {},
        }
        # metrics.jsonl exists before config.json does: a reader that finds the config (a page following the
        # folder, a terminal run) must never meet a run without its metrics file.
        (path / METRICS_FILE).touch()
        _write_json(path / CONFIG_FILE, info)
        return cls(path, info)

    def note(self, **fields: Any) -> None:
        """Add facts learned while training (e.g. the precision chosen) to config.json, rewritten atomically."""
        with self._lock:
            self._info.update(fields)
            _write_json(self.path / CONFIG_FILE, self._info)

    def stop_requested(self) -> bool:
        """Whether request_stop() was called on this folder (one stat call: cheap enough for every step)."""
        return (self.path / STOP_FILE).exists()

    def log(self, event: Event) -> None:
        """Append one metric event as a JSON line; flushed so a reader (or a crash) sees whole lines."""
        line = json.dumps(event_to_dict(event), allow_nan=True) + "\n"
        with self._lock:
            if not self._metrics.closed:
                self._metrics.write(line)
                self._metrics.flush()

    def save_model(self, model: nn.Module, classes: list[str], preprocess: dict[str, Any],
                   extra: dict[str, Any] | None = None) -> Path:
        return save_checkpoint(self.path / MODEL_FILE, model, classes=classes, preprocess=preprocess,
                               extra={"run": self.name, **(extra or {})})

    def save_epoch(self, model: nn.Module, classes: list[str], preprocess: dict[str, Any], epoch: int, step: int,
                   val_acc: float | None, val_loss: float | None, extra: dict[str, Any] | None = None) -> Path:
        """The checkpoint of an epoch end: model.pt rewritten atomically (the epoch in its extra), then
        config.json's "checkpoint" says which epoch it holds and its validation numbers."""
        mark = {"epoch": int(epoch), "step": int(step), "val_acc": val_acc, "val_loss": val_loss,
                "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        path = self.save_model(model, classes, preprocess, extra={**(extra or {}), **mark})
        with self._lock:
            self._info["checkpoint"] = mark
            _write_json(self.path / CONFIG_FILE, self._info)
        return path

    def finish(self, status: Status, message: str = "", final: dict[str, Any] | None = None,
               event: StatusEvent | None = None) -> None:
        """Record how the run ended: `event` (the closing status event) appended to metrics.jsonl, then
        config.json rewritten atomically, then the metrics file closed and the heartbeat stopped."""
        (self.path / RESERVE_FILE).unlink(missing_ok=True)  # the room to write the end, on a full disk too
        try:
            if event is not None:
                self.log(event)
        except OSError:
            pass  # metrics.jsonl keeps its whole lines; config.json below is what records the end
        with self._lock:
            try:
                self._info.update(status=Status(status).value, message=message,
                                  finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), final=final or {})
                _write_json(self.path / CONFIG_FILE, self._info)
            finally:
                try:
                    self._metrics.close()
                except OSError:
                    pass  # its buffer could not be flushed to a full disk: the lines before it are whole
                self._heartbeat.stop(remove=True)


def request_stop(run_dir: str | Path) -> None:
    """Ask the process training `run_dir` to stop: it ends "stopped" within one step, its weights saved."""
    path = _run_dir(run_dir)
    (path / STOP_FILE).write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z"), encoding="utf-8")


def _unique_folder(runs_dir: Path, base: str) -> Path:
    # mkdir without exist_ok is the atomic claim: two runs started in the same second get -2, -3...
    for i in range(1, 10_000):
        path = runs_dir / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunError(f"could not find a free run name for {base!r} in {runs_dir}")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2, allow_nan=True).encode("utf-8"))

def _run_dir(run_dir: str | Path) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"no run folder at {path}")
    return path


__all__ = ["METRIC_COLUMNS", "RUNS_DIR_ENV", "STOP_FILE", "Run", "RunError", "arch_name", "default_runs_dir",
           "request_stop", "run_name"]
