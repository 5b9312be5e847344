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

Run folders are outside input: nothing here raises on a damaged folder while listing. `list_runs` reports
it with Status.DAMAGED and the reason (or, for a value of the wrong type, ignores that value and says so),
so one broken run never hides the others.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .. import json_limits
from ..model.checkpoint import CheckpointError, atomic_write_bytes, load_checkpoint, save_checkpoint
from ..model.config import PRESETS, ResNetConfig
from ..model.model import build_model
from ..status import Status
from .events import Event, StatusEvent, event_from_dict, event_to_dict
from .liveness import Heartbeat, still_running
from .safe_read import (
    MAX_CHECKPOINT_BYTES,
    MAX_CONFIG_BYTES,
    MAX_METRICS_BYTES,
    UnsafeFileError,
    read_bytes,
    read_text,
    unreadable,
)

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


@dataclass
class RunInfo:
    """One row of the run history."""

    name: str
    path: Path
    status: Status
    reason: str = ""  # why it is damaged, or the trainer's closing message
    created: str = ""
    arch: str = ""
    dataset: str = ""
    epochs: int | None = None
    steps: int | None = None
    val_acc: float | None = None
    val_loss: float | None = None
    has_model: bool = False
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    saved_epoch: int | None = None  # the epoch end whose weights model.pt holds, when config.json records one
    planned_epochs: int | None = None

    @property
    def owner(self) -> str | None:
        """Who started it (serving.identity): a visitor's hash, "terminal", or None for a run from before owners."""
        owner = self.config.get("owner")
        return owner if isinstance(owner, str) else None

    @property
    def partial(self) -> bool:
        """Its model.pt holds an epoch end, not the run's end: it was cut off, failed or diverged after it."""
        return self.has_model and self.saved_epoch is not None and not self.status.kept_weights

    @property
    def openable(self) -> bool:
        """Has weights worth opening (e.g. on Grad-CAM): its final ones, or its last whole epoch's."""
        return self.has_model and (self.status.kept_weights or self.partial)

    @property
    def weights_note(self) -> str:
        """What the weights are, for a title: "" for a run's final weights, else e.g. "last epoch 1 of 3"."""
        if not self.partial:
            return ""
        of = f" of {self.planned_epochs}" if self.planned_epochs else ""
        state = "is still training" if self.status is Status.RUNNING else self.status.value
        return f"last epoch {self.saved_epoch}{of}: the run {state}"

    def record(self) -> dict[str, Any]:
        """A flat dict for a table."""
        return {"run": self.name, "status": self.status.value, "model": self.arch, "dataset": self.dataset,
                "epochs": self.epochs, "steps": self.steps,
                "val acc %": None if self.val_acc is None else round(100 * self.val_acc, 2),
                "val loss": self.val_loss, "created": self.created, "note": self.reason}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _fraction(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0
    return float(value) if ok else None


def _loss(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return float(value) if ok else None


class _Fields:
    """Typed reads of a config.json's values: one of the wrong type reads as None and is named in `wrong`."""

    def __init__(self) -> None:
        self.wrong: list[str] = []

    def get(self, section: dict[str, Any], key: str, check: Any, where: str = "") -> Any:
        if section.get(key) is None:
            return None
        value = check(section[key])
        if value is None:
            self.wrong.append(f"{where}{key}")
        return value

    def section(self, info: dict[str, Any], key: str) -> dict[str, Any]:
        value = info.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.wrong.append(key)
            return {}
        return value


def _read_config(path: Path) -> dict[str, Any] | str:
    """config.json's object, or why it cannot be read."""
    file = path / CONFIG_FILE
    try:
        info = json_limits.loads(read_text(file, MAX_CONFIG_BYTES, folder=path))
    except FileNotFoundError:
        return f"{CONFIG_FILE} is missing"
    except UnsafeFileError as exc:  # a FIFO, a device, a link out of the folder, too large: never read
        return str(exc)
    except json_limits.JSONTooDeepError as exc:
        return f"{CONFIG_FILE} is not read: {exc}"
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"{CONFIG_FILE} is not valid JSON ({exc})"
    except OSError as exc:
        return f"{CONFIG_FILE} could not be read ({exc.strerror or exc})"
    return info if isinstance(info, dict) else f"{CONFIG_FILE} does not hold a JSON object"


def _interrupted_reason(why: str, saved_epoch: int | None, planned: int | None, step: int | None) -> str:
    if saved_epoch is None:
        return f"cut off before its first epoch ended: {why}"
    of = f" of {planned}" if planned else ""
    at = f" (step {step})" if step is not None else ""
    return f"cut off after epoch {saved_epoch}{of}{at}: {why}; {MODEL_FILE} holds epoch {saved_epoch}'s weights"


def read_run(path: str | Path) -> RunInfo:
    """Describe one run folder; a folder that cannot be read comes back with Status.DAMAGED. Values of the
    wrong type (e.g. "final": {"val_acc": "high"}) are ignored and named in the reason."""
    path = Path(path)
    damaged = lambda reason: RunInfo(path.name, path, Status.DAMAGED, reason)
    info = _read_config(path)
    if isinstance(info, str):
        return damaged(info)
    missing = [k for k in ("model", "train", "dataset", "status") if k not in info]
    if missing:
        return damaged(f"{CONFIG_FILE} lacks {missing}")
    not_objects = [k for k in ("model", "train", "dataset") if not isinstance(info[k], dict)]
    if not_objects:
        return damaged(f"{CONFIG_FILE}: {', '.join(not_objects)} must be JSON objects")
    metrics_problem = unreadable(path / METRICS_FILE, folder=path)  # a FIFO or a device is no metrics file
    if metrics_problem:
        return damaged(metrics_problem)
    status = Status.of(info["status"]) if isinstance(info["status"], str) else None
    if status is None or status in (Status.DAMAGED, Status.IDLE, Status.QUEUED):
        return damaged(f"{CONFIG_FILE} records an unknown status {repr(info['status'])[:80]}")
    has_model = (path / MODEL_FILE).is_file()
    if status.kept_weights and not has_model:
        return damaged(f"the run {status} but {MODEL_FILE} is missing")
    f = _Fields()
    final, mark = f.section(info, "final"), f.section(info, "checkpoint")
    train, dataset = info["train"], info["dataset"]
    classes = info.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        f.wrong.append("classes")
    if not isinstance(info.get("preprocess", {}), dict):
        f.wrong.append("preprocess")
    reason = f.get(info, "message", _text) or ""
    saved_epoch = f.get(mark, "epoch", _count, "checkpoint.") if has_model else None
    planned = f.get(train, "epochs", _count, "train.")
    epochs, steps = f.get(final, "epochs", _count, "final."), f.get(final, "steps", _count, "final.")
    val_acc, val_loss = f.get(final, "val_acc", _fraction, "final."), f.get(final, "val_loss", _loss, "final.")
    if not final and mark:  # still running, or cut off: the last whole epoch's numbers
        epochs, steps = saved_epoch, f.get(mark, "step", _count, "checkpoint.")
        val_acc = f.get(mark, "val_acc", _fraction, "checkpoint.")
        val_loss = f.get(mark, "val_loss", _loss, "checkpoint.")
    elif "epochs" not in final:
        epochs = planned
    if status is Status.RUNNING:
        alive, why = still_running(path, info)
        if not alive:
            status, reason = Status.INTERRUPTED, _interrupted_reason(why, saved_epoch, planned, steps)
    elif saved_epoch is not None and not status.kept_weights:
        reason = f"{reason} ({MODEL_FILE} holds epoch {saved_epoch}'s weights)".lstrip()
    if f.wrong:
        reason = (f"{reason}; " if reason else "") + \
            f"{CONFIG_FILE} has values of the wrong type (ignored): {', '.join(sorted(set(f.wrong)))}"
    return RunInfo(
        name=path.name, path=path, status=status, reason=reason,
        created=f.get(info, "created", _text) or "", arch=f.get(info, "arch", _text) or "",
        dataset=_text(dataset.get("name")) or _text(dataset.get("kind")) or "",
        epochs=epochs, steps=steps, val_acc=val_acc, val_loss=val_loss, has_model=has_model, config=info,
        saved_epoch=saved_epoch, planned_epochs=planned,
    )


def list_runs(runs_dir: str | Path | None = None) -> list[RunInfo]:
    """Every run folder under `runs_dir`, newest first. Never raises for a damaged run."""
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if not runs_dir.is_dir():
        return []
    runs = [read_run(p) for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(runs, key=lambda r: (r.created, r.name), reverse=True)


MAX_RUN_NAME = 200


def find_run(runs_dir: str | Path, name: object) -> Path | None:
    """The run folder `runs_dir/name` when `name` (outside text: a link, a form) is a plain folder name of a run
    there; None otherwise, so a link can never point outside the runs folder."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_RUN_NAME or name.startswith(".") \
            or any(c in name for c in "/\\\0") or name != name.strip():
        return None
    path = Path(runs_dir) / name
    return path if (path / CONFIG_FILE).is_file() else None


def _run_dir(run_dir: str | Path) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"no run folder at {path}")
    return path


def load_metrics(run_dir: str | Path, skip_damaged: bool = False) -> list[Event]:
    """The metric events of a run, typed. A truncated last line (a run cut off mid-write) is skipped, and so is
    a line that is valid JSON but no event (event_from_dict rejects it). A line that is not JSON elsewhere is a
    RunError saying the file is damaged, or skipped too with `skip_damaged`."""
    path = _run_dir(run_dir) / METRICS_FILE
    try:
        lines = read_text(path, MAX_METRICS_BYTES, folder=path.parent, errors="replace").splitlines()
    except FileNotFoundError:
        raise RunError(f"{path} is missing: this run has no metrics") from None
    except UnsafeFileError as exc:
        raise RunError(f"{path.parent.name}: {exc}") from None
    except OSError as exc:
        raise RunError(f"{path} could not be read ({exc.strerror or exc})") from None
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json_limits.loads(line)
        except ValueError:  # not JSON, or nested too deeply
            if number == len(lines) or skip_damaged:
                continue  # the writer was interrupted mid-line (or the caller takes what can be read)
            raise RunError(f"{path}, line {number}, is not valid JSON: the metrics file is damaged") from None
        typed = event_from_dict(event)
        if typed is not None:
            events.append(typed)
    return events


def metrics_csv(run_dir: str | Path) -> str:
    """All metric events of a run as CSV text (one row per event, empty cells where an event has no value).
    Lines of metrics.jsonl that cannot be read are left out, so a damaged line never empties the export."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(METRIC_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for event in load_metrics(run_dir, skip_damaged=True):
        writer.writerow(event_to_dict(event))
    return buffer.getvalue()


def load_run_model(run_dir: str | Path) -> tuple[nn.Module, list[str], dict[str, Any]]:
    """The trained model of a run (in eval mode, on the CPU), its class names and its preprocessing."""
    path = _run_dir(run_dir) / MODEL_FILE
    if not path.is_file():
        raise RunError(f"{path} is missing: this run saved no model (it may have diverged, failed or still be running)")
    try:
        ckpt = load_checkpoint(read_bytes(path, MAX_CHECKPOINT_BYTES, folder=path.parent))
    except UnsafeFileError as exc:
        raise RunError(f"{path.parent.name}: {exc}") from None
    except OSError as exc:
        raise RunError(f"{path} could not be read ({exc.strerror or exc})") from None
    except CheckpointError as exc:
        raise RunError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a run folder is outside input: never a traceback
        raise RunError(f"{path} could not be read as a checkpoint ({type(exc).__name__}: {exc})") from None
    if ckpt.config is None:
        raise RunError(f"{path} does not record the model's config, so the model cannot be rebuilt")
    try:
        model = build_model(ckpt.config)
        model.load_state_dict(ckpt.state_dict, strict=True)
    except (RuntimeError, ValueError, TypeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise RunError(f"{path}: the weights do not fit the recorded config ({first})") from None
    classes, preprocess = ckpt.classes, ckpt.preprocess
    if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
        raise RunError(f"{path}: its class names are not a list of text")
    if preprocess is not None and not isinstance(preprocess, dict):
        raise RunError(f"{path}: its preprocessing is not a JSON object")
    model.eval()
    return model, list(classes or []), dict(preprocess or {})


__all__ = [
    "METRIC_COLUMNS",
    "RUNS_DIR_ENV",
    "STOP_FILE",
    "Run",
    "RunError",
    "RunInfo",
    "arch_name",
    "default_runs_dir",
    "find_run",
    "list_runs",
    "load_metrics",
    "load_run_model",
    "metrics_csv",
    "read_run",
    "request_stop",
]
