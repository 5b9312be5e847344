"""Trust checks measured: our deletion / insertion areas and Average Drop beside pytorch-grad-cam's, and the
time of the trust table and of the layer-by-layer view against their targets.

    python3 benchmarks/bench_trust.py [--images 8] [--threads 2] [--road]

Figures printed, on the bundled Shapes ResNet-20 and held-out Shapes images (seed recipes.CHECK_SEED):
  * deletion and insertion areas per map (5 methods, 3 reference maps), ours (`faithfulness_scores`, every
    perturbed image batched) and pytorch-grad-cam's (`PerturbationConfidenceMetric` with
    `RemoveMostRelevantFirst` / `RemoveLeastRelevantFirst` at the percentiles of our shares of the pixels,
    the same baseline through its imputer hook, `ClassifierOutputSoftmaxTarget`), both integrated by the
    trapezoid rule. Two checks: our curve read at exactly the pixel counts its thresholds removed
    (`perturbed_scores`) must give the same probabilities (tolerance 1e-4), and the areas at each side's own
    counts must agree within 0.02 (its 0% point already removes the top pixel, and np.percentile moves each
    step's count by a pixel: about 0.01 on a steep curve). Run on the maps with ties broken in a seeded
    random order, then on the raw maps: we remove a block of tied pixels in equal shares where a threshold
    removes it at once, which moves the areas of tie-heavy maps (uniform, occlusion's windows) apart.
  * Average Drop / Increase in Confidence: ours (torch-cam's definition, %) against pytorch-grad-cam's
    `DropInConfidence` (the same drop not divided by p) and `IncreaseInConfidence`, tolerance 1e-4.
  * our Sobel reference map against pytorch-grad-cam's `sobel_cam` (Spearman rank correlation).
  * timings: the trust table (maps + localization + faithfulness + randomization) for one image, target
    <= 5 s; Grad-CAM at every stage and inside a block for one image, target <= 3 s; medians over images,
    with the load average, since on a shared machine other jobs slow every figure alike.
  * with --road: pytorch-grad-cam's ROADCombined per method (its own imputation), for reference.
pytorch-grad-cam (`pip install grad-cam`, see benchmarks/requirements.txt) is optional: without it only our
figures and timings are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_core.assets import bundled_model
from resnet_core.data import Preprocess, make_shapes, prepare_uint8
from resnet_core.explain import METHOD_LABELS, METHODS, explain, normalize_map, spearman
from resnet_core.explain.faithfulness import (
    auc,
    baseline_image,
    confidence_change,
    faithfulness_scores,
    perturbed_scores,
    pixel_counts,
    reference_maps,
)
from resnet_core.explain.layers import block_names, layer_scores
from resnet_core.explain.references import reference_labels, reference_names
from resnet_core.explain.trust_table import trust_table
from resnet_core.recipes import CHECK_SEED, LOCALIZATION_IMAGES
from resnet_core.train import load_run_model

try:
    from pytorch_grad_cam.metrics.cam_mult_image import DropInConfidence, IncreaseInConfidence
    from pytorch_grad_cam.metrics.perturbation_confidence import (
        PerturbationConfidenceMetric,
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.sobel_cam import sobel_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
except ImportError:  # optional: only for the comparison
    PerturbationConfidenceMetric = None

STEPS = 20
# At the same pixel counts the two are the same computation: only float rounding may differ.
P_TOLERANCE = 1e-4
# The areas differ by the pixel counts: pytorch-grad-cam's 100th percentile threshold already removes the top
# pixel at the curve's 0% point (and keeps all but the last at 100%), and np.percentile rounds each step's
# count by a pixel either way; on a steep curve one pixel out of 1024 can move the area by ~0.01.
AUC_TOLERANCE = 0.02
DROP_TOLERANCE = 1e-4
LABELS = {**METHOD_LABELS, **reference_labels()}


def load(n: int):
    info = bundled_model(residual=True)
    if info is None:
        sys.exit("the bundled Shapes ResNet-20 is missing: python -m resnet_core.assets rebuilds it")
    model, _, pre = load_run_model(info.path)
    pre = Preprocess.from_dict(pre, default_size=32)
    # The first n of the Grad-CAM page's check set (a Shapes set's images depend on its size).
    check = make_shapes(max(n, LOCALIZATION_IMAGES), seed=CHECK_SEED, size=32)
    shapes = type(check)(check.images[:n], check.labels[:n], check.masks[:n])
    return model, pre, shapes, prepare_uint8(shapes.images, pre)


def all_maps(model, x, targets, pre) -> dict[str, torch.Tensor]:
    """name -> N x H x W: every method at its defaults (Grad-CAM at the last stage) and the reference maps."""
    maps = {m: torch.stack([explain(model, x[i], m, target=targets[i]) for i in range(len(x))]) for m in METHODS}
    refs = [reference_maps(x[i], seed=i, mean=pre.mean, std=pre.std) for i in range(len(x))]
    maps.update({r: torch.stack([ref[r] for ref in refs]) for r in reference_names()})
    return maps


def tie_broken(maps: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """Each map replaced by its pixels' ranks (0 .. H*W - 1), ties put in a seeded random order: the same
    order as the map wherever it has one, exact in float32, and no ties left for the two to treat apart."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, m in maps.items():
        flat = m.reshape(m.shape[0], -1).double().numpy()
        ranks = np.empty_like(flat)
        for i, row in enumerate(flat):
            ranks[i, np.lexsort((rng.random(row.size), row))] = np.arange(row.size)
        out[name] = torch.from_numpy(ranks).float().reshape(m.shape)
    return out


