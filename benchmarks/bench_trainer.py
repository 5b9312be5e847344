"""Trainer benchmarks: overhead against a bare loop, time to 90% on Shapes, and GPU throughput.

    python benchmarks/bench_trainer.py                  # overhead ratio on the CPU (interleaved rounds)
    python benchmarks/bench_trainer.py --time-to-90     # + ResNet-20 on Shapes until 90% validation accuracy
    python benchmarks/bench_trainer.py --gpu            # + ResNet-18 (CIFAR stem) on CUDA: Trainer vs DataLoader

1. Overhead. The Trainer (metric events, global gradient norm, lr schedule, run folder with
   metrics.jsonl) against a bare PyTorch loop (zero_grad, forward, loss, backward, step) on
   the same model, the same uint8 data normalised the same way, augmentation off in both (--augment: the
   recipe's crop and flip in both, on the uint8 batch in one pass).
   Rounds alternate bare / Trainer so a disturbance (other processes) hits both alike; each
   round times only its training steps (after one warm-up step). Target: ratio >= 0.95.
2. Time to 90%: ResNet-20 trained on Shapes by the Trainer, with the Train page's defaults
   except the epoch count; the time at which validation accuracy first reaches 90%.
3. GPU: ResNet-18 with the CIFAR stem, Trainer (bf16 autocast + channels_last + dataset on
   the GPU + augmentation on the GPU) against a plain DataLoader (pinned host tensors,
   2 workers) + fp32 loop without augmentation. Skipped with a note when there is no CUDA.
"""

from __future__ import annotations

import os

# Before torch loads OpenMP: on a CPU shared with other processes, spinning OpenMP workers made
# each training step up to ~17x slower here (measured: 8.6 s vs 0.5 s per ResNet-20 step).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import copy
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_core.data import DataBundle, ImageSet
from resnet_core.data.transforms import augment_batch
from resnet_core.model import build_seeded, get_preset
from resnet_core.status import Status
from resnet_core.train import Run, TrainConfig, Trainer, preprocess_of


def random_bundle(n_train: int, n_val: int, size: int, classes: int, seed: int = 0) -> DataBundle:
    g = torch.Generator().manual_seed(seed)

    def part(n: int) -> ImageSet:
        return ImageSet(torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
                        torch.randint(0, classes, (n,), generator=g))

    return DataBundle(part(n_train), part(n_val), [f"c{i}" for i in range(classes)], (0.5, 0.5, 0.5),
                      (0.25, 0.25, 0.25), {"kind": "random", "n_train": n_train, "n_val": n_val})


def bare_round(model, data: DataBundle, steps: int, batch: int, cfg: TrainConfig, device: str = "cpu") -> float:
    """Images per second of the bare loop over `steps` steps, after one warm-up step; with the config's
    augmentation (crop and flip on the uint8 batch in one pass, as the recipe's), drawn as the Trainer draws it."""
    augment = cfg.augment_crop or cfg.augment_flip
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    x_all, y_all = data.train.images.to(device), data.train.labels.to(device)
    mean = torch.tensor(data.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, 3, 1, 1)
    order = torch.randperm(len(y_all), device=device)
    model.train()
    t_first = 0.0
    for i in range(steps + 1):
        idx = order[i * batch:(i + 1) * batch]
        x = x_all[idx]
        if augment:
            x = augment_batch(x, cfg.crop_padding if cfg.augment_crop else 0, cfg.augment_flip, gen)
        x = (x.float() / 255 - mean) / std
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y_all[idx])
        loss.backward()
        opt.step()
        if i == 0:
            t_first = time.perf_counter()
    return steps * batch / (time.perf_counter() - t_first)


def in_thread(fn, *args):
    """Run fn in a fresh thread, as the Trainer runs its loop, so both loops meet the same threading.

    (Measured here: under CPU oversubscription, the same conv steps ran several times slower in the
    main thread than in a worker thread with the same two OpenMP threads; comparing a main-thread
    bare loop with the threaded Trainer would flatter the Trainer.)
    """
    out = []
    worker = threading.Thread(target=lambda: out.append(fn(*args)))
    worker.start()
    worker.join()
    return out[0]


