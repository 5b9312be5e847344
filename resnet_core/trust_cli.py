"""Trust checks from the command line: the trust table, Grad-CAM layer by layer, and their timings.

    python -m resnet_core.trust_cli --run bundled [--image N] [--block layer2.1] [--json]

`--run` is a run folder (as `python -m resnet_core.train` writes it), or `bundled` / `bundled-plain` for the
Shapes ResNet-20 / plain-20 that ship with the app. A Shapes model is checked on held-out Shapes image N
(seed recipes.CHECK_SEED, with its object mask, so localization is scored); any other model on bundled
photo N (no mask: localization is left out).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .assets import bundled_model
from .data.samples import sample_images
from .data.shapes import make_shapes
from .data.transforms import prepare, prepare_uint8
from .explain.faithfulness import DEFAULT_BASELINE, DEFAULT_STEPS, PERTURBATION_BASELINES, baseline_label
from .explain.layers import LayerReport, block_names, layer_scores
from .explain.methods import AttributionError
from .explain.subjects import Subject, run_subject
from .explain.trust_table import SENSITIVE_RHO, TrustTable, trust_table
from .recipes import CHECK_SEED, LOCALIZATION_IMAGES
from .train.run_reading import RunInfo, load_run_model, read_run
from .train.runs import MODEL_FILE, RunError

ALIASES = {"bundled": True, "bundled-plain": False}
# Every argument's range, both ends included, checked before anything is loaded (--image 99999999 once drew
# 100 million Shapes images; --steps 100000000 built a batch of as many perturbed images).
IMAGE_RANGE = (0, LOCALIZATION_IMAGES - 1)  # the Grad-CAM page's check set: image N here is image N there
STEPS_RANGE = (1, 100)  # 1% of the pixels per step at most: finer curves change no area by more than noise
THREADS_RANGE = (1, max(1, os.cpu_count() or 1))
MAX_BLOCK_LENGTH = 100  # a block's name ("layer2.1"); longer text is no block


@dataclass
class Case:
    """What is checked: the subject, one normalised image, its mask (None if unknown) and where it came from."""

    subject: Subject
    image: torch.Tensor
    mask: torch.Tensor | None
    source: str
    true_class: int | None


def load_subject(run: str) -> Subject:
    """The model of a run folder or of a bundled alias, as the Grad-CAM page would explain it."""
    if run in ALIASES:
        info = bundled_model(ALIASES[run])
        if info is None:
            raise RunError(f"the bundled {'ResNet-20' if ALIASES[run] else 'plain-20'} is missing or damaged; "
                           "rebuild it with `python -m resnet_core.assets`")
    else:
        info = read_run(Path(run))
        if not info.openable:
            reason = f": {info.reason}" if info.reason else ""
            raise RunError(f"{run}: no weights to explain ({info.status.value}{reason})")
    model, classes, preprocess = load_run_model(info.path)
    return run_subject(info, model, classes, preprocess, _mtime(info))


def _mtime(info: RunInfo) -> float:
    try:
        return (Path(info.path) / MODEL_FILE).stat().st_mtime
    except OSError:
        return 0.0


def pick_image(subject: Subject, index: int) -> Case:
    """Held-out Shapes image `index` (with its mask) for a Shapes model, else bundled photo `index`."""
    if not IMAGE_RANGE[0] <= index <= IMAGE_RANGE[1]:
        raise AttributionError(f"--image must be from {IMAGE_RANGE[0]} to {IMAGE_RANGE[1]}, got {index}")
    if subject.on_shapes:
        # The Grad-CAM page's check set (its samples): a Shapes set's images depend on its size, so image N is
        # the same one on the page and here only when both draw LOCALIZATION_IMAGES of them.
        shapes = make_shapes(LOCALIZATION_IMAGES, seed=CHECK_SEED, size=subject.pre.image_size)
        image = prepare_uint8(shapes.images[index:index + 1], subject.pre)[0]
        return Case(subject, image, shapes.masks[index], f"held-out Shapes image {index} (seed {CHECK_SEED})",
                    int(shapes.labels[index]))
    photos = sample_images()
    if not photos:
        raise AttributionError("no bundled photos found under assets/samples")
    photo = photos[index % len(photos)]
    return Case(subject, prepare(photo.load(), subject.pre)[1], None, f"bundled photo {photo.name}", None)


def run_checks(case: Case, baseline: str, steps: int, block: str | None, granularity: str,
               randomize: bool) -> tuple[TrustTable, LayerReport]:
    pre = case.subject.pre
    table = trust_table(case.subject.model, case.image, mask=case.mask, baseline=baseline, steps=steps,
                        randomize=randomize, granularity=granularity, mean=pre.mean, std=pre.std)
    layers = layer_scores(case.subject.model, case.image, target=table.target, mask=case.mask, block=block,
                          baseline=baseline, steps=steps)
    return table, layers


def as_json(case: Case, table: TrustTable, layers: LayerReport, baseline: str, steps: int) -> dict[str, Any]:
    classes = case.subject.classes
    return {
        "model": case.subject.title,
        "image": {"source": case.source, "true_class": _name(classes, case.true_class),
                  "explained_class": _name(classes, table.target), "probability": table.probability,
                  "mask": case.mask is not None},
        "baseline": {"name": baseline, "text": baseline_label(baseline), "steps": steps},
        "trust_table": {"rows": table.records(), "verdict": table.verdict, "sentence": table.sentence,
                        "randomization_steps": table.randomization_steps, "sensitive_below_rho": SENSITIVE_RHO},
        "curves": {name: {k: v for k, v in f.record().items() if k in ("fractions", "deletion", "insertion")}
                   for name, f in table.faithfulness_results.items()},
        "layers": {"rows": layers.records(), "best": layers.best, "sentence": layers.sentence},
        "seconds": {**table.seconds, "layers": layers.seconds},
    }


def as_text(case: Case, table: TrustTable, layers: LayerReport, baseline: str, steps: int) -> str:
    classes = case.subject.classes
    true = "" if case.true_class is None else f", true class {_name(classes, case.true_class)}"
    lines = [
        f"model: {case.subject.title}",
        f"image: {case.source}{true}; explained class {_name(classes, table.target)} (p = {table.probability:.3f})",
        (f"deletion / insertion: {steps} steps of {100 / steps:.0f}% of the pixels, removed pixels take the value "
         f"of {baseline_label(baseline)}"),
        ("Average Drop / Increase in Confidence: the image multiplied by the map scaled to [0, 1] (torch-cam's "
         "definition)"),
        ("randomization: cascading, " + " → ".join(table.randomization_steps[1:]) + "; ρ = mean Spearman rank "
         f"correlation with the trained map (sensitive below {SENSITIVE_RHO})") if table.randomization_steps
        else "randomization: skipped",
        "",
        "Trust table",
    ]
    header = f"{'map':28s} {'pointing':>8s} {'energy':>7s} {'del AUC':>8s} {'ins AUC':>8s} {'ins−del':>8s} " \
             f"{'avg drop':>9s} {'incr.':>6s} {'rand ρ':>7s}"
    lines += [header, "-" * len(header)]
    for r in table.rows:
        lines.append(f"{r.label:28s} {_num(r.pointing_game, 8)} {_num(r.energy_inside, 7)} {r.deletion_auc:8.3f} "
                     f"{r.insertion_auc:8.3f} {r.faithfulness:8.3f} {r.average_drop:8.1f}% "
                     f"{r.increase_in_confidence:5.0f}% {_num(r.randomization_rho, 7)}")
    lines += _wrapped(table.sentence) + ["", "Grad-CAM by layer"]
    header = f"{'layer':44s} {'pointing':>8s} {'energy':>7s} {'del AUC':>8s} {'ins AUC':>8s} {'ins−del':>8s}"
    lines += [header, "-" * len(header)]
    for r in layers.rows:
        f = r.faithfulness
        note = f"  (= {r.same_as})" if r.same_as else ""
        lines.append(f"{r.label:44s} {_num(r.pointing_game, 8)} {_num(r.energy_inside, 7)} {f.deletion.auc:8.3f} "
                     f"{f.insertion.auc:8.3f} {f.score:8.3f}{note}")
    lines += _wrapped(layers.sentence)
    s = table.seconds
    lines += ["", (f"timings (s): maps {s['maps']:.2f}, localization {s['localization']:.2f}, faithfulness "
                   f"{s['faithfulness']:.2f}, randomization {s['randomization']:.2f}; trust table {s['total']:.2f} "
                   f"(target ≤ 5 s); Grad-CAM by layer {layers.seconds:.2f} (target ≤ 3 s)")]
    return "\n".join(lines)


def _name(classes: list[str], index: int | None) -> str | None:
    if index is None:
        return None
    return classes[index] if 0 <= index < len(classes) else f"class {index}"


def _num(value: float | None, width: int) -> str:
    return f"{'—':>{width}s}" if value is None or not math.isfinite(value) else f"{value:{width}.2f}"


def _wrapped(text: str) -> list[str]:
    return textwrap.wrap(text, width=110) or [""]


def whole_number(low: int, high: int):
    """An argparse type: a whole number from `low` to `high`, else argparse's error naming the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: give a whole number from {low} to {high}")
        return value
    return parse