def ours(model, x, maps, targets):
    """name -> (deletion areas, insertion areas) over the images at our pixel counts, and the seconds taken."""
    start = time.perf_counter()
    areas = {name: ([], []) for name in maps}
    for i in range(len(x)):
        res = faithfulness_scores(model, x[i], {n: m[i] for n, m in maps.items()}, target=targets[i], baseline="mean",
                                  steps=STEPS)
        for name, r in res.items():
            areas[name][0].append(r.deletion.auc)
            areas[name][1].append(r.insertion.auc)
    return areas, time.perf_counter() - start


def their_counts(cam: np.ndarray, percentile: float, mode: str) -> int:
    """How many pixels pytorch-grad-cam's threshold removes (deletion) or keeps (insertion) at `percentile`,
    by its own rule: RemoveMostRelevantFirst keeps `mask < np.percentile(mask, p)`, RemoveLeastRelevantFirst
    does the same on 1 - mask."""
    if mode == "deletion":
        return int(cam.size - (cam < np.percentile(cam, percentile)).sum())
    inverted = 1 - cam
    return int((inverted < np.percentile(inverted, percentile)).sum())


def theirs(model, x, maps, targets):
    """The curves through pytorch-grad-cam's perturbation metric at the percentiles nearest our shares of the
    pixels; removed pixels take the same baseline (the dataset mean: 0) through its imputer hook. Returns
    name -> mode -> (probabilities, pixel counts), each images x points, and the seconds taken."""
    start = time.perf_counter()
    fill = lambda img, keep: img * keep + baseline_image(img, "mean") * (1 - keep)
    wanted = [ClassifierOutputSoftmaxTarget(t) for t in targets]
    fractions = [k / (x.shape[-1] * x.shape[-2]) for k in pixel_counts(x.shape[-1] * x.shape[-2], STEPS)]
    percentiles = {"deletion": [100 * (1 - f) for f in fractions], "insertion": [100 * f for f in fractions]}
    rule = {"deletion": RemoveMostRelevantFirst, "insertion": RemoveLeastRelevantFirst}
    out = {}
    for name, m in maps.items():
        cams = m.numpy().astype(np.float32)
        out[name] = {}
        for mode in ("deletion", "insertion"):
            scores = np.stack([PerturbationConfidenceMetric(rule[mode](p, fill))(x, cams, wanted, model,
                                                                               return_diff=False)
                               for p in percentiles[mode]], axis=1)
            counts = np.array([[their_counts(c, p, mode) for p in percentiles[mode]] for c in cams])
            out[name][mode] = (scores, counts)
    return out, time.perf_counter() - start


