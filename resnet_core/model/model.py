"""The ResNet itself, built from a ResNetConfig.

Module names follow torchvision (`conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.downsample.0`,
`fc`), so torchvision's ImageNet weights load with `strict=True`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from .blocks import block_class, conv3x3, is_block, make_norm
from .config import ResNetConfig


def _make_stem(cfg: ResNetConfig) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    """conv1, bn1, relu, maxpool. Pre-activation nets leave BN-ReLU to the first block."""
    bias = cfg.norm == "none"
    if cfg.stem == "cifar":
        conv = conv3x3(cfg.in_channels, cfg.stem_width, 1, bias)
        pool: nn.Module = nn.Identity()
    else:
        if cfg.stem == "imagenet":
            conv = nn.Conv2d(cfg.in_channels, cfg.stem_width, 7, stride=2, padding=3, bias=bias)
        else:  # deep stem, ResNet-C: three 3x3 convs replace the 7x7
            mid = cfg.stem_width // 2
            conv = nn.Sequential(
                conv3x3(cfg.in_channels, mid, 2, bias), make_norm(cfg, mid), nn.ReLU(),
                conv3x3(mid, mid, 1, bias), make_norm(cfg, mid), nn.ReLU(),
                conv3x3(mid, cfg.stem_width, 1, bias),
            )
        pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    if cfg.preact:
        return conv, nn.Identity(), nn.Identity(), pool
    return conv, make_norm(cfg, cfg.stem_width), nn.ReLU(), pool


class ResNet(nn.Module):
    """A residual network (or its plain twin) described by `config`."""

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        self.conv1, self.bn1, self.relu, self.maxpool = _make_stem(config)
        in_ch = config.stem_width
        self.stage_names: list[str] = []
        for i, (blocks, width) in enumerate(zip(config.stage_blocks, config.scaled_widths)):
            stride = 1 if i == 0 else 2
            stage, in_ch = self._make_layer(in_ch, width, blocks, stride)
            name = f"layer{i + 1}"
            self.add_module(name, stage)
            self.stage_names.append(name)
        self.num_features = in_ch
        # Pre-activation nets end with the BN-ReLU that no block applied after its last addition.
        self.final_bn = make_norm(config, in_ch) if config.preact else nn.Identity()
        self.final_relu = nn.ReLU() if config.preact else nn.Identity()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, config.num_classes)
        self._init_weights()

    def _make_layer(self, in_ch: int, width: int, blocks: int, stride: int) -> tuple[nn.Sequential, int]:
        block = block_class(self.config)
        expansion = self.config.expansion
        layers = []
        for j in range(blocks):
            layers.append(block(self.config, in_ch, width, stride if j == 0 else 1))
            in_ch = width * expansion
        return nn.Sequential(*layers), in_ch

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.config.zero_init_residual:
            for _, block in self.named_blocks():
                nn.init.zeros_(block.last_bn.weight)

    @property
    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, name) for name in self.stage_names]

    @property
    def first_conv(self) -> nn.Conv2d:
        """The stem's first convolution (the deep stem wraps it in a Sequential)."""
        return self.conv1[0] if isinstance(self.conv1, nn.Sequential) else self.conv1

    def named_blocks(self) -> Iterator[tuple[str, nn.Module]]:
        """Every residual (or plain) block, input to output, with its module path."""
        for name in self.stage_names:
            for j, block in enumerate(getattr(self, name)):
                yield f"{name}.{j}", block

    def forward_stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map, before pooling (what Grad-CAM looks at by default)."""
        x = self.forward_stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.final_relu(self.final_bn(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def build_model(config: ResNetConfig) -> ResNet:
    """A freshly initialised ResNet for `config` (validated when the config was made)."""
    return ResNet(config)


def build_seeded(config: ResNetConfig, seed: int = 0, num_classes: int | None = None) -> ResNet:
    """A fresh model whose initial weights depend only on `seed` (and `num_classes` outputs, when given).

    The global random state is left as it was, so one session's seeded build never changes another's draws.
    """
    if num_classes is not None and config.num_classes != num_classes:
        config = config.replace(num_classes=num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["ResNet", "build_model", "build_seeded", "count_parameters", "is_block"]
