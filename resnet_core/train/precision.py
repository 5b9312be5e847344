"""Which precision and memory layout a run trains in: bf16 autocast and channels-last where they are faster.

On CUDA both are on (tensor cores, cuDNN's NHWC kernels). On a CPU the answer depends on the chip and on the
run's model, batch and image size (measured on a 2-core Xeon with AMX: bf16 + channels-last 2.6x fp32 for a
ResNet-20 at batch 64, but bf16 slower than fp32 at batch 32), so it is decided by measurement: a few training
steps of the run's own model at its own batch shape in each candidate, the fastest kept when it beats fp32 by
MARGIN. bf16 is a candidate only where the CPU computes it natively (AVX512-BF16 or AMX, as oneDNN reports);
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


def _step_seconds(model: nn.Module, batch: int, size: int, bf16: bool, channels_last: bool) -> float:
    """The median time of PROBE_STEPS training steps (forward, backward, SGD) of a copy of `model`."""
    # A fresh model of the same config: the run's own may carry hooks (block-gradient recorders) that hold locks,
    # and the probe must not touch its weights or its BatchNorm statistics anyway.
    config = getattr(model, "config", None)
    probe = (build_model(config) if isinstance(config, ResNetConfig) else copy.deepcopy(model)).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    probe = probe.to(memory_format=fmt)
    opt = torch.optim.SGD(probe.parameters(), lr=1e-3, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    channels = getattr(getattr(probe, "config", None), "in_channels", 3)
    x = torch.randn(batch, channels, size, size, generator=gen).contiguous(memory_format=fmt)
    outputs = probe(x[:2] if batch > 2 else x).shape[-1]
    y = torch.randint(0, outputs, (batch,), generator=gen)
    times = []
    for step in range(PROBE_STEPS + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = probe(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


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
        timed = {cand: _step_seconds(model, batch, image_size, *cand) for cand in candidates}
    except (RuntimeError, ValueError, TypeError) as exc:  # a model the probe cannot copy or feed: the default
        return Precision(bool(bf16), bool(channels_last), f"not measured ({type(exc).__name__})")
    base = timed[candidates[0]]
    best = min(timed, key=timed.get)
    if best != candidates[0] and base / timed[best] >= MARGIN:
        words = ", ".join(f"{Precision(b, c, '').describe()} {1e3 * t:.0f} ms" for (b, c), t in timed.items())
        return Precision(*best, f"measured {base / timed[best]:.2f}x faster per step here ({words})")
    native = "" if cpu_bf16_supported() or bf16 is not None else "; this CPU has no native bf16"
    return Precision(*candidates[0], f"nothing measured faster than it by {MARGIN:.2f}x{native}")


__all__ = ["MARGIN", "NO_BF16_ENV", "Precision", "choose_precision", "cpu_bf16_supported"]
