"""Shapes dataset figures: generation time, and (with --train) how fast ResNet-20 learns it.

    python3 benchmarks/bench_shapes.py                # generation time for 10,000 images
    python3 benchmarks/bench_shapes.py --train        # + ResNet-20 to 90% val, plain56 vs resnet56

The training loop is deliberately minimal (SGD momentum 0.9, nesterov, lr 0.1, wd 5e-4, batch
128, half an epoch of linear warm-up then linear decay to zero, random 2-pixel shifts and
horizontal flips, which change no Shapes class) so the figures describe the dataset, not a
trainer. Time is reported as wall time, samples seen and process CPU time: on a shared machine
wall time says little, while CPU time with --threads 1 is the time one free core would take.
"plain56 vs resnet56" trains both with the same schedule, data and seed (equal budget: the
same samples, and the two cost the same per sample).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# Before torch loads (as resnet_core does): spinning OpenMP threads starve each other on a busy CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_core import build_model, get_preset
from resnet_core.data import DataBundle, load_shapes, make_shapes, normalize


def time_generation(n: int, repeats: int) -> tuple[list[float], list[float]]:
    """Wall seconds and process CPU seconds per generation (CPU time is what contention hides)."""
    wall, cpu = [], []
    for r in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        make_shapes(n, seed=r)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random per-image shifts of up to `pad` pixels (zero fill) and horizontal flips."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    rows = (torch.arange(h)[None] + dy[:, None])[:, None, :, None].expand(n, x.shape[1], h, w + 2 * pad)
    out = padded.gather(2, rows)
    cols = (torch.arange(w)[None] + dx[:, None])
    flip = torch.rand(n, generator=gen) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :].expand(n, x.shape[1], h, w)
    return out.gather(3, cols)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: DataBundle, batch: int = 500) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(data.val), batch):
        x = normalize(data.val.images[start:start + batch], data.mean, data.std)
        correct += (model(x).argmax(1) == data.val.labels[start:start + batch]).sum().item()
    return correct / len(data.val)


def train(arch: str, data: DataBundle, epochs: int, lr: float, seed: int = 0, batch: int = 128,
          target: float | None = None, log: bool = True) -> dict:
    """Train for `epochs` with a schedule sized to them; val accuracy after each epoch."""
    torch.manual_seed(seed)
    model = build_model(get_preset(arch).replace(num_classes=len(data.classes)))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps_per_epoch = len(data.train) // batch
    total = epochs * steps_per_epoch
    warm = max(1, steps_per_epoch // 2)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    gen = torch.Generator().manual_seed(seed)
    history, train_time, train_cpu, samples, reached = [], 0.0, 0.0, 0, None
    for epoch in range(1, epochs + 1):
        model.train()
        start, start_cpu = time.perf_counter(), time.process_time()
        order = torch.randperm(len(data.train), generator=gen)
        losses = []
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            x = normalize(augment(data.train.images[idx], gen), data.mean, data.std)
            loss = F.cross_entropy(model(x), data.train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            samples += len(idx)
        train_time += time.perf_counter() - start
        train_cpu += time.process_time() - start_cpu
        acc = evaluate(model, data)
        row = {"epoch": epoch, "train_loss": statistics.mean(losses), "val_acc": acc,
               "train_s": train_time, "train_cpu_s": train_cpu, "samples": samples}
        history.append(row)
        if log:
            print(f"  {arch:9s} epoch {epoch:2d}  loss {row['train_loss']:.3f}  val {acc:.3f}  "
                  f"{train_time:6.1f}s wall  {samples / train_time:5.0f} samples/s  "
                  f"({samples / train_cpu:5.0f} samples per CPU-second)", flush=True)
        if target is not None and reached is None and acc >= target:
            reached = row
    return {"history": history, "reached": reached, "samples_per_s": samples / train_time,
            "samples_per_cpu_s": samples / train_cpu}


def throughput(arch: str, steps: int = 6, batch: int = 128) -> float:
    model = build_model(get_preset(arch))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", action="store_true", help="also train ResNet-20 and plain56 vs resnet56")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (on a busy machine 1 can be faster than 2)")
    parser.add_argument("--epochs", type=int, default=4, help="ResNet-20 schedule length")
    parser.add_argument("--deep-epochs", type=int, default=3, help="plain56 / resnet56 schedule length")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--n-val", type=int, default=2000)
    parser.add_argument("--skip-resnet20", action="store_true")
    parser.add_argument("--skip-deep", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    wall, cpu = time_generation(10000, 3)
    print(f"generate 10,000 Shapes images (32x32, {args.threads} threads): wall median {statistics.median(wall):.2f}s, "
          f"min {min(wall):.2f}s; CPU time median {statistics.median(cpu):.2f}s (limit 5s)")
    if not args.train:
        return

    data = load_shapes(args.n_train, args.n_val, seed=0)
    r20 = throughput("resnet20")
    print(f"ResNet-20 fwd+bwd throughput now: {r20:.0f} samples/s (batch 128, {args.threads} threads)")
    if not args.skip_resnet20:
        resnet20_to_90(data, args)
    if not args.skip_deep:
        plain_vs_residual(data, args)


def resnet20_to_90(data: DataBundle, args: argparse.Namespace) -> None:
    print(f"ResNet-20, {args.epochs}-epoch schedule, lr {args.lr}, {len(data.train)} train / {len(data.val)} val:")
    result = train("resnet20", data, args.epochs, args.lr, target=0.90)
    reached = result["reached"]
    if reached:
        print(f"ResNet-20 reached {reached['val_acc']:.3f} >= 0.90 after epoch {reached['epoch']} of "
              f"{args.epochs}: {reached['samples']} samples, {reached['train_s']:.0f}s wall here "
              f"({result['samples_per_s']:.0f} samples/s), {reached['train_cpu_s']:.0f} CPU-seconds of training "
              f"({args.threads} thread(s); with one thread that is the time on one free core)")
    else:
        print(f"ResNet-20 did NOT reach 0.90 in {args.epochs} epochs "
              f"(best {max(r['val_acc'] for r in result['history']):.3f})")


def plain_vs_residual(data: DataBundle, args: argparse.Namespace) -> None:
    print(f"plain56 vs resnet56, same {args.deep_epochs}-epoch schedule, same data and seed:")
    outcome = {arch: train(arch, data, args.deep_epochs, args.lr)["history"][-1] for arch in ("plain56", "resnet56")}
    for arch, row in outcome.items():
        print(f"  {arch}: final train loss {row['train_loss']:.3f}, val acc {row['val_acc']:.3f}")
    gap = outcome["resnet56"]["val_acc"] - outcome["plain56"]["val_acc"]
    print(f"resnet56 - plain56 val accuracy: {gap:+.3f}")


if __name__ == "__main__":
    main()
