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

from ..validation import is_int, is_number
from .config import MAX_CLASSES, ConfigError, ResNetConfig, max_params


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


# torch.save stores its records uncompressed, so what a file declares it holds is about its own size.
# More than this many times the file's size (plus a little) is a compressed bomb, refused before inflating.
MAX_INFLATION = 2
INFLATION_SLACK = 1 << 20


def max_checkpoint_bytes() -> int:
    """The most a checkpoint may declare in all: twice the float32 weights of the largest model allowed."""
    return 8 * max_params()


def _declared_bytes(stream: BinaryIO, file_size: int) -> None:
    """Read the zip's central directory and refuse a file whose records would inflate past the limits."""
    try:
        with zipfile.ZipFile(stream) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(f"not a readable PyTorch checkpoint (.pt/.pth saved with torch.save): {exc}") from None
    finally:
        stream.seek(0)
    declared = sum(r.file_size for r in records)
    limit = min(max_checkpoint_bytes(), MAX_INFLATION * file_size + INFLATION_SLACK)
    if declared > limit:
        compressed = sum(r.compress_size for r in records)
        raise CheckpointError(
            f"the file is {_mib(file_size)} but its {len(records)} records declare {_mib(declared)} once "
            f"unpacked ({_mib(compressed)} compressed); a checkpoint written by torch.save is not compressed, "
            f"so it was refused before anything was unpacked (the limit here is {_mib(limit)})")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def load_checkpoint(source: str | Path | bytes | BinaryIO) -> Checkpoint:
    """Read a checkpoint or bare state_dict safely (weights_only=True, mapped to CPU).

    What the file declares is checked before anything is unpacked (records' sizes against the file's
    own), and every field (config, classes, preprocess) is validated like any outside input.
    """
    if isinstance(source, (str, Path)):
        try:
            source = io.BytesIO(Path(source).read_bytes())
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint file at {source}") from None
        except OSError as exc:
            raise CheckpointError(f"the checkpoint file could not be read: {exc.strerror or exc}") from None
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    head = source.read(2)
    source.seek(0, io.SEEK_END)
    size = source.tell()
    source.seek(0)
    if size == 0:
        raise CheckpointError("the checkpoint file is empty (0 bytes)")
    if head[:1] == b"\x80":
        # The pre-1.6 format is one pickle stream whose storages are allocated at their declared size while
        # it is read, so nothing can be checked first.
        raise CheckpointError("the file is in the legacy format of PyTorch before 1.6, which cannot be checked "
                              "before loading; load it in PyTorch and save it again with torch.save")
    if head != b"PK":
        raise CheckpointError("not a PyTorch checkpoint: a .pt/.pth file saved with torch.save was expected")
    _declared_bytes(source, size)
    try:
        obj = torch.load(source, map_location="cpu", weights_only=True)
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
        extra = obj.get("extra") or {}
        if not isinstance(extra, dict):
            raise CheckpointError(f"the checkpoint's extra: expected a dict, found a {type(extra).__name__}")
        return Checkpoint(_tensors_only(state_dict), config, _classes(obj.get("classes")),
                          _preprocess(obj.get("preprocess")), extra)
    return Checkpoint(_tensors_only(obj))


def _classes(value: Any) -> list[str] | None:
    if value is None:
        return None
    ok = isinstance(value, (list, tuple)) and len(value) <= MAX_CLASSES and all(isinstance(c, str) for c in value)
    if not ok:
        raise CheckpointError(f"the checkpoint's classes must be a list of names (text), at most {MAX_CLASSES:,}; "
                              f"found {_short(value)}")
    return [c[:200] for c in value]


MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024  # the input sizes a checkpoint may ask for
MAX_RESIZE = 2048
PREPROCESS_FIELDS = ("mean", "std", "image_size", "resize")


def _preprocess(value: Any) -> dict[str, Any] | None:
    """The checkpoint's "preprocess" entry checked like any outside input: types, lengths and ranges."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CheckpointError(f"the checkpoint's preprocess must be a dict of {list(PREPROCESS_FIELDS)}; "
                              f"found {_short(value)}")
    unknown = [k for k in value if k not in PREPROCESS_FIELDS]
    if unknown:
        raise CheckpointError(f"the checkpoint's preprocess has unknown field(s) {_short(unknown)}; allowed are "
                              f"{list(PREPROCESS_FIELDS)}")
    for name, low in (("mean", -10.0), ("std", 1e-6)):
        if name in value:
            v = value[name]
            ok = isinstance(v, (list, tuple)) and len(v) in (1, 3) and all(is_number(x) and low <= x <= 10 for x in v)
            if not ok:
                raise CheckpointError(f"the checkpoint's preprocess {name} must be a list of 1 or 3 numbers in "
                                      f"[{low:g}, 10] (one per colour channel); found {_short(v)}")
    size = value.get("image_size")
    if size is not None and not (is_int(size) and MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE):
        raise CheckpointError(f"the checkpoint's preprocess image_size must be a whole number of pixels from "
                              f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}; found {_short(size)}")
    resize = value.get("resize")
    low = size if is_int(size) else MIN_IMAGE_SIZE
    if resize is not None and not (is_int(resize) and low <= resize <= MAX_RESIZE):
        raise CheckpointError(f"the checkpoint's preprocess resize must be a whole number of pixels from {low} to "
                              f"{MAX_RESIZE} (the shorter side before the centre crop); found {_short(resize)}")
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in value.items()}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _tensors_only(state_dict: dict) -> dict[str, Tensor]:
    bad = [k for k, v in state_dict.items() if not isinstance(v, Tensor)]
    if bad or not state_dict:
        what = f"entries that are not tensors: {bad[:5]}" if bad else "no tensors at all"
        raise CheckpointError(f"the file is not a state_dict: it has {what}")
    return {str(k): v for k, v in state_dict.items()}


__all__ = ["Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint", "atomic_write_bytes",
           "max_checkpoint_bytes", "MAX_IMAGE_SIZE", "MIN_IMAGE_SIZE"]
