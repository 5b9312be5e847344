"""Residual blocks and shortcuts.

Every ReLU is its own module and none is in-place: captum's Guided Grad-CAM and
DeepLift hook each ReLU module, and an in-place ReLU (or one module reused) breaks
those hooks. The addition y = F(x) + x is in place in the post-activation blocks, as
in torchvision: it writes into the last BN's output, which nothing reads later (BN's
backward needs its input, and attribution targets are stages, blocks and convs); this
saves one activation-sized allocation per block (about 3% of resnet50's training step
on CPU). Pre-activation blocks end in a conv, a Grad-CAM target, so they add out of place.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .config import ResNetConfig


def conv3x3(in_ch: int, out_ch: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=bias)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=bias)


def make_norm(cfg: ResNetConfig, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if cfg.norm == "batch" else nn.Identity()


class PadShortcut(nn.Module):
    """Option A: identity with strided subsampling and zero-padded extra channels (no parameters)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, avg_down: bool = False):
        super().__init__()
        self.in_ch, self.out_ch, self.stride, self.avg_down = in_ch, out_ch, stride, avg_down

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            if self.avg_down:
                x = F.avg_pool2d(x, self.stride, self.stride, ceil_mode=True, count_include_pad=False)
            else:
                x = x[:, :, :: self.stride, :: self.stride]
        if self.out_ch > self.in_ch:
            x = F.pad(x, (0, 0, 0, 0, 0, self.out_ch - self.in_ch))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_ch}->{self.out_ch}, stride={self.stride}"


