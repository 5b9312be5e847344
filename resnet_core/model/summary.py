"""Per-layer summary from a real forward pass: output shapes, parameters, MACs.

MACs count multiply-accumulates of convolutions and linear layers, the convention
behind torchvision's published GFLOPS (resnet50: 4.089 at 224x224).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..device import device_of
from .blocks import PadShortcut, is_block


@dataclass(frozen=True)
class LayerRow:
    path: str
    type: str
    output_shape: tuple[int, ...]  # without the batch dimension
    params: int
    macs: int


@dataclass(frozen=True)
class BlockRow:
    path: str
    stage: int  # 0-based stage index
    index: int  # block index within its stage
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    shortcut: str  # "identity", "zero-pad", "projection" or "none" (plain)
    params: int
    macs: int


@dataclass
class ModelSummary:
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    rows: list[LayerRow]
    blocks: list[BlockRow]
    total_params: int
    trainable_params: int
    total_macs: int
    activation_elements: int  # per sample, summed over every layer's output
    extras: dict = field(default_factory=dict)

    def activation_bytes(self, batch_size: int, bytes_per_element: int = 4) -> int:
        """Rough training-time activation memory: every layer output kept for backward."""
        return self.activation_elements * batch_size * bytes_per_element

    def records(self) -> list[dict]:
        """Rows as plain dicts, for a table."""
        return [
            {"layer": r.path, "type": r.type, "output shape": "x".join(map(str, r.output_shape)),
             "parameters": r.params, "MACs": r.macs}
            for r in self.rows
        ]


def _macs(module: nn.Module, output: torch.Tensor) -> int:
    per_sample_out = output[0].numel()
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return per_sample_out * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return per_sample_out * module.in_features
    return 0


def _shortcut_kind(block: nn.Module) -> str:
    if not getattr(block, "residual", True):
        return "none"
    if block.downsample is None:
        return "identity"
    return "zero-pad" if isinstance(block.downsample, PadShortcut) else "projection"


def _own_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def summarize(model: nn.Module, input_shape: tuple[int, ...] = (3, 224, 224)) -> ModelSummary:
    """Run one sample through `model` (eval mode, no grad) and tabulate every leaf layer.

    `input_shape` is (C, H, W) or (N, C, H, W); figures are per sample.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"input_shape: {input_shape!r} must be (C, H, W) with positive sizes")
    rows: list[LayerRow] = []
    block_io: dict[str, tuple] = {}
    handles = []
    names = {m: n for n, m in model.named_modules()}

    def leaf_hook(module, _inputs, output):
        rows.append(LayerRow(names[module], type(module).__name__, tuple(output.shape[1:]),
                             _own_params(module), _macs(module, output)))

    def block_hook(module, inputs, output):
        block_io[names[module]] = (tuple(inputs[0].shape[1:]), tuple(output.shape[1:]))

    for module in model.modules():
        if is_block(module):
            handles.append(module.register_forward_hook(block_hook))
        elif not any(True for _ in module.children()):
            handles.append(module.register_forward_hook(leaf_hook))
    was_training = model.training
    device = device_of(model)
    try:
        model.eval()
        with torch.inference_mode():
            out = model(torch.zeros(shape, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    macs_by_path = {r.path: r.macs for r in rows}
    blocks = []
    stage_index = {name: i for i, name in enumerate(getattr(model, "stage_names", []))}
    for path, (in_shape, out_shape) in block_io.items():
        block = model.get_submodule(path)
        stage_name, index = path.rsplit(".", 1)
        macs = sum(m for p, m in macs_by_path.items() if p.startswith(path + "."))
        blocks.append(BlockRow(path, stage_index.get(stage_name, 0), int(index), in_shape, out_shape,
                               _shortcut_kind(block), _own_params(block), macs))
    params = list(model.parameters())
    return ModelSummary(
        input_shape=shape[1:], output_shape=tuple(out.shape[1:]), rows=rows, blocks=blocks,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_macs=sum(r.macs for r in rows),
        activation_elements=sum(_numel(r.output_shape) for r in rows),
    )


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def format_count(n: float) -> str:
    """11689512 -> '11.69 M' (the unit a reader expects for parameters and MACs)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f}"


def format_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """floor((in - kernel + 2*padding) / stride) + 1, the formula the Build page shows."""
    return (size - kernel + 2 * padding) // stride + 1


__all__ = ["summarize", "ModelSummary", "LayerRow", "BlockRow", "conv_output_size", "format_count", "format_bytes"]
