"""Reading run folders (layout: runs.py): the history's rows, a run's metrics and its weights.

Run folders are outside input: nothing here raises on a damaged folder while listing. `list_runs` reports
it with Status.DAMAGED and the reason (or, for a value of the wrong type, ignores that value and says so),
so one broken run never hides the others.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .. import json_limits
from ..model.checkpoint import CheckpointError, load_checkpoint
from ..model.model import build_model
from ..status import Status
from .events import Event, event_from_dict, event_to_dict
from .liveness import still_running
from .runs import (
    CONFIG_FILE,
    METRIC_COLUMNS,
    METRICS_FILE,
    MODEL_FILE,
    RunError,
    _run_dir,
    default_runs_dir,
)
from .safe_read import (
    MAX_CHECKPOINT_BYTES,
    MAX_CONFIG_BYTES,
    MAX_METRICS_BYTES,
    UnsafeFileError,
    read_bytes,
    read_text,
    unreadable,
)


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



__all__ = ["RunInfo", "find_run", "list_runs", "load_metrics", "load_run_model", "metrics_csv", "read_run"]
