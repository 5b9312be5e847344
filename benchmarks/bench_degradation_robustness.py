"""Does the degradation demo's lesson hold over seeds and thread counts?

    python3 benchmarks/bench_degradation_robustness.py                       # 4 nets x seeds 0-2 x threads 1, 2
    python3 benchmarks/bench_degradation_robustness.py --nets resnet56 --seeds 0 1 --threads 1
    python3 benchmarks/bench_degradation_robustness.py --set warmup_epochs=2 --set epochs=6   # try a recipe

Each run goes through the app's own path: resnet_core.train.launch.worker_command, i.e. `python -m
resnet_core.train ...` in a worker process, with OMP_NUM_THREADS set to the thread count. Runs are packed so that
their threads never exceed --cores (default: this machine's), so a run's thread count is what it gets.

Printed per seed and thread count, for each net:
  * final train loss: the mean training loss over the last epoch's steps (analysis.bands.final_loss, the value
    the page's cards and captions quote);
  * final val acc: the last validation pass;
and whether each ordering of the lesson holds:
  * "p56>p20": plain-56's training loss stays above plain-20's in every window of a quarter epoch from the end of
    the learning-rate warm-up to the end (analysis.bands.stays_above);
  * "r56<=r20": ResNet-56's final training loss is at or below ResNet-20's;
  * "learn": every net ends at least 3x chance (30% for 10 classes) in validation accuracy.
The last line counts the rows where all three hold.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_core.analysis.bands import final_loss, lesson
from resnet_core.analysis.common import cifar_config
from resnet_core.analysis.partial import warmup_end
from resnet_core.analysis.twins import curve_of
from resnet_core.assets import recorded_snapshot
from resnet_core.recipes import DEGRADATION_DATA, DEGRADATION_TRAIN
from resnet_core.train.config import TrainConfig
from resnet_core.train.launch import TrainRequest, worker_command
from resnet_core.train.schedule import RunPlan

NETS = {"plain20": (20, False), "resnet20": (20, True), "plain56": (56, False), "resnet56": (56, True)}
LABELS = {"plain20": "plain-20", "resnet20": "ResNet-20", "plain56": "plain-56", "resnet56": "ResNet-56"}


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _recipe(sets: list[str], data_sets: list[str]) -> tuple[TrainConfig, object]:
    split = lambda items: dict((k, _value(v)) for k, v in (s.split("=", 1) for s in items))
    return DEGRADATION_TRAIN.replace(**split(sets)), dataclasses.replace(DEGRADATION_DATA, **split(data_sets))


def _name(net: str, seed: int, threads: int) -> str:
    return f"{net}-s{seed}-t{threads}"


def _done(folder: Path, train: TrainConfig, data) -> bool:
    """Whether `folder` holds a finished run of this recipe (kept by an earlier --keep run), to read, not retrain."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    same = ({k: v for k, v in config.get("train", {}).items() if k != "seed"} ==
            {k: v for k, v in train.to_dict().items() if k != "seed"} and same_data(config.get("dataset"), data))
    return same and config.get("status") in ("finished", "did not learn")


def same_data(saved: object, data) -> bool:
    """Whether a run folder's dataset description (config.json "dataset") is `data`'s (a DatasetSpec)."""
    keys = ("kind", "n_train", "n_val", "seed", "image_size")
    return isinstance(saved, dict) and all(saved.get(k) == getattr(data, k) for k in keys)


