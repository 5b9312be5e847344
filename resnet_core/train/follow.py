"""Following a run from its folder, as TensorBoard follows a log directory.

A page (or anything else) keeps one RunFollower per run it shows and calls `poll()` about once a second:
only the bytes appended to metrics.jsonl since the last poll are read and parsed, and config.json is
re-read only when it changed. Whoever trains the run (a worker the app started, a terminal, torchrun on
this machine) writes the folder; nothing else connects the two.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from .. import json_limits
from ..status import Status
from .events import Event, StatusEvent, StepEvent, event_from_dict
from .run_reading import read_run
from .runs import CONFIG_FILE, METRICS_FILE
from .safe_read import MAX_METRICS_BYTES, read_from
from .snapshot import TrainerSnapshot

POLL_BYTES = 4 * 1024**2  # read at most this much of metrics.jsonl per poll: a huge file is caught up over polls
MAX_LINE_BYTES = 1024**2  # an event line is a few hundred bytes; a longer one is not an event and is dropped


class RunFollower:
    """The events and status of one run folder, read incrementally."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir)
        self._offset = 0
        self._partial = b""
        self._events: list[Event] = []
        self._config_mtime: float | None = None
        self._status = Status.RUNNING
        self._message = ""
        self._total_steps = 0
        self._step = 0
        self._step_time = 0.0  # the newest step's time since the trainer started
        self._lock = threading.Lock()  # one follower may serve every session showing the run

    @property
    def name(self) -> str:
        return self.path.name

    def _read_new_events(self) -> None:
        # Only a regular file inside the folder, only up to POLL_BYTES at a time and MAX_METRICS_BYTES in all
        # (load_metrics' cap): a FIFO, /dev/zero or a runaway file never hangs or fills the server.
        if self._offset >= MAX_METRICS_BYTES:
            return
        try:
            chunk = read_from(self.path / METRICS_FILE, self._offset,
                              min(POLL_BYTES, MAX_METRICS_BYTES - self._offset), folder=self.path)
        except OSError:
            return
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # the writer may be mid-line: keep the tail for the next poll
        if len(self._partial) > MAX_LINE_BYTES:
            self._partial = b""  # no event is this long: drop it rather than hold it
        for line in lines:
            try:
                event = event_from_dict(json_limits.loads(line))
            except (ValueError, UnicodeDecodeError):  # not JSON, nested too deeply
                continue
            if event is None:
                continue
            self._events.append(event)
            if isinstance(event, StepEvent):
                self._step, self._step_time = event.step, event.time
            elif isinstance(event, StatusEvent):
                self._message = event.message
                if event.total_steps:
                    self._total_steps = event.total_steps

    def _read_status(self) -> None:
        try:
            mtime = os.stat(self.path / CONFIG_FILE).st_mtime
        except OSError:
            return
        # A running run's status can also change without a write (its process died): check it each time.
        if mtime == self._config_mtime and self._status is not Status.RUNNING:
            return
        self._config_mtime = mtime
        info = read_run(self.path)
        self._status = info.status
        if info.status is not Status.RUNNING and info.reason:
            self._message = info.reason

    def poll(self) -> TrainerSnapshot:
        """Everything logged so far, with status, progress and an estimate of the time left."""
        with self._lock:
            self._read_new_events()
            self._read_status()
            return self._snapshot()

    def _snapshot(self) -> TrainerSnapshot:
        total = self._total_steps
        frac = min(self._step / total, 1.0) if total else 0.0
        eta = None
        if self._status is Status.RUNNING and self._step and total:
            eta = self._step_time / self._step * (total - self._step)
        elif self._status is not Status.RUNNING:
            eta = 0.0
        return TrainerSnapshot(list(self._events), self._status, self._message, self._step, total, frac, eta)

    def age_s(self) -> float:
        """Seconds since the run last wrote a metric (a stalled or paused run shows it)."""
        try:
            return time.time() - os.stat(self.path / METRICS_FILE).st_mtime
        except OSError:
            return float("inf")

