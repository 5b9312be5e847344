"""Stopping and removing run folders: the one place that asks whether the actor owns the run."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..status import Status
from ..train.run_reading import read_run
from ..train.runs import request_stop
from .identity import Actor
from .refusals import NotOwnerError, Refusal, RefusedError


def stop_run(run_dir: str | Path, actor: Actor) -> None:
    """Ask a training to stop, when `actor` owns it (or is the lecturer)."""
    info = read_run(run_dir)
    if not actor.may_control(info.owner):
        raise NotOwnerError(f"run {info.name}")
    request_stop(run_dir)


def remove_run(run_dir: str | Path, actor: Actor, protected: tuple[str, ...] = ()) -> None:
    """Delete an ended run's folder, when `actor` owns it (or is the lecturer). A running run is stopped first,
    not removed; the class's demo model (in `protected`) is demoted first."""
    path = Path(run_dir)
    info = read_run(path)
    if not actor.may_control(info.owner):
        raise NotOwnerError(f"run {info.name}")
    if info.status is Status.RUNNING:
        raise RefusedError(Refusal.NOT_OWNER, f"run {info.name} is still training: stop it first")
    if info.name in protected:
        raise RefusedError(Refusal.NOT_OWNER, f"run {info.name} is the class's demo model: the lecturer can "
                                              "choose another first")
    shutil.rmtree(path)


__all__ = ["remove_run", "stop_run"]
