"""ResNetConfig: every architectural choice in one frozen dataclass, plus the presets.

A config is plain data (JSON round-trips through `to_dict`/`from_dict`) and is
validated on construction, so a bad value fails here with a message naming the
field, the value and what is allowed, never later as a torch shape error.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, fields
from typing import Any, Literal

from .. import json_limits
from ..validation import dataclass_from_dict, need, need_bool, need_choice, need_int

BlockType = Literal["basic", "bottleneck"]
StemType = Literal["imagenet", "cifar", "deep"]
ShortcutType = Literal["A", "B", "C"]
StridePlacement = Literal["v1", "v1.5"]
NormType = Literal["batch", "none"]

BLOCK_TYPES = ("basic", "bottleneck")
STEM_TYPES = ("imagenet", "cifar", "deep")
SHORTCUT_TYPES = ("A", "B", "C")
STRIDE_PLACEMENTS = ("v1", "v1.5")
NORM_TYPES = ("batch", "none")

# Output channels of a block relative to its stage width (torchvision's `expansion`).
EXPANSION = {"basic": 1, "bottleneck": 4}

SHORTCUT_MEANING = {
    "A": "identity; zero-padded channels and strided subsampling where the shape changes (no parameters)",
    "B": "identity; 1x1 projection only where the shape changes",
    "C": "1x1 projection in every block",
}


class ConfigError(ValueError):
    """A ResNetConfig field holds a value the builder cannot use."""


@dataclass(frozen=True)
class ResNetConfig:
    """A ResNet (or its plain twin) described completely.

    Attributes:
        block: "basic" (two 3x3 convs) or "bottleneck" (1x1, 3x3, 1x1; expansion 4).
        stage_blocks: number of blocks in each stage; any number of stages.
        stage_widths: base channel width of each stage (the block output is
            width * expansion); same length as `stage_blocks`.
        stem: "imagenet" (7x7/2 conv + 3x3/2 max-pool), "cifar" (3x3/1 conv),
            or "deep" (three 3x3 convs + max-pool, ResNet-C).
        stem_width: output channels of the stem.
        shortcut: "A" parameter-free identity with zero-padded channels,
            "B" projection only where the shape changes, "C" projection everywhere.
        stride_placement: where a bottleneck downsamples: "v1" in the first 1x1,
            "v1.5" in the 3x3 (torchvision). Basic blocks always stride in the first 3x3.
        avg_down: ResNet-D: downsample the shortcut with a 2x2 average pool
            instead of a strided 1x1 convolution / subsampling.
        residual: False builds the plain twin: the same layers without the addition
            (and without projection shortcuts, which a plain net does not have).
        preact: pre-activation blocks (ResNet v2): BN-ReLU-conv, nothing after the addition.
        norm: "batch" (BatchNorm2d) or "none" (convolutions then get a bias).
        zero_init_residual: initialise the last BN gamma of each block to zero, so
            every residual branch starts as the zero function.
        width_multiplier: scales every stage width (Wide ResNet's k); the stem is not scaled.
        num_classes: outputs of the final linear layer.
        in_channels: channels of the input image.
    """

    block: BlockType = "basic"
    stage_blocks: tuple[int, ...] = (2, 2, 2, 2)
    stage_widths: tuple[int, ...] = (64, 128, 256, 512)
    stem: StemType = "imagenet"
    stem_width: int = 64
    shortcut: ShortcutType = "B"
    stride_placement: StridePlacement = "v1.5"
    avg_down: bool = False
    residual: bool = True
    preact: bool = False
    norm: NormType = "batch"
    zero_init_residual: bool = False
    width_multiplier: float = 1.0
    num_classes: int = 1000
    in_channels: int = 3

    def __post_init__(self) -> None:
        # Lists from JSON or widgets become tuples so configs stay hashable.
        for name in ("stage_blocks", "stage_widths"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        validate(self)

    @property
    def expansion(self) -> int:
        return EXPANSION[self.block]

    @property
    def depth(self) -> int:
        """Weighted layers counted as in the papers: convs on the main path plus the fc."""
        convs_per_block = 2 if self.block == "basic" else 3
        stem_convs = 3 if self.stem == "deep" else 1
        return stem_convs + convs_per_block * sum(self.stage_blocks) + 1

    @property
    def scaled_widths(self) -> tuple[int, ...]:
        return tuple(max(1, round(w * self.width_multiplier)) for w in self.stage_widths)

    @property
    def out_channels(self) -> tuple[int, ...]:
        """Channels leaving each stage."""
        return tuple(w * self.expansion for w in self.scaled_widths)

    def plain_twin(self) -> "ResNetConfig":
        """The same network without shortcuts (zero-init would zero the whole plain net)."""
        return dataclasses.replace(self, residual=False, zero_init_residual=False)

    def residual_twin(self) -> "ResNetConfig":
        return dataclasses.replace(self, residual=True)

    def replace(self, **changes: Any) -> "ResNetConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stage_blocks"] = list(self.stage_blocks)
        data["stage_widths"] = list(self.stage_widths)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ResNetConfig":
        return dataclass_from_dict(cls, data, ConfigError, "config")

    @classmethod
    def from_json(cls, text: str) -> "ResNetConfig":
        try:
            data = json_limits.loads(text)
        except json_limits.JSONTooDeepError as exc:
            raise ConfigError(f"config: not read: {exc}; a ResNetConfig is one flat JSON object") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_dict(data)


def _check_int_tuple(name: str, value: Any, maximum: int) -> None:
    need(isinstance(value, tuple) and bool(value), ConfigError, name, value,
         "must be a non-empty list of whole numbers (one per stage)")
    for i, item in enumerate(value):
        need_int(ConfigError, f"{name}[{i}]", item, 1, maximum)


# Bounds that keep a config buildable on a laptop; they are far above any published ResNet.
MAX_BLOCKS_PER_STAGE = 1000
MAX_WIDTH = 8192
MAX_CLASSES = 100_000
MAX_IN_CHANNELS = 1024
# Building a model costs time per layer whatever its width (about 1 s for ResNet-1202 on a 2-core CPU, 8 s for
# 6,002 layers, and every page that shows a model builds it): a link with stage_blocks=1000-1000-1000 took
# 20-38 s per page. The deepest published ResNet (He et al. 2015's ResNet-1202) is the limit.
MAX_DEPTH = 1202
# 400 MB of float32 weights: resnet152 has 60M, resnet1202 19M. A big GPU box raises it with the
# environment variable RESNET_EXPLORER_MAX_PARAMS (read on every check, so a test or a server may set it).
MAX_PARAMS = 100_000_000
MAX_PARAMS_ENV = "RESNET_EXPLORER_MAX_PARAMS"


def limit_from_env(name: str, default: float) -> float:
    """A positive number from environment variable `name`, else `default` (a bad value is ignored)."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


def max_params() -> int:
    """The parameter limit in force: MAX_PARAMS unless RESNET_EXPLORER_MAX_PARAMS says otherwise."""
    return int(limit_from_env(MAX_PARAMS_ENV, MAX_PARAMS))


def validate(cfg: ResNetConfig) -> None:
    """Raise ConfigError for the first field that cannot be built."""
    for name, allowed in (("block", BLOCK_TYPES), ("stem", STEM_TYPES), ("shortcut", SHORTCUT_TYPES),
                          ("stride_placement", STRIDE_PLACEMENTS), ("norm", NORM_TYPES)):
        need_choice(ConfigError, name, getattr(cfg, name), allowed)
    _check_int_tuple("stage_blocks", cfg.stage_blocks, MAX_BLOCKS_PER_STAGE)
    _check_int_tuple("stage_widths", cfg.stage_widths, MAX_WIDTH)
    if len(cfg.stage_blocks) != len(cfg.stage_widths):
        raise ConfigError(
            f"stage_widths: has {len(cfg.stage_widths)} entries but stage_blocks has "
            f"{len(cfg.stage_blocks)}; give one width per stage"
        )
    need_int(ConfigError, "stem_width", cfg.stem_width, 2 if cfg.stem == "deep" else 1, MAX_WIDTH)
    need_int(ConfigError, "num_classes", cfg.num_classes, 1, MAX_CLASSES)
    need_int(ConfigError, "in_channels", cfg.in_channels, 1, MAX_IN_CHANNELS)
    for name in ("avg_down", "residual", "preact", "zero_init_residual"):
        need_bool(ConfigError, name, getattr(cfg, name))
    wm = cfg.width_multiplier
    if isinstance(wm, bool) or not isinstance(wm, (int, float)) or not (0 < wm <= 16):
        raise ConfigError(f"width_multiplier: {wm!r} must be a number in (0, 16]")
    params, limit = estimate_params(cfg), max_params()
    if params > limit:
        raise ConfigError(
            f"model size: this model would have {params / 1e6:,.1f}M parameters (stem, blocks and head), more "
            f"than the {limit / 1e6:,.0f}M allowed (resnet152 has 60M); use fewer blocks, narrower stages, a "
            f"narrower stem or fewer classes (a server admin can raise the limit with {MAX_PARAMS_ENV})")
    if cfg.depth > MAX_DEPTH:
        raise ConfigError(
            f"depth: this model would have {cfg.depth:,} layers, more than the {MAX_DEPTH:,} allowed (ResNet-1202, the "
            f"deepest published ResNet; building a model takes time per layer, on every page that shows it); use "
            f"fewer blocks per stage")
    if cfg.zero_init_residual and cfg.norm == "none":
        raise ConfigError(
            "zero_init_residual: True needs norm='batch' (it zeroes the last BatchNorm gamma of each "
            "block, and norm='none' has no BatchNorm); turn one of them off"
        )
    if cfg.zero_init_residual and not cfg.residual:
        raise ConfigError(
            "zero_init_residual: True with residual=False would zero every block of the plain net "
            "(its output would not depend on the input); turn zero_init_residual off for a plain net"
        )


def _norm_params(cfg: ResNetConfig, channels: int) -> int:
    return 2 * channels if cfg.norm == "batch" else 0


def _conv_params(cfg: ResNetConfig, in_ch: int, out_ch: int, kernel: int) -> int:
    """A convolution's weights, plus its bias when there is no BatchNorm to follow it."""
    return in_ch * out_ch * kernel * kernel + (out_ch if cfg.norm == "none" else 0)


def stem_params(cfg: ResNetConfig) -> int:
    sw, bn = cfg.stem_width, (0 if cfg.preact else _norm_params(cfg, cfg.stem_width))
    if cfg.stem == "cifar":
        return _conv_params(cfg, cfg.in_channels, sw, 3) + bn
    if cfg.stem == "imagenet":
        return _conv_params(cfg, cfg.in_channels, sw, 7) + bn
    mid = sw // 2
    return (_conv_params(cfg, cfg.in_channels, mid, 3) + _norm_params(cfg, mid) + _conv_params(cfg, mid, mid, 3)
            + _norm_params(cfg, mid) + _conv_params(cfg, mid, sw, 3) + bn)


def shortcut_kind(cfg: ResNetConfig, in_ch: int, out_ch: int, stride: int) -> str:
    """"none", "pad" (option A, no parameters) or "projection": what blocks.make_shortcut builds."""
    shape_changes = stride != 1 or in_ch != out_ch
    if not cfg.residual or (cfg.shortcut != "C" and not shape_changes):
        return "none"
    return "pad" if cfg.shortcut == "A" and out_ch >= in_ch else "projection"


def block_layout(cfg: ResNetConfig) -> list[tuple[int, int, int, int]]:
    """(input channels, width, output channels, stride) of every block, input to output."""
    layout, in_ch = [], cfg.stem_width
    for i, (n, width) in enumerate(zip(cfg.stage_blocks, cfg.scaled_widths)):
        out_ch = width * cfg.expansion
        for j in range(n):
            layout.append((in_ch, width, out_ch, 2 if i > 0 and j == 0 else 1))
            in_ch = out_ch
    return layout


def block_params(cfg: ResNetConfig, in_ch: int, width: int, out_ch: int, stride: int) -> int:
    norm = _norm_params
    if cfg.block == "basic":
        convs = _conv_params(cfg, in_ch, width, 3) + _conv_params(cfg, width, out_ch, 3)
        norms = norm(cfg, in_ch) + norm(cfg, width) if cfg.preact else norm(cfg, width) + norm(cfg, out_ch)
    else:
        convs = (_conv_params(cfg, in_ch, width, 1) + _conv_params(cfg, width, width, 3)
                 + _conv_params(cfg, width, out_ch, 1))
        norms = (norm(cfg, in_ch) + 2 * norm(cfg, width) if cfg.preact
                 else 2 * norm(cfg, width) + norm(cfg, out_ch))
    projection = 0
    if shortcut_kind(cfg, in_ch, out_ch, stride) == "projection":
        projection = _conv_params(cfg, in_ch, out_ch, 1) + (0 if cfg.preact else norm(cfg, out_ch))
    return convs + norms + projection


def estimate_params(cfg: ResNetConfig) -> int:
    """The built model's parameter count (stem, blocks, shortcuts, head), from the config alone.

    Exact for every config this package builds (tests compare it with the built models); it is the
    guard that refuses huge configs before anything is allocated.
    """
    layout = block_layout(cfg)
    last = layout[-1][2] if layout else cfg.stem_width
    blocks = sum(block_params(cfg, *b) for b in layout)
    final = _norm_params(cfg, last) if cfg.preact else 0
    return stem_params(cfg) + blocks + final + last * cfg.num_classes + cfg.num_classes




def parse_int_list(name: str, text: str) -> tuple[int, ...]:
    """'3, 4, 6, 3' -> (3, 4, 6, 3); anything else is a ConfigError naming the field."""
    parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"{name}: {text!r} is empty; give whole numbers separated by commas, e.g. 2, 2, 2, 2")
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"{name}: {text!r} is not a list of whole numbers; give them separated by commas, e.g. 2, 2, 2, 2"
        ) from None


