"""Checkpoint files: one format for runs, uploads and the command line.

A checkpoint is a dict of plain data and tensors, so `torch.load(weights_only=True)`
reads it without unpickling arbitrary objects:
    {"state_dict": {...}, "config": ResNetConfig.to_dict(), "classes": [...],
     "preprocess": {"mean": [...], "std": [...], "image_size": int}, "extra": {...}}
A bare state_dict (torchvision's .pth files) loads too, with config/classes unknown.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import Tensor, nn

from .config import ConfigError, ResNetConfig


class CheckpointError(ValueError):
    """A checkpoint file could not be read or does not describe a model."""


@dataclass
class Checkpoint:
    state_dict: dict[str, Tensor]
    config: ResNetConfig | None = None
    classes: list[str] | None = None
    preprocess: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    classes: list[str] | None = None,
    preprocess: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    config = getattr(model, "config", None)
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config.to_dict() if isinstance(config, ResNetConfig) else None,
        "classes": list(classes) if classes is not None else None,
        "preprocess": preprocess,
        "extra": extra or {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def load_checkpoint(source: str | Path | bytes | BinaryIO) -> Checkpoint:
    """Read a checkpoint or bare state_dict safely (weights_only=True, mapped to CPU)."""
    if isinstance(source, bytes):
        if not source:
            raise CheckpointError("the checkpoint file is empty (0 bytes)")
        # torch.save writes a zip archive (or, in old versions, a pickle stream starting with 0x80).
        if not (source.startswith(b"PK") or source.startswith(b"\x80")):
            raise CheckpointError("not a PyTorch checkpoint: a .pt/.pth file saved with torch.save was expected")
        source = io.BytesIO(source)
    try:
        obj = torch.load(source, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint file at {source}") from None
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            "the file holds Python objects that are not plain weights, so it was not loaded "
            f"(only tensors and plain data are read, for safety): {str(exc).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(
            f"not a readable PyTorch checkpoint (.pt/.pth saved with torch.save): {str(exc).splitlines()[0]}"
        ) from None
    return _from_object(obj)


def _from_object(obj: Any) -> Checkpoint:
    if not isinstance(obj, dict):
        raise CheckpointError(f"expected a dict of weights, found a {type(obj).__name__}")
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        state_dict = obj["state_dict"]
        config = None
        if obj.get("config") is not None:
            try:
                config = ResNetConfig.from_dict(obj["config"])
            except (ConfigError, TypeError) as exc:
                raise CheckpointError(f"the checkpoint's config is not valid: {exc}") from None
        return Checkpoint(_tensors_only(state_dict), config, obj.get("classes"), obj.get("preprocess"),
                          obj.get("extra") or {})
    return Checkpoint(_tensors_only(obj))


def _tensors_only(state_dict: dict) -> dict[str, Tensor]:
    bad = [k for k, v in state_dict.items() if not isinstance(v, Tensor)]
    if bad or not state_dict:
        what = f"entries that are not tensors: {bad[:5]}" if bad else "no tensors at all"
        raise CheckpointError(f"the file is not a state_dict: it has {what}")
    return {str(k): v for k, v in state_dict.items()}


__all__ = ["Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint", "atomic_write_bytes"]
