"""What is explained: a model with its classes, preprocessing and a cache key, from each model source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..data.shapes import SHAPES_CLASSES
from ..data.transforms import Preprocess, default_resize
from ..model.checkpoint import Checkpoint
from ..model.config import default_image_size
from ..train.pretrained import PretrainedModel, checkpoint_classes, checkpoint_preprocess
from ..train.run_reading import RunInfo, list_runs


@dataclass
class Subject:
    """The model being explained, with what is needed to feed it and to name its classes.

    `key` identifies the weights (not just the architecture), so cached maps never outlive them.
    """

    model: nn.Module
    classes: list[str]
    pre: Preprocess
    key: str
    title: str
    on_shapes: bool = False
    trained_on: str = ""  # the dataset it learned from ("Shapes", "CIFAR-10", "ImageNet"), "" when unknown
    trained: bool = True  # False for a freshly built model (random weights)
    origin: str = ""  # "recorded" (a bundled asset), "live" (trained here, in the runs folder) or "" (elsewhere)
    provenance: str = ""  # for a recorded model: where and how it was made ("recorded on ... rebuilt by ...")

    @property
    def knows_photos(self) -> bool:
        """Whether its classes are ImageNet's 1000 everyday things, so that a photo's answer means something."""
        return self.trained_on == "ImageNet" or len(self.classes) == IMAGENET_CLASSES

    def answer_meaningful(self, own_data: bool) -> bool:
        """Whether its answer for an image means something: an image of its own dataset (a Shapes image for a
        Shapes model), or any photo for an ImageNet model. A photo through a model of ten shapes still gets one
        of the ten, confidently or not. (An untrained model's answers mean nothing anywhere; its page says so.)"""
        return own_data or self.knows_photos or not self.trained


IMAGENET_CLASSES = 1000
DATASET_NAMES = {"shapes": "Shapes", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagefolder": "an image folder"}


def numbered_classes(n: int) -> list[str]:
    """Names for a model whose classes were never named."""
    return [f"class {i}" for i in range(n)]


def usable_runs(runs_dir: Any) -> list[RunInfo]:
    """Runs with weights worth explaining, newest first: ended with their weights saved, or cut off after a whole
    epoch (opened with that epoch's checkpoint, and titled so)."""
    return [r for r in list_runs(runs_dir) if r.openable]


def run_is_residual(run: RunInfo) -> bool:
    model = run.config.get("model") if isinstance(run.config.get("model"), dict) else {}
    return bool(model.get("residual", True))


def shapes_runs(runs: Sequence[RunInfo], residual: bool) -> list[RunInfo]:
    """The residual (or plain) runs trained on Shapes, in the order given (newest first from list_runs)."""
    return [r for r in runs if r.dataset == "shapes" and run_is_residual(r) == residual]


def shapes_pair(runs: Sequence[RunInfo]) -> dict[bool, RunInfo | None]:
    """The newest residual (True) and plain (False) runs trained on Shapes, None where there is none."""
    return {residual: next(iter(shapes_runs(runs, residual)), None) for residual in (True, False)}


def run_subject(run: RunInfo, model: nn.Module, classes: Sequence[str] | None, preprocess: dict | None,
                mtime: float, origin: str = "live", provenance: str = "") -> Subject:
    """A saved run's model (as `runs.load_run_model` returns it); `mtime` of its weights file keys it.

    `origin` is "recorded" for a bundled model (with its `provenance` text) and "live" for a run trained here.
    """
    pre = Preprocess.from_dict(preprocess, default_size=32)
    classes = classes or numbered_classes(model.fc.out_features)
    on_shapes = run.dataset == "shapes" and list(classes) == list(SHAPES_CLASSES)
    acc = "" if run.val_acc is None else f", validation accuracy {100 * run.val_acc:.1f}%"
    note = f" — {run.weights_note}" if run.weights_note else ""
    what = "recorded model" if origin == "recorded" else "run"
    return Subject(model, list(classes), pre, f"run:{run.path}:{mtime}", f"{what} {run.name} ({run.arch}{acc}){note}",
                   on_shapes, trained_on=DATASET_NAMES.get(run.dataset, run.dataset), origin=origin,
                   provenance=provenance)


def built_subject(model: nn.Module) -> Subject:
    """A model built from a config (random weights), fed like its stem expects: 32 px CIFAR, 224 px ImageNet."""
    cfg = model.config
    size = default_image_size(cfg)
    pre = Preprocess(image_size=size, resize=default_resize(size))
    return Subject(model, numbered_classes(cfg.num_classes), pre, f"build:{id(model)}:{hash(cfg)}",
                   "the Build page's model (untrained)", trained=False)


def pretrained_subject(loaded: PretrainedModel, arch: str, weights_name: str) -> Subject:
    pre = Preprocess.from_dict(loaded.preprocess)
    return Subject(loaded.model, list(loaded.categories), pre, f"tv:{arch}:{weights_name}",
                   f"torchvision {arch} ({weights_name})", trained_on="ImageNet")


def checkpoint_subject(model: nn.Module, ckpt: Checkpoint, cfg: Any, key: str, file_name: str) -> Subject:
    """An uploaded checkpoint's model whose weights fit `cfg`; puts it in eval mode."""
    model.eval()
    classes = checkpoint_classes(ckpt, cfg)
    on_shapes = classes == list(SHAPES_CLASSES)
    return Subject(model, classes, checkpoint_preprocess(ckpt, cfg), f"upload:{key}", f"uploaded {file_name}",
                   on_shapes, trained_on="Shapes" if on_shapes else "")
