"""A recorded side-by-side run (the degradation demo's, bundled under assets/): every net trained with several
seeds, read as bands (mean and min-max over the seeds), the final numbers per seed, and the provenance, so the
page draws it at once and a live run is read against the band.

resnet_core.assets finds the folders and reads their events; this module only turns those snapshots into
what the charts, cards and captions read (it does not import assets: imports flow from analysis upwards).
Cards and captions read `results`, computed here from the curves with analysis.bands.final_loss: one series,
one value.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..data.spec import DatasetSpec
from ..train.config import TrainConfig
from ..train.schedule import RunPlan
from ..train.snapshot import TrainerSnapshot
from .bands import final_loss
from .partial import warmup_end
from .twins import curve_of, heatmaps_of, label_depth

RECORDED = "recorded"  # the curves' status: the legend then reads "plain-20 (recorded)"


class _Provenance(Protocol):  # resnet_core.assets.Provenance
    seconds: float
    recipe: dict[str, Any]

    def summary(self) -> str: ...


def finals_of(curves: Sequence[Mapping[str, Any]], steps_per_epoch: int) -> tuple[list[float], list[float]]:
    """(final training losses, final validation accuracies) of one net's seeds: analysis.bands.final_loss (the mean
    over the last epoch's steps) and the last validation pass; a seed without one is left out."""
    losses = [x for x in (final_loss(c, steps_per_epoch) for c in curves) if x is not None]
    accs = [c["val_acc"][-1] for c in curves if c["val_acc"] and math.isfinite(c["val_acc"][-1])]
    return losses, accs


def summary_of(losses: Sequence[float], accs: Sequence[float]) -> dict[str, float]:
    """Mean, min and max over the seeds of the final training loss and validation accuracy (NaN when none)."""
    out: dict[str, float] = {}
    for key, values in (("train_loss", losses), ("val_acc", accs)):
        out[key] = statistics.fmean(values) if values else math.nan
        out[f"{key}_min"] = min(values) if values else math.nan
        out[f"{key}_max"] = max(values) if values else math.nan
    return out


@dataclass(frozen=True)
class RecordedRun:
    """The recorded nets in SideBySide's order (plain-20, ResNet-20, plain-56, ResNet-56), each over its seeds.

    runs: per net, analysis.twins.curve_of each seed's events (status "recorded"), in seed order.
    folders: per net, each seed's run folder (the first holds the block gradients the heatmaps draw).
    summary: where and when it was recorded, how long it took, the command that rebuilds it ("" if unknown).
    """

    runs: dict[str, list[dict[str, Any]]]
    folders: dict[str, list[Path]]
    summary: str = ""
    seconds: float | None = None
    recipe: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, folders: Mapping[str, Sequence[Path]], snapshots: Mapping[str, Sequence[TrainerSnapshot]],
           provenance: _Provenance | None = None) -> RecordedRun:
        runs = {label: [{**curve_of(s), "status": RECORDED} for s in snaps] for label, snaps in snapshots.items()}
        return cls(runs, {label: list(paths) for label, paths in folders.items()},
                   provenance.summary() if provenance is not None else "",
                   provenance.seconds if provenance is not None else None,
                   dict(provenance.recipe) if provenance is not None else {})

    @property
    def seeds(self) -> int:
        """How many seeds every net has (the fewest, if they differ)."""
        return min((len(r) for r in self.runs.values()), default=0)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(sorted({label_depth(label) for label in self.runs}))

    @property
    def total_steps(self) -> int:
        return max((c["step"][-1] for r in self.runs.values() for c in r if c["step"]), default=0)

    def _plan(self) -> tuple[TrainConfig, RunPlan] | None:
        try:
            config = TrainConfig.from_dict(self.recipe["train"])
            return config, RunPlan.of(config, int(self.recipe["dataset"]["n_train"]))
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def epochs(self) -> int | None:
        """The recorded recipe's epochs (None when the recipe is unknown)."""
        plan = self._plan()
        return plan[0].epochs if plan is not None else None

    @property
    def steps_per_epoch(self) -> int:
        """The recipe's steps per epoch (without a recipe: a tenth of the run, so "final" still means its end)."""
        plan = self._plan()
        return plan[1].steps_per_epoch if plan is not None else max(1, self.total_steps // 10)

    @property
    def warmup_step(self) -> int:
        """Where the recorded recipe's learning-rate warm-up ended (0 when the recipe is unknown)."""
        plan = self._plan()
        return warmup_end(*plan) if plan is not None else 0

    def finals(self) -> dict[str, tuple[list[float], list[float]]]:
        """Per net: its seeds' final training losses and validation accuracies (finals_of)."""
        return {label: finals_of(runs, self.steps_per_epoch) for label, runs in self.runs.items()}

    @property
    def results(self) -> dict[str, dict[str, float]]:
        """Per net: mean, min and max over the seeds of its final training loss and validation accuracy (the
        cards' and the caption's numbers; the provenance file holds the same, written from this)."""
        return {label: summary_of(*f) for label, f in self.finals().items()}

    def matches(self, data: DatasetSpec, train: TrainConfig, depths: Sequence[int]) -> bool:
        """Whether a live run of (data, train, depths) repeats this recording's recipe (the seed aside: the
        recording spans several), so its curves may be read against the recorded band. Without a recorded recipe,
        the depths alone decide."""
        if tuple(sorted(depths)) != self.depths:
            return False
        if not self.recipe:
            return True
        unseeded = lambda d: {k: v for k, v in d.items() if k != "seed"}
        return (unseeded(self.recipe.get("train") or {}) == unseeded(train.to_dict())
                and self.recipe.get("dataset") == data.to_dict())

    def heatmaps(self, depth: int) -> tuple[dict[str, tuple], tuple[float, float] | None]:
        """The first seed's block-gradient heatmaps of the nets of `depth`."""
        return heatmaps_of({label: paths[0] for label, paths in self.folders.items()
                            if label_depth(label) == depth and paths})
