"""Why the server says no: one exception type with a kind a page can branch on (never a message compared)."""

from __future__ import annotations

from enum import Enum


class Refusal(str, Enum):
    RUNNING_LIMIT = "running limit"  # the visitor already has their share of trainings running
    QUEUED_LIMIT = "queued limit"  # ... or waiting
    TOO_LONG = "too long"  # the estimate on this device exceeds the class's cap
    DISK_BUDGET = "disk budget"  # the runs folder has no room, even after pruning
    NOT_OWNER = "not owner"  # someone else's run or job


class RefusedError(ValueError):
    """A request the class's limits refuse; `kind` says which limit, the message what to do."""

    def __init__(self, kind: Refusal, message: str):
        super().__init__(message)
        self.kind = kind


class NotOwnerError(RefusedError):
    def __init__(self, what: str):
        super().__init__(Refusal.NOT_OWNER, f"{what} was started by another visitor: only they or the lecturer "
                                            "can stop, cancel or remove it")


__all__ = ["NotOwnerError", "Refusal", "RefusedError"]
