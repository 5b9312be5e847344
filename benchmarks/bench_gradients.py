"""Plain vs residual measurements: speed on the CPU and the measured science, in one process.

    python3 benchmarks/bench_gradients.py [--reps 5] [--threads 2] [--seeds 3]

Figures printed:
  * the gradient profile of the depth-56 pair (ResNet-56 and plain-56, batch 64, 32x32, one seed,
    both networks built and measured: what the page's Measure button does per seed); target <= 2 s;
  * its overhead against a bare forward+backward of the same two networks on the same batch
    (interleaved rep by rep, median ratio);
  * the whole default depth sweep (8..110, plain and residual, batch 32, 32x32, one seed: the
    page's default); target <= 30 s;
  * the training cost of the heatmap recorder: SGD steps of ResNet-56 with a BlockGradRecorder
    (every step, the worst case, and every 10 steps, the page's scale) against none, interleaved;
  * the science: median first/last conv gradient ratio against depth with and without BatchNorm,
    and the neighbour correlation of input-gradients (shattering), plain vs residual.
On a machine shared with other jobs, read the interleaved ratios rather than the absolute times,
and try --threads 1 (or OMP_WAIT_POLICY=PASSIVE): two OpenMP threads that spin-wait on a CPU
another process is using made these small-tensor workloads up to 100x slower in our runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_core import build_model, get_preset
from resnet_core.analysis import (
    SWEEP_DEPTHS,
    BlockGradRecorder,
    depth_sweep,
    profile_pair,
    random_batch,
    shattering_sweep,
)
from resnet_core.recipes import SWEEP_BATCH


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_profile(reps: int) -> None:
    cfg = get_preset("resnet56")
    x, y = random_batch(64, 32, 10)
    models = [build_model(cfg), build_model(cfg.plain_twin())]

    def bare() -> None:
        for m in models:
            m.train()
            F.cross_entropy(m(x), y).backward()
            m.zero_grad(set_to_none=True)

    def profile() -> None:
        profile_pair(cfg, seeds=(0,), batch_size=64, image_size=32)

    profile(), bare()  # warm-up
    ours, base = [], []
    for _ in range(reps):
        ours.append(timed(profile))
        base.append(timed(bare))
    med = statistics.median(ours)
    print(f"gradient profile, ResNet-56 + plain-56, batch 64, 32x32, 1 seed: median {med:.2f} s "
          f"(min {min(ours):.2f}, target <= 2 s) {'OK' if med <= 2 else 'SLOWER THAN TARGET'}")
    print(f"  bare forward+backward of the same two nets: median {statistics.median(base):.2f} s; "
          f"profile / bare = {statistics.median(o / b for o, b in zip(ours, base)):.2f}x "
          "(includes building both nets and the per-conv norms)")


def bench_recorder(reps: int, steps: int = 4) -> None:
    cfg = get_preset("resnet56")
    x, y = random_batch(64, 32, 10, seed=1)

    def train(every: int | None) -> float:
        model = build_model(cfg)
        recorder = BlockGradRecorder(model, every) if every else None
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        elapsed = time.perf_counter() - start
        if recorder is not None:
            assert recorder.snapshot()[1], "the recorder recorded nothing"
            recorder.remove()
        return elapsed / steps

    train(None)
    rows: dict[str, list[float]] = {"none": [], "every 1": [], "every 10": []}
    for _ in range(reps):
        rows["none"].append(train(None))
        rows["every 1"].append(train(1))
        rows["every 10"].append(train(10))
    base = statistics.median(rows["none"])
    print(f"training step, ResNet-56, batch 64, 32x32: no recorder {base:.3f} s/step")
    for name in ("every 1", "every 10"):
        ratio = statistics.median(r / b for r, b in zip(rows[name], rows["none"]))
        print(f"  with BlockGradRecorder {name}: {statistics.median(rows[name]):.3f} s/step, "
              f"ratio to none {ratio:.3f}x")


def bench_sweep() -> None:
    result = depth_sweep(SWEEP_DEPTHS, seeds=(0,), batch_size=SWEEP_BATCH, image_size=32)  # the page's sweep
    print(f"depth sweep {SWEEP_DEPTHS[0]}..{SWEEP_DEPTHS[-1]}, plain + residual, batch {SWEEP_BATCH}, 32x32, 1 seed: "
          f"{result.seconds:.1f} s (target <= 30 s) {'OK' if result.seconds <= 30 else 'SLOWER THAN TARGET'}")


def row(name: str, values: list, fmt: str) -> str:
    return f"  {name:<13}" + "".join(format(v, fmt) for v in values)


def science(seeds: int) -> None:
    seeds_t = tuple(range(seeds))
    for norm in ("batch", "none"):
        result = depth_sweep(SWEEP_DEPTHS, norms=(norm,), seeds=seeds_t, batch_size=SWEEP_BATCH, image_size=32)
        plain = {d: m for d, m, _, _ in result.series(False, norm)}
        res = {d: m for d, m, _, _ in result.series(True, norm)}
        label = "with BatchNorm" if norm == "batch" else "without normalization"
        print(f"first/last conv gradient ratio at init, {label} (median of {seeds} seeds, batch 32, 32x32):")
        print(row("depth", list(SWEEP_DEPTHS), ">10"))
        print(row("plain", [plain[d] for d in SWEEP_DEPTHS], ">10.3g"))
        print(row("ResNet", [res[d] for d in SWEEP_DEPTHS], ">10.3g"))
        print(row("plain/ResNet", [plain[d] / res[d] for d in SWEEP_DEPTHS], ">10.3g"))
    depths = (8, 20, 56, 110)
    sweep = shattering_sweep(depths, seeds=seeds_t, n_points=64, image_size=16)
    plain = {d: m for d, m, _, _ in sweep.series(False)}
    res = {d: m for d, m, _, _ in sweep.series(True)}
    print(f"shattering: mean correlation of neighbouring input-gradients (64 points, 16x16, {seeds} seeds):")
    print(row("depth", list(depths), ">10"))
    print(row("plain", [plain[d] for d in depths], ">10.3f"))
    print(row("ResNet", [res[d] for d in depths], ">10.3f"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-science", action="store_true", help="timings only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, CPU")
    bench_profile(args.reps)
    bench_sweep()
    bench_recorder(args.reps)
    if not args.no_science:
        science(args.seeds)


if __name__ == "__main__":
    main()
