"""Time estimates: one ResNet-20 training step measured on this device, scaled to each job's work."""

from __future__ import annotations

import functools
import itertools
import os
import statistics
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .analysis.common import SWEEP_DEPTHS, cifar_config
from .analysis.landscape import LIVE_DEPTH, LIVE_SPEC, LandscapeSpec
from .data.containers import DataBundle, ImageSet
from .data.spec import DatasetSpec
from .device import best_device
from .model.config import ResNetConfig, get_preset
from .model.model import build_model, build_seeded
from .model.summary import UNIT_SPACE, summarize
from .recipes import (
    DEFAULT_PRESET,
    DEGRADATION_DATA,
    DEGRADATION_DEPTHS,
    DEGRADATION_TRAIN,
    LOCALIZATION_IMAGES,
    SHAPES_DATA,
    SHAPES_TRAIN,
    SWEEP_BATCH,
)
from .train.config import TrainConfig
from .train.schedule import RunPlan
from .train.trainer import Trainer

# The demos estimate_seconds knows (their texts live with the pages, in ui/demos.py).
DEMO_KEYS = ("degradation", "normalization", "gradcam")


@functools.lru_cache(maxsize=4)
def seconds_per_image(device: str | None = None) -> float:
    """Measured here: seconds per 32x32 image for a bare ResNet-20 step (forward, backward, SGD), the unit of
    the analyses' estimates (gradient profiles, the depth sweep, attribution maps). Made once per device and
    process (about a second on a laptop CPU)."""
    device = device or best_device()
    # build_seeded leaves the global random state alone: other sessions' seeded work must not see this draw.
    model = build_seeded(get_preset(DEFAULT_PRESET), 0).to(device)
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


@functools.lru_cache(maxsize=4)
def trainer_seconds_per_image(device: str | None = None) -> float:
    """Measured here: seconds per 32x32 image of a ResNet-20 training step as the Trainer takes it (augmentation,
    normalisation, forward, backward, gradient norm, SGD, its event), at the recipe's batch size.

    Timing the Trainer itself rather than a bare step matters: its per-step work is about a third of a step
    at batch 32 on a 2-core CPU, and a bare-step probe read estimates 30% short. Made once per device and
    process (about half a second on a laptop CPU); every training estimate scales it.
    """
    batch, steps = SHAPES_TRAIN.batch_size, 8
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch * steps, 3, 32, 32), generator=generator, dtype=torch.uint8)
    labels = torch.arange(batch * steps) % 10
    train = ImageSet(images, labels)
    data = DataBundle(train, train.subset(range(batch)), [str(k) for k in range(10)], (0.5,) * 3, (0.25,) * 3,
                      {"kind": "probe"})
    config = SHAPES_TRAIN.replace(epochs=1, warmup_epochs=0.0, device=device or "auto")
    # build_seeded leaves the global random state alone: other sessions' seeded work must not see this draw.
    trainer = Trainer(build_seeded(get_preset(DEFAULT_PRESET), 0, 10), data, config).start()
    trainer.join()
    times = [event.time for event in trainer.snapshot().steps]
    # The first step pays for allocation and kernel selection: the gaps after it are the steady steps.
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[1:])]
    if len(gaps) < 2:
        raise RuntimeError(f"the speed probe did not train ({trainer.message})")
    return statistics.median(gaps) / batch


# A training runs in its own process (resnet_core.jobs.training_queue): Python and torch start (3 s on a
# 2-core CPU) and the data is loaded (1 s for the Shapes recipe's 7,000 images) before the first step.
WORKER_START_S = 4.0


def worker_start_seconds(processes: int = 1) -> float:
    """Time before the first step of `processes` workers started together (they share the cores)."""
    cores = os.cpu_count() or 1
    return WORKER_START_S * max(1.0, processes / cores)


def relative_cost(depth: int) -> float:
    """A CIFAR net's compute per image relative to ResNet-20's: each stage costs the same per block
    (half the resolution, twice the channels), so cost grows with the number of blocks."""
    return (depth - 2) / 18


def training_seconds(n_train: int, n_val: int, config: TrainConfig, relative: float, per_image: float) -> float:
    """One training run of a net costing `relative` ResNet-20s per image: its training steps (up to
    `max_steps`) plus its evaluation passes (`val_per_epoch` per epoch), each image a third of a step's work."""
    plan = RunPlan.of(config, n_train)
    return (plan.images_trained + n_val * plan.epochs * config.val_per_epoch / 3) * relative * per_image


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
    return worker_start_seconds() + training_seconds(n_train, n_val, config, relative_macs(cfg, image_size),
                                                     trainer_seconds_per_image(device))


