"""Grad-CAM speed on the CPU, measured side by side in one process.

    python3 benchmarks/bench_gradcam.py [--reps 15] [--threads 2]

Figures printed:
  * resnet50, one 224x224 image: `explain(..., "gradcam")` (prediction + Grad-CAM + bilinear
    upsampling, one forward pass), captum's LayerGradCam alone (explicit target, no upsampling),
    and pytorch-grad-cam's GradCAM on the same model, layer and image, interleaved rep by rep;
    medians and the ratio ours / pytorch-grad-cam (target <= 1.1; ours alone target <= 0.15 s).
  * a batch of 16 images in one pass, per image;
  * Integrated Gradients, 32 steps, resnet18, one image.
pytorch-grad-cam (`pip install grad-cam`, see benchmarks/requirements.txt) is optional: without it
that comparison is skipped with a note. The models have random weights (no download needed);
timings do not depend on the weights. On a machine shared with other jobs, read the ratios
(measured interleaved) rather than the absolute times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from captum.attr import LayerGradCam

from resnet_core import build_model, get_preset
from resnet_core.data import Preprocess, prepare, sample_images
from resnet_core.explain import explain, explain_batch, normalize_map, spearman

try:
    from pytorch_grad_cam import GradCAM
except ImportError:  # optional: only for the comparison
    GradCAM = None


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def photo_batch(n: int) -> torch.Tensor:
    """Real photos (the bundled samples, cycled and flipped) prepared as ImageNet models expect."""
    pre = Preprocess(image_size=224, resize=256)
    photos = [s.load() for s in sample_images()]
    tensors = [prepare(photos[i % len(photos)], pre)[1] for i in range(n)]
    return torch.stack([t if (i // len(photos)) % 2 == 0 else t.flip(-1) for i, t in enumerate(tensors)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")

    torch.manual_seed(0)
    resnet50 = build_model(get_preset("resnet50")).eval()
    x = photo_batch(1)
    target = int(resnet50(x).argmax())
    captum_alone = LayerGradCam(resnet50, resnet50.layer4)
    runners: dict[str, Callable[[], object]] = {
        "ours: explain(gradcam), upsampled": lambda: explain(resnet50, x, "gradcam"),
        "captum LayerGradCam alone": lambda: captum_alone.attribute(x, target=target),
    }
    if GradCAM is not None:
        # The same tensor: layer4's output is its last block's output.
        other = GradCAM(model=resnet50, target_layers=[resnet50.layer4[-1]])
        runners["pytorch-grad-cam GradCAM"] = lambda: other(input_tensor=x, targets=None)
    else:
        print("note: pytorch-grad-cam is not installed (pip install grad-cam); skipping that comparison")

    for fn in runners.values():  # warm-up: allocator, oneDNN kernels
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.reps):
        for name, fn in runners.items():  # interleaved, so a busy neighbour slows all alike
            times[name].append(timed(fn))
        resnet50.zero_grad(set_to_none=True)  # pytorch-grad-cam leaves parameter gradients behind

    print(f"\nresnet50, one 224x224 image, median of {args.reps} interleaved reps:")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"  {name:38s} {median * 1000:7.1f} ms   (min {min(times[name]) * 1000:.1f} ms)")
    ours = medians["ours: explain(gradcam), upsampled"]
    print(f"  ours <= 0.15 s target: {'met' if ours <= 0.15 else 'NOT met'} ({ours:.3f} s)")
    if GradCAM is not None:
        ratio = ours / medians["pytorch-grad-cam GradCAM"]
        print(f"  ratio ours / pytorch-grad-cam: {ratio:.2f}  (target <= 1.1: {'met' if ratio <= 1.1 else 'NOT met'})")
        theirs = torch.from_numpy(other(input_tensor=x, targets=None)[0])
        mine = normalize_map(explain(resnet50, x, "gradcam"))
        print(f"  same map? Spearman rank correlation ours vs pytorch-grad-cam: {spearman(mine, theirs):.3f}")
        resnet50.zero_grad(set_to_none=True)

    batch = photo_batch(16)
    explain_batch(resnet50, batch[:2], "gradcam")
    batch_times = [timed(lambda: explain_batch(resnet50, batch, "gradcam")) for _ in range(max(3, args.reps // 5))]
    per_image = statistics.median(batch_times) / len(batch)
    print(f"\nresnet50, batch of 16 in one pass: {statistics.median(batch_times):.2f} s, "
          f"{per_image * 1000:.1f} ms per image ({ours / per_image:.2f}x faster per image than one at a time)")

    resnet18 = build_model(get_preset("resnet18")).eval()
    explain(resnet18, x, "integrated_gradients", n_steps=4)
    ig = [timed(lambda: explain(resnet18, x, "integrated_gradients", n_steps=32, internal_batch_size=32))
          for _ in range(3)]
    print(f"\nIntegrated Gradients, 32 steps, resnet18, one 224x224 image: median {statistics.median(ig):.2f} s "
          f"(min {min(ig):.2f} s)")


if __name__ == "__main__":
    main()
