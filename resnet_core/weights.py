"""torchvision's ImageNet weights in our own ResNet, fine-tuning heads, and reading bare state_dicts.

Our model uses torchvision's module names, so torchvision's files load with `strict=True` into
`build_model(get_preset("resnet50"))` and the outputs match torchvision's own model exactly.
Files come from (and go into) torch hub's cache, `<TORCH_HOME>/hub/checkpoints/`, under the
name torchvision uses, so a file cached by torchvision is found here and the other way round.
Offline and not cached, loading raises WeightsUnavailableError naming the file and the folder.

Checkpoints of our own format are read by `checkpoint.py`; `infer_config_from_state_dict`
covers the bare state_dicts (torchvision's, or another tool's) that carry no config.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .config import ConfigError, ResNetConfig, get_preset
from .data import DownloadError, download_file
from .images import Preprocess, default_resize
from .model import ResNet, build_model

Progress = Callable[[float, str], None]

# torchvision architectures whose layout our presets reproduce exactly (same names and shapes).
TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights cannot be had: unknown name, or offline and not cached."""


# --------------------------------------------------------------------------------------------
# torchvision weights
# --------------------------------------------------------------------------------------------


def available_weights(arch: str) -> list[str]:
    """The torchvision ImageNet weights for `arch`, e.g. resnet50 -> [IMAGENET1K_V1, IMAGENET1K_V2].

    Empty for architectures torchvision has no weights for (the CIFAR nets, plain twins).
    """
    if arch not in TORCHVISION_ARCHS:
        return []
    from torchvision.models import get_model_weights

    return [w.name for w in get_model_weights(arch)]


def default_weights(arch: str) -> str | None:
    """The name torchvision recommends ("DEFAULT" resolves to it), or None without weights."""
    if arch not in TORCHVISION_ARCHS:
        return None
    from torchvision.models import get_model_weights

    return get_model_weights(arch)["DEFAULT"].name


def _weights_entry(arch: str, weights_name: str) -> Any:
    """torchvision's WeightsEnum member for `arch` / `weights_name` ("DEFAULT" allowed)."""
    if arch not in TORCHVISION_ARCHS:
        raise WeightsUnavailableError(
            f"no ImageNet weights exist for {arch!r}; torchvision publishes them for "
            f"{', '.join(TORCHVISION_ARCHS)}. Train {arch} from scratch instead")
    from torchvision.models import get_model_weights

    enum = get_model_weights(arch)
    try:
        return enum[weights_name]
    except KeyError:
        names = ", ".join([w.name for w in enum] + ["DEFAULT"])
        raise WeightsUnavailableError(f"{arch} has no weights named {weights_name!r}; choose one of {names}") from None


def weights_file_path(arch: str, weights_name: str = "DEFAULT") -> Path:
    """Where torch hub caches the file (honours TORCH_HOME at call time, as torch.hub does)."""
    entry = _weights_entry(arch, weights_name)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(entry.url).path)


def is_cached(arch: str, weights_name: str = "DEFAULT") -> bool:
    try:
        return weights_file_path(arch, weights_name).is_file()
    except WeightsUnavailableError:
        return False


@dataclass
class PretrainedModel:
    """Our ResNet holding torchvision's ImageNet weights, in eval mode, with what goes with them."""

    model: ResNet
    categories: list[str]
    transforms: Callable[..., Tensor]
    weights_name: str
    meta: dict[str, Any]
    arch: str = ""

    @property
    def preprocess(self) -> dict[str, Any]:
        """Mean/std/sizes in the checkpoint "preprocess" format (crop 224 after resizing to 256...)."""
        t = self.transforms
        return {"mean": list(t.mean), "std": list(t.std), "image_size": int(t.crop_size[0]),
                "resize": int(t.resize_size[0])}


def _unavailable_message(arch: str, entry: Any, path: Path, reason: str) -> str:
    return (f"the ImageNet weights {arch} {entry.name} are not cached and could not be downloaded ({reason}). "
            f"Download {entry.url} on a machine with internet and copy it to {path.parent}{os.sep} as "
            f"{path.name} (the torch hub cache; set TORCH_HOME to use another folder)")