def block_name(text: str) -> str:
    if len(text) > MAX_BLOCK_LENGTH or not text.isprintable():
        raise argparse.ArgumentTypeError(f"not a block name (e.g. layer2.1 or last): {text[:40]!r}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_core.trust_cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a run folder, or 'bundled' / 'bundled-plain'")
    parser.add_argument("--image", type=whole_number(*IMAGE_RANGE), default=0,
                        help=f"which held-out Shapes image (or bundled photo), {IMAGE_RANGE[0]} to {IMAGE_RANGE[1]}")
    parser.add_argument("--block", type=block_name, default=None,
                        help="also compare inside this block, e.g. layer2.1 (after the addition vs the residual "
                             "branch); 'last' = the last block")
    parser.add_argument("--baseline", choices=sorted(PERTURBATION_BASELINES), default=DEFAULT_BASELINE,
                        help="what removed pixels become in the deletion / insertion curves")
    parser.add_argument("--steps", type=whole_number(*STEPS_RANGE), default=DEFAULT_STEPS,
                        help=f"points per curve, minus one ({STEPS_RANGE[0]} to {STEPS_RANGE[1]})")
    parser.add_argument("--granularity", choices=("stage", "block"), default="stage",
                        help="randomize the weights a stage or a block at a time")
    parser.add_argument("--no-randomize", action="store_true", help="skip the randomization check")
    parser.add_argument("--threads", type=whole_number(*THREADS_RANGE), default=None,
                        help=f"torch CPU threads, {THREADS_RANGE[0]} to {THREADS_RANGE[1]} (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    try:
        subject = load_subject(args.run)
        block = args.block
        if block == "last":
            block = block_names(subject.model)[-1]
        case = pick_image(subject, args.image)
        table, layers = run_checks(case, args.baseline, args.steps, block, args.granularity, not args.no_randomize)
    except (RunError, AttributionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        data = as_json(case, table, layers, args.baseline, args.steps)
        data["seconds"]["command"] = time.perf_counter() - start
        print(json.dumps(data, indent=1, ensure_ascii=False))
    else:
        print(as_text(case, table, layers, args.baseline, args.steps))
        print(f"whole command, model loading included: {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
