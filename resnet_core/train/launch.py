"""A training request and the command line it becomes: how the app starts a run in a worker process.

The app never trains inside its web server. A page describes the run it wants as a TrainRequest, and
`worker_command` turns it into the same `python -m resnet_core.train ...` a person would type (or
`python -m torch.distributed.run ... -m resnet_core.train ...` for several GPUs). The page can show that
command, and a run started from a terminal is indistinguishable from one started by a button.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..data.spec import DatasetSpec
from ..model.config import ResNetConfig
from .config import TrainConfig, TrainerError

# TrainConfig / DatasetSpec fields and the flag that sets each (python -m resnet_core.train --help).
_TRAIN_FLAGS = {
    "epochs": "--epochs", "batch_size": "--batch-size", "optimizer": "--optimizer", "lr": "--lr",
    "momentum": "--momentum", "weight_decay": "--weight-decay", "schedule": "--schedule", "gamma": "--gamma",
    "warmup_epochs": "--warmup-epochs", "warmup_steps": "--warmup-steps", "label_smoothing": "--label-smoothing",
    "crop_padding": "--crop-padding", "seed": "--seed", "device": "--device", "max_steps": "--max-steps",
    "eval_batch_size": "--eval-batch-size", "val_per_epoch": "--val-per-epoch",
}
_DATA_FLAGS = {"kind": "--dataset", "root": "--data-root", "n_train": "--n-train", "n_val": "--n-val",
               "image_size": "--image-size", "seed": "--data-seed", "val_fraction": "--val-fraction"}


@dataclass(frozen=True)
class TrainRequest:
    """One training run as the app asks for it.

    model: the architecture to build (ignored with `finetune`, which names a torchvision architecture).
    name: the run folder's name under the runs folder (the queue picks a unique one).
    record_block_grads: every N steps the worker writes each block's output-gradient norm (0: never).
    nproc: processes on this machine; more than one starts torchrun with DistributedDataParallel.
    owner: recorded in the run's config.json (a visitor's hash when a page started it).
    """

    model: ResNetConfig
    data: DatasetSpec
    train: TrainConfig
    name: str
    finetune: str | None = None
    freeze_backbone: bool = False
    record_block_grads: int = 0
    nproc: int = 1
    owner: str = "terminal"  # serving.identity: who may stop or remove the run

    def __post_init__(self) -> None:
        if self.nproc < 1:
            raise TrainerError(f"nproc {self.nproc}: a run needs at least one process")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise TrainerError(f"run name {self.name!r}: use a plain folder name")

    def to_dict(self) -> dict:
        """Plain JSON (the queue keeps its waiting jobs on disk with it)."""
        return {"model": self.model.to_dict(), "data": self.data.to_dict(), "train": self.train.to_dict(),
                "name": self.name, "finetune": self.finetune, "freeze_backbone": self.freeze_backbone,
                "record_block_grads": self.record_block_grads, "nproc": self.nproc, "owner": self.owner}

    @classmethod
    def from_dict(cls, data: dict) -> TrainRequest:
        """Read back (and validate again) what to_dict wrote."""
        return cls(ResNetConfig.from_dict(data["model"]), DatasetSpec.from_dict(data["data"]),
                   TrainConfig.from_dict(data["train"]), str(data["name"]), data.get("finetune"),
                   bool(data.get("freeze_backbone", False)), int(data.get("record_block_grads", 0)),
                   int(data.get("nproc", 1)), str(data.get("owner", "terminal")))


def _flag_value(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def cli_flags(request: TrainRequest, model_config_file: Path | None) -> list[str]:
    """The flags of `python -m resnet_core.train` that reproduce `request` (every value spelled out, so the
    run does not change if the recipe's defaults do)."""
    t, d = request.train, request.data
    flags: list[str] = []
    if request.finetune:
        flags += ["--finetune", "--preset", request.finetune] + (["--freeze-backbone"] if request.freeze_backbone
                                                                 else [])
    elif model_config_file is not None:
        flags += ["--model-config", str(model_config_file)]
    for field, flag in _DATA_FLAGS.items():
        value = getattr(d, field)
        if value is not None:
            flags += [flag, _flag_value(value)]
    if not d.download:
        flags.append("--no-download")
    if not d.verify_checksums:
        flags.append("--no-verify")
    for field, flag in _TRAIN_FLAGS.items():
        value = getattr(t, field)
        if value is not None:
            flags += [flag, _flag_value(value)]
    flags += ["--milestones", *(_flag_value(m) for m in t.milestones)]
    flags.append("--nesterov" if t.nesterov else "--no-nesterov")
    for field, flag in (("bf16", "bf16"), ("channels_last", "channels-last")):
        value = getattr(t, field)
        if value is not None:
            flags.append(f"--{flag}" if value else f"--no-{flag}")
    if t.compile:
        flags.append("--compile")
    if not t.augment_crop:
        flags.append("--no-crop")
    if not t.augment_flip:
        flags.append("--no-flip")
    if request.record_block_grads:
        flags += ["--record-block-grads", str(request.record_block_grads)]
    if request.owner != "terminal":
        flags += ["--owner", request.owner]
    return flags


def worker_command(request: TrainRequest, runs_dir: Path, spool: Path) -> list[str]:
    """The argv that trains `request` into `runs_dir/<name>`. The model's config is written to
    `spool/<name>.model.json` first (a ResNetConfig JSON, as --model-config reads)."""
    model_file = None
    if not request.finetune:
        spool.mkdir(parents=True, exist_ok=True)
        model_file = spool / f"{request.name}.model.json"
        model_file.write_text(json.dumps(request.model.to_dict()), encoding="utf-8")
    if request.nproc > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={request.nproc}", "-m", "resnet_core.train"]
    else:
        launcher = [sys.executable, "-m", "resnet_core.train"]
    return launcher + cli_flags(request, model_file) + ["--runs-dir", str(runs_dir), "--name", request.name,
                                                        "--no-progress"]