def shapes_recipe_seconds(device: str | None = None) -> float:
    """Training the Shapes demo model (ResNet-20, SHAPES_DATA with SHAPES_TRAIN) here."""
    return worker_start_seconds() + training_seconds(SHAPES_DATA.n_train, SHAPES_DATA.n_val, SHAPES_TRAIN, 1.0,
                                                     trainer_seconds_per_image(device))


def profile_seconds(configs: tuple[ResNetConfig, ...], image_size: int, batch_size: int, seeds: int,
                    device: str | None = None) -> float:
    """A gradient profile: one forward and backward pass of each network per seed."""
    work = sum(relative_macs(cfg, image_size) for cfg in configs)
    return work * batch_size * seeds * seconds_per_image(device)


def side_by_side_seconds(data: DatasetSpec, config: TrainConfig, depths: Sequence[int],
                         device: str | None = None) -> float:
    """The side-by-side training (analysis.SideBySide): a plain and a residual CIFAR net per depth, trained at
    once in worker processes that share the device, so their work adds up."""
    per_image = trainer_seconds_per_image(device)
    return worker_start_seconds(2 * len(depths)) + 2 * sum(
        training_seconds(data.n_train, data.n_val, config, relative_cost(d), per_image) for d in depths)


def sweep_seconds(depths: Sequence[int], norms: Sequence[str], seeds: int, batch_size: int, image_size: int,
                  device: str | None = None) -> float:
    """The depth sweep (analysis.depth_sweep): a plain and a residual net per depth, normalization and seed,
    one forward and backward pass of a batch each."""
    area = (image_size / 32) ** 2
    images = sum(2 * len(norms) * seeds * batch_size * relative_cost(d) * area for d in depths)
    return images * seconds_per_image(device)


def shattering_seconds(depths: Sequence[int], seeds: int, n_points: int, image_size: int = 16,
                       device: str | None = None) -> float:
    """The shattering sweep (analysis.shattering_sweep): a plain and a residual net per depth and seed, one
    forward and backward pass of the `n_points` inputs on the line each."""
    area = (image_size / 32) ** 2
    return sum(2 * seeds * n_points * relative_cost(d) * area for d in depths) * seconds_per_image(device)


def lesion_seconds(configs: Sequence[ResNetConfig], n_images: int, image_size: int = 32,
                   device: str | None = None) -> float:
    """The lesion study (analysis.lesion_study) of trained nets on `n_images`: per net with N blocks, the intact
    pass plus, for each deleted block, the blocks after it (the ones before are computed once): about
    2 + (N - 1) / 2 forward passes, each a third of a training step's work."""
    passes = sum((2 + (sum(cfg.stage_blocks) - 1) / 2) * relative_macs(cfg, image_size) for cfg in configs)
    return passes * n_images * seconds_per_image(device) / 3


def landscape_seconds(configs: Sequence[ResNetConfig], spec: LandscapeSpec = LIVE_SPEC, image_size: int = 32,
                      device: str | None = None) -> float:
    """The loss landscape (analysis.landscape) of trained nets: `spec.evaluations` forward passes over
    `spec.n_images` held-out images per net, each a third of a training step's work. Default: the live pair,
    He et al.'s CIFAR ResNet-20 and its plain twin (what the bundled Shapes pair is)."""
    configs = configs or (cifar_config(LIVE_DEPTH, residual=False), cifar_config(LIVE_DEPTH))
    passes = sum(spec.evaluations * relative_macs(cfg, image_size) for cfg in configs)
    return passes * spec.n_images * seconds_per_image(device) / 3


def estimate_seconds(key: str, device: str | None = None, *, model_ready: bool = True) -> float:
    """How long demo `key` takes on `device`; for "gradcam", `model_ready` says whether its model is trained."""
    per_image = seconds_per_image(device)
    if key == "degradation":
        return side_by_side_seconds(DEGRADATION_DATA, DEGRADATION_TRAIN, DEGRADATION_DEPTHS, device)
    if key == "normalization":
        # Two nets (plain, residual) by two normalizations per depth, one batch each.
        return sweep_seconds(SWEEP_DEPTHS, ("batch", "none"), 1, SWEEP_BATCH, 32, device)
    if key == "gradcam":
        # Grad-CAM and Guided Grad-CAM: about three passes per image each.
        scoring = 2 * 3 * LOCALIZATION_IMAGES * per_image
        return scoring if model_ready else scoring + shapes_recipe_seconds(device)
    raise KeyError(f"unknown demo {key!r}; choose one of {list(DEMO_KEYS)}")


def format_duration(seconds: float) -> str:
    """Rounded for a person: "about 5 s", "about 2 min", "about 1.5 h"."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {max(1, round(seconds))}{UNIT_SPACE}s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)}{UNIT_SPACE}min"
    return f"about {seconds / 3600:.1f}{UNIT_SPACE}h"
