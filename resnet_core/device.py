"""Which accelerator this machine has, in words a lecturer can read out."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda", "mps" or "cpu"
    name: str
    detail: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.detail})"


def best_device() -> str:
    """CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def device_of(model: torch.nn.Module) -> torch.device:
    """Where a model's parameters live (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def describe_device() -> DeviceInfo:
    kind = best_device()
    if kind == "cuda":
        props = torch.cuda.get_device_properties(0)
        return DeviceInfo("cuda", props.name, f"CUDA, {props.total_memory / 2**30:.1f} GiB memory")
    if kind == "mps":
        return DeviceInfo("mps", "Apple GPU", "Metal Performance Shaders")
    threads = torch.get_num_threads()
    return DeviceInfo("cpu", "CPU", f"{threads} torch threads on {os.cpu_count()} logical cores")
