"""The loss landscape measured: the live 20-layer pair's time (1-D and 2-D) and the recorded 56-layer pair's figures.

    python3 benchmarks/bench_landscape.py [--threads 2] [--steps-2d 11] [--images 64] [--repeat 1]

Figures printed:
  * the live pair (the bundled Shapes plain-20 and ResNet-20, what the page's button computes) with the page's
    spec (analysis.landscape.LIVE_SPEC, or the flags): seconds for the 1-D slices and for the 2-D surface, each
    net and both, against the 60 s target; the process's CPU seconds beside the wall time and the load average,
    since on a shared machine other jobs stretch the wall time (CPU seconds / threads is what a quiet machine
    would take, at best). The page's estimate (landscape_seconds) is printed beside the measured time.
  * each live net's figures (held-out loss, loss-doubling radius per direction, convex share, |λmin/λmax|) and
    the caption the page prints.
  * the recorded 56-layer pair (assets/recorded/landscape): the same figures, read from the surfaces, and the
    caption, with its provenance.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_core.analysis.landscape import LIVE_SPEC, LandscapeSpec, held_out, landscape
from resnet_core.analysis.landscape_reading import landscape_reading, summary_line
from resnet_core.estimates import landscape_seconds
from resnet_core.landscape_assets import recorded_landscape
from resnet_core.landscape_cli import bundled_runs
from resnet_core.recipes import CHECK_SEED
from resnet_core.train.run_reading import load_run_model

TARGET_S = 60.0


def live(spec: LandscapeSpec) -> float:
    models = [load_run_model(run) for run in bundled_runs()]
    print(f"estimate (landscape_seconds): {landscape_seconds([m.config for m, _, _ in models], spec):.1f} s")
    print(f"{'net':>10} {'1-D s':>7} {'2-D s':>7} {'total s':>8} {'CPU s':>7} {'best ms/eval':>13} {'at best s':>10}")
    total_wall, total_cpu, total_best, results = 0.0, 0.0, 0.0, []
    for model, _, pre in models:
        images, labels = held_out(spec.n_images, pre, CHECK_SEED)  # the data as the page makes it, timed too
        marks: dict[str, float] = {}
        rows: list[float] = []  # seconds per evaluation of each row / slice
        start, cpu = time.perf_counter(), time.process_time()
        last = [start, 0]

        def progress(done: int, total: int, message: str, _partial: object, marks=marks, rows=rows, last=last,
                     start=start) -> None:
            now = time.perf_counter()
            rows.append((now - last[0]) / max(done - last[1], 1))
            last[:] = [now, done]
            if f"1-D slice {spec.directions} of" in message:
                marks["1d"] = now - start

        results.append(landscape(model, images, labels, spec, progress))
        wall, used = time.perf_counter() - start, time.process_time() - cpu
        # The fastest row is the one least slowed by other jobs: the whole run at that pace is what a quiet
        # machine would take (an estimate, printed as such).
        best = min(rows) * spec.evaluations
        total_wall, total_cpu, total_best = total_wall + wall, total_cpu + used, total_best + best
        print(f"{results[-1].label:>10} {marks['1d']:7.1f} {wall - marks['1d']:7.1f} {wall:8.1f} {used:7.1f} "
              f"{1000 * min(rows):13.1f} {best:10.1f}", flush=True)
    verdict = "within" if total_wall <= TARGET_S else "OVER"
    print(f"{'both':>10} {'':>7} {'':>7} {total_wall:8.1f} {total_cpu:7.1f} {'':>13} {total_best:10.1f}   "
          f"measured: {verdict} the {TARGET_S:.0f} s target; at the best row's pace: "
          f"{'within' if total_best <= TARGET_S else 'OVER'}")
    for r in results:
        print(summary_line(r))
    print("caption:", landscape_reading(results), flush=True)
    return total_wall


def recorded() -> None:
    found = recorded_landscape()
    if found is None:
        print("no recorded landscape: python -m resnet_core.assets --only landscape")
        return
    results, prov = found
    print(f"recorded: {prov.summary()}; weights: {prov.recipe.get('weights')}")
    print(f"spec: {prov.recipe.get('landscape')}")
    for r in results:
        print(summary_line(r))
    print("caption:", landscape_reading(results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps-1d", type=int, default=LIVE_SPEC.steps_1d)
    parser.add_argument("--steps-2d", type=int, default=LIVE_SPEC.steps_2d)
    parser.add_argument("--images", type=int, default=LIVE_SPEC.n_images)
    parser.add_argument("--directions", type=int, default=LIVE_SPEC.directions)
    parser.add_argument("--repeat", type=int, default=1, help="time the live pair this many times")
    parser.add_argument("--no-live", action="store_true", help="only print the recorded pair's figures")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = LandscapeSpec(steps_1d=args.steps_1d, steps_2d=args.steps_2d, n_images=args.images,
                         directions=args.directions, span=LIVE_SPEC.span, seed=LIVE_SPEC.seed)
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} before", flush=True)
    if not args.no_live:
        print(f"== live 20-layer pair: {spec}, {spec.evaluations} evaluations per net")
        times = [live(spec) for _ in range(args.repeat)]
        print(f"live pair: {', '.join(f'{t:.1f}' for t in times)} s; load average {os.getloadavg()[0]:.1f} after")
    print("== recorded 56-layer pair")
    recorded()
    return 0


if __name__ == "__main__":
    sys.exit(main())
