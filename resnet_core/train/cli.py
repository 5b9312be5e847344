"""The command line: python -m resnet_core.train trains one run with the app's recipe and saves its folder."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

from torch import nn

from ..data.containers import DATASET_KINDS, DatasetError
from ..data.spec import DatasetSpec, load_dataset
from ..model.config import ConfigError, ResNetConfig, get_preset
from ..model.model import build_seeded
from ..recipes import DEFAULT_PRESET, SHAPES_DATA, SHAPES_TRAIN
from ..status import Status
from .block_grads import BLOCK_GRADS_FILE, BlockGradRecorder, BlockGradWriter
from .config import DEVICES, OPTIMIZERS, SCHEDULES, TrainConfig, TrainConfigError, TrainerError, resolve_device
from .distributed import main_first, shutdown, start
from .faults import is_out_of_memory, out_of_memory_message
from .pretrained import WeightsUnavailableError, finetune_model
from .snapshot import TrainerSnapshot
from .trainer import Trainer, create_trainer, with_pretrained_stats


def _parser() -> argparse.ArgumentParser:
    """Every default is the app's recipe (resnet_core.recipes): with no flags this trains exactly the
    Train page's default run, and each flag overrides one value of it."""
    p = argparse.ArgumentParser(
        prog="python -m resnet_core.train",
        description="Train a ResNet from resnet_core and save the run (config.json, metrics.jsonl, model.pt). "
                    "The defaults are the Train page's: ResNet-20 on 6,000 Shapes images with the app's one recipe.")
    d, data_d = SHAPES_TRAIN, SHAPES_DATA
    model = p.add_argument_group("model")
    model.add_argument("--preset", default=DEFAULT_PRESET, help="a preset name, e.g. resnet20, plain20, resnet18")
    model.add_argument("--model-config", type=Path, help="a ResNetConfig JSON file (overrides --preset)")
    model.add_argument("--finetune", action="store_true",
                       help="start from torchvision ImageNet weights of --preset (resnet18/34/50/101/152)")
    model.add_argument("--freeze-backbone", action="store_true", help="with --finetune: train only the new head")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default=data_d.kind, choices=list(DATASET_KINDS))
    data.add_argument("--data-root", help="folder of CIFAR files or an ImageFolder (folder or .zip)")
    data.add_argument("--n-train", type=int, default=data_d.n_train, help="training images (Shapes; cap for others)")
    data.add_argument("--n-val", type=int, default=data_d.n_val, help="validation images")
    data.add_argument("--image-size", type=int, default=data_d.image_size)
    data.add_argument("--data-seed", type=int, default=data_d.seed, help="seed of the generated/sampled dataset")
    data.add_argument("--val-fraction", type=float, default=data_d.val_fraction,
                      help="ImageFolder: the share held out for validation")
    data.add_argument("--no-download", action="store_true", help="CIFAR: never download, only read --data-root")
    data.add_argument("--no-verify", action="store_true", help="CIFAR: skip the archive checksum")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=d.epochs)
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    t.add_argument("--lr", type=float, default=d.lr)
    t.add_argument("--momentum", type=float, default=d.momentum)
    t.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=d.nesterov,
                   help="Nesterov momentum (SGD)")
    t.add_argument("--weight-decay", type=float, default=d.weight_decay)
    t.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    t.add_argument("--milestones", type=float, nargs="+", default=list(d.milestones))
    t.add_argument("--gamma", type=float, default=d.gamma)
    t.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    t.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="warm-up in steps (instead of epochs)")
    t.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    t.add_argument("--no-crop", action="store_true", help="no random crop")
    t.add_argument("--crop-padding", type=int, default=d.crop_padding, help="zero padding before the random crop")
    t.add_argument("--no-flip", action="store_true", help="no random flip")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--device", choices=DEVICES, default=d.device)
    t.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=d.bf16,
                   help="default: on for CUDA; on a CPU with native bf16 (AVX512-BF16, AMX) when measured faster")
    t.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=d.channels_last,
                   help="default: on for CUDA; on a CPU when measured faster for this run's model and batch")
    t.add_argument("--compile", action="store_true", default=d.compile)
    t.add_argument("--max-steps", type=int, default=d.max_steps)
    t.add_argument("--eval-batch-size", type=int, default=d.eval_batch_size, help="images per validation batch")
    t.add_argument("--val-per-epoch", type=int, default=d.val_per_epoch,
                   help="validation passes per epoch, evenly spaced (a short run's accuracy curve starts sooner)")
    t.add_argument("--sync-bn", action="store_true",
                   help="under torchrun on CUDA: BatchNorm statistics over the whole global batch (SyncBatchNorm); "
                        "default: each process normalises with its own slice")
    out = p.add_argument_group("output")
    out.add_argument("--runs-dir", type=Path, help="default: $RESNET_EXPLORER_RUNS_DIR or ./runs")
    out.add_argument("--name", help="run folder name (default: time-arch-dataset)")
    out.add_argument("--owner", default="terminal", type=_owner,
                     help="who may stop or remove the run (the app passes a visitor's hash; default: terminal)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    out.add_argument("--record-block-grads", type=int, default=0, metavar="N",
                     help=f"every N steps, write each block's output-gradient norm to {BLOCK_GRADS_FILE}")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the command line describes: the recipe with the flags' values."""
    return SHAPES_TRAIN.with_choices(
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        momentum=args.momentum, nesterov=args.nesterov, weight_decay=args.weight_decay, schedule=args.schedule,
        milestones=tuple(args.milestones), gamma=args.gamma, warmup_epochs=args.warmup_epochs,
        warmup_steps=args.warmup_steps, eval_batch_size=args.eval_batch_size, val_per_epoch=args.val_per_epoch,
        label_smoothing=args.label_smoothing,
        augment_crop=not args.no_crop, crop_padding=args.crop_padding,
        augment_flip=not args.no_flip, seed=args.seed, device=args.device, bf16=args.bf16,
        channels_last=args.channels_last, compile=args.compile, max_steps=args.max_steps)


