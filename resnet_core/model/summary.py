"""Per-layer summary from a real forward pass (shapes, parameters, MACs), and cost estimates from a config alone.

MACs count multiply-accumulates of convolutions and linear layers, the convention
behind torchvision's published GFLOPS (resnet50: 4.089 at 224x224).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..device import device_of
from .blocks import PadShortcut, is_block
from .config import ConfigError, ResNetConfig, block_layout, estimate_params, limit_from_env, max_params, shortcut_kind


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


# Between a number and its unit: a no-break space, so a narrow column or a projector never shows the number on
# one line and its unit on the next (every formatter of a quantity for people uses it).
UNIT_SPACE = "\u00a0"


def format_count(n: float) -> str:
    """11689512 -> '11.69 M' (the unit a reader expects for parameters and MACs)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{UNIT_SPACE}{unit}"
    return f"{n:.0f}"


def format_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{UNIT_SPACE}{unit}"
    return f"{n:.0f}{UNIT_SPACE}B"


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """floor((in - kernel + 2*padding) / stride) + 1, the formula the Build page shows."""
    return (size - kernel + 2 * padding) // stride + 1


# ---- costs from the config alone: the guards run before any model is built ------------------------------

# 50 GMACs per image is about 25x resnet50 at 224 px (a few seconds for one forward pass on a laptop CPU);
# one feature map of 128 MiB per image (float32) keeps a forward pass well under a gigabyte.
MAX_GMACS = 50.0
MAX_GMACS_ENV = "RESNET_EXPLORER_MAX_GMACS"
MAX_FEATURE_MB = 128.0
MAX_FEATURE_MB_ENV = "RESNET_EXPLORER_MAX_FEATURE_MB"


def _down(size: int) -> int:
    """A stride-2 step (3x3 pad 1, 1x1, max-pool 3/2/1, or a ceil-mode 2x2 average pool)."""
    return (size - 1) // 2 + 1


def _stem_cost(cfg: ResNetConfig, size: int) -> tuple[int, int, int]:
    """(MACs, largest feature map in elements, output size) of the stem at `size` px."""
    c_in, sw = cfg.in_channels, cfg.stem_width
    if cfg.stem == "cifar":
        return size * size * sw * c_in * 9, size * size * sw, size
    if cfg.stem == "imagenet":
        s = conv_output_size(size, 7, 2, 3)
        return s * s * sw * c_in * 49, s * s * sw, _down(s)
    mid, s = sw // 2, _down(size)
    macs = s * s * (mid * c_in * 9 + mid * mid * 9 + sw * mid * 9)
    return macs, s * s * max(mid, sw), _down(s)


def _block_cost(cfg: ResNetConfig, in_ch: int, width: int, out_ch: int, stride: int, size: int) -> tuple[int, int, int]:
    """(MACs, largest feature map in elements, output size) of one block whose input is `size` px."""
    out = _down(size) if stride == 2 else size
    if cfg.block == "basic":
        macs = out * out * (width * in_ch * 9 + out_ch * width * 9)
        largest = out * out * max(width, out_ch)
    else:
        first = size if cfg.stride_placement == "v1.5" else out  # where the 1x1 reduction runs
        macs = first * first * width * in_ch + out * out * (width * width * 9 + out_ch * width)
        largest = max(first * first * width, out * out * out_ch)
    if shortcut_kind(cfg, in_ch, out_ch, stride) == "projection":
        macs += out * out * out_ch * in_ch
    return macs, largest, out


def estimate_costs(cfg: ResNetConfig, image_size: int) -> tuple[int, int]:
    """(MACs per image, the largest feature map in elements) at `image_size` px, without building anything.

    MACs count convolutions and the linear head, as `summarize` measures them (torchvision's convention:
    resnet18 1.814 G at 224 px); tests compare both with the built models.
    """
    macs, largest, size = _stem_cost(cfg, int(image_size))
    for block in block_layout(cfg):
        block_macs, block_largest, size = _block_cost(cfg, *block, size)
        macs, largest = macs + block_macs, max(largest, block_largest)
    last = cfg.out_channels[-1]
    return macs + last * cfg.num_classes, largest


def estimate_macs(cfg: ResNetConfig, image_size: int) -> int:
    return estimate_costs(cfg, image_size)[0]


def max_gmacs() -> float:
    return limit_from_env(MAX_GMACS_ENV, MAX_GMACS)


def max_feature_mb() -> float:
    return limit_from_env(MAX_FEATURE_MB_ENV, MAX_FEATURE_MB)


def check_cost(cfg: ResNetConfig, image_size: int) -> None:
    """Refuse (ConfigError) a model whose parameters, MACs per image or largest feature map at `image_size` px
    pass the limits; the message states the estimate, the limit and what to change. Nothing is built."""
    params, limit = estimate_params(cfg), max_params()
    if params > limit:
        raise ConfigError(f"model size: {params / 1e6:,.1f}M parameters is more than the {limit / 1e6:,.0f}M "
                          "allowed; use fewer blocks, narrower stages, a narrower stem or fewer classes")
    macs, largest = estimate_costs(cfg, image_size)
    gmacs, feature_mb = macs / 1e9, largest * 4 / 2**20
    if gmacs > max_gmacs():
        raise ConfigError(
            f"compute: at {image_size}x{image_size} px this model needs {gmacs:,.1f} GMACs per image, more than "
            f"the {max_gmacs():g} GMACs allowed (resnet50 needs 4.1 at 224 px); use a smaller image size, fewer "
            f"blocks or narrower stages (a server admin can raise the limit with {MAX_GMACS_ENV})")
    if feature_mb > max_feature_mb():
        raise ConfigError(
            f"memory: at {image_size}x{image_size} px one feature map of this model takes {feature_mb:,.0f} MiB "
            f"per image, more than the {max_feature_mb():g} MiB allowed; use a smaller image size, a narrower "
            f"stem or narrower stages (a server admin can raise the limit with {MAX_FEATURE_MB_ENV})")


__all__ = ["summarize", "estimate_costs", "estimate_macs", "check_cost", "max_gmacs", "max_feature_mb",
           "MAX_GMACS", "MAX_FEATURE_MB", "ModelSummary", "LayerRow", "BlockRow", "conv_output_size", "format_count",
           "format_bytes"]