def compare_curves(model, x, maps, targets, title: str, areas_checked: bool = True) -> None:
    mine, t_ours = ours(model, x, maps, targets)
    other, t_theirs = theirs(model, x, maps, targets)
    n = x.shape[-1] * x.shape[-2]
    print(f"\nDeletion / insertion, {len(x)} held-out Shapes images, {STEPS} steps, removed pixels -> the dataset mean "
          f"(0); {title}")
    print(f"  {'map':26s} {'del ours':>9s} {'del pgc':>8s} {'ins ours':>9s} {'ins pgc':>8s} {'max |Δ area|':>12s} "
          f"{'max |Δp| same counts':>20s}")
    worst_area = worst_p = 0.0
    for name, m in maps.items():
        areas = {mode: [auc(c / n, s) for s, c in zip(*other[name][mode])] for mode in ("deletion", "insertion")}
        d_area = max(abs(a - b) for k, mode in ((0, "deletion"), (1, "insertion"))
                     for a, b in zip(mine[name][k], areas[mode]))
        d_p = 0.0  # our curve read at exactly the pixel counts their thresholds gave
        for mode in ("deletion", "insertion"):
            scores, counts = other[name][mode]
            for i in range(len(x)):
                at = perturbed_scores(model, x[i], m[i], counts[i].tolist(), targets[i], mode, "mean").numpy()
                d_p = max(d_p, float(np.abs(at - scores[i]).max()))
        worst_area, worst_p = max(worst_area, d_area), max(worst_p, d_p)
        print(f"  {LABELS[name]:26s} {statistics.mean(mine[name][0]):9.4f} {statistics.mean(areas['deletion']):8.4f} "
              f"{statistics.mean(mine[name][1]):9.4f} {statistics.mean(areas['insertion']):8.4f} {d_area:12.4f} "
              f"{d_p:20.1e}")
    print(f"  same pixel counts: largest probability difference {worst_p:.1e}: "
          f"{'agree' if worst_p <= P_TOLERANCE else 'DISAGREE'} within {P_TOLERANCE}")
    verdict = (("agree" if worst_area <= AUC_TOLERANCE else "DISAGREE") if areas_checked
               else "ties treated apart, see above")
    print(f"  areas (ours at round(j/{STEPS} x pixels), theirs at its percentile counts): largest per-image "
          f"difference {worst_area:.4f}: {verdict}" + (f" within {AUC_TOLERANCE}" if areas_checked else ""))
    print(f"  time for all {len(maps)} maps x {len(x)} images: ours (batched) {t_ours:.2f} s, "
          f"pytorch-grad-cam {t_theirs:.2f} s")


def compare_drop(model, x, maps, targets) -> None:
    print("\nAverage Drop / Increase in Confidence (image x map scaled to [0, 1]), mean over the images")
    print(f"  {'map':26s} {'avg drop %':>10s} {'incr %':>7s} {'p·drop ours':>11s} {'pgc drop':>9s} {'pgc incr':>8s}")
    wanted = [ClassifierOutputSoftmaxTarget(t) for t in targets]
    worst = 0.0
    for name, m in maps.items():
        out = confidence_change(model, x, m, targets)
        scaled = torch.stack([normalize_map(a) for a in m]).numpy().astype(np.float32)
        drop = DropInConfidence()(x, scaled, wanted, model)
        incr = IncreaseInConfidence()(x, scaled, wanted, model)
        absolute = (out["average_drop"] / 100 * out["probability"]).numpy()
        increase = out["increase_in_confidence"].numpy()
        worst = max(worst, float(np.abs(absolute - drop).max()), float(np.abs(increase / 100 - incr).max()))
        print(f"  {LABELS[name]:26s} {float(out['average_drop'].mean()):10.1f} {increase.mean():7.0f} "
              f"{absolute.mean():11.4f} {drop.mean():9.4f} {100 * incr.mean():7.0f}%")
    verdict = "agree" if worst <= DROP_TOLERANCE else "DISAGREE"
    print(f"  largest difference {worst:.2e}: {verdict} within {DROP_TOLERANCE}")


