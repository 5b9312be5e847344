"""A recorded side-by-side run (the degradation demo's, bundled under assets/): its curves, final numbers and
provenance, read like a live SideBySide so the page draws it at once and overlays it on a live run.

resnet_core.assets finds the folders and reads their events; this module only turns those snapshots into
what the charts and captions read (it does not import assets: imports flow from analysis upwards).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..data.spec import DatasetSpec
from ..train.config import TrainConfig
from ..train.schedule import RunPlan
from ..train.trainer import TrainerSnapshot
from .partial import warmup_end
from .twins import curve_of, heatmaps_of, label_depth

RECORDED = "recorded"  # the curves' status: the legend then reads "plain-20 (recorded)"


class _Provenance(Protocol):  # resnet_core.assets.Provenance
    seconds: float
    results: dict[str, dict[str, float]]
    recipe: dict[str, Any]

    def summary(self) -> str: ...


@dataclass(frozen=True)
class RecordedRun:
    """The recorded nets in SideBySide's order (plain-20, ResNet-20, plain-56, ResNet-56).

    curves: per net, analysis.twins.curve_of its recorded events (status "recorded").
    results: per net, its final validation accuracy and training loss (the provenance's, else the curves').
    summary: where and when it was recorded, how long it took, the command that rebuilds it ("" if unknown).
    """

    curves: dict[str, dict[str, Any]]
    folders: dict[str, Path]
    results: dict[str, dict[str, float]]
    summary: str = ""
    seconds: float | None = None
    recipe: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, folders: Mapping[str, Path], snapshots: Mapping[str, TrainerSnapshot],
           provenance: _Provenance | None = None) -> RecordedRun:
        curves = {label: {**curve_of(snap), "status": RECORDED} for label, snap in snapshots.items()}
        results = dict(provenance.results) if provenance is not None and provenance.results else {}
        for label, snap in snapshots.items():
            if label not in results:
                vals, epochs = snap.validations, snap.epochs
                results[label] = {"val_acc": vals[-1].val_acc if vals else float("nan"),
                                  "train_loss": epochs[-1].train_loss if epochs else float("nan")}
        return cls(curves, dict(folders), results, provenance.summary() if provenance is not None else "",
                   provenance.seconds if provenance is not None else None,
                   dict(provenance.recipe) if provenance is not None else {})

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(sorted({label_depth(label) for label in self.curves}))

    @property
    def total_steps(self) -> int:
        return max((c["step"][-1] for c in self.curves.values() if c["step"]), default=0)

    @property
    def warmup_step(self) -> int:
        """Where the recorded recipe's learning-rate warm-up ended (0 when the recipe is unknown)."""
        try:
            config = TrainConfig.from_dict(self.recipe["train"])
            n_train = int(self.recipe["dataset"]["n_train"])
        except (KeyError, TypeError, ValueError):
            return 0
        return warmup_end(config, RunPlan.of(config, n_train))

    def matches(self, data: DatasetSpec, train: TrainConfig, depths: Sequence[int]) -> bool:
        """Whether a live run of (data, train, depths) repeats this recording's recipe, so its curves may be read
        against the recorded ones. Without a recorded recipe, the depths alone decide."""
        if tuple(sorted(depths)) != self.depths:
            return False
        if not self.recipe:
            return True
        return self.recipe.get("train") == train.to_dict() and self.recipe.get("dataset") == data.to_dict()

    def heatmaps(self, depth: int) -> tuple[dict[str, tuple], tuple[float, float] | None]:
        return heatmaps_of({label: path for label, path in self.folders.items() if label_depth(label) == depth})
