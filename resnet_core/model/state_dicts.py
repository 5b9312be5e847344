"""Loading weights into our ResNet: fit reports, configs inferred from bare state_dicts, misfit messages."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .config import ConfigError, ResNetConfig, get_preset
from .model import ResNet, build_model

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
        """One line a person can act on, e.g. "1 tensor of the wrong shape: fc.weight expects (10, 64), the file has
        (1000, 512)"."""
        if self.ok:
            return "every tensor matches"
        parts = []
        if self.wrong_shape:
            shown = "; ".join(f"{k} expects {tuple(e)}, the file has {tuple(g)}"
                              for k, e, g in self.wrong_shape[:limit])
            parts.append(f"{len(self.wrong_shape)} tensor(s) of the wrong shape: {shown}")
        if self.missing:
            parts.append(f"{len(self.missing)} missing from the file: {', '.join(self.missing[:limit])}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} in the file but not in the model: "
                         f"{', '.join(self.unexpected[:limit])}")
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
            raise CheckpointError(f"conv1 has a {kernel}x{kernel} kernel; ResNet stems use 7x7 (ImageNet) "
                                  "or 3x3 (CIFAR)")
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
    model, report = fitted_model(cfg, ckpt.state_dict)
    if model is None:
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


def fitted_model(cfg: ResNetConfig, state_dict: Mapping[str, Tensor]) -> tuple[ResNet | None, LoadReport]:
    """A model of `cfg` with the weights loaded, or None when they do not fit; and the report of how they fit.

    The fit is checked on a model without storage (the meta device) first, so a config that claims a
    huge model next to small weights allocates nothing.
    """
    with torch.device("meta"):
        probe = build_model(cfg)
    report = _compare(probe.state_dict(), state_dict)
    if not report.ok:
        return None, report
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
