"""Lecture demos, and the Shapes recipes every one-click training in the app uses.

Configuration lives here in one place (as in airbench): the Train page's defaults, the Grad-CAM
page's demo model and the side-by-side training all read these, and the time estimates each
demo shows come from a measurement made on the device the app runs on.

    python -m resnet_core demos     # each demo and how long it takes here
"""

from __future__ import annotations

import functools
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import ResNetConfig, get_preset
from .data import DatasetSpec
from .device import best_device
from .gradients import SWEEP_DEPTHS
from .model import build_model
from .summary import summarize
from .train import TrainConfig

# The Train page's defaults and the Grad-CAM demo model: ResNet-20 finishes in under a minute on a
# 2-core CPU at about 88% validation accuracy (87.7% in 56 s measured). With SHAPES_FULL_DATA's 10,000
# images the same recipe reaches 96.9% in 90 s (benchmarks/bench_demos.py prints both).
SHAPES_DATA = DatasetSpec(kind="shapes", n_train=6_000, n_val=1_000, seed=0, image_size=32)
SHAPES_FULL_DATA = DatasetSpec(kind="shapes", n_train=10_000, n_val=1_000, seed=0, image_size=32)
SHAPES_TRAIN = TrainConfig(epochs=4, batch_size=64, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True,
                           weight_decay=5e-4, schedule="cosine", warmup_epochs=0.5, crop_padding=2)

# The degradation demo trains four nets, two of them 56 layers deep, so it gets a smaller budget:
# enough for the deep plain net to fall visibly behind, short enough for a lecture. Measured on a
# 2-core CPU (188 s): plain-20 53.6%, plain-56 12.0% (loss stuck near ln 10), ResNet-20 57.8%,
# ResNet-56 53.2% validation accuracy.
DEGRADATION_DEPTHS = (20, 56)
DEGRADATION_DATA = DatasetSpec(kind="shapes", n_train=3_000, n_val=500, seed=0, image_size=32)
DEGRADATION_TRAIN = SHAPES_TRAIN

SWEEP_BATCH = 32  # images per gradient measurement in the depth sweep
LOCALIZATION_IMAGES = 64  # held-out Shapes images the Grad-CAM demo scores


@dataclass(frozen=True)
class Demo:
    """A one-click lecture demo: which page runs it, what it does and what to look for."""

    key: str
    title: str
    page: str
    does: str
    look_for: str


DEMOS: dict[str, Demo] = {d.key: d for d in (
    Demo("degradation", "The degradation problem", "pages/3_Plain_vs_Residual.py",
         "Trains plain-20, plain-56, ResNet-20 and ResNet-56 side by side on Shapes: same data, seed and recipe.",
         "Training loss: plain-56 stays far above plain-20 — more layers, worse fit, on the training set itself, so "
         "not overfitting. With shortcuts, ResNet-56 keeps up with ResNet-20."),
    Demo("normalization", "Why normalization matters", "pages/3_Plain_vs_Residual.py",
         "Measures, at initialization, how much larger the gradient is at the first conv than at the last, for "
         "depths 8 to 110, plain and residual, with BatchNorm and without.",
         "With BatchNorm the plain net's ratio grows exponentially with depth (about 10^6 at 110 layers) while the "
         "residual net's stays within about 10^2. Without normalization neither explodes at initialization: in a "
         "plain net the explosion is BatchNorm's doing (Yang et al. 2019), and the shortcut keeps it in check."),
    Demo("gradcam", "Where does the network look?", "pages/4_Grad-CAM.py",
         "Explains a ResNet-20 trained on Shapes with Grad-CAM on held-out images, and scores the maps against each "
         "object's true mask.",
         "The map's peak falls on the object in most images — far above chance, which is the object's share of "
         "the image."),
)}


@functools.lru_cache(maxsize=4)
def seconds_per_image(device: str | None = None) -> float:
    """Measured here: seconds per 32x32 image for a ResNet-20 training step (forward, backward, SGD).

    Made once per device and process (about a second on a laptop CPU); every estimate scales it.
    """
    device = device or best_device()
    with torch.random.fork_rng(devices=[]):  # other sessions' seeded work must not see this draw
        torch.manual_seed(0)
        model = build_model(get_preset("resnet20")).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 32, 32, generator=generator).to(device)
    y = torch.randint(0, 10, (64,), generator=generator).to(device)
    step_times = []
    for step in range(6):  # the first step pays for allocation and kernel selection: not counted
        _sync(device)
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if step:
            step_times.append(time.perf_counter() - start)
    return statistics.median(step_times) / len(x)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def relative_cost(depth: int) -> float:
    """A CIFAR net's compute per image relative to ResNet-20's: each stage costs the same per block
    (half the resolution, twice the channels), so cost grows with the number of blocks."""
    return (depth - 2) / 18