def trainer_round(model, data: DataBundle, steps: int, cfg: TrainConfig, runs_dir: str) -> float:
    """Images per second of the Trainer over the same number of steps, timed from its own step events."""
    run = Run.create(runs_dir, model.config, cfg.to_dict(), data.description, data.classes, preprocess_of(data))
    trainer = Trainer(model, data, cfg.replace(max_steps=steps + 1), run)
    trainer.start()
    trainer.join()
    events = trainer.snapshot().steps
    if trainer.status is not Status.FINISHED or len(events) != steps + 1:
        raise RuntimeError(f"trainer round ended with {trainer.status}: {trainer.message}")
    return steps * cfg.batch_size / (events[-1].time - events[0].time)


def overhead(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    cfg_model = get_preset(args.arch)
    data = random_bundle(args.batch_size * (args.steps + 2), 64, 32, 10)
    base = build_seeded(cfg_model, 0, 10)
    bare_model, trainer_model = copy.deepcopy(base), copy.deepcopy(base)
    cfg = TrainConfig(epochs=1, batch_size=args.batch_size, lr=0.01, schedule="constant", augment_crop=args.augment,
                      augment_flip=args.augment, crop_padding=2, device="cpu", eval_batch_size=64,
                      bf16=False, channels_last=False)  # the bare loop's fp32 NCHW: no precision probe
    bare, ours = [], []
    with tempfile.TemporaryDirectory() as runs_dir:
        for r in range(args.rounds):
            bare.append(in_thread(bare_round, bare_model, data, args.steps, args.batch_size, cfg))
            ours.append(trainer_round(trainer_model, data, args.steps, cfg, runs_dir))
            print(f"  round {r + 1}: bare {bare[-1]:8.1f} img/s   Trainer {ours[-1]:8.1f} img/s", flush=True)
    ratio = statistics.median(ours) / statistics.median(bare)
    paired = statistics.median(o / b for o, b in zip(ours, bare))
    print(f"overhead ({args.arch}, batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds, "
          f"{args.threads} threads, CPU, augmentation {'on (crop pad 2 + flip) in both' if args.augment else 'off'})")
    print(f"  bare loop median      {statistics.median(bare):8.1f} img/s")
    print(f"  Trainer median        {statistics.median(ours):8.1f} img/s")
    print(f"  ratio of medians      {ratio:.3f}   (median of per-round ratios {paired:.3f}; target >= 0.95)")


def time_to_90(args: argparse.Namespace) -> None:
    from resnet_core.data import load_shapes

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = load_shapes(args.n_train, args.n_val, seed=0, size=32)
    print(f"time to 90%: Shapes {args.n_train}+{args.n_val} images generated in {time.perf_counter() - t0:.1f} s")
    model = build_seeded(get_preset("resnet20"), 0, len(data.classes))
    cfg = TrainConfig(epochs=args.max_epochs, batch_size=128, lr=args.lr, schedule="onecycle", device="cpu")
    trainer = Trainer(model, data, cfg)
    trainer.start()
    reached = None
    while not trainer.join(0.5):
        hits = [e for e in trainer.snapshot().validated_epochs if e.val_acc >= args.target]
        if hits and reached is None:
            reached = hits[0]
            trainer.stop()
    epochs = trainer.snapshot().validated_epochs
    for e in epochs:
        print(f"  epoch {e.epoch:3d}  step {e.step:5d}  {e.time:7.1f} s  val acc {100 * e.val_acc:.2f}%")
    if reached is None:
        reached = next((e for e in epochs if e.val_acc >= args.target), None)
    if reached:
        print(f"  ResNet-20 reached {100 * args.target:.0f}% validation accuracy after {reached.time:.1f} s "
              f"(epoch {reached.epoch} of a {args.max_epochs}-epoch onecycle schedule, lr {args.lr}, "
              f"{args.threads} threads)")
    else:
        best = max((e.val_acc for e in epochs), default=0.0)
        print(f"  not reached in {args.max_epochs} epochs; best validation accuracy {100 * best:.2f}%")


def dataloader_round(model, data: DataBundle, steps: int, batch: int) -> float:
    """Plain DataLoader over normalised float images in pinned host memory, fp32 on the GPU."""
    x = ((data.train.images.float() / 255 - torch.tensor(data.mean).view(1, 3, 1, 1))
         / torch.tensor(data.std).view(1, 3, 1, 1))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, data.train.labels), batch_size=batch,
                                         shuffle=True, num_workers=2, pin_memory=True, drop_last=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model.train()
    t_first, done = 0.0, 0
    for i, (xb, yb) in enumerate(loader):
        xb, yb = xb.cuda(non_blocking=True), yb.cuda(non_blocking=True)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
        if i == 15:  # warm-up (cuDNN autotuning, worker start) excluded
            torch.cuda.synchronize()
            t_first = time.perf_counter()
        elif i > 15:
            done += 1
        if done == steps:
            break
    torch.cuda.synchronize()
    return done * batch / (time.perf_counter() - t_first)