def default_image_size(cfg: ResNetConfig) -> int:
    """The input size the stem was designed for: 32 for CIFAR nets, 224 for ImageNet ones."""
    return 32 if cfg.stem == "cifar" else 224


def config_to_python(cfg: ResNetConfig) -> str:
    """A snippet that rebuilds `cfg` with the public API (only the fields that differ from the defaults)."""
    default = ResNetConfig()
    args = [f"    {f.name}={getattr(cfg, f.name)!r}," for f in fields(cfg)
            if getattr(cfg, f.name) != getattr(default, f.name)]
    preset = preset_name_of(cfg)
    size = default_image_size(cfg)
    lines = ["from resnet_core import ResNetConfig, build_model, summarize", ""]
    if preset:
        lines.append(f"# the same as get_preset({preset!r})")
    lines += ["config = ResNetConfig(", *args, ")", "model = build_model(config)",
              f"summary = summarize(model, ({cfg.in_channels}, {size}, {size}))"]
    return "\n".join(lines) + "\n"


def _cifar(depth: int, **overrides: Any) -> ResNetConfig:
    n = (depth - 2) // 6
    base = dict(
        block="basic", stage_blocks=(n, n, n), stage_widths=(16, 32, 64), stem="cifar",
        stem_width=16, shortcut="A", num_classes=10,
    )
    return ResNetConfig(**{**base, **overrides})


