"""Background work in threads: a one-shot worker with a Stop event, and the analysis job a page polls.

Below every package: the trainer and the analyses both use it.

Analyses are quick measurements that may run inside the web server, but only a few at a time: every
BackgroundJob waits for one of ANALYSIS_SLOTS before it works, so a class pressing buttons together queues
its analyses instead of starving the server (trainings never run here: see training_queue).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .status import Status

# Progress callback of long analyses: (done, total, message, partial result so far).
Progress = Callable[[int, int, str, Any], None]

# Analyses working at once in this process: one per two cores, at least one ($RESNET_EXPLORER_ANALYSES).
ANALYSIS_SLOTS = max(1, int(os.environ.get("RESNET_EXPLORER_ANALYSES") or (os.cpu_count() or 2) // 2))
QUANTUM_S = 1.0  # an analysis holding a slot while another visitor waits gives it up after this long


class FairSlots:
    """The analysis slots, shared fairly between visitors: a free slot goes to the waiting job whose owner holds
    the fewest slots (then the oldest), and a job that has held its slot for QUANTUM_S while another owner waits
    hands it over at its next progress report and queues again. So one visitor's 1,000-network sweep slows down
    while others measure, instead of making them wait for all of it."""

    def __init__(self, slots: int):
        self.slots = slots
        self._cond = threading.Condition()
        self._held: dict[str, int] = {}
        self._waiting: list[tuple[int, str]] = []
        self._tickets = itertools.count()

    def acquire(self, owner: str, stop: threading.Event) -> bool:
        """Wait for a slot; False if `stop` was set first."""
        with self._cond:
            ticket = (next(self._tickets), owner)
            self._waiting.append(ticket)
            try:
                while True:
                    if stop.is_set():
                        return False
                    if sum(self._held.values()) < self.slots and self._next() == ticket:
                        self._held[owner] = self._held.get(owner, 0) + 1
                        return True
                    self._cond.wait(0.2)
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()

    def try_acquire(self, owner: str) -> bool:
        """A slot now, if one is free and nobody is waiting for it."""
        with self._cond:
            if self._waiting or sum(self._held.values()) >= self.slots:
                return False
            self._held[owner] = self._held.get(owner, 0) + 1
            return True

    def release(self, owner: str) -> None:
        with self._cond:
            self._held[owner] = self._held.get(owner, 1) - 1
            if not self._held[owner]:
                del self._held[owner]
            self._cond.notify_all()

    def others_waiting(self, owner: str) -> bool:
        with self._cond:
            return any(o != owner for _, o in self._waiting)

    def _next(self) -> tuple[int, str]:
        return min(self._waiting, key=lambda t: (self._held.get(t[1], 0), t[0]))


_analysis_slots = FairSlots(ANALYSIS_SLOTS)


class _Stopped(Exception):
    """Raised inside a job's work when Stop is pressed while it waits for its turn."""



class OneShotWorker:
    """Runs `self._main()` once in a daemon thread; `stop()` sets `self._stop` for `_main` to watch."""

    def __init__(self, thread_name: str):
        self._thread_name = thread_name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _start_once(self, already_started: Callable[[bool], Exception], mark_running: Callable[[], None]) -> None:
        """Start the thread, or raise `already_started(still_alive)` if it was ever started.

        `mark_running` runs under the lock, so no reader sees a started worker that is still idle.
        """
        with self._lock:
            if self._thread is not None:
                raise already_started(self._thread.is_alive())
            mark_running()
            self._thread = threading.Thread(target=self._main, name=self._thread_name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Ask the work to stop; it ends at its next check of the Stop event."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True once it has ended (or never started)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True


@dataclass(frozen=True)
class JobSnapshot:
    status: Status  # IDLE, RUNNING, FINISHED, STOPPED or FAILED
    done: int
    total: int
    message: str
    result: Any
    error: str | None

    @property
    def running(self) -> bool:
        return self.status is Status.RUNNING

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class BackgroundJob(OneShotWorker):
    """Runs `work(progress, stop)` in a daemon thread; a page polls `snapshot()` and may `stop()`.

    `work` must call `progress(done, total, message, partial_result)` now and then and return its
    result; it makes no Streamlit calls. A ValueError (each analysis raises its own subclass) becomes the
    snapshot's `error` message; anything else too, prefixed with its type, never a traceback.
    """

    def __init__(self, work: Callable[[Progress, threading.Event], Any], name: str = "analysis",
                 owner: str = "terminal"):
        super().__init__(f"resnet-{name}")
        self._work, self.name, self.owner = work, name, owner
        self._holding, self._held_since = False, 0.0
        self._state: dict[str, Any] = {"status": Status.IDLE, "done": 0, "total": 0, "message": "", "result": None,
                                       "error": None}

    def start(self, owner: str | None = None) -> BackgroundJob:
        """Start the work in its thread; `owner` (a visitor) is whose turn it takes in the fair slots."""
        if owner is not None:
            self.owner = owner
        self._start_once(lambda _alive: RuntimeError(f"this {self.name} has already been started; make a new one"),
                         lambda: self._state.update(status=Status.RUNNING))
        return self

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return JobSnapshot(**self._state)

    def _progress(self, done: int, total: int, message: str, partial: Any = None) -> None:
        with self._lock:
            self._state.update(done=done, total=total, message=message)
            if partial is not None:
                self._state["result"] = partial
        if self._holding and time.monotonic() - self._held_since > QUANTUM_S and \
                _analysis_slots.others_waiting(self.owner):
            self._holding = False
            _analysis_slots.release(self.owner)  # another visitor's turn; then ours again
            if not self._take_slot(message):
                raise _Stopped

    def _take_slot(self, message: str = "") -> bool:
        if not _analysis_slots.try_acquire(self.owner):
            with self._lock:
                self._state["message"] = (f"{message} — " if message else "") + \
                    f"waiting for its turn ({ANALYSIS_SLOTS} analysis at a time on this server, shared fairly)"
            if not _analysis_slots.acquire(self.owner, self._stop):
                return False
        self._holding, self._held_since = True, time.monotonic()
        return True

    def _main(self) -> None:
        if not self._take_slot():
            with self._lock:
                self._state.update(status=Status.STOPPED, error=None)
            return
        try:
            self._run_work()
        finally:
            if self._holding:
                _analysis_slots.release(self.owner)

    def _run_work(self) -> None:
        try:
            result = self._work(self._progress, self._stop)
            status = Status.STOPPED if self._stop.is_set() else Status.FINISHED
            error = None
        except _Stopped:  # stopped while waiting for its next turn: what it measured is kept
            result, status, error = None, Status.STOPPED, None
        except ValueError as exc:  # the analyses' own errors (GradientError, ConfigError, ...) say what to do
            result, status, error = None, Status.FAILED, str(exc)
        except Exception as exc:  # noqa: BLE001 - a failed analysis must not take the server down
            result, status, error = None, Status.FAILED, f"{type(exc).__name__}: {exc}"
        with self._lock:
            if result is not None:
                self._state["result"] = result
            self._state.update(status=status, error=error)
