"""Shattered gradients (Balduzzi et al. 2017): input-gradient correlation along a line between two inputs."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..background import BackgroundJob
from ..data.containers import Progress
from ..device import device_of
from ..model.config import ResNetConfig
from ..model.model import build_seeded
from .common import GradientError, check_depths, check_model, cifar_config, config_label, measuring, random_batch


@dataclass(frozen=True)
class ShatteringProfile:
    """Input-gradient correlations along a line between two inputs.

    Attributes:
        neighbour: correlation between gradients at points i and i+1, for every i.
        lags / autocorrelation: mean correlation between points i and i+lag.
    """

    label: str
    n_points: int
    neighbour: tuple[float, ...]
    lags: tuple[int, ...]
    autocorrelation: tuple[float, ...]
    depth: int = 0
    seed: int = 0

    @property
    def mean_neighbour(self) -> float:
        return statistics.fmean(self.neighbour)


def _line(x0: Tensor, x1: Tensor, n_points: int) -> Tensor:
    t = torch.linspace(0, 1, n_points, device=x0.device).view(-1, *([1] * (x0.dim())))
    return (1 - t) * x0.unsqueeze(0) + t * x1.unsqueeze(0)


def gradient_shattering(model: nn.Module, x0: Tensor, x1: Tensor, n_points: int = 64, seed: int = 0,
                        max_lag: int | None = None) -> ShatteringProfile:
    """Correlation of input-gradients at neighbouring points of the segment x0 -> x1.

    The scalar differentiated is r . logits with a fixed random unit vector r (from `seed`), summed
    over the points, which form one train-mode batch. Each gradient is flattened, centred and
    normalised; the Pearson correlation of points i and i+lag is then a dot product.
    """
    check_model(model)
    if not (isinstance(x0, Tensor) and isinstance(x1, Tensor)) or x0.shape != x1.shape or x0.dim() != 3:
        raise GradientError("give two images of the same C x H x W shape for the ends of the line")
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 4:
        raise GradientError(f"points on the line: {n_points!r} must be a whole number >= 4")
    max_lag = max(1, min(max_lag or n_points // 4, n_points - 1))
    device = device_of(model)
    x = _line(x0.float().to(device), x1.float().to(device), n_points).requires_grad_(True)
    with measuring(model, train=True), torch.enable_grad():
        logits = model(x)
        gen = torch.Generator().manual_seed(30_000 + seed)
        r = torch.randn(logits.shape[1], generator=gen).to(device)
        (g,) = torch.autograd.grad((logits @ (r / r.norm())).sum(), x)
    g = g.detach().flatten(1).double()
    g = g - g.mean(1, keepdim=True)
    g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-300)
    lags = tuple(range(1, max_lag + 1))
    auto = tuple(float((g[:-k] * g[k:]).sum(1).mean()) for k in lags)
    neighbour = tuple((g[:-1] * g[1:]).sum(1).cpu().tolist())
    cfg = getattr(model, "config", None)
    label = config_label(cfg) if isinstance(cfg, ResNetConfig) else type(model).__name__
    depth = cfg.depth if isinstance(cfg, ResNetConfig) else 0
    return ShatteringProfile(label, n_points, neighbour, lags, auto, depth, seed)


@dataclass
class ShatteringSweep:
    depths: tuple[int, ...]
    seeds: tuple[int, ...]
    n_points: int
    image_size: int
    points: list[tuple[int, bool, int, float]] = field(default_factory=list)  # depth, residual, seed, mean corr
    profiles: list[ShatteringProfile] = field(default_factory=list)
    stopped: bool = False

    def deepest_profiles(self) -> list[ShatteringProfile]:
        """The first seed's profiles at the deepest depth measured so far (plain, then residual)."""
        profiles = list(self.profiles)
        if not profiles:
            return []
        depth = max(p.depth for p in profiles)
        seed = min(p.seed for p in profiles if p.depth == depth)
        return [p for p in profiles if p.depth == depth and p.seed == seed]

    def series(self, residual: bool) -> list[tuple[int, float, float, float]]:
        """(depth, mean, min, max) over seeds of the mean neighbour correlation."""
        out = []
        points = list(self.points)
        for depth in self.depths:
            vals = [c for d, r, _, c in points if d == depth and r == residual]
            if vals:
                out.append((depth, statistics.fmean(vals), min(vals), max(vals)))
        return out


def shattering_sweep(depths: Sequence[int] = (8, 20, 56), seeds: Sequence[int] = (0,), n_points: int = 64,
                     image_size: int = 16, progress: Progress | None = None,
                     stop: threading.Event | None = None, norm: str = "batch") -> ShatteringSweep:
    """Mean neighbour correlation of input-gradients against depth, plain vs residual, at initialization.

    The line joins two standard-normal images drawn from the seed; both twins see the same line.
    """
    depths = check_depths(depths)
    random_batch(2, image_size, 10)
    seeds = tuple(int(s) for s in seeds) or (0,)
    result = ShatteringSweep(depths, seeds, n_points, image_size)
    jobs = [(d, s, r) for d in depths for s in seeds for r in (False, True)]
    for done, (depth, seed, residual) in enumerate(jobs):
        if stop is not None and stop.is_set():
            result.stopped = True
            break
        cfg = cifar_config(depth, residual, norm)
        ends, _ = random_batch(2, image_size, 10, seed)
        prof = gradient_shattering(build_seeded(cfg, seed), ends[0], ends[1], n_points, seed)
        result.points.append((depth, residual, seed, prof.mean_neighbour))
        result.profiles.append(prof)
        if progress is not None:
            progress(done + 1, len(jobs), f"{config_label(cfg)}: neighbour correlation {prof.mean_neighbour:.2f}",
                     result)
    return result


def shattering_job(depths: Sequence[int] = (8, 20, 56), seeds: Sequence[int] = (0,), n_points: int = 64,
                   image_size: int = 16) -> BackgroundJob:
    depths = check_depths(depths)
    random_batch(2, image_size, 10)

    def work(progress: Progress, stop: threading.Event) -> ShatteringSweep:
        return shattering_sweep(depths, seeds, n_points, image_size, progress, stop)

    return BackgroundJob(work, "shattering sweep")
