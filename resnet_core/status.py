"""The one status type: how a training run or a background job stands, from start to end."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """A run's or a job's state. A `str` subclass, so it compares equal to its value and is written to
    JSON as plain text ("finished"); `Status.of` reads it back from outside text."""

    IDLE = "idle"  # made, not started
    QUEUED = "queued"  # waiting in the server's training queue for a free slot
    RUNNING = "running"
    FINISHED = "finished"  # ran to its planned end
    STOPPED = "stopped"  # Stop was pressed; what was trained is kept
    DIVERGED = "diverged"  # the loss became NaN or infinite
    # ran to its end, but near chance accuracy or with its loss risen far above its start
    DID_NOT_LEARN = "did not learn"
    FAILED = "failed"  # an error (out of memory, a file that could not be written, ...)
    INTERRUPTED = "interrupted"  # the process that ran it ended before writing a final status
    DAMAGED = "damaged"  # its folder on disk cannot be read

    def __str__(self) -> str:
        return self.value

    @property
    def ended(self) -> bool:
        """Past running: nothing will change it any more."""
        return self not in (Status.IDLE, Status.QUEUED, Status.RUNNING)

    @property
    def kept_weights(self) -> bool:
        """Ended having saved its final weights (a finished, stopped or did-not-learn run saves its model; a run
        that did not learn keeps them so it can be inspected, e.g. a plain net's lesion study)."""
        return self in (Status.FINISHED, Status.STOPPED, Status.DID_NOT_LEARN)

    @property
    def bad(self) -> bool:
        """Ended in a way a person must be told about."""
        return self in (Status.DIVERGED, Status.DID_NOT_LEARN, Status.FAILED, Status.INTERRUPTED, Status.DAMAGED)

    @classmethod
    def of(cls, value: object) -> Status | None:
        """The status named by `value` (a Status or its text), None for anything else."""
        try:
            return cls(value)
        except ValueError:
            return None


__all__ = ["Status"]