def fetch_weights(arch: str, weights_name: str = "DEFAULT", progress: Progress | None = None) -> Path:
    """The cached weights file, downloading it into the hub cache first when missing."""
    entry = _weights_entry(arch, weights_name)
    path = weights_file_path(arch, weights_name)
    if path.is_file():
        return path
    match = torch.hub.HASH_REGEX.search(path.name)
    try:
        download_file(entry.url, path, progress, sha256_prefix=match.group(1) if match else None)
    except DownloadError as exc:
        raise WeightsUnavailableError(_unavailable_message(arch, entry, path, str(exc))) from None
    return path


def load_pretrained(arch: str, weights_name: str = "DEFAULT", progress: Progress | None = None) -> PretrainedModel:
    """build_model(get_preset(arch)) with torchvision's ImageNet weights, in eval mode."""
    entry = _weights_entry(arch, weights_name)
    path = fetch_weights(arch, weights_name, progress)
    if progress is not None:
        progress(1.0, f"loading {path.name}")
    try:
        # The file is in the hub cache now, so this reads it (torchvision's own loading path).
        state_dict = torch.hub.load_state_dict_from_url(entry.url, progress=False, map_location="cpu",
                                                        weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file fails in many ways inside torch.load
        raise WeightsUnavailableError(
            f"the cached weights file {path} is damaged ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
            "delete it so it is downloaded again") from None
    model = build_model(get_preset(arch))
    report = load_state_dict_report(model, state_dict)
    if not report.ok:
        raise CheckpointError(f"{path} does not fit {arch}: {report.summary()}; delete it so it is downloaded again")
    model.eval()
    return PretrainedModel(model=model, categories=list(entry.meta["categories"]), transforms=entry.transforms(),
                           weights_name=entry.name, meta=dict(entry.meta), arch=arch)


def imagenet_categories(arch: str = "resnet50", weights_name: str = "DEFAULT") -> list[str]:
    """The 1000 ImageNet class names (shipped inside torchvision, available offline)."""
    return list(_weights_entry(arch, weights_name).meta["categories"])


# --------------------------------------------------------------------------------------------
# Fine-tuning
# --------------------------------------------------------------------------------------------


def prepare_finetune(model: ResNet, num_classes: int, freeze_backbone: bool = False) -> ResNet:
    """A fresh `num_classes`-way fc on `model` (in place, returned); optionally freeze the rest.

    The config is updated too, so checkpoints record the new head. With a frozen backbone
    only fc trains; BatchNorm running statistics still adapt while the model is in train mode.
    """
    if not isinstance(model, ResNet):
        raise ConfigError(f"fine-tuning needs a resnet_core ResNet, got {type(model).__name__}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes: {num_classes!r} must be a whole number >= 1")
    old = model.fc
    model.fc = nn.Linear(old.in_features, num_classes).to(device=old.weight.device, dtype=old.weight.dtype)
    model.config = model.config.replace(num_classes=num_classes)
    for name, param in model.named_parameters():
        param.requires_grad_(not freeze_backbone or name.startswith("fc."))
    return model


def finetune_model(arch: str, num_classes: int, weights_name: str = "DEFAULT", freeze_backbone: bool = False,
                   progress: Progress | None = None) -> ResNet:
    """ImageNet-pretrained `arch` with a new head, in train mode; WeightsUnavailableError offline."""
    pretrained = load_pretrained(arch, weights_name, progress)
    model = prepare_finetune(pretrained.model, num_classes, freeze_backbone)
    return model.train()


# --------------------------------------------------------------------------------------------
# Bare state_dicts: infer the architecture, report mismatches
# --------------------------------------------------------------------------------------------

_BLOCK_KEY = re.compile(r"^layer(\d+)\.(\d+)\.")


@dataclass
class LoadReport:
    """How a state_dict fits a model. Loaded (strict) only when `ok`."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong_shape: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # key, expected, got

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape)

    def summary(self, limit: int = 5) -> str:
        """One line a person can act on, e.g. "1 tensor of the wrong shape: fc.weight expects (10, 64), the file has (1000, 512)"."""
        if self.ok:
            return "every tensor matches"
        parts = []
        if self.wrong_shape:
            shown = "; ".join(f"{k} expects {tuple(e)}, the file has {tuple(g)}" for k, e, g in self.wrong_shape[:limit])
            parts.append(f"{len(self.wrong_shape)} tensor(s) of the wrong shape: {shown}")
        if self.missing:
            parts.append(f"{len(self.missing)} missing from the file: {', '.join(self.missing[:limit])}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} in the file but not in the model: {', '.join(self.unexpected[:limit])}")
        return "; ".join(parts)


def load_state_dict_report(model: nn.Module, state_dict: Mapping[str, Tensor]) -> LoadReport:
    """Compare `state_dict` with `model`'s; load it (strict) when everything fits."""
    report = _compare(model.state_dict(), state_dict)
    if report.ok:
        model.load_state_dict(dict(state_dict), strict=True)
    return report


def infer_config_from_state_dict(state_dict: Mapping[str, Tensor]) -> ResNetConfig:
    """The ResNetConfig whose model has exactly these tensor names and shapes.

    Read from the keys and shapes: stem (7x7 imagenet, 3x3 cifar, Sequential deep), block type
    (conv3 present = bottleneck), blocks per stage, widths, projections (none where the shape
    changes = option A, only there = B, everywhere = C, behind an average pool = avg_down),
    pre-activation (final_bn, no stem BN), norm, num_classes. What the tensors cannot show is
    assumed: stride placement v1.5, residual (a plain twin has the same tensors as option A),
    zero_init_residual off, width_multiplier 1.
    Raises CheckpointError when the tensors do not describe a ResNet this app can build.
    """
    sd = dict(state_dict)
    stem, stem_width, in_channels = _infer_stem(sd)
    blocks = _infer_stage_blocks(sd)
    bottleneck = "layer1.0.conv3.weight" in sd
    widths = tuple(int(_tensor(sd, f"layer{i + 1}.0.conv1.weight").shape[0]) for i in range(len(blocks)))
    batch_norm = any(k.endswith("running_mean") for k in sd)
    preact = batch_norm and "final_bn.weight" in sd
    shortcut, avg_down = _infer_shortcut(sd, blocks, widths, stem_width, 4 if bottleneck else 1)
    fc = _tensor(sd, "fc.weight")
    try:
        cfg = ResNetConfig(
            block="bottleneck" if bottleneck else "basic", stage_blocks=blocks, stage_widths=widths, stem=stem,
            stem_width=stem_width, shortcut=shortcut, avg_down=avg_down, preact=preact,
            norm="batch" if batch_norm else "none", num_classes=int(fc.shape[0]), in_channels=in_channels)
    except ConfigError as exc:
        raise CheckpointError(f"the weights describe a network this app cannot build: {exc}") from None
    with torch.device("meta"):
        probe = build_model(cfg)
    report = _compare(probe.state_dict(), sd)
    if not report.ok:
        raise CheckpointError(f"the weights are not a ResNet this app can build (closest guess: {_describe(cfg)}; "
                              f"{report.summary()})")
    return cfg


def _compare(expected: Mapping[str, Tensor], sd: Mapping[str, Tensor]) -> LoadReport:
    report = LoadReport()
    # BatchNorm fills a missing num_batches_tracked itself (files from before it existed).
    report.missing = [k for k in expected if k not in sd and not k.endswith("num_batches_tracked")]
    report.unexpected = [k for k in sd if k not in expected]
    report.wrong_shape = [(k, tuple(expected[k].shape), tuple(v.shape)) for k, v in sd.items()
                          if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    return report


def _describe(cfg: ResNetConfig) -> str:
    return (f"{cfg.block} blocks {list(cfg.stage_blocks)}, widths {list(cfg.stage_widths)}, {cfg.stem} stem, "
            f"shortcut {cfg.shortcut}{', pre-activation' if cfg.preact else ''}")


def _tensor(sd: Mapping[str, Tensor], key: str) -> Tensor:
    value = sd.get(key)
    if not isinstance(value, Tensor):
        raise CheckpointError(f"not a ResNet state_dict: it has no '{key}' tensor "
                              f"(found {len(sd)} entries, e.g. {', '.join(list(sd)[:3]) or 'none'})")
    return value


def _infer_stem(sd: Mapping[str, Tensor]) -> tuple[str, int, int]:
    """(stem type, stem width, input channels)."""
    if "conv1.weight" in sd:
        w = _tensor(sd, "conv1.weight")
        if w.dim() != 4:
            raise CheckpointError(f"conv1.weight has shape {tuple(w.shape)}; a convolution's weight has 4 dimensions")
        kernel = int(w.shape[-1])
        if kernel not in (3, 7):
            raise CheckpointError(f"conv1 has a {kernel}x{kernel} kernel; ResNet stems use 7x7 (ImageNet) or 3x3 (CIFAR)")
        return ("imagenet" if kernel == 7 else "cifar"), int(w.shape[0]), int(w.shape[1])
    convs = sorted((int(m.group(1)), k) for k in sd if (m := re.fullmatch(r"conv1\.(\d+)\.weight", k))
                   and sd[k].dim() == 4)
    if not convs:
        _tensor(sd, "conv1.weight")  # raises the "no conv1" message
    first, last = sd[convs[0][1]], sd[convs[-1][1]]
    return "deep", int(last.shape[0]), int(first.shape[1])


def _infer_stage_blocks(sd: Mapping[str, Tensor]) -> tuple[int, ...]:
    found: dict[int, int] = defaultdict(int)
    for key in sd:
        if m := _BLOCK_KEY.match(key):
            stage, block = int(m.group(1)), int(m.group(2))
            found[stage] = max(found[stage], block + 1)
    if not found:
        raise CheckpointError("not a ResNet state_dict: no 'layer1.0....' block tensors")
    stages = sorted(found)
    if stages != list(range(1, len(stages) + 1)):
        raise CheckpointError(f"the stages present are {[f'layer{s}' for s in stages]}; they must run "
                              "layer1, layer2, ... without gaps")
    return tuple(found[s] for s in stages)


def _infer_shortcut(sd: Mapping[str, Tensor], blocks: tuple[int, ...], widths: tuple[int, ...], stem_width: int,
                    expansion: int) -> tuple[str, bool]:
    """(shortcut option, avg_down) from which blocks carry a projection and how it is laid out."""
    changing, constant = [], []
    in_ch = stem_width
    for i, (n, width) in enumerate(zip(blocks, widths)):
        out_ch = width * expansion
        for j in range(n):
            has_projection = any(k.startswith(f"layer{i + 1}.{j}.downsample.") for k in sd)
            shape_changes = j == 0 and (i > 0 or in_ch != out_ch)
            (changing if shape_changes else constant).append(has_projection)
            in_ch = out_ch
    if any(constant):
        shortcut = "C"
    elif changing and not all(changing):
        shortcut = "A"
    else:
        shortcut = "B"
    # With avg_down the projection is Sequential(pool, conv, ...): its conv sits at index 1.
    avg_down = any(k.endswith("downsample.1.weight") and sd[k].dim() == 4 for k in sd)
    return shortcut, avg_down


def load_model_file(source: str | Path | bytes) -> tuple[ResNet, Checkpoint]:
    """A model from a checkpoint of ours or a bare state_dict (torchvision's .pth), in eval mode.

    Our checkpoints carry their config; for a bare state_dict the config is inferred from it.
    Raises CheckpointError (unreadable file, or weights that do not fit) with a message for a person.
    """
    ckpt = load_checkpoint(source)
    cfg = ckpt.config if ckpt.config is not None else infer_config_from_state_dict(ckpt.state_dict)
    model = build_model(cfg)
    report = load_state_dict_report(model, ckpt.state_dict)
    if not report.ok:
        raise CheckpointError(f"the weights do not fit their recorded config: {report.summary()}")
    if ckpt.config is None:
        ckpt.config = cfg
    return model.eval(), ckpt


# ---- a checkpoint uploaded without knowing what it holds ------------------------------------------


def checkpoint_config(ckpt: Checkpoint) -> tuple[ResNetConfig | None, str, str | None]:
    """(the architecture, how it was found, why it could not be): recorded, else inferred from the keys.

    The config is None, with the reason, when neither works; the person then has to pick a preset.
    """
    if ckpt.config is not None:
        return ckpt.config, "recorded in the checkpoint", None
    try:
        return infer_config_from_state_dict(ckpt.state_dict), "inferred from the weight names and shapes", None
    except (ValueError, KeyError) as exc:
        return None, "unknown: pick it", str(exc)


def preset_for_checkpoint(ckpt: Checkpoint, preset: str) -> ResNetConfig:
    """`preset` with as many outputs as the checkpoint's fc layer has (ConfigError for an unknown preset)."""
    classes_in_file = ckpt.state_dict.get("fc.weight")
    n = int(classes_in_file.shape[0]) if classes_in_file is not None else get_preset(preset).num_classes
    return get_preset(preset).replace(num_classes=n)


def fitted_model(cfg: ResNetConfig, state_dict: Mapping[str, Tensor]) -> tuple[ResNet, LoadReport]:
    """A model of `cfg` with the weights loaded when they fit, and the report of how they fit."""
    model = build_model(cfg)
    return model, load_state_dict_report(model, state_dict)


def misfit_message(report: LoadReport, file_name: str, target: str, limit: int = 12) -> str:
    """Every way the file's weights fail to fit `target` (an architecture's name), one line per kind."""
    lines = [f"{file_name}: the weights do not fit {target}."]
    wrong = [f"{key} (model {tuple(expected)}, file {tuple(got)})" for key, expected, got in report.wrong_shape]
    for title, keys in (("missing", report.missing), ("unexpected", report.unexpected), ("wrong shape", wrong)):
        if keys:
            shown = ", ".join(keys[:limit]) + (" ..." if len(keys) > limit else "")
            lines.append(f"- {title} ({len(keys)}): {shown}")
    lines.append("Pick the right architecture above.")
    return "\n".join(lines)


def checkpoint_preprocess(ckpt: Checkpoint, cfg: ResNetConfig) -> Preprocess:
    """The checkpoint's recorded preprocessing; gaps follow the stem (32 px CIFAR, 224 px ImageNet)."""
    pre = Preprocess.from_dict(ckpt.preprocess, default_size=32 if cfg.stem == "cifar" else 224)
    if pre.resize is None:
        pre = Preprocess(pre.image_size, pre.mean, pre.std, default_resize(pre.image_size))
    return pre


def checkpoint_classes(ckpt: Checkpoint, cfg: ResNetConfig) -> list[str]:
    """The recorded class names; for a bare state_dict, ImageNet's when it has 1000 outputs, else numbers."""
    classes = list(ckpt.classes or [])
    if not classes:  # names of ImageNet's classes ship with torchvision, no download needed
        classes = imagenet_categories() if cfg.num_classes == 1000 else [f"class {i}" for i in range(cfg.num_classes)]
    return classes


__all__ = [
    "TORCHVISION_ARCHS",
    "LoadReport",
    "PretrainedModel",
    "WeightsUnavailableError",
    "available_weights",
    "checkpoint_classes",
    "checkpoint_config",
    "checkpoint_preprocess",
    "default_weights",
    "fetch_weights",
    "finetune_model",
    "fitted_model",
    "imagenet_categories",
    "infer_config_from_state_dict",
    "is_cached",
    "load_model_file",
    "load_pretrained",
    "load_state_dict_report",
    "misfit_message",
    "prepare_finetune",
    "preset_for_checkpoint",
    "weights_file_path",
]