def _imagenet(block: str, blocks: tuple[int, ...], **overrides: Any) -> ResNetConfig:
    base = dict(block=block, stage_blocks=blocks, stage_widths=(64, 128, 256, 512), stem="imagenet",
                stem_width=64, shortcut="B", num_classes=1000)
    return ResNetConfig(**{**base, **overrides})


IMAGENET_BLOCKS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)


def _build_presets() -> dict[str, ResNetConfig]:
    presets: dict[str, ResNetConfig] = {}
    for depth, (block, blocks) in IMAGENET_BLOCKS.items():
        presets[f"resnet{depth}"] = _imagenet(block, blocks)
    for depth in CIFAR_DEPTHS:
        presets[f"resnet{depth}"] = _cifar(depth)
    for depth in (18, 34, 50, 101, 152, 20, 32, 44, 56, 110):
        presets[f"plain{depth}"] = presets[f"resnet{depth}"].plain_twin()
    presets["preact-resnet18"] = _imagenet("basic", (2, 2, 2, 2), preact=True)
    presets["preact-resnet34"] = _imagenet("basic", (3, 4, 6, 3), preact=True)
    presets["preact-resnet50"] = _imagenet("bottleneck", (3, 4, 6, 3), preact=True)
    # He et al. 2016 (Identity Mappings): CIFAR pre-activation nets with projection shortcuts.
    presets["preact-resnet20"] = _cifar(20, preact=True, shortcut="B")
    presets["preact-resnet56"] = _cifar(56, preact=True, shortcut="B")
    presets["preact-resnet110"] = _cifar(110, preact=True, shortcut="B")
    presets["preact-resnet164"] = _cifar(164, block="bottleneck", stage_blocks=(18, 18, 18), preact=True,
                                         shortcut="B")
    # Bag of Tricks (He et al. 2019) variants of ResNet-50.
    presets["resnet50-c"] = _imagenet("bottleneck", (3, 4, 6, 3), stem="deep")
    presets["resnet50-d"] = _imagenet("bottleneck", (3, 4, 6, 3), stem="deep", avg_down=True)
    return presets


