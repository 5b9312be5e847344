"""The class's limits: what one visitor may use of a served server, from the environment, changed by the lecturer.

Served mode is on when the server starts with a lecturer token (or RESNET_EXPLORER_SERVED=1): a class of
strangers then shares it. Without it (one person's app on their own machine, the command line) nothing is capped but the
runs folder's disk budget, and every visitor may control every run, as before.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from .. import json_limits
from ..model.checkpoint import atomic_write_bytes
from .identity import lecturer_token_set

SERVED_ENV = "RESNET_EXPLORER_SERVED"
BOARD_ENV = "RESNET_EXPLORER_CLASS_BOARD"  # 0: in served mode a visitor sees only their own runs (and the demo)
CLASS_DIR = ".class"  # inside the runs folder: the lecturer's choices (limits, the class's demo model)
LIMITS_FILE = "limits.json"
MAX_LIMITS_BYTES = 64 * 1024

# field -> (environment variable, unit the variable is written in, factor to the field's unit)
LIMITS_ENV: dict[str, tuple[str, str, float]] = {
    "max_running": ("RESNET_EXPLORER_MAX_RUNNING", "trainings", 1),
    "max_queued": ("RESNET_EXPLORER_MAX_QUEUED", "trainings", 1),
    "training_cap_s": ("RESNET_EXPLORER_TRAINING_CAP_MIN", "minutes", 60),
    "analysis_cap_s": ("RESNET_EXPLORER_ANALYSIS_CAP_S", "seconds", 1),
    "leave_grace_s": ("RESNET_EXPLORER_LEAVE_GRACE_S", "seconds", 1),
    "runs_budget_bytes": ("RESNET_EXPLORER_RUNS_BUDGET_GB", "GB", 1024**3),
}


def served_mode() -> bool:
    return lecturer_token_set() or os.environ.get(SERVED_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class ClassLimits:
    """Per visitor in served mode (the lecturer is exempt): trainings running and waiting at once, the longest
    training and analysis accepted (estimated on this device), how long a visitor who left keeps their place in
    line; and the runs folder's size budget (every mode)."""

    served: bool = False
    max_running: int = 1
    max_queued: int = 1
    training_cap_s: float = 15 * 60.0
    analysis_cap_s: float = 60.0
    leave_grace_s: float = 120.0
    runs_budget_bytes: int = 4 * 1024**3
    class_board: bool = True  # every visitor sees the class's runs (read-only); False: only their own

    def visible(self, owner: object, actor_owner: str, lecturer: bool) -> bool:
        """Whether a run of `owner` is listed to a visitor (served mode without the class board: their own)."""
        return not self.served or self.class_board or lecturer or owner == actor_owner

    def describe(self) -> list[tuple[str, str, str]]:
        """(what, value, environment variable) for the README and the lecturer's panel."""
        return [
            ("trainings running at once per visitor", f"{self.max_running}", LIMITS_ENV["max_running"][0]),
            ("trainings waiting per visitor", f"{self.max_queued}", LIMITS_ENV["max_queued"][0]),
            ("longest training (estimated here)", f"{self.training_cap_s / 60:g} min", LIMITS_ENV["training_cap_s"][0]),
            ("longest analysis (estimated here)", f"{self.analysis_cap_s:g} s", LIMITS_ENV["analysis_cap_s"][0]),
            ("a visitor who left keeps their place in line for", f"{self.leave_grace_s:g} s",
             LIMITS_ENV["leave_grace_s"][0]),
            ("runs folder budget", f"{self.runs_budget_bytes / 1024**3:g} GB", LIMITS_ENV["runs_budget_bytes"][0]),
        ]

    def checked(self) -> ClassLimits:
        """The same limits with every value in a sane range (a lecturer's typo never opens or closes the server)."""
        return replace(self, max_running=min(max(int(self.max_running), 1), 16),
                       max_queued=min(max(int(self.max_queued), 0), 64),
                       training_cap_s=min(max(float(self.training_cap_s), 10.0), 7 * 24 * 3600.0),
                       analysis_cap_s=min(max(float(self.analysis_cap_s), 1.0), 3600.0),
                       leave_grace_s=min(max(float(self.leave_grace_s), 5.0), 24 * 3600.0),
                       runs_budget_bytes=min(max(int(self.runs_budget_bytes), 16 * 1024**2), 2**50))


def check_analysis(estimate_s: float, limits: ClassLimits, lecturer: bool = False) -> None:
    """RefusedError (TOO_LONG) when an analysis estimated at `estimate_s` on this server exceeds the class's cap
    (served mode; the lecturer is exempt): said before it starts, with the estimate and the cap."""
    if limits.served and not lecturer and estimate_s > limits.analysis_cap_s:
        from .refusals import Refusal, RefusedError  # noqa: PLC0415 - refusals imports nothing of ours

        raise RefusedError(Refusal.TOO_LONG, f"this analysis would take about {estimate_s:.0f} s here, over this "
                                             f"class's cap of {limits.analysis_cap_s:.0f} s per analysis: choose "
                                             "fewer depths, seeds or points")


def _from_env() -> ClassLimits:
    values: dict[str, Any] = {"served": served_mode(),
                              "class_board": os.environ.get(BOARD_ENV, "1").strip().lower() not in ("0", "false", "no")}
    defaults = ClassLimits()
    for name, (env, _unit, factor) in LIMITS_ENV.items():
        text = os.environ.get(env, "").strip()
        if not text:
            continue
        try:
            number = float(text) * factor
        except ValueError:
            continue  # a malformed setting keeps the default (the README lists the forms)
        values[name] = type(getattr(defaults, name))(number)
    return ClassLimits(**values).checked()


def class_dir(runs_dir: str | Path) -> Path:
    return Path(runs_dir) / CLASS_DIR


def load_limits(runs_dir: str | Path) -> ClassLimits:
    """The environment's limits, with the lecturer's changes (saved in the runs folder) on top."""
    limits = _from_env()
    path = class_dir(runs_dir) / LIMITS_FILE
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_LIMITS_BYTES:
            return limits
        saved = json_limits.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return limits
    if not isinstance(saved, dict):
        return limits
    known = {f.name for f in fields(ClassLimits)} - {"served", "class_board"}
    changes = {k: v for k, v in saved.items() if k in known and isinstance(v, (int, float))
               and not isinstance(v, bool)}
    try:
        return replace(limits, **changes).checked()
    except (TypeError, ValueError, OverflowError):
        return limits


def save_limits(runs_dir: str | Path, limits: ClassLimits) -> ClassLimits:
    """The lecturer's change: written atomically, read by every session's next look."""
    limits = limits.checked()
    folder = class_dir(runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in asdict(limits).items() if k not in ("served", "class_board")}
    atomic_write_bytes(folder / LIMITS_FILE, json.dumps(data, indent=2).encode("utf-8"))
    return limits


__all__ = ["CLASS_DIR", "LIMITS_ENV", "SERVED_ENV", "ClassLimits", "check_analysis", "class_dir", "load_limits",
           "save_limits",
           "served_mode"]
