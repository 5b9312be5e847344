"""Export a model to ONNX (for Netron, or any ONNX runtime)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..device import device_of


class ExportError(RuntimeError):
    """The model could not be exported; the message says why."""


def export_onnx(model: nn.Module, input_shape: tuple[int, int, int], path: str | Path | None = None) -> bytes:
    """Export `model` in eval mode for inputs of `input_shape` (C, H, W) with a dynamic batch axis.

    Returns the ONNX file's bytes (and writes them to `path` if given). The model's
    train/eval mode is restored afterwards.
    """
    was_training = model.training
    example = torch.zeros(1, *input_shape, device=device_of(model))
    batch = torch.export.Dim("batch", min=1, max=4096)
    # The exporter narrates every pass at INFO level; the page only needs errors.
    logging.getLogger("torch.onnx").setLevel(logging.WARNING)
    try:
        model.eval()
        program = torch.onnx.export(
            model, (example,), dynamo=True, input_names=["image"], output_names=["logits"],
            dynamic_shapes=({0: batch},), verbose=False,
        )
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "model.onnx"
            program.save(str(out))
            data = out.read_bytes()
    except Exception as exc:  # the exporter raises many types; the page needs one message
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"ONNX export failed: {first}") from exc
    finally:
        model.train(was_training)
    if path is not None:
        Path(path).write_bytes(data)
    return data


__all__ = ["export_onnx", "ExportError"]
