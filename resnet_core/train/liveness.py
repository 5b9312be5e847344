"""Whether a run recorded as running still is: a heartbeat file its trainer touches, read with its pid and host."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

HEARTBEAT_FILE = "heartbeat"
HEARTBEAT_S = 5.0  # how often a training process touches its heartbeat
STALE_S = 30.0  # a heartbeat older than this: the process is gone, frozen, or its pid now belongs to another


class Heartbeat:
    """Touches `<run folder>/heartbeat` every HEARTBEAT_S seconds from a daemon thread, until stop(). The
    thread dies with its process, so a killed run's heartbeat goes stale whatever became of its pid."""

    def __init__(self, folder: Path, every_s: float = HEARTBEAT_S):
        self.path = Path(folder) / HEARTBEAT_FILE
        self._every = every_s
        self._stop = threading.Event()
        self.path.write_text(str(os.getpid()), encoding="utf-8")
        self._thread = threading.Thread(target=self._beat, name="resnet-run-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._every):
            try:
                os.utime(self.path)
            except OSError:
                return  # the folder is gone: nobody is left to tell

    def stop(self, remove: bool = False) -> None:
        """No more beats; `remove`: delete the file too (the run has written its final status)."""
        self._stop.set()
        if remove:
            self.path.unlink(missing_ok=True)


def pid_alive(pid: Any) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except (OverflowError, OSError):
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """An exited process nobody has reaped yet still answers kill(pid, 0): a worker orphaned by a killed server
    becomes one where the machine's first process does not reap (some containers), and would look alive forever."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (macOS) or already gone: kill(pid, 0) has spoken
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def heartbeat_age(folder: Path) -> float | None:
    """Seconds since the run's trainer last touched its heartbeat; None when it never wrote one (older runs)."""
    try:
        return max(0.0, time.time() - (Path(folder) / HEARTBEAT_FILE).stat().st_mtime)
    except OSError:
        return None


def still_running(folder: Path, info: dict[str, Any]) -> tuple[bool, str]:
    """(alive, why not) for a run whose config.json says "running". On this host a pid that is gone settles it;
    a live pid counts only with a fresh heartbeat (after a restart the pid may be another process's). On
    another host only the heartbeat can tell."""
    age = heartbeat_age(folder)
    pid, here = info.get("pid"), info.get("host") == socket.gethostname()
    if here and not pid_alive(pid):
        return False, f"its process (pid {pid}) ended without writing a final status"
    if age is None:
        if here:
            return True, ""  # a run from before heartbeats: its live pid is all there is
        return False, "it was started on another machine and writes no heartbeat, so it cannot be followed here"
    if age > STALE_S:
        who = (f"a process {pid} exists, but it is frozen or a new process that reused the pid" if here
               else "its machine is silent")
        return False, f"its heartbeat stopped {age:.0f} s ago ({who})"
    return True, ""


__all__ = ["HEARTBEAT_FILE", "HEARTBEAT_S", "STALE_S", "Heartbeat", "heartbeat_age", "pid_alive", "still_running"]
