"""What a trainer has done so far, as one consistent copy (a live Trainer, a run followed from disk, a recording)."""

from __future__ import annotations

from dataclasses import dataclass

from ..status import Status
from .events import EpochEvent, Event, StepEvent, ValEvent


@dataclass(frozen=True)
class TrainerSnapshot:
    """A consistent copy of a trainer's state: every event so far plus status and progress."""

    events: list[Event]
    status: Status
    message: str
    step: int
    total_steps: int
    progress: float
    eta_s: float | None

    @property
    def steps(self) -> list[StepEvent]:
        return [e for e in self.events if isinstance(e, StepEvent)]

    @property
    def epochs(self) -> list[EpochEvent]:
        return [e for e in self.events if isinstance(e, EpochEvent)]

    @property
    def validations(self) -> list[EpochEvent | ValEvent]:
        """Every validation pass in step order: those inside epochs (val_per_epoch > 1) and those at epoch ends."""
        return [e for e in self.events if isinstance(e, ValEvent)
                or (isinstance(e, EpochEvent) and e.val_acc is not None)]

    @property
    def validated_epochs(self) -> list[EpochEvent]:
        """The epochs that ended with a validation pass (val_acc, val_loss)."""
        return [e for e in self.epochs if e.val_acc is not None]

    @property
    def running(self) -> bool:
        return self.status is Status.RUNNING
