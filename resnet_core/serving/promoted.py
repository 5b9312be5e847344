"""The class's demo model: one finished run the lecturer promoted, which every visitor's Grad-CAM then opens on.

Nobody else's run ever becomes anyone's default: without a promotion the bundled, recorded model is the default.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import json_limits
from ..model.checkpoint import atomic_write_bytes
from ..status import Status
from ..train.run_reading import find_run, read_run
from .identity import Actor
from .limits import class_dir
from .refusals import Refusal, RefusedError

DEMO_FILE = "demo.json"


def class_demo_run(runs_dir: str | Path) -> Path | None:
    """The promoted run's folder, while it is still a finished run with its weights; else None."""
    path = class_dir(runs_dir) / DEMO_FILE
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 4096:
            return None
        name = json_limits.loads(path.read_text(encoding="utf-8")).get("run")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    run = find_run(Path(runs_dir), name)
    if run is None:
        return None
    info = read_run(run)
    return run if info.status is Status.FINISHED and info.has_model else None


def promote(runs_dir: str | Path, name: str, actor: Actor) -> Path:
    """Make run `name` the class's demo model: the lecturer's choice alone, and only a finished run."""
    if not actor.lecturer:
        raise RefusedError(Refusal.NOT_OWNER, "only the lecturer can choose the class's demo model")
    run = find_run(Path(runs_dir), name)
    info = read_run(run) if run is not None else None
    if info is None or info.status is not Status.FINISHED or not info.has_model:
        raise RefusedError(Refusal.NOT_OWNER, f"run {name!r} is not a finished run with saved weights")
    atomic_write_bytes(class_dir(runs_dir) / DEMO_FILE, json.dumps({"run": run.name}).encode("utf-8"))
    return run


def demote(runs_dir: str | Path, actor: Actor) -> None:
    """Back to the bundled model."""
    if not actor.lecturer:
        raise RefusedError(Refusal.NOT_OWNER, "only the lecturer can choose the class's demo model")
    (class_dir(runs_dir) / DEMO_FILE).unlink(missing_ok=True)


__all__ = ["DEMO_FILE", "class_demo_run", "demote", "promote"]