def dataset_from_args(args: argparse.Namespace) -> DatasetSpec:
    """The DatasetSpec the command line describes (the recipe's Shapes set by default)."""
    return DatasetSpec(kind=args.dataset, root=args.data_root, n_train=args.n_train, n_val=args.n_val,
                       seed=args.data_seed, image_size=args.image_size, val_fraction=args.val_fraction,
                       download=not args.no_download, verify_checksums=not args.no_verify)


def _model_config_from_args(args: argparse.Namespace) -> ResNetConfig:
    """Checked before the data is loaded, so a typo fails at once."""
    if args.model_config is None:
        return get_preset(args.preset)
    try:
        return ResNetConfig.from_json(args.model_config.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--model-config: cannot read {args.model_config} ({exc.strerror})") from None


def _model_from_args(args: argparse.Namespace, cfg: ResNetConfig, num_classes: int, seed: int) -> nn.Module:
    if args.finetune:
        return finetune_model(args.preset, num_classes, freeze_backbone=args.freeze_backbone)
    return build_seeded(cfg, seed, num_classes)


def _watch(trainer: Trainer, show_progress: bool, on_tick: Any = None) -> None:
    """Follow the trainer from the main thread with a progress bar (and `on_tick()` 4 times a second);
    Ctrl-C stops it cleanly."""
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=trainer.total_steps, unit="step", file=sys.stderr, dynamic_ncols=True)
    try:
        while not trainer.join(0.25):
            if bar is not None:
                _update_bar(bar, trainer.snapshot())
            if on_tick is not None:
                on_tick()
    except KeyboardInterrupt:  # under torchrun every rank gets it (torchrun passes Ctrl-C on) and they stop together
        if trainer.dist is None or trainer.dist.is_main:
            print("\nstopping (finishing the current step)...", file=sys.stderr)
        trainer.stop()
        # Not trainer.join(): on Python 3.11 a join that Ctrl-C interrupted marks the thread finished while it still
        # runs (the bpo-45274 change), and the process would exit before the model and final status are written.
        while trainer.is_running:
            time.sleep(0.05)
    if on_tick is not None:
        on_tick()
    if bar is not None:
        _update_bar(bar, trainer.snapshot())
        bar.close()


def _update_bar(bar: Any, snap: TrainerSnapshot) -> None:
    bar.update(snap.step - bar.n)
    steps, epochs = snap.steps, snap.epochs
    post = {}
    if steps:
        post["loss"] = f"{steps[-1].train_loss:.3f}"
        post["img/s"] = f"{steps[-1].samples_per_s:.0f}"
    if epochs and epochs[-1].val_acc is not None:
        post["val_acc"] = f"{100 * epochs[-1].val_acc:.1f}%"
    bar.set_postfix(post, refresh=False)


def _owner(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", text):
        raise argparse.ArgumentTypeError("an owner is a plain name of letters, digits, '-' and '_' (at most 64)")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _train(parser, args)
    finally:
        shutdown()  # under torchrun every rank leaves the process group, after an error too, so torchrun exits


def _train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Under torchrun each rank runs this: rank 0 alone writes the run folder and prints."""
    try:
        config = config_from_args(args)
        spec = dataset_from_args(args)
        device = resolve_device(config.device)
        model_cfg = _model_config_from_args(args)
        dist = start(device, sync_bn=args.sync_bn)  # None in a single process
        with main_first(dist):  # one rank downloads (CIFAR, pretrained weights), the others read its files
            data = load_dataset(spec)
            if args.finetune:
                data = with_pretrained_stats(data)
            model = _model_from_args(args, model_cfg, len(data.classes), config.seed)
        trainer = create_trainer(model, data, config, runs_dir=args.runs_dir, name=args.name, dist=dist,
                                 owner=args.owner)
    except (TrainConfigError, ConfigError, DatasetError, TrainerError, WeightsUnavailableError, ValueError,
            OSError) as exc:
        parser.error(str(exc))
    except (MemoryError, RuntimeError) as exc:  # the dataset or the model did not fit in memory
        if not is_out_of_memory(exc):
            raise
        parser.error(out_of_memory_message(exc, "cpu (loading the data and building the model)", args.batch_size,
                                           args.image_size))
    if trainer.run is None:  # another rank than 0 under torchrun: train quietly, report only a failure of its own
        trainer.start()
        _watch(trainer, False)
        snap = trainer.snapshot()
        if snap.status is Status.FAILED:
            print(f"error (rank {dist.rank}): {snap.message}", file=sys.stderr)
        return 1 if snap.status.bad else 0
    print(f"run folder: {trainer.run.path}", file=sys.stderr)
    on_tick = None
    if args.record_block_grads:
        on_tick = BlockGradWriter(BlockGradRecorder(model, args.record_block_grads), trainer.run.path).write_new
    trainer.start()
    _watch(trainer, not args.no_progress, on_tick)
    snap = trainer.snapshot()
    if snap.status.bad and snap.status is not Status.DID_NOT_LEARN:  # diverged or failed
        print(f"error: {snap.message}", file=sys.stderr)
        return 1
    print(f"warning: {snap.message}" if snap.status is Status.DID_NOT_LEARN else snap.message, file=sys.stderr)
    epochs = snap.validated_epochs
    if epochs:
        print(f"final validation accuracy: {100 * epochs[-1].val_acc:.2f}%")
    else:
        print("final validation accuracy: n/a (stopped before the first validation)")
    return 1 if snap.status.bad else 0
