"""torchvision's ImageNet weights in our ResNet: download into the hub cache, load, fine-tune."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from ..data.containers import DownloadError
from ..data.download import download_file
from ..data.transforms import Preprocess, default_resize
from ..model.checkpoint import Checkpoint, CheckpointError
from ..model.config import ConfigError, ResNetConfig, default_image_size, get_preset
from ..model.model import ResNet, build_model
from ..model.state_dicts import load_state_dict_report

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
            f"the cached weights file {path} is damaged "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
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


def checkpoint_preprocess(ckpt: Checkpoint, cfg: ResNetConfig) -> Preprocess:
    """The checkpoint's recorded preprocessing; gaps follow the stem (32 px CIFAR, 224 px ImageNet)."""
    pre = Preprocess.from_dict(ckpt.preprocess, default_size=default_image_size(cfg))
    if pre.resize is None:
        pre = Preprocess(pre.image_size, pre.mean, pre.std, default_resize(pre.image_size))
    return pre


def checkpoint_classes(ckpt: Checkpoint, cfg: ResNetConfig) -> list[str]:
    """The recorded class names; for a bare state_dict, ImageNet's when it has 1000 outputs, else numbers."""
    classes = list(ckpt.classes or [])
    if not classes:  # names of ImageNet's classes ship with torchvision, no download needed
        classes = imagenet_categories() if cfg.num_classes == 1000 else [f"class {i}" for i in range(cfg.num_classes)]
    return classes
