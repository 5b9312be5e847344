"""The runs folder's size budget: measured before a training starts; the oldest finished visitor runs make room.

Never pruned: a running run, the class's demo model, a run from a terminal or without an owner (the lecturer's
or the machine owner's), and the bundled assets (they are not in the runs folder at all).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from ..train.run_reading import list_runs
from .refusals import Refusal, RefusedError

MAX_ENTRIES = 200_000  # a walk of a runs folder stops counting here (its size is then a lower bound)
METRIC_LINE_BYTES = 400  # one step's line in metrics.jsonl, with room for validation and gradient records
DISK_MARGIN = 64 * 1024**2  # free space kept on the disk beyond a run's estimate


class DiskBudgetError(RefusedError):
    def __init__(self, message: str):
        super().__init__(Refusal.DISK_BUDGET, message)


def folder_bytes(path: str | Path) -> int:
    """Bytes of the files under `path`, symbolic links not followed (a link counts as itself)."""
    total, seen = 0, 0
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in files + dirs:
            seen += 1
            if seen > MAX_ENTRIES:
                return total
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def run_bytes_estimate(parameters: int, steps: int) -> int:
    """What one run folder will take: the checkpoint (fp32 weights, twice while it is rewritten atomically) and
    one metrics line per step."""
    return 2 * 4 * int(parameters) + METRIC_LINE_BYTES * int(steps) + 256 * 1024


def _gb(n: float) -> str:
    return f"{n / 1024**3:.2f} GB" if n >= 1024**3 else f"{n / 1024**2:.0f} MB"


def make_room(runs_dir: str | Path, need: int, budget: int, prune: bool, protected: Iterable[str] = ()) -> list[str]:
    """Make sure `need` more bytes fit in the runs folder's `budget` and on its disk. With `prune`, the oldest
    finished runs of visitors are deleted until they do (their names are returned); without, or when that is
    not enough, DiskBudgetError says why and what to do."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    used = folder_bytes(runs_dir)
    free = shutil.disk_usage(runs_dir).free
    pruned: list[str] = []
    if used + need > budget and prune:
        keep = set(protected)
        candidates = [r for r in reversed(list_runs(runs_dir))  # oldest first
                      if r.status.ended and r.name not in keep and str(r.config.get("owner", "")).startswith("v-")]
        for run in candidates:
            if used + need <= budget:
                break
            size = folder_bytes(run.path)
            shutil.rmtree(run.path, ignore_errors=True)
            if not run.path.exists():
                used -= size
                free += size
                pruned.append(run.name)
    if used + need > budget:
        raise DiskBudgetError(
            f"the runs folder holds {_gb(used)} of its {_gb(budget)} budget and this run needs about {_gb(need)}; "
            "remove finished runs you no longer need (or ask the lecturer to raise RESNET_EXPLORER_RUNS_BUDGET_GB)")
    if free < need + DISK_MARGIN:
        raise DiskBudgetError(f"the disk holding the runs folder has {_gb(free)} free and this run needs about "
                              f"{_gb(need)}; free some space first")
    return pruned


__all__ = ["DiskBudgetError", "folder_bytes", "make_room", "run_bytes_estimate"]