PRESETS: dict[str, ResNetConfig] = _build_presets()

PRESET_NOTES = {
    "resnet18": "torchvision resnet18 (ImageNet, 11.7M parameters)",
    "resnet34": "torchvision resnet34",
    "resnet50": "torchvision resnet50 (bottleneck, stride in the 3x3: v1.5)",
    "resnet101": "torchvision resnet101",
    "resnet152": "torchvision resnet152",
    "resnet20": "He et al. 2015 CIFAR ResNet-20 (option A shortcuts), paper test error 8.75%",
    "resnet32": "He et al. 2015 CIFAR ResNet-32, paper test error 7.51%",
    "resnet44": "He et al. 2015 CIFAR ResNet-44, paper test error 7.17%",
    "resnet56": "He et al. 2015 CIFAR ResNet-56, paper test error 6.97%",
    "resnet110": "He et al. 2015 CIFAR ResNet-110, paper test error 6.43%",
    "resnet1202": "He et al. 2015 CIFAR ResNet-1202 (19.4M parameters), paper test error 7.93%",
    "resnet50-c": "ResNet-50 with the deep 3x(3x3) stem (Bag of Tricks, ResNet-C)",
    "resnet50-d": "ResNet-50-C plus average-pool shortcuts (Bag of Tricks, ResNet-D)",
}


def list_presets() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> ResNetConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"preset: {name!r} is unknown; choose one of {list(PRESETS)}") from None


def preset_note(name: str) -> str:
    if name.startswith("plain"):
        return f"plain twin of resnet{name[5:]}: the same layers without shortcuts"
    if name.startswith("preact-"):
        return f"pre-activation (ResNet v2) variant of {name[7:]}"
    return PRESET_NOTES.get(name, "")


def preset_name_of(cfg: ResNetConfig) -> str | None:
    """The preset this config equals, if any."""
    for name, preset in PRESETS.items():
        if preset == cfg:
            return name
    return None


__all__ = [
    "ResNetConfig", "ConfigError", "PRESETS", "get_preset", "list_presets", "preset_note", "preset_name_of",
    "BLOCK_TYPES", "STEM_TYPES", "SHORTCUT_TYPES", "STRIDE_PLACEMENTS", "NORM_TYPES", "SHORTCUT_MEANING",
    "estimate_params", "max_params", "limit_from_env", "block_layout", "shortcut_kind",
]