def training_seconds(n_train: int, n_val: int, config: TrainConfig, relative: float, per_image: float) -> float:
    """One training run of a net costing `relative` ResNet-20s per image: its training steps (up to
    `max_steps`) plus an evaluation pass, a third of a step's work, per epoch."""
    trained = n_train * config.epochs
    if config.max_steps:
        trained = min(trained, config.max_steps * config.batch_size)
    return (trained + n_val * config.epochs / 3) * relative * per_image


@functools.lru_cache(maxsize=64)
def macs_per_image(cfg: ResNetConfig, image_size: int) -> int:
    return summarize(build_model(cfg), (cfg.in_channels, image_size, image_size)).total_macs


def relative_macs(cfg: ResNetConfig, image_size: int) -> float:
    """`cfg`'s compute per image at `image_size` px, in ResNet-20s at 32 px (the measured unit)."""
    return macs_per_image(cfg, image_size) / macs_per_image(get_preset("resnet20"), 32)


def run_seconds(cfg: ResNetConfig, image_size: int, n_train: int, n_val: int, config: TrainConfig,
                device: str | None = None) -> float:
    """How long training `cfg` on `n_train` images of `image_size` px takes here, scaled by MACs from
    the ResNet-20 measurement."""
    return training_seconds(n_train, n_val, config, relative_macs(cfg, image_size), seconds_per_image(device))


def shapes_recipe_seconds(device: str | None = None) -> float:
    """Training the Shapes demo model (ResNet-20, SHAPES_DATA with SHAPES_TRAIN) here."""
    return training_seconds(SHAPES_DATA.n_train, SHAPES_DATA.n_val, SHAPES_TRAIN, 1.0, seconds_per_image(device))


def profile_seconds(configs: tuple[ResNetConfig, ...], image_size: int, batch_size: int, seeds: int,
                    device: str | None = None) -> float:
    """A gradient profile: one forward and backward pass of each network per seed."""
    work = sum(relative_macs(cfg, image_size) for cfg in configs)
    return work * batch_size * seeds * seconds_per_image(device)


def estimate_seconds(key: str, device: str | None = None, *, model_ready: bool = True) -> float:
    """How long demo `key` takes on `device`; for "gradcam", `model_ready` says whether its model is trained."""
    per_image = seconds_per_image(device)
    if key == "degradation":
        return 2 * sum(training_seconds(DEGRADATION_DATA.n_train, DEGRADATION_DATA.n_val, DEGRADATION_TRAIN,
                                        relative_cost(d), per_image) for d in DEGRADATION_DEPTHS)
    if key == "normalization":
        # Two nets (plain, residual) by two normalizations per depth, one batch each.
        return sum(4 * SWEEP_BATCH * relative_cost(d) * per_image for d in SWEEP_DEPTHS)
    if key == "gradcam":
        # Grad-CAM and Guided Grad-CAM: about three passes per image each.
        scoring = 2 * 3 * LOCALIZATION_IMAGES * per_image
        return scoring if model_ready else scoring + shapes_recipe_seconds(device)
    raise KeyError(f"unknown demo {key!r}; choose one of {list(DEMOS)}")


def format_duration(seconds: float) -> str:
    """Rounded for a person: "about 5 s", "about 2 min", "about 1.5 h"."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


__all__ = [
    "DEGRADATION_DATA",
    "DEGRADATION_DEPTHS",
    "DEGRADATION_TRAIN",
    "DEMOS",
    "Demo",
    "SHAPES_DATA",
    "SHAPES_FULL_DATA",
    "SHAPES_TRAIN",
    "estimate_seconds",
    "format_duration",
    "macs_per_image",
    "profile_seconds",
    "relative_cost",
    "run_seconds",
    "relative_macs",
    "seconds_per_image",
    "shapes_recipe_seconds",
    "training_seconds",
]
