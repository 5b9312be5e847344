"""One prepared GPU run (an NVIDIA H200): the Trainer's speed, the demos' times, the CUDA OOM message, torchrun.

    python benchmarks/bench_gpu.py           # on a CUDA machine, about 3-5 min (torch + torchvision only)
    python benchmarks/bench_gpu.py --smoke   # everything shrunk, on the CPU when there is no CUDA, < 60 s

Each figure is one line; a part that fails prints its error and the next part runs.
  1. Trainer vs a bare bf16 + channels_last loop written here (same ResNet-18 with the CIFAR stem, 32 px random
     data on the GPU, batch 512, SGD, no augmentation), rounds alternating after warm-up. Target: ratio >= 0.95.
  2. CIFAR ResNet-18 training through the Trainer with the recipe's GPU augmentation, eager and with
     compile=True (the compile capped at COMPILE_CAP_S). Target: >= 40,000 img/s on an H200.
  3. The Shapes recipe (recipes.SHAPES_DATA + SHAPES_TRAIN, ResNet-20) and the degradation demo (plain and
     residual twins of DEGRADATION_DEPTHS on DEGRADATION_DATA with DEGRADATION_TRAIN, trained one after
     another here; the page trains the four at once) on the GPU, against the pages' estimates.
  4. A training that cannot fit (ResNet-152, 160 px, batch 4096: over 300 GB of activations) through the
     Trainer: its final status and message (target: a clear "out of memory ..."), and GPU memory freed after.
  5. `torchrun --standalone --nproc_per_node 1 -m resnet_core.train --device cuda --max-steps 50` (and one
     process per GPU when there are several): exit code, config.json's world_size and status.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_core.analysis.common import cifar_config
from resnet_core.data import DataBundle, ImageSet, load_dataset
from resnet_core.estimates import (
    estimate_seconds,
    relative_cost,
    shapes_recipe_seconds,
    trainer_seconds_per_image,
    training_seconds,
    worker_start_seconds,
)
from resnet_core.model import build_seeded, get_preset
from resnet_core.recipes import (
    DEGRADATION_DATA,
    DEGRADATION_DEPTHS,
    DEGRADATION_TRAIN,
    SHAPES_DATA,
    SHAPES_TRAIN,
)
from resnet_core.status import Status
from resnet_core.train import TrainConfig, Trainer

CUDA = torch.cuda.is_available()
COMPILE_CAP_S = 150  # the compiled run gets this long (compilation included) before it is stopped


def random_bundle(n_train: int, n_val: int, size: int, classes: int = 10, zeros: bool = False) -> DataBundle:
    g = torch.Generator().manual_seed(0)

    def part(n: int) -> ImageSet:
        x = (torch.zeros((n, 3, size, size), dtype=torch.uint8) if zeros
             else torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g))
        return ImageSet(x, torch.randint(0, classes, (n,), generator=g))

    return DataBundle(part(n_train), part(n_val), [f"c{i}" for i in range(classes)], (0.5,) * 3, (0.25,) * 3,
                      {"kind": "random"})


def bench_model(a):
    """ResNet-18 with the CIFAR stem (ResNet-20 in --smoke: the CPU is too slow for ResNet-18)."""
    cfg = get_preset("resnet20") if a.smoke else get_preset("resnet18").replace(stem="cifar", num_classes=10)
    return build_seeded(cfg, 0, 10)


def train(model, data: DataBundle, cfg: TrainConfig, cap_s: float | None = None) -> Trainer:
    """A Trainer run to its end (or stopped after cap_s); raises unless it finished."""
    trainer = Trainer(model, data, cfg).start()
    if not trainer.join(cap_s):
        trainer.stop()
        trainer.join(60)
        raise RuntimeError(f"not finished within {cap_s:.0f} s (stopped; at step {trainer.step})")
    if trainer.status is not Status.FINISHED:
        raise RuntimeError(f"the Trainer ended {trainer.status.value}: {trainer.message}")
    return trainer


def trainer_rate(trainer: Trainer, warm: int) -> float:
    """Images/s over the steps after `warm`, from the step events' times (taken at a host sync every 16 steps
    on a GPU, every step on the CPU)."""
    steps = trainer.snapshot().steps
    first, last = steps[warm - 1], steps[-1]
    return (last.step - first.step) * trainer.batch_size / (last.time - first.time)


def bare_rate(model, data: DataBundle, batch: int, warm: int, steps: int, device: str) -> float:
    """The loop the Trainer has to match: index, normalise, bf16 autocast forward, loss, backward, SGD."""
    fmt = torch.channels_last if device == "cuda" else torch.contiguous_format
    model = model.to(device=device, memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x_all, y_all = data.train.images.to(device), data.train.labels.to(device)
    mean = torch.tensor(data.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, 3, 1, 1)
    order = torch.randperm(len(y_all), device=device)
    t0 = 0.0
    for i in range(warm + steps):
        if i == warm:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        idx = order[i * batch:(i + 1) * batch]
        x = ((x_all[idx].float() / 255 - mean) / std).contiguous(memory_format=fmt)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            logits = model(x)
        F.cross_entropy(logits.float(), y_all[idx]).backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    model.to("cpu")
    return steps * batch / (time.perf_counter() - t0)


def in_thread(fn, *args):
    """Run fn in a fresh thread, as the Trainer runs its loop, so both meet the same threading."""
    out: list = []
    worker = threading.Thread(target=lambda: out.append(fn(*args)))
    worker.start()
    worker.join()
    if not out:
        raise RuntimeError("the bare loop failed (see the traceback above)")
    return out[0]


def part1_overhead(a) -> None:
    batch, warm, steps = a.batch, a.warm, a.steps
    data = random_bundle(batch * (warm + steps), batch, a.size)
    base = bench_model(a)
    cfg = TrainConfig(epochs=1, batch_size=batch, lr=0.05, schedule="constant", augment_crop=False,
                      augment_flip=False, device=a.device, max_steps=warm + steps)
    bare, ours = [], []
    for _ in range(a.rounds):
        bare.append(in_thread(bare_rate, copy.deepcopy(base), data, batch, warm, steps, a.device))
        ours.append(trainer_rate(train(copy.deepcopy(base), data, cfg), warm))
    b, t = statistics.median(bare), statistics.median(ours)
    mode = "bf16 + channels_last" if a.device == "cuda" else "fp32 (CPU)"
    print(f"[1] Trainer vs bare loop ({a.model}, {a.size} px, batch {batch}, {mode}, no augmentation, "
          f"{steps} timed steps x {a.rounds} rounds): bare {b:,.0f} img/s, Trainer {t:,.0f} img/s, "
          f"ratio {t / b:.3f} (target >= 0.95: {'met' if t / b >= 0.95 else 'NOT met'})", flush=True)


def part2_throughput(a) -> None:
    batch, warm, steps = a.batch, a.warm, a.steps
    data = random_bundle(batch * (warm + steps), batch, a.size)
    cfg = SHAPES_TRAIN.replace(epochs=1, batch_size=batch, warmup_epochs=0.0, device=a.device,
                               max_steps=warm + steps)

    def verdict(rate: float) -> str:
        if a.smoke:
            return "target >= 40,000 img/s on an H200: n/a in --smoke"
        return f"target >= 40,000 img/s on an H200: {'met' if rate >= 40_000 else 'NOT met'}"

    what = f"[2] Trainer, {a.model}, {a.size} px, batch {batch}, crop + flip on the device"
    rate = trainer_rate(train(bench_model(a), data, cfg), warm)
    print(f"{what}, eager: {rate:,.0f} img/s ({verdict(rate)})", flush=True)
    if a.smoke:
        print("[2] cudnn.benchmark and compile=True: skipped in --smoke (compiling takes minutes on a CPU)", flush=True)
        return
    torch.backends.cudnn.benchmark = True  # not set by the app: this says whether it should be
    try:
        rate_b = trainer_rate(train(bench_model(a), data, cfg), warm)
    finally:
        torch.backends.cudnn.benchmark = False
    print(f"{what}, eager + torch.backends.cudnn.benchmark: {rate_b:,.0f} img/s ({verdict(rate_b)})", flush=True)
    t0 = time.perf_counter()
    trainer = train(bench_model(a), data, cfg.replace(compile=True), cap_s=COMPILE_CAP_S)
    first = trainer.snapshot().steps[15].time
    rate_c = trainer_rate(trainer, warm)
    print(f"{what}, compile=True: {rate_c:,.0f} img/s ({verdict(rate_c)}; first 16 steps incl. compiling "
          f"{first:.1f} s, whole run {time.perf_counter() - t0:.1f} s)", flush=True)


def part3_demos(a) -> None:
    dev = a.device
    shapes_spec, shapes_cfg = SHAPES_DATA, SHAPES_TRAIN.replace(device=dev)
    deg_spec, deg_cfg = DEGRADATION_DATA, DEGRADATION_TRAIN.replace(device=dev)
    if a.smoke:
        shapes_spec = dataclasses.replace(SHAPES_DATA, n_train=128, n_val=32)
        deg_spec = dataclasses.replace(DEGRADATION_DATA, n_train=128, n_val=32)
        shapes_cfg, deg_cfg = shapes_cfg.replace(epochs=1), deg_cfg.replace(epochs=1, max_steps=1)
    t0 = time.perf_counter()
    per_image = trainer_seconds_per_image(dev)  # the estimates' probe (cached): made here, not counted below
    print(f"[3] the estimates' probe: {1 / per_image:,.0f} img/s ({time.perf_counter() - t0:.1f} s)", flush=True)

    if a.smoke:
        est = worker_start_seconds() + training_seconds(shapes_spec.n_train, shapes_spec.n_val, shapes_cfg, 1.0,
                                                        per_image)
    else:
        est = shapes_recipe_seconds(dev)
    t0 = time.perf_counter()
    data = load_dataset(shapes_spec)
    t_data = time.perf_counter() - t0
    trainer = train(build_seeded(get_preset("resnet20"), shapes_cfg.seed, data.num_classes), data, shapes_cfg)
    measured = time.perf_counter() - t0
    acc = trainer.snapshot().validated_epochs[-1].val_acc
    print(f"[3] Shapes recipe (ResNet-20, {shapes_spec.n_train:,} images, {trainer.total_steps} steps of "
          f"{trainer.batch_size}) on {dev}: measured {measured:.1f} s (data {t_data:.1f} s + training "
          f"{measured - t_data:.1f} s), validation accuracy {100 * acc:.1f}%; page estimate {est:.1f} s "
          f"(incl. {worker_start_seconds():.0f} s worker start), estimate/measured {est / measured:.2f}", flush=True)

    depths = DEGRADATION_DEPTHS
    if a.smoke:
        est = worker_start_seconds(2 * len(depths)) + 2 * sum(
            training_seconds(deg_spec.n_train, deg_spec.n_val, deg_cfg, relative_cost(d), per_image) for d in depths)
    else:
        est = estimate_seconds("degradation", dev)
    t0 = time.perf_counter()
    data = load_dataset(deg_spec)
    results = []
    for depth in depths:
        for residual in (False, True):
            cfg = cifar_config(depth, residual, "batch", data.num_classes)
            t1 = time.perf_counter()
            snap = train(build_seeded(cfg, deg_cfg.seed, data.num_classes), data, deg_cfg).snapshot()
            ep = snap.validated_epochs[-1]
            results.append(f"{'ResNet' if residual else 'plain'}-{depth} {100 * ep.val_acc:.1f}% "
                           f"(loss {ep.train_loss:.2f}, {time.perf_counter() - t1:.1f} s)")
    measured = time.perf_counter() - t0
    print(f"[3] degradation demo (4 nets one after another, {deg_spec.n_train:,} images, {deg_cfg.epochs} epochs, "
          f"batch {deg_cfg.batch_size}) on {dev}: measured {measured:.1f} s; page estimate {est:.1f} s, "
          f"estimate/measured {est / measured:.2f}; validation accuracy: {', '.join(results)}", flush=True)


def part4_oom(a) -> None:
    if not CUDA:
        print("[4] CUDA out-of-memory message: skipped: no CUDA", flush=True)
        return
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    # Every tensor stays under 2^31 elements (so cuDNN runs), but the activations need > 300 GB.
    batch, size = 4096, 160
    data = random_bundle(batch, 8, size, zeros=True)
    cfg = TrainConfig(epochs=1, batch_size=batch, device="cuda", max_steps=1, eval_batch_size=8)
    trainer = Trainer(build_seeded(get_preset("resnet152"), 0, 10), data, cfg).start()
    trainer.join()
    peak = torch.cuda.max_memory_allocated() / 2**30
    gc.collect()
    after = torch.cuda.memory_allocated()
    ok = trainer.status is Status.FAILED and "out of memory" in trainer.message
    print(f"[4] CUDA OOM (ResNet-152, {size} px, batch {batch}): status {trainer.status.value}, message "
          f"{trainer.message!r} ({'clear' if ok else 'NOT the expected out-of-memory message'})", flush=True)
    print(f"[4] GPU memory allocated before {before / 2**20:.1f} MiB, after {after / 2**20:.1f} MiB (peak "
          f"{peak:.1f} GiB): {'freed' if after <= before + 2**20 else 'NOT freed'}", flush=True)


def torchrun(a, nproc: int, runs_dir: Path) -> None:
    name = f"nccl{nproc}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "resnet_core.train", "--device", a.device, "--max-steps", "3" if a.smoke else "50",
           "--runs-dir", str(runs_dir), "--name", name, "--no-progress"]
    if a.smoke:
        cmd += ["--n-train", "256", "--n-val", "64"]
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        done = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        rc, tail = done.returncode, (done.stdout + done.stderr)[-1500:]
    except subprocess.TimeoutExpired as exc:
        rc, tail = "timeout (180 s)", str(exc.stderr or "")[-1500:]
    info = {}
    if (runs_dir / name / "config.json").exists():
        info = json.loads((runs_dir / name / "config.json").read_text())
    print(f"[5] torchrun --nproc_per_node {nproc} --device {a.device}: exit code {rc}, config.json world_size "
          f"{info.get('world_size', 'absent')}, status {info.get('status', 'no config.json')!r}, "
          f"message {info.get('message', '')!r} ({time.perf_counter() - t0:.1f} s)", flush=True)
    if rc != 0:
        print("[5] its output ends:\n" + tail, flush=True)


def part5_torchrun(a) -> None:
    if not CUDA and not a.smoke:
        print("[5] torchrun with NCCL: skipped: no CUDA", flush=True)
        return
    if not CUDA:
        print("[5] no CUDA: the smoke run calls torchrun with --device cpu (NCCL skipped: no CUDA)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        torchrun(a, 1, Path(tmp))
        count = torch.cuda.device_count() if CUDA else 1
        if count > 1:
            torchrun(a, count, Path(tmp))
        else:
            print(f"[5] {count} device visible: no multi-process run", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="shrink everything (CPU without CUDA), < 60 s")
    a = p.parse_args()
    start = time.perf_counter()
    if not CUDA and not a.smoke:
        print("no CUDA device: running the --smoke version on the CPU")
        a.smoke = True
    a.device = "cuda" if CUDA else "cpu"
    a.batch, a.warm, a.steps, a.rounds, a.size = (16, 1, 2, 1, 16) if a.smoke else (512, 32, 160, 3, 32)
    a.model = "ResNet-20 (smoke)" if a.smoke else "ResNet-18 CIFAR stem"
    name = torch.cuda.get_device_name() if CUDA else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device {name}, torch {torch.__version__}, cuDNN benchmark {torch.backends.cudnn.benchmark}"
          f"{', --smoke' if a.smoke else ''}", flush=True)
    for part in (part1_overhead, part2_throughput, part3_demos, part4_oom, part5_torchrun):
        t0 = time.perf_counter()
        try:
            part(a)
        except Exception as exc:  # noqa: BLE001 - report and go on to the next part
            traceback.print_exc()
            print(f"[{part.__name__[4]}] {part.__name__} FAILED: {type(exc).__name__}: {exc}", flush=True)
        if CUDA:
            gc.collect()
            torch.cuda.empty_cache()
        print(f"    ({part.__name__}: {time.perf_counter() - t0:.1f} s)", flush=True)
    print(f"total script time {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
