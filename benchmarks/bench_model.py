"""Our resnet50 against torchvision's: forward+backward time on the same batch, interleaved in one process.

Also times `summarize` on resnet152 at 224x224 (the Build page's per-layer table).
Run: python3 benchmarks/bench_model.py [--batch 16] [--rounds 7] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from resnet_core import build_model, get_preset, summarize  # noqa: E402


def fwd_bwd_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    sync()
    elapsed = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    ours = build_model(get_preset("resnet50")).to(device).train()
    reference = torchvision.models.resnet50().to(device).train()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(args.batch, 3, 224, 224, device=device)
    y = torch.randint(0, 1000, (args.batch,), device=device)
    for model in (ours, reference):  # warm-up: allocator, kernels
        fwd_bwd_seconds(model, x, y)
    times: dict[str, list[float]] = {"ours": [], "torchvision": []}
    for r in range(args.rounds):
        # Alternate the order each round so drift in machine load hits both alike.
        order = [("ours", ours), ("torchvision", reference)]
        for name, model in order if r % 2 == 0 else order[::-1]:
            times[name].append(fwd_bwd_seconds(model, x, y))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"device={device} threads={torch.get_num_threads()} batch={args.batch} rounds={args.rounds}")
    print(f"resnet50 fwd+bwd median: ours {med['ours']:.3f} s, torchvision {med['torchvision']:.3f} s")
    print(f"ratio ours/torchvision: {med['ours'] / med['torchvision']:.3f} (target <= 1.05)")

    big = build_model(get_preset("resnet152"))
    summarize(big, (3, 224, 224))  # warm-up
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        summarize(big, (3, 224, 224))
        runs.append(time.perf_counter() - start)
    print(f"summarize(resnet152, 3x224x224) median: {statistics.median(runs):.3f} s (target < 2 s)")


if __name__ == "__main__":
    main()
