"""Does torch.compile make the default run faster on this CPU? Measured the way a user meets it.

    python3 benchmarks/bench_cpu_compile.py              # the default run, eager then compiled, 1 seed (~4 min)
    python3 benchmarks/bench_cpu_compile.py --seeds 0 1 2 --rounds 2

Each run is `python -m resnet_core.train --preset resnet20 --dataset shapes [--compile]` in a worker process: the
Train page's recipe (resnet_core.recipes), process start, data, the first steps' compilation and every evaluation
counted in its wall time. Eager and compiled runs alternate, so a change in the machine's load falls on both.
Printed per run: wall time, the first step's time (where compilation lands), the median step time after the
first epoch, the final validation accuracy; then the compiled/eager ratios of the medians. The app adopts
compile only where the whole run gets faster (it is off by default: TrainConfig.compile).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(runs_dir: Path, name: str, seed: int, compiled: bool) -> dict:
    flags = ["--compile"] if compiled else []
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "resnet_core.train", "--preset", "resnet20", "--dataset", "shapes",
                           "--seed", str(seed), *flags, "--runs-dir", str(runs_dir), "--name", name, "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    if done.returncode:
        return {"wall": wall, "error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    events = [json.loads(line) for line in (runs_dir / name / "metrics.jsonl").read_text().splitlines() if line]
    steps = [e for e in events if e["type"] == "step"]
    per_epoch = max(1, len(steps) // max(1, max(int(e.get("epoch", 1)) for e in steps)))
    gaps = [b["time"] - a["time"] for a, b in zip(steps[per_epoch:], steps[per_epoch + 1:])]
    vals = [e for e in events if e["type"] in ("epoch", "val") and e.get("val_acc") is not None]
    return {"wall": wall, "first_step": steps[0]["time"] if steps else None,
            "median_step": statistics.median(gaps) if gaps else None,
            "val_acc": vals[-1]["val_acc"] if vals else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--rounds", type=int, default=1, help="eager/compiled pairs per seed")
    args = p.parse_args()
    rows = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for r in range(args.rounds):
                for compiled in (False, True):
                    name = f"s{seed}-r{r}-{'compiled' if compiled else 'eager'}"
                    got = one_run(Path(tmp), name, seed, compiled)
                    rows[compiled].append(got)
                    if "error" in got:
                        print(f"{name:>20}: FAILED after {got['wall']:.0f} s: {got['error']}", flush=True)
                        continue
                    print(f"{name:>20}: wall {got['wall']:6.1f} s  first step {got['first_step']:6.2f} s  "
                          f"median step {1000 * got['median_step']:6.1f} ms  val acc {100 * got['val_acc']:.2f}%",
                          flush=True)
    ok = {k: [r for r in v if "error" not in r] for k, v in rows.items()}
    if ok[False] and ok[True]:
        med = lambda k, key: statistics.median(r[key] for r in ok[k])
        wall_ratio = med(True, "wall") / med(False, "wall")
        print(f"\ncompiled / eager, medians over {len(ok[True])} run(s): wall {wall_ratio:.2f}x"
              f", step time {med(True, 'median_step') / med(False, 'median_step'):.2f}x, first step "
              f"{med(True, 'first_step'):.1f} s vs {med(False, 'first_step'):.1f} s; val acc "
              f"{100 * med(True, 'val_acc'):.2f}% vs {100 * med(False, 'val_acc'):.2f}%")
        print("verdict: " + ("compile makes the whole run faster here" if med(True, "wall") < med(False, "wall")
                             else "compile does not pay for itself on this run here: it stays off"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
