"""A class on one server: who a visitor is, what they own, what they may use, and the runs folder's budget.

Nothing here knows the screen: the pages give it a visitor id (from a cookie) and ask it what that visitor
may do; the training queue and the analyses' slots enforce its limits; the command line uses none of it.
"""

from .control import remove_run, stop_run
from .disk import DiskBudgetError, folder_bytes, make_room, run_bytes_estimate
from .identity import (
    TERMINAL,
    VISITOR_COOKIE,
    Actor,
    lecturer_token_ok,
    lecturer_token_set,
    new_visitor_id,
    owner_of,
    valid_visitor_id,
)
from .limits import LIMITS_ENV, ClassLimits, check_analysis, class_dir, load_limits, save_limits, served_mode
from .promoted import class_demo_run, demote, promote
from .refusals import NotOwnerError, Refusal, RefusedError

__all__ = [
    "LIMITS_ENV",
    "TERMINAL",
    "VISITOR_COOKIE",
    "Actor",
    "ClassLimits",
    "DiskBudgetError",
    "NotOwnerError",
    "Refusal",
    "RefusedError",
    "check_analysis",
    "class_demo_run",
    "class_dir",
    "demote",
    "folder_bytes",
    "lecturer_token_ok",
    "lecturer_token_set",
    "load_limits",
    "make_room",
    "new_visitor_id",
    "owner_of",
    "promote",
    "remove_run",
    "run_bytes_estimate",
    "save_limits",
    "served_mode",
    "stop_run",
    "valid_visitor_id",
]