def _training_elsewhere(folder: Path) -> bool:
    """Whether another process (an earlier run of this script) is training into `folder` right now."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        os.kill(int(config["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return config.get("status") in ("running", "queued", "idle")


def run_matrix(nets: list[str], seeds: list[int], threads: list[int], train: TrainConfig, data, cores: int,
               runs_dir: Path, record_every: int = 0) -> dict[tuple[str, int, int], float]:
    """Train every (net, seed, threads) in worker processes, at most `cores` threads at once; their wall times."""
    todo = [(n, s, t) for t in threads for s in seeds for n in nets
            if not _done(runs_dir / _name(n, s, t), train, data)]
    todo.sort(key=lambda x: (x[2], "56" not in x[0], x[1]))  # 1 thread first (the recording's), deep nets first
    elsewhere = [k for k in todo if _training_elsewhere(runs_dir / _name(*k))]  # waited for, not started again
    todo = [k for k in todo if k not in elsewhere]
    running: dict[tuple, tuple[subprocess.Popen, float]] = {}
    seconds = {}
    while todo or running or any(_training_elsewhere(runs_dir / _name(*k)) for k in elsewhere):
        busy = sum(k[2] for k in running)
        for key in list(todo):
            if busy + key[2] <= cores or not running:
                net, seed, t = key
                depth, residual = NETS[net]
                req = TrainRequest(cifar_config(depth, residual, "batch", 10), data, train.replace(seed=seed),
                                   _name(net, seed, t), record_block_grads=record_every)
                env = {**os.environ, "OMP_NUM_THREADS": str(t), "MKL_NUM_THREADS": str(t)}
                cmd = worker_command(req, runs_dir, runs_dir / ".spool")
                running[key] = (subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                                time.perf_counter())
                todo.remove(key)
                busy += t
        time.sleep(0.5)
        for key, (proc, start) in list(running.items()):
            if proc.poll() is not None:
                seconds[key] = time.perf_counter() - start
                del running[key]
    return seconds


def read(runs_dir: Path, net: str, seed: int, t: int) -> tuple[dict, float | None, bool, float]:
    """A run's curve, final validation accuracy, whether it reached its end, and its own run time (s)."""
    folder = runs_dir / _name(net, seed, t)
    if not (folder / "metrics.jsonl").is_file():
        return {"step": [], "train_loss": [], "val_step": [], "val_acc": []}, None, False, 0.0
    snap = recorded_snapshot(folder)
    vals = snap.validations
    ended = snap.total_steps > 0 and snap.step >= snap.total_steps
    own = max((float(getattr(e, "time", 0.0) or 0.0) for e in snap.events), default=0.0)
    return curve_of(snap), (vals[-1].val_acc if vals else None), ended, own


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change a DEGRADATION_TRAIN field (to try a recipe), e.g. --set warmup_epochs=2")
    p.add_argument("--data", action="append", default=[], metavar="FIELD=VALUE",
                   help="change a DEGRADATION_DATA field, e.g. --data n_train=6000")
    p.add_argument("--keep", type=Path, default=None,
                   help="keep the run folders here (finished runs of this recipe found there are read, not retrained)")
    p.add_argument("--report", action="store_true", help="train nothing: print the table of the runs in --keep")
    p.add_argument("--record-block-grads", type=int, default=0, metavar="N",
                   help="record block gradients every N steps, as the page does (python -m resnet_core.assets "
                        "--from-runs can then bundle the 1-thread runs)")
    args = p.parse_args()
    train, data = _recipe(args.set, args.data)
    plan = RunPlan.of(train, data.n_train)
    warm, window = warmup_end(train, plan), max(1, plan.steps_per_epoch // 4)  # window: lesson()'s
    print(f"recipe: {json.dumps(train.to_dict())}")
    print(f"data: {data.n_train} Shapes images of {data.image_size} px; {plan.total_steps} steps "
          f"({plan.steps_per_epoch}/epoch), warm-up ends "
          f"at step {warm}; windows of {window} steps; cores {args.cores}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.keep or Path(tmp)
        runs_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        seconds = {} if args.report else run_matrix(args.nets, args.seeds, args.threads, train, data, args.cores,
                                                    runs_dir, args.record_block_grads)
        wall = time.perf_counter() - start
        head = " ".join(f"{n + ' loss/acc':>16}" for n in args.nets)
        print(f"\n{'seed':>4} {'thr':>3} {head}  p56>p20 r56<=r20 learn")
        good = rows = done = 0
        own: dict[str, int] = {}
        for t in args.threads:
            for s in args.seeds:
                got = {n: read(runs_dir, n, s, t) for n in args.nets}
                losses = {n: final_loss(c, plan.steps_per_epoch) for n, (c, *_) in got.items()}
                cells = " ".join(f"{(losses[n] or float('nan')):>7.3f}/{100 * (a or 0):>5.1f}%"
                                 + (" " if ended else f"@{c['step'][-1] if c['step'] else 0}")
                                 for n, (c, a, ended, _) in got.items())
                unfinished = [n for n, (_, _, ended, _) in got.items() if not ended]
                read_as = lesson({LABELS[n]: c for n, (c, *_) in got.items()}, plan.steps_per_epoch, warm)
                learn, deg, cure = read_as.learned, read_as.degraded, read_as.cured
                word = lambda b: "-" if b is None else ("yes" if b else "NO")
                print(f"{s:>4} {t:>3} {cells} {word(deg):>7} {word(cure):>8} {word(learn):>5}"
                      + (f"  (not finished: {', '.join(unfinished)}; @step = where it is)" if unfinished else ""),
                      flush=True)
                rows += 1
                done += not unfinished
                good += bool(not unfinished and read_as.holds)
                own.update({f"{n} s{s} t{t}": round(g[3]) for n, g in got.items() if g[2]})
        print(f"\nsummary: {good}/{done} finished rows hold every ordering and learn ({rows - done} rows not "
              f"finished); wall {wall:.0f} s for {len(seconds)} runs trained here; each run's own time (s, from "
              f"its first step, the machine shared): {own}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
