"""Which precision and memory layout a run trains in: bf16 autocast and channels-last where they are faster.

On CUDA both are on (tensor cores, cuDNN's NHWC kernels). On a CPU the answer depends on the chip and on the
run's model, batch and image size (measured on a 2-core Xeon with AMX: bf16 + channels-last 2.6x fp32 for a
ResNet-20 at batch 64, but bf16 slower than fp32 at batch 32), so it is decided by measurement: a few training
steps of the run's own model at its own batch shape in each candidate, taking turns, the fastest kept when it beats
fp32 by MARGIN. bf16 is a candidate only where the CPU computes it natively (AVX512-BF16 or AMX, as oneDNN reports);
elsewhere (AVX2-only chips, Apple silicon's CPU) a run trains in fp32 as it always did. Forced values (--bf16,
--no-channels-last, ...) are kept; the choice and why are written to the run's config.json and its first event.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..model.config import ResNetConfig
from ..model.model import build_model

NO_BF16_ENV = "RESNET_EXPLORER_NO_CPU_BF16"  # set: behave as on a CPU without bf16 (tests, comparisons)
MARGIN = 1.08  # a candidate must be this much faster than fp32 to be chosen (the probe's noise is a few %)
PROBE_STEPS = 3  # timed steps per candidate, after one warm-up step
# A step shorter than this (a small model) is left in fp32 NCHW: timing noise on a shared CPU is larger than any gain
# there, and a whole run of such steps gains seconds at most (measured under load: the tests' tiny net, 1-24 ms a
# step, chose channels-last in one run of fifteen, and the same seed then trained to other numbers).
SHORTEST_STEP_S = 0.03


@dataclass(frozen=True)
class Precision:
    bf16: bool
    channels_last: bool
    why: str

    def describe(self) -> str:
        return f"{'bf16 autocast' if self.bf16 else 'fp32'}, {'channels-last' if self.channels_last else 'NCHW'}"

    def to_dict(self) -> dict:
        return asdict(self)


def cpu_bf16_supported() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's own check: AVX512-BF16 or AMX)."""
    if os.environ.get(NO_BF16_ENV):
        return False
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class _Probe:
    """One candidate's copy of the run's model, ready to time a training step (forward, backward, SGD) of its
    own batch shape in its own precision and layout."""

    def __init__(self, model: nn.Module, batch: int, size: int, bf16: bool, channels_last: bool):
        # A fresh model of the same config: the run's own may carry hooks (block-gradient recorders) that hold
        # locks, and the probe must not touch its weights or its BatchNorm statistics anyway.
        config = getattr(model, "config", None)
        probe = (build_model(config) if isinstance(config, ResNetConfig) else copy.deepcopy(model)).train()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model, self.bf16 = probe.to(memory_format=fmt), bf16
        self.opt = torch.optim.SGD(probe.parameters(), lr=1e-3, momentum=0.9)
        gen = torch.Generator().manual_seed(0)
        channels = getattr(getattr(probe, "config", None), "in_channels", 3)
        self.x = torch.randn(batch, channels, size, size, generator=gen).contiguous(memory_format=fmt)
        outputs = probe(self.x[:2] if batch > 2 else self.x).shape[-1]
        self.y = torch.randint(0, outputs, (batch,), generator=gen)

    def step_seconds(self) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(self.x)
        loss = F.cross_entropy(logits.float(), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - start


def _step_seconds(model: nn.Module, batch: int, size: int,
                  candidates: list[tuple[bool, bool]]) -> dict[tuple[bool, bool], list[float]]:
    """Each candidate's PROBE_STEPS training step times, after one warm-up step each. The candidates take
    turns step by step, so a burst of load from another process slows all of them rather than one (measured
    before: timed one after the other on a loaded machine, channels-last was "1.08x faster" in one run in three
    and the same seed trained in another layout)."""
    probes = {cand: _Probe(model, batch, size, *cand) for cand in candidates}
    times: dict[tuple[bool, bool], list[float]] = {cand: [] for cand in candidates}
    for step in range(PROBE_STEPS + 1):
        for cand, probe in probes.items():
            took = probe.step_seconds()
            if step:
                times[cand].append(took)
    return times


def choose_precision(model: nn.Module, device: torch.device, batch: int, image_size: int,
                     bf16: bool | None = None, channels_last: bool | None = None) -> Precision:
    """The run's precision and layout: forced values kept, CUDA on, a CPU measured (see the module docstring)."""
    if bf16 is not None and channels_last is not None:
        return Precision(bf16, channels_last, "chosen by the run's settings")
    if device.type == "cuda":
        return Precision(True if bf16 is None else bf16, True if channels_last is None else channels_last,
                         "on CUDA: tensor cores and NHWC kernels")
    if device.type != "cpu":
        return Precision(bool(bf16), bool(channels_last), f"on {device.type}: fp32 unless asked")
    bf16_choices = [bf16] if bf16 is not None else ([False, True] if cpu_bf16_supported() else [False])
    layout_choices = [channels_last] if channels_last is not None else [False, True]
    candidates = [(b, c) for b in bf16_choices for c in layout_choices]
    if len(candidates) == 1:
        b, c = candidates[0]
        return Precision(b, c, "the only choice here (this CPU has no native bf16)" if not cpu_bf16_supported()
                         else "chosen by the run's settings")
    try:
        timed = _step_seconds(model, batch, image_size, candidates)
    except (RuntimeError, ValueError, TypeError) as exc:  # a model the probe cannot copy or feed: the default
        return Precision(bool(bf16), bool(channels_last), f"not measured ({type(exc).__name__})")
    fastest = {cand: min(t) for cand, t in timed.items()}
    typical = {cand: sorted(t)[len(t) // 2] for cand, t in timed.items()}
    base, native = candidates[0], "" if cpu_bf16_supported() or bf16 is not None else "; this CPU has no native bf16"
    if fastest[base] < SHORTEST_STEP_S:
        return Precision(*base, f"steps of {1e3 * fastest[base]:.1f} ms are too short for a layout to matter or to "
                                f"be measured apart on a shared CPU{native}")
    best = min(fastest, key=fastest.get)
    # Faster in its best step and in its median step alike: one lucky step under load decides nothing.
    if best != base and min(fastest[base] / fastest[best], typical[base] / typical[best]) >= MARGIN:
        words = ", ".join(f"{Precision(b, c, '').describe()} {1e3 * t:.0f} ms" for (b, c), t in fastest.items())
        return Precision(*best, f"measured {fastest[base] / fastest[best]:.2f}x faster per step here ({words})")
    return Precision(*base, f"nothing measured faster than it by {MARGIN:.2f}x{native}")


__all__ = ["MARGIN", "NO_BF16_ENV", "SHORTEST_STEP_S", "Precision", "choose_precision", "cpu_bf16_supported"]