def make_shortcut(cfg: ResNetConfig, in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    """The shortcut branch of one block, or None for a bare identity.

    Returns None for plain nets too: a plain net has no shortcut to project.
    """
    shape_changes = stride != 1 or in_ch != out_ch
    if not cfg.residual or (cfg.shortcut != "C" and not shape_changes):
        return None
    if cfg.shortcut == "A":
        if out_ch < in_ch:
            # Zero-padding cannot shrink channels; fall back to a projection where it must.
            return _projection(cfg, in_ch, out_ch, stride)
        return PadShortcut(in_ch, out_ch, stride, cfg.avg_down)
    return _projection(cfg, in_ch, out_ch, stride)


def _projection(cfg: ResNetConfig, in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    bias = cfg.norm == "none"
    # Pre-activation blocks normalise before the convs, so their projection is a bare conv.
    norm = [] if cfg.preact else [make_norm(cfg, out_ch)]
    if cfg.avg_down and stride > 1:
        pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
        return nn.Sequential(pool, conv1x1(in_ch, out_ch, bias=bias), *norm)
    return nn.Sequential(conv1x1(in_ch, out_ch, stride, bias=bias), *norm)


def _add(out: Tensor, shortcut: Tensor, inplace: bool) -> Tensor:
    if inplace:
        out += shortcut
        return out
    return out + shortcut


class BasicBlock(nn.Module):
    """Two 3x3 convs; the stride sits in the first. y = relu(F(x) + shortcut(x))."""

    def __init__(self, cfg: ResNetConfig, in_ch: int, width: int, stride: int):
        super().__init__()
        out_ch = width
        bias = cfg.norm == "none"
        self.residual = cfg.residual
        # Without BN the last module is an Identity and `out` is conv2's own output: add out of place.
        self.add_inplace = cfg.norm == "batch"
        self.conv1 = conv3x3(in_ch, width, stride, bias)
        self.bn1 = make_norm(cfg, width)
        self.relu1 = nn.ReLU()
        self.conv2 = conv3x3(width, out_ch, 1, bias)
        self.bn2 = make_norm(cfg, out_ch)
        self.downsample = make_shortcut(cfg, in_ch, out_ch, stride)
        self.relu2 = nn.ReLU()

    @property
    def last_bn(self) -> nn.Module:
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = _add(out, x if self.downsample is None else self.downsample(x), self.add_inplace)
        return self.relu2(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4). v1.5 strides in the 3x3, v1 in the first 1x1."""

    expansion = 4

    def __init__(self, cfg: ResNetConfig, in_ch: int, width: int, stride: int):
        super().__init__()
        out_ch = width * self.expansion
        bias = cfg.norm == "none"
        stride_1x1, stride_3x3 = (stride, 1) if cfg.stride_placement == "v1" else (1, stride)
        self.residual = cfg.residual
        self.add_inplace = cfg.norm == "batch"
        self.conv1 = conv1x1(in_ch, width, stride_1x1, bias)
        self.bn1 = make_norm(cfg, width)
        self.relu1 = nn.ReLU()
        self.conv2 = conv3x3(width, width, stride_3x3, bias)
        self.bn2 = make_norm(cfg, width)
        self.relu2 = nn.ReLU()
        self.conv3 = conv1x1(width, out_ch, 1, bias)
        self.bn3 = make_norm(cfg, out_ch)
        self.downsample = make_shortcut(cfg, in_ch, out_ch, stride)
        self.relu3 = nn.ReLU()

    @property
    def last_bn(self) -> nn.Module:
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = _add(out, x if self.downsample is None else self.downsample(x), self.add_inplace)
        return self.relu3(out)


class PreActBasicBlock(nn.Module):
    """ResNet v2: BN-ReLU-conv twice, y = F(x) + shortcut(x) with nothing after the addition."""

    def __init__(self, cfg: ResNetConfig, in_ch: int, width: int, stride: int):
        super().__init__()
        out_ch = width
        bias = cfg.norm == "none"
        self.residual = cfg.residual
        self.bn1 = make_norm(cfg, in_ch)
        self.relu1 = nn.ReLU()
        self.conv1 = conv3x3(in_ch, width, stride, bias)
        self.bn2 = make_norm(cfg, width)
        self.relu2 = nn.ReLU()
        self.conv2 = conv3x3(width, out_ch, 1, bias)
        self.downsample = make_shortcut(cfg, in_ch, out_ch, stride)

    @property
    def last_bn(self) -> nn.Module:
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu1(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.relu2(self.bn2(out)))
        if self.residual:
            # A projection reads the pre-activated input (He et al. 2016); identity reads x.
            out = out + (x if self.downsample is None else self.downsample(pre))
        return out


class PreActBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cfg: ResNetConfig, in_ch: int, width: int, stride: int):
        super().__init__()
        out_ch = width * self.expansion
        bias = cfg.norm == "none"
        stride_1x1, stride_3x3 = (stride, 1) if cfg.stride_placement == "v1" else (1, stride)
        self.residual = cfg.residual
        self.bn1 = make_norm(cfg, in_ch)
        self.relu1 = nn.ReLU()
        self.conv1 = conv1x1(in_ch, width, stride_1x1, bias)
        self.bn2 = make_norm(cfg, width)
        self.relu2 = nn.ReLU()
        self.conv2 = conv3x3(width, width, stride_3x3, bias)
        self.bn3 = make_norm(cfg, width)
        self.relu3 = nn.ReLU()
        self.conv3 = conv1x1(width, out_ch, 1, bias)
        self.downsample = make_shortcut(cfg, in_ch, out_ch, stride)

    @property
    def last_bn(self) -> nn.Module:
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu1(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.relu2(self.bn2(out)))
        out = self.conv3(self.relu3(self.bn3(out)))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(pre))
        return out


def block_class(cfg: ResNetConfig) -> type[nn.Module]:
    if cfg.preact:
        return PreActBottleneck if cfg.block == "bottleneck" else PreActBasicBlock
    return Bottleneck if cfg.block == "bottleneck" else BasicBlock


BLOCK_CLASSES = (BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck)


def is_block(module: nn.Module) -> bool:
    return isinstance(module, BLOCK_CLASSES)


__all__ = ["BasicBlock", "Bottleneck", "PreActBasicBlock", "PreActBottleneck", "PadShortcut",
           "block_class", "is_block", "conv1x1", "conv3x3"]
