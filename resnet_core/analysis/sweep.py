"""The depth sweep: first/last gradient-norm ratio at initialization against depth, plain vs residual."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..background import BackgroundJob
from ..data.containers import Progress
from ..model.model import build_seeded
from .common import SWEEP_DEPTHS, GradientError, check_depths, cifar_config, config_label, random_batch
from .profiles import gradient_norms


@dataclass(frozen=True)
class SweepPoint:
    depth: int
    residual: bool
    norm: str
    seed: int
    ratio: float
    first_norm: float
    last_norm: float
    loss: float


@dataclass
class SweepResult:
    """Points of a depth sweep; filled in as the sweep runs (a page may read it meanwhile)."""

    depths: tuple[int, ...]
    norms: tuple[str, ...]
    seeds: tuple[int, ...]
    batch_size: int
    image_size: int
    points: list[SweepPoint] = field(default_factory=list)
    stopped: bool = False
    seconds: float = 0.0

    def series(self, residual: bool, norm: str = "batch") -> list[tuple[int, float, float, float]]:
        """(depth, median, min, max) of the first/last ratio over seeds, for depths measured so far."""
        out = []
        points = list(self.points)
        for depth in self.depths:
            ratios = [p.ratio for p in points if p.depth == depth and p.residual == residual and p.norm == norm]
            if ratios:
                out.append((depth, statistics.median(ratios), min(ratios), max(ratios)))
        return out


def depth_sweep(depths: Sequence[int] = SWEEP_DEPTHS, norms: Sequence[str] = ("batch",),
                seeds: Sequence[int] = (0,), batch_size: int = 32, image_size: int = 32,
                progress: Progress | None = None, stop: threading.Event | None = None,
                result: SweepResult | None = None) -> SweepResult:
    """First/last gradient-norm ratio at initialization against depth, plain vs residual.

    For every depth, norm and seed, a CIFAR ResNet and its plain twin are built from the seed and
    measured on the same random batch with random labels. `progress(done, total, message, result)`
    is called after each network; setting `stop` ends the sweep after the network in flight, with
    `result.stopped` True and the points measured so far. Pass `result` to have it filled in place.
    """
    depths = check_depths(depths)
    norms = tuple(norms)
    for norm in norms:
        if norm not in ("batch", "none"):
            raise GradientError(f"normalization {norm!r}: choose 'batch' or 'none'")
    seeds = tuple(int(s) for s in seeds) or (0,)
    if result is None:
        result = SweepResult(depths, norms, seeds, batch_size, image_size)
    jobs = [(norm, depth, seed, residual) for norm in norms for depth in depths for seed in seeds
            for residual in (False, True)]
    start = time.perf_counter()
    for done, (norm, depth, seed, residual) in enumerate(jobs):
        if stop is not None and stop.is_set():
            result.stopped = True
            break
        cfg = cifar_config(depth, residual, norm)
        x, y = random_batch(batch_size, image_size, cfg.num_classes, seed)
        profile = gradient_norms(build_seeded(cfg, seed), x, y)
        first, last = profile.conv_norms[0], profile.conv_norms[profile._last_index]
        result.points.append(SweepPoint(depth, residual, norm, seed, profile.first_last_ratio, first, last,
                                        profile.loss))
        result.seconds = time.perf_counter() - start
        if progress is not None:
            progress(done + 1, len(jobs), f"{config_label(cfg)} (seed {seed}): ratio {profile.first_last_ratio:.3g}",
                     result)
    result.seconds = time.perf_counter() - start
    return result


def sweep_job(depths: Sequence[int] = SWEEP_DEPTHS, norms: Sequence[str] = ("batch",), seeds: Sequence[int] = (0,),
              batch_size: int = 32, image_size: int = 32) -> BackgroundJob:
    """A not-yet-started depth sweep in the background (validated now, so bad input fails here)."""
    depths = check_depths(depths)
    random_batch(batch_size, image_size, 10)  # validates the sizes before a thread exists

    def work(progress: Progress, stop: threading.Event) -> SweepResult:
        return depth_sweep(depths, norms, seeds, batch_size, image_size, progress, stop)

    return BackgroundJob(work, "depth sweep")
