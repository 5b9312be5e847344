"""The training queue on disk: its waiting and running jobs, rewritten atomically whenever they change, so a
server restarted (or killed) resumes the line in order and re-attaches the workers still training."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import json_limits
from ..model.checkpoint import atomic_write_bytes
from ..train.launch import TrainRequest
from ..train.liveness import pid_alive

QUEUE_FILE = "queue.json"
MAX_QUEUE_BYTES = 8 * 1024**2


@dataclass(frozen=True)
class StoredJob:
    id: str
    label: str
    device: str
    owner: str
    estimate_s: float
    submitted: float
    requests: tuple[TrainRequest, ...]
    started: float | None  # None: it was waiting
    pids: tuple[int, ...]


def save_jobs(spool: Path, jobs: list[dict[str, Any]]) -> None:
    atomic_write_bytes(spool / QUEUE_FILE, json.dumps({"version": 1, "jobs": jobs}).encode("utf-8"))


def load_jobs(spool: Path) -> tuple[list[StoredJob], list[str]]:
    """The jobs a previous server left, and why any could not be read back (each is then dropped, and said)."""
    path = spool / QUEUE_FILE
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_QUEUE_BYTES:
            return [], []
        data = json_limits.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        return [], [f"{QUEUE_FILE} could not be read ({exc})"]
    jobs, problems = [], []
    for raw in data.get("jobs", []) if isinstance(data, dict) else []:
        try:
            jobs.append(StoredJob(
                str(raw["id"]), str(raw["label"]), str(raw["device"]), str(raw.get("owner", "terminal")),
                float(raw["estimate_s"]), float(raw["submitted"]),
                tuple(TrainRequest.from_dict(r) for r in raw["requests"]),
                None if raw.get("started") is None else float(raw["started"]),
                tuple(int(p) for p in raw.get("pids", ()))))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"a saved job could not be read back ({type(exc).__name__}: {exc})")
    return jobs, problems


class AdoptedWorker:
    """A worker process started by an earlier server: followed by its pid (it is not our child, so its exit code
    is unknown; the run folder's status says how it ended)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:  # our own child after all (a queue re-made in the same process): reap it
                if os.waitpid(self.pid, os.WNOHANG)[0] == self.pid:
                    self.returncode = 0
            except ChildProcessError:
                pass
            if self.returncode is None and not pid_alive(self.pid):
                self.returncode = 0
        return self.returncode

    def terminate(self) -> None:
        try:
            os.kill(self.pid, 15)
        except OSError:
            pass


__all__ = ["QUEUE_FILE", "AdoptedWorker", "StoredJob", "load_jobs", "save_jobs"]
