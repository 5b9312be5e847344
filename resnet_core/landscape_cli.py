"""Loss landscapes (Li et al. 2018) from the command line: trained run folders, or the bundled pair.

    python -m resnet_core.landscape_cli [RUN ...] [--steps-2d 13] [--images 128] [--out landscape.json]

Without run folders it computes the bundled Shapes plain-20 and ResNet-20 (what the page's live button does),
on the held-out Shapes images of recipes.CHECK_SEED, and prints each net's figures and the page's caption.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .analysis.landscape import (
    LIVE_SPEC,
    Landscape,
    LandscapeError,
    LandscapeSpec,
    held_out,
    landscape,
    save_landscapes,
)
from .analysis.landscape_reading import landscape_reading, summary_line
from .assets import bundled_model
from .recipes import CHECK_SEED
from .train.run_reading import load_run_model


def bundled_runs() -> list[Path]:
    """The bundled Shapes plain-20 and ResNet-20 run folders (plain first)."""
    infos = [bundled_model(residual) for residual in (False, True)]
    if any(info is None for info in infos):
        raise LandscapeError("the bundled models are missing: give run folders, or build them with "
                             "`python -m resnet_core.assets --only models`")
    return [info.path for info in infos]


def runs_landscapes(run_dirs: Sequence[str | Path], spec: LandscapeSpec,
                    progress: Callable[[str], None] | None = None) -> list[Landscape]:
    """The landscapes of trained run folders (model.pt), one after the other, on the held-out Shapes subset."""
    results = []
    for run_dir in run_dirs:
        model, _, pre = load_run_model(run_dir)
        images, labels = held_out(spec.n_images, pre, CHECK_SEED)
        results.append(landscape(model, images, labels, spec))
        if progress is not None:
            progress(summary_line(results[-1]))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_core.landscape_cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path, help="run folders with a model.pt (default: the bundled pair)")
    parser.add_argument("--steps-1d", type=int, default=LIVE_SPEC.steps_1d, help="points per 1-D slice (odd)")
    parser.add_argument("--steps-2d", type=int, default=LIVE_SPEC.steps_2d, help="points per axis of the surface (odd)")
    parser.add_argument("--span", type=float, default=LIVE_SPEC.span, help="half-width in direction units")
    parser.add_argument("--images", type=int, default=LIVE_SPEC.n_images, help="held-out images per loss")
    parser.add_argument("--directions", type=int, default=LIVE_SPEC.directions, help="independent 1-D slices")
    parser.add_argument("--seed", type=int, default=LIVE_SPEC.seed, help="the directions' seed")
    parser.add_argument("--out", type=Path, help="also write the landscapes here as JSON")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        spec = LandscapeSpec(steps_1d=args.steps_1d, steps_2d=args.steps_2d, span=args.span, n_images=args.images,
                             directions=args.directions, seed=args.seed)
        results = runs_landscapes(args.runs or bundled_runs(), spec, progress=print)
    except ValueError as exc:  # LandscapeError, RunError, DatasetError: each says what to change
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(landscape_reading(results))
    print(f"{time.perf_counter() - start:.1f} s in all")
    if args.out:
        save_landscapes(results, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