def trainer_gpu_round(model, data: DataBundle, steps: int, batch: int) -> float:
    cfg = TrainConfig(epochs=1, batch_size=batch, lr=0.05, schedule="onecycle", device="cuda", bf16=True,
                      channels_last=True, max_steps=steps + 16)
    trainer = Trainer(model, data, cfg)
    trainer.start()
    trainer.join()
    events = trainer.snapshot().steps
    if trainer.status is not Status.FINISHED:
        raise RuntimeError(f"trainer round ended with {trainer.status}: {trainer.message}")
    # Step events come in windows of 16 (one host sync each); time the windows after the first.
    first = events[15]
    return (events[-1].step - first.step) * batch / (events[-1].time - first.time)


def gpu(args: argparse.Namespace) -> None:
    if not torch.cuda.is_available():
        print("GPU: skipped — no CUDA device on this machine (run with a GPU for the bf16/channels_last figures)")
        return
    torch.backends.cudnn.benchmark = True
    cfg = get_preset("resnet18").replace(stem="cifar", num_classes=10)
    batch, steps = 512, 80
    data = random_bundle(batch * (steps + 20), 1024, 32, 10)
    base = build_seeded(cfg, 0, 10)
    plain, ours = [], []
    for _ in range(2):
        plain.append(dataloader_round(copy.deepcopy(base).cuda(), data, steps, batch))
        ours.append(trainer_gpu_round(copy.deepcopy(base), data, steps, batch))
    name = torch.cuda.get_device_name()
    print(f"GPU ({name}): ResNet-18, CIFAR stem, 32x32, batch {batch}, {steps} timed steps, 2 alternating rounds")
    print(f"  DataLoader + fp32                          {statistics.median(plain):9.0f} img/s")
    print(f"  Trainer (bf16, channels_last, data on GPU) {statistics.median(ours):9.0f} img/s")
    print(f"  speed-up                                   {statistics.median(ours) / statistics.median(plain):.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=8, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--time-to-90", action="store_true")
    p.add_argument("--n-train", type=int, default=10000)
    p.add_argument("--n-val", type=int, default=2000)
    p.add_argument("--max-epochs", type=int, default=10)
    p.add_argument("--target", type=float, default=0.9)
    p.add_argument("--lr", type=float, default=0.1, help="peak SGD learning rate for --time-to-90")
    p.add_argument("--gpu", action="store_true", help="also the CUDA throughput comparison (auto with CUDA)")
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument("--augment", action="store_true", help="the recipe's crop and flip in both loops")
    args = p.parse_args()
    print(f"torch {torch.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
          "note: timings on a shared machine are disturbed by other processes")
    if not args.skip_overhead:
        overhead(args)
    if args.time_to_90:
        time_to_90(args)
    if args.gpu or torch.cuda.is_available():
        gpu(args)
    else:
        print("GPU: skipped — no CUDA device on this machine")


if __name__ == "__main__":
    main()