def compare_sobel(shapes, x, pre) -> None:
    rhos = []
    for i in range(len(x)):
        mine = reference_maps(x[i], mean=pre.mean, std=pre.std)["sobel"]
        picture = np.ascontiguousarray(shapes.images[i].permute(1, 2, 0).numpy())  # H x W x 3 uint8, as OpenCV wants
        other = torch.from_numpy(sobel_cam(picture).astype(np.float32))
        rhos.append(spearman(mine, other))
    print(f"\nSobel reference map vs pytorch-grad-cam's sobel_cam: Spearman rank correlation median "
          f"{statistics.median(rhos):.3f} (min {min(rhos):.3f}; theirs rounds to uint8 and saturates at 255)")


def road(model, x, maps, targets) -> None:
    print("\npytorch-grad-cam ROADCombined (percentiles 10-90, noisy linear imputation), mean over the images:")
    wanted = [ClassifierOutputSoftmaxTarget(t) for t in targets]
    torch.manual_seed(0)
    for name, m in maps.items():
        score = ROADCombined()(x, m.numpy().astype(np.float32), wanted, model)
        print(f"  {LABELS[name]:26s} {float(np.mean(score)):7.4f}")


def timings(model, x, masks, targets, pre) -> None:
    """Wall time, and this process's CPU time: other jobs on a shared machine stretch the wall time but not
    the CPU time, and on an idle machine the wall time is at most the CPU time (less with 2 busy threads)."""
    table_times, layer_times, parts = [], [], {}
    block = block_names(model)[len(block_names(model)) // 2]
    trust_table(model, x[0], target=targets[0], mask=masks[0])  # warm-up: allocator, oneDNN kernels
    for i in range(len(x)):
        t, c = time.perf_counter(), time.process_time()
        table = trust_table(model, x[i], target=targets[i], mask=masks[i], mean=pre.mean, std=pre.std)
        table_times.append((time.perf_counter() - t, time.process_time() - c))
        for k, v in table.seconds.items():
            parts.setdefault(k, []).append(v)
        t, c = time.perf_counter(), time.process_time()
        layer_scores(model, x[i], target=targets[i], mask=masks[i], block=block)
        layer_times.append((time.perf_counter() - t, time.process_time() - c))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nTimings, one image each, median over {len(x)} images "
          f"(load average {load:.1f} on {os.cpu_count()} cores):")
    print("  trust table, wall: " + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in parts.items()))
    for name, times, target in (("trust table, all three families", table_times, 5.0),
                                (f"Grad-CAM at every stage + inside {block}", layer_times, 3.0)):
        wall = statistics.median(t for t, _ in times)
        cpu = statistics.median(c for _, c in times)
        print(f"  {name}: wall {wall:.2f} s (max {max(t for t, _ in times):.2f} s), CPU {cpu:.2f} s; target <= "
              f"{target:.0f} s: {'met' if wall <= target else 'NOT met'} on the wall clock here, "
              f"{'met' if cpu <= target else 'NOT met'} by the CPU time (an idle machine's wall time is at most that)")
    print(f"  verdict on image 0: {trust_table(model, x[0], target=targets[0], mask=masks[0]).sentence}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--road", action="store_true", help="also print pytorch-grad-cam's ROADCombined")
    parser.add_argument("--no-timings", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    model, pre, shapes, x = load(args.images)
    targets = shapes.labels.tolist()
    maps = all_maps(model, x, targets, pre)
    if PerturbationConfidenceMetric is None:
        print("note: pytorch-grad-cam is not installed (pip install grad-cam); skipping the comparison")
        mine, _ = ours(model, x, maps, targets)
        for name, (d, i) in mine.items():
            print(f"  {LABELS[name]:26s} deletion {statistics.mean(d):.4f} insertion {statistics.mean(i):.4f}")
    else:
        compare_curves(model, x, tie_broken(maps), targets, "ties broken at random (seeded), the same for both")
        compare_curves(model, x, maps, targets, "the raw maps: tied pixels removed in equal shares by us, at once "
                       "by a threshold", areas_checked=False)
        compare_drop(model, x, maps, targets)
        compare_sobel(shapes, x, pre)
        if args.road:
            road(model, x, maps, targets)
    if not args.no_timings:
        timings(model, x, shapes.masks, targets, pre)


if __name__ == "__main__":
    main()
