"""One-shot background work: a daemon thread started once, a Stop event, and a join.

The Trainer and the analysis jobs of the Plain vs Residual page share this lifecycle; each
subclass supplies `_main` and says what "already started" means for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class OneShotWorker:
    """Runs `self._main()` once in a daemon thread; `stop()` sets `self._stop` for `_main` to watch."""

    def __init__(self, thread_name: str):
        self._thread_name = thread_name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _start_once(self, already_started: Callable[[bool], Exception], mark_running: Callable[[], None]) -> None:
        """Start the thread, or raise `already_started(still_alive)` if it was ever started.

        `mark_running` runs under the lock, so no reader sees a started worker that is still "idle".
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
