"""Run folders on disk: one folder per training run, readable after a restart.

Layout of a run folder (`<runs dir>/<name>/`):
    config.json    model config, train config, dataset description, classes, preprocess,
                   created time, name, status (rewritten atomically when the status changes)
    metrics.jsonl  one JSON object per metric event, appended and flushed while training
    model.pt       the trained weights (checkpoint.save_checkpoint: atomic, weights_only-loadable)
    stop           present when someone asked the run to stop (request_stop); the trainer polls for it
                   every step, so a run stops the same way whoever started it (the app, a terminal)

Nothing here raises on a damaged folder while listing: `list_runs` reports it with
Status.DAMAGED and the reason, so one broken run never hides the others.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..model.checkpoint import CheckpointError, atomic_write_bytes, load_checkpoint, save_checkpoint
from ..model.config import PRESETS, ResNetConfig
from ..model.model import build_model
from ..status import Status
from .events import Event, event_from_dict, event_to_dict

RUNS_DIR_ENV = "RESNET_EXPLORER_RUNS_DIR"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
MODEL_FILE = "model.pt"
STOP_FILE = "stop"
FORMAT_VERSION = 1

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


class Run:
    """A run folder being written by one trainer. Methods are safe to call from its thread."""

    def __init__(self, path: Path, info: dict[str, Any]):
        self.path = Path(path)
        self._info = info
        self._lock = threading.Lock()
        self._metrics = open(self.path / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115 - open for the run's life

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
    ) -> Run:
        """Make a new, uniquely named run folder and write its config.json (status running). `world_size`: the
        processes training it together (torchrun), recorded as "world_size"."""
        runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        runs_dir.mkdir(parents=True, exist_ok=True)
        base = _slug(name) if name else "-".join(
            [time.strftime("%Y%m%d-%H%M%S"), _slug(arch_name(model_config)), _slug(str(dataset.get("kind", "data")))])
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

    def finish(self, status: Status, message: str = "", final: dict[str, Any] | None = None) -> None:
        """Record how the run ended in config.json (atomically) and close the metrics file."""
        with self._lock:
            self._info.update(status=Status(status).value, message=message, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              final=final or {})
            _write_json(self.path / CONFIG_FILE, self._info)
            self._metrics.close()


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

    def record(self) -> dict[str, Any]:
        """A flat dict for a table."""
        return {"run": self.name, "status": self.status.value, "model": self.arch, "dataset": self.dataset,
                "epochs": self.epochs, "steps": self.steps,
                "val acc %": None if self.val_acc is None else round(100 * self.val_acc, 2),
                "val loss": self.val_loss, "created": self.created, "note": self.reason}


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_run(path: str | Path) -> RunInfo:
    """Describe one run folder; a folder that cannot be read comes back with Status.DAMAGED."""
    path = Path(path)
    damaged = lambda reason: RunInfo(path.name, path, Status.DAMAGED, reason)
    try:
        info = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return damaged(f"{CONFIG_FILE} is missing")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return damaged(f"{CONFIG_FILE} is not valid JSON ({exc})")
    except OSError as exc:
        return damaged(f"{CONFIG_FILE} could not be read ({exc})")
    if not isinstance(info, dict):
        return damaged(f"{CONFIG_FILE} does not hold a JSON object")
    missing = [k for k in ("model", "train", "dataset", "status") if k not in info]
    if missing:
        return damaged(f"{CONFIG_FILE} lacks {missing}")
    if not (path / METRICS_FILE).is_file():
        return damaged(f"{METRICS_FILE} is missing")
    status = Status.of(info["status"]) if isinstance(info["status"], str) else None
    if status is None:
        return damaged(f"{CONFIG_FILE} records an unknown status {info['status']!r}")
    has_model = (path / MODEL_FILE).is_file()
    if status.kept_weights and not has_model:
        return damaged(f"the run {status} but {MODEL_FILE} is missing")
    if status is Status.RUNNING and (info.get("host") != socket.gethostname() or not _pid_alive(info.get("pid"))):
        status = Status.INTERRUPTED  # the process that trained it ended before writing a final status
    final = info.get("final") if isinstance(info.get("final"), dict) else {}
    dataset = info["dataset"] if isinstance(info["dataset"], dict) else {}
    train = info["train"] if isinstance(info["train"], dict) else {}
    return RunInfo(
        name=path.name, path=path, status=status, reason=str(info.get("message", "")),
        created=str(info.get("created", "")), arch=str(info.get("arch", "")),
        dataset=str(dataset.get("name") or dataset.get("kind") or ""),
        epochs=final.get("epochs", train.get("epochs")), steps=final.get("steps"),
        val_acc=final.get("val_acc"), val_loss=final.get("val_loss"), has_model=has_model, config=info,
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


def load_metrics(run_dir: str | Path) -> list[Event]:
    """The metric events of a run, typed. A truncated last line (a run cut off mid-write) is skipped, and so is
    a line that is valid JSON but no event (event_from_dict rejects it)."""
    path = _run_dir(run_dir) / METRICS_FILE
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise RunError(f"{path} is missing: this run has no metrics") from None
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # the writer was interrupted mid-line
            raise RunError(f"{path}, line {number}, is not valid JSON: the metrics file is damaged") from None
        typed = event_from_dict(event)
        if typed is not None:
            events.append(typed)
    return events


def metrics_csv(run_dir: str | Path) -> str:
    """All metric events of a run as CSV text (one row per event, empty cells where an event has no value)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(METRIC_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for event in load_metrics(run_dir):
        writer.writerow(event_to_dict(event))
    return buffer.getvalue()


def load_run_model(run_dir: str | Path) -> tuple[nn.Module, list[str], dict[str, Any]]:
    """The trained model of a run (in eval mode, on the CPU), its class names and its preprocessing."""
    path = _run_dir(run_dir) / MODEL_FILE
    if not path.is_file():
        raise RunError(f"{path} is missing: this run saved no model (it may have diverged, failed or still be running)")
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        raise RunError(f"{path}: {exc}") from None
    if ckpt.config is None:
        raise RunError(f"{path} does not record the model's config, so the model cannot be rebuilt")
    model = build_model(ckpt.config)
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:
        raise RunError(f"{path}: the weights do not fit the recorded config ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model, list(ckpt.classes or []), dict(ckpt.preprocess or {})


__all__ = [
    "METRIC_COLUMNS",
    "RUNS_DIR_ENV",
    "STOP_FILE",
    "Run",
    "RunError",
    "RunInfo",
    "arch_name",
    "default_runs_dir",
    "list_runs",
    "load_metrics",
    "load_run_model",
    "metrics_csv",
    "read_run",
    "find_run",
    "request_stop",
]
