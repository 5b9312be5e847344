"""Giving freed memory back: a closed session's models and maps are freed by Python, but glibc's allocator keeps
the pages for the process, so the server's size never falls. malloc_trim hands them back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time

_libc = None
_lock = threading.Lock()
_last = float("-inf")


def release_freed_memory(at_most_every_s: float = 0.0) -> bool:
    """Collect cycles, then return free heap pages to the system (glibc only); True when it did.

    `at_most_every_s`: skip (False) when any caller in this process did it less than that long ago. Each training
    queue calls it from its housekeeping; a process holding many queues (one per runs folder: a test suite) must
    still pay for one full collection per period, not one per queue (46 queues did three a second)."""
    global _libc, _last
    with _lock:
        if time.monotonic() - _last < at_most_every_s:
            return False
        _last = time.monotonic()
    gc.collect()
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
    if not _libc or not hasattr(_libc, "malloc_trim"):
        return False
    _libc.malloc_trim(0)
    return True


def rss_bytes(pid: int | str = "self") -> int | None:
    """Resident memory of a process (Linux), for the benchmarks and tests."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


__all__ = ["release_freed_memory", "rss_bytes"]
