"""Where does the network look? Captum attributions, overlays and two trust checks.

Methods (all through captum; each returns one H x W map per image, same size as the input):

    gradcam               LayerGradCam on a layer (default: the last stage), ReLU'd, upsampled
                          bilinearly. >= 0: evidence *for* the target class.
    guided_gradcam        GuidedGradCam: guided backprop x Grad-CAM. Captum gives 3 x H x W;
                          the map is |.| summed over the colour channels (>= 0).
    integrated_gradients  IntegratedGradients from a zero baseline (the dataset mean colour after
                          normalisation), optionally SmoothGrad-averaged through NoiseTunnel.
                          |.| summed over channels: pixels that matter either way.
    saliency              Saliency (|d logit / d pixel|), summed over channels.
    occlusion             Occlusion with a square window (1/7 of the image side) moved in
                          non-overlapping steps: the drop of the target logit when a patch is
                          replaced by the mean colour. Averaged over channels, negative values (patches whose
                          removal *raises* the logit) are clipped to 0.

The target is a class index per image; None means the model's own prediction.

Pitfalls handled for every call: the model is put in eval mode and every module's own mode is
restored afterwards; gradients are enabled even if the caller is under `torch.no_grad()`;
every hook captum (or an exception half-way) leaves on the model is removed; calls on one model
are serialised by a lock, because cached pretrained models are shared between Streamlit
sessions and captum's hooks would otherwise leak into a concurrent forward.

Trust checks:
    localization_scores  pointing game and energy inside the object mask, per method, against a
                         uniform and a random map (chance level = the mask's area fraction).
    randomization_check  cascading weight randomization (Adebayo et al. 2018): Spearman rank
                         correlation of each map with the trained model's, as the weights are
                         re-initialised from the head down to the stem. A method that explains the
                         model must decorrelate; Guided Grad-CAM is known to barely change.
"""

from __future__ import annotations

import copy
import io
import math
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.colors
import torch
import torch.nn.functional as F
from captum.attr import (
    GuidedGradCam,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from PIL import Image
from torch import Tensor, nn

from .config import get_preset
from .data import SHAPES_CLASSES, DataBundle
from .demos import SHAPES_TRAIN
from .images import Preprocess, default_resize
from .runs import RunInfo, list_runs
from .train import Trainer, build_model_for, create_trainer
from .weights import Checkpoint, PretrainedModel, checkpoint_classes, checkpoint_preprocess

# Captum announces, on every guided-backprop call, that it hooks ReLUs and removes the hooks after:
# we know (and check it), so keep the console for real problems.
warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU activations", category=UserWarning)

METHODS: tuple[str, ...] = ("gradcam", "guided_gradcam", "integrated_gradients", "saliency", "occlusion")
METHOD_LABELS = {
    "gradcam": "Grad-CAM",
    "guided_gradcam": "Guided Grad-CAM",
    "integrated_gradients": "Integrated Gradients",
    "saliency": "Saliency",
    "occlusion": "Occlusion",
}
# Methods whose map is computed at a chosen layer (the others work on the pixels).
LAYER_METHODS = ("gradcam", "guided_gradcam")


class AttributionError(ValueError):
    """An explanation was asked for with an input, method, layer or target that cannot work."""


# --------------------------------------------------------------------------------------------
# Safety: eval mode, gradients on, hooks gone, one explanation per model at a time
# --------------------------------------------------------------------------------------------

_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model: nn.Module) -> threading.RLock:
    """The lock that serialises explanations (and hook use) on `model`."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _hook_keys(model: nn.Module) -> dict[tuple[int, str], set[int]]:
    return {(id(m), d): set(getattr(m, d, {}).keys()) for m in model.modules() for d in _HOOK_DICTS}


def _remove_new_hooks(model: nn.Module, before: dict[tuple[int, str], set[int]]) -> None:
    # Captum removes its hooks in `finally` blocks; this also covers an exception raised between
    # a hook's registration and captum's try (and any future captum that forgets).
    for m in model.modules():
        for d in _HOOK_DICTS:
            hooks = getattr(m, d, None)
            if hooks:
                for key in set(hooks.keys()) - before.get((id(m), d), set()):
                    del hooks[key]


@contextmanager
def explaining(model: nn.Module) -> Iterator[nn.Module]:
    """Run an explanation on `model`: locked, eval mode, gradients on; everything restored after."""
    with model_lock(model):
        modes = [(m, m.training) for m in model.modules()]
        hooks_before = _hook_keys(model)
        model.eval()
        try:
            # Callers may be under no_grad or inference_mode (Streamlit apps often are): neither may apply here.
            with torch.inference_mode(False), torch.enable_grad():
                yield model
        finally:
            _remove_new_hooks(model, hooks_before)
            for m, mode in modes:
                m.training = mode


@contextmanager
def _inference(model: nn.Module) -> Iterator[nn.Module]:
    with model_lock(model):
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            with torch.no_grad():
                yield model
        finally:
            for m, mode in modes:
                m.training = mode


# --------------------------------------------------------------------------------------------
# Inputs, layers, targets
# --------------------------------------------------------------------------------------------


def _device_of(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _as_batch(model: nn.Module, images: Tensor) -> Tensor:
    """3 x H x W or N x 3 x H x W float -> a detached N x C x H x W copy on the model's device."""
    if not isinstance(images, Tensor):
        raise AttributionError(f"expected a normalised image tensor, got {type(images).__name__}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4:
        raise AttributionError(f"expected an image tensor 3 x H x W or N x 3 x H x W, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise AttributionError("expected a normalised float image tensor; convert uint8 images with "
                               "resnet_core.data.normalize first")
    channels = _input_channels(model)
    if channels is not None and images.shape[1] != channels:
        raise AttributionError(f"the model takes {channels}-channel images, got {images.shape[1]} channels")
    return images.detach().to(_device_of(model), torch.float32).clone()


def _input_channels(model: nn.Module) -> int | None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return None


def _num_classes(model: nn.Module) -> int | None:
    fc = getattr(model, "fc", None)
    return fc.out_features if isinstance(fc, nn.Linear) else None


def default_layer(model: nn.Module) -> str:
    """The last stage (`layer4`, or `layer3` for CIFAR nets): the usual Grad-CAM layer."""
    stages = _stage_names(model)
    if stages:
        return stages[-1]
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise AttributionError("the model has no convolutional layer to explain")
    return convs[-1]


def _stage_names(model: nn.Module) -> list[str]:
    names = getattr(model, "stage_names", None)
    if names:
        return list(names)
    # torchvision's ResNet has the same layerK attributes but no stage_names.
    return [n for n in (f"layer{i}" for i in range(1, 9)) if isinstance(getattr(model, n, None), nn.Module)]


def target_layers(model: nn.Module) -> list[str]:
    """Layers a map can be computed at, for a picker: default stage first, then every stage,
    block and convolution from the output back to the stem."""
    names: list[str] = []
    for stage in reversed(_stage_names(model)):
        names.append(stage)
        blocks = list(getattr(model, stage).named_children())
        for block_name, block in reversed(blocks):
            names.append(f"{stage}.{block_name}")
            convs = [f"{stage}.{block_name}.{n}" for n, m in block.named_modules() if isinstance(m, nn.Conv2d)]
            names.extend(reversed(convs))
    stem = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and not n.startswith("layer")]
    names.extend(reversed(stem))
    if not names:
        names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)][::-1]
    default = default_layer(model)
    return [default] + [n for n in names if n != default]


def resolve_layer(model: nn.Module, layer: nn.Module | str | None) -> tuple[str, nn.Module]:
    """(path, module) for a layer given as a module path, a module of `model`, or None (default)."""
    if layer is None:
        layer = default_layer(model)
    if isinstance(layer, nn.Module):
        for name, m in model.named_modules():
            if m is layer:
                return name, m
        raise AttributionError("the layer given is not part of this model")
    try:
        return layer, model.get_submodule(layer)
    except AttributeError:
        choices = target_layers(model)
        shown = ", ".join(choices[:8]) + (", ..." if len(choices) > 8 else "")
        raise AttributionError(f"layer {layer!r} is not in this model; choose one of: {shown}") from None


def _check_targets(model: nn.Module, targets: Sequence[int], n: int) -> list[int]:
    targets = [int(t) for t in targets]
    if len(targets) != n:
        raise AttributionError(f"{n} images but {len(targets)} targets; give one class per image")
    classes = _num_classes(model)
    for t in targets:
        if t < 0 or (classes is not None and t >= classes):
            raise AttributionError(f"target class {t} is out of range: the model has {classes} classes (0-{classes - 1})")
    return targets


# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------


def predict(model: nn.Module, batch: Tensor) -> Tensor:
    """Class probabilities (softmax), N x classes (or classes for a single 3 x H x W image), on the CPU."""
    single = isinstance(batch, Tensor) and batch.dim() == 3
    x = _as_batch(model, batch)
    with _inference(model):
        probs = torch.softmax(model(x).float(), dim=1).cpu()
    return probs[0] if single else probs


def topk(probs: Tensor, classes: Sequence[str] | None = None, k: int = 5) -> list[dict[str, Any]]:
    """The k most probable classes of one image's probabilities, most probable first."""
    if probs.dim() != 1:
        raise AttributionError(f"topk takes one image's probabilities (1-D), got shape {tuple(probs.shape)}")
    k = max(1, min(int(k), probs.numel()))
    values, indices = torch.topk(probs.float(), k)
    rows = []
    for rank, (p, i) in enumerate(zip(values.tolist(), indices.tolist()), start=1):
        label = classes[i] if classes is not None and i < len(classes) else f"class {i}"
        rows.append({"rank": rank, "class_index": i, "label": label, "probability": p})
    return rows


class _PredictedLogit(nn.Module):
    """The model, answering only with the logit of its own top class (N x 1).

    Grad-CAM with "explain the prediction" then needs one forward pass instead of two
    (one to find the class, one to explain it). It is a Module so that captum's guided
    backprop finds and hooks the wrapped model's ReLUs.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.classes: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        logits = self.model(x)
        top = logits.detach().argmax(dim=1, keepdim=True)
        if self.classes is None:
            self.classes = top.squeeze(1).cpu()
        return logits.gather(1, top)


# --------------------------------------------------------------------------------------------
# Attribution methods
# --------------------------------------------------------------------------------------------


@dataclass
class Explanation:
    """Maps for a batch: `maps` is N x H x W float32 on the CPU, `targets` the class explained per image."""

    maps: Tensor
    targets: list[int]
    method: str
    layer: str | None = None


def explain(model: nn.Module, image: Tensor, method: str = "gradcam", target: int | None = None,
            layer: nn.Module | str | None = None, **opts: Any) -> Tensor:
    """One image's H x W map (see the module docstring for each method's sign handling)."""
    if isinstance(image, Tensor) and image.dim() == 4 and image.shape[0] != 1:
        raise AttributionError(f"explain takes one image; got a batch of {image.shape[0]} (use explain_batch)")
    targets = None if target is None else [target]
    return explain_batch(model, image, method, targets, layer, **opts).maps[0]


def explain_batch(model: nn.Module, images: Tensor, method: str = "gradcam",
                  targets: Sequence[int] | None = None, layer: nn.Module | str | None = None,
                  **opts: Any) -> Explanation:
    """Maps for N images in one pass (N x H x W). `targets`: one class per image, None = predicted.

    Options: integrated_gradients: n_steps (32), internal_batch_size (32), smoothgrad_samples (0 = off),
    smoothgrad_std (0.15, in normalised units); occlusion: window, stride, perturbations_per_eval (16).
    """
    if method not in METHODS:
        raise AttributionError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    layer_name, layer_module = resolve_layer(model, layer) if method in LAYER_METHODS else (None, None)
    with explaining(model):
        # Copied inside: a tensor made under inference_mode cannot take part in autograd.
        x = _as_batch(model, images)
        if targets is not None:
            targets = _check_targets(model, targets, x.shape[0])
        if method in ("gradcam", "guided_gradcam", "saliency"):
            maps, used = _single_forward_method(model, x, method, targets, layer_module, opts)
        else:
            if targets is None:
                with torch.no_grad():
                    targets = model(x).argmax(dim=1).tolist()
            runner = _integrated_gradients if method == "integrated_gradients" else _occlusion
            maps, used = runner(model, x, targets, opts), targets
    maps = torch.nan_to_num(maps.detach().float()).cpu()
    return Explanation(maps=maps, targets=[int(t) for t in used], method=method, layer=layer_name)


def _single_forward_method(model: nn.Module, x: Tensor, method: str, targets: list[int] | None,
                           layer: nn.Module | None, opts: dict[str, Any]) -> tuple[Tensor, list[int]]:
    """Grad-CAM, Guided Grad-CAM and saliency: the prediction comes from the same forward pass."""
    if opts:
        raise AttributionError(f"{method} takes no options, got {sorted(opts)}")
    if method != "gradcam":
        x.requires_grad_()  # captum would do it too, with a warning per call
    if targets is None:
        forward: nn.Module = _PredictedLogit(model)
        captum_target: Any = 0
    else:
        forward, captum_target = model, targets
    if method == "gradcam":
        raw = LayerGradCam(forward, layer).attribute(x, target=captum_target, relu_attributions=True)
        if raw.dim() != 4:
            raise AttributionError("Grad-CAM needs a convolutional layer (a stage, block or conv), "
                                   f"whose output is N x C x H x W; this one gives {raw.dim()}-D output")
        maps = LayerAttribution.interpolate(raw, tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0]
        maps = maps.clamp_min(0)  # bilinear interpolation of >= 0 values stays >= 0; guard rounding
    elif method == "guided_gradcam":
        raw = GuidedGradCam(forward, layer).attribute(x, target=captum_target, interpolate_mode="bilinear")
        maps = raw.abs().sum(dim=1)
    else:
        maps = Saliency(forward).attribute(x, target=captum_target, abs=True).sum(dim=1)
    used = forward.classes.tolist() if isinstance(forward, _PredictedLogit) else targets
    return maps, used


def _integrated_gradients(model: nn.Module, x: Tensor, targets: list[int], opts: dict[str, Any]) -> Tensor:
    opts = dict(opts)
    n_steps = int(opts.pop("n_steps", 32))
    internal = int(opts.pop("internal_batch_size", 32))
    samples = int(opts.pop("smoothgrad_samples", 0))
    noise = float(opts.pop("smoothgrad_std", 0.15))
    if opts:
        raise AttributionError(f"integrated_gradients: unknown option(s) {sorted(opts)}")
    if n_steps < 2:
        raise AttributionError("integrated_gradients: n_steps must be at least 2")
    ig = IntegratedGradients(model)
    baseline = torch.zeros_like(x)
    if samples > 0:
        attr = NoiseTunnel(ig).attribute(x, nt_type="smoothgrad", nt_samples=samples, stdevs=noise,
                                         baselines=baseline, target=targets, n_steps=n_steps,
                                         internal_batch_size=internal)
    else:
        attr = ig.attribute(x, baselines=baseline, target=targets, n_steps=n_steps, internal_batch_size=internal)
    return attr.abs().sum(dim=1)


def occlusion_window(height: int, width: int) -> tuple[int, int]:
    """(window, stride) for occlusion: 1/7 of the shorter side (rounded down), not overlapping.

    About 7 x 7 = 49 forward passes per image whatever its size (the resolution of a ResNet's
    last stage at 224 px); rounding down makes the windows tile 224 and 32 px images exactly.
    A smaller stride gives a smoother map at quadratic cost.
    """
    window = max(2, min(height, width) // 7)
    return window, window


def _occlusion(model: nn.Module, x: Tensor, targets: list[int], opts: dict[str, Any]) -> Tensor:
    opts = dict(opts)
    window = int(opts.pop("window", occlusion_window(x.shape[2], x.shape[3])[0]))
    stride = int(opts.pop("stride", window))
    per_eval = int(opts.pop("perturbations_per_eval", 16))
    if opts:
        raise AttributionError(f"occlusion: unknown option(s) {sorted(opts)}")
    if not 1 <= window <= min(x.shape[2], x.shape[3]) or stride < 1:
        raise AttributionError(f"occlusion: window {window} / stride {stride} do not fit a "
                               f"{x.shape[2]}x{x.shape[3]} image")
    channels = x.shape[1]
    attr = Occlusion(model).attribute(
        x, sliding_window_shapes=(channels, window, window), strides=(channels, stride, stride),
        baselines=0.0, target=targets, perturbations_per_eval=per_eval,
    )
    return attr.mean(dim=1).clamp_min(0)


# --------------------------------------------------------------------------------------------
# Maps for display
# --------------------------------------------------------------------------------------------


def normalize_map(m: Tensor) -> Tensor:
    """Scale each map (H x W, or N x H x W) to [0, 1] by its own min and max.

    A constant map (all zeros included) carries no location and becomes all zeros, with no
    division by zero; NaNs become 0.
    """
    m = torch.nan_to_num(torch.as_tensor(m).detach().float().cpu())
    flat = m.reshape(-1, m.shape[-2] * m.shape[-1]) if m.dim() >= 2 else m.reshape(1, -1)
    lo = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - lo
    out = torch.where(span > 0, (flat - lo) / span.clamp_min(torch.finfo(torch.float32).tiny), torch.zeros_like(flat))
    return out.reshape(m.shape)


def _lut_from_scale(colors: Sequence[str]) -> np.ndarray:
    rgb = np.array([plotly.colors.unlabel_rgb(c) if c.startswith("rgb") else plotly.colors.hex_to_rgb(c)
                    for c in colors], dtype=np.float64)
    stops = np.linspace(0.0, 1.0, len(rgb))
    grid = np.linspace(0.0, 1.0, 256)
    lut = np.stack([np.interp(grid, stops, rgb[:, c]) for c in range(3)], axis=1)
    return np.clip(np.rint(lut), 0, 255).astype(np.uint8)


# Colour maps as 256-entry lookup tables sampled from plotly's colour scales (no matplotlib).
COLORMAPS: dict[str, np.ndarray] = {
    "jet": _lut_from_scale(plotly.colors.sequential.Jet),
    "turbo": _lut_from_scale(plotly.colors.sequential.Turbo),
    "viridis": _lut_from_scale(plotly.colors.sequential.Viridis),
    "inferno": _lut_from_scale(plotly.colors.sequential.Inferno),
}


def colorize(m: Tensor, colormap: str = "jet") -> np.ndarray:
    """An H x W map as an H x W x 3 uint8 colour image (normalised to [0, 1] first)."""
    if colormap not in COLORMAPS:
        raise AttributionError(f"unknown colour map {colormap!r}; choose one of {list(COLORMAPS)}")
    index = (normalize_map(m).numpy() * 255.0 + 0.5).astype(np.uint8)
    return COLORMAPS[colormap][index]


def overlay(image: Image.Image, cam: Tensor, alpha: float = 0.5, colormap: str = "jet") -> Image.Image:
    """The image with the coloured map blended on top (alpha = map's weight), at the image's size."""
    if not 0.0 <= alpha <= 1.0:
        raise AttributionError(f"alpha must be between 0 and 1, got {alpha}")
    cam = torch.as_tensor(cam).detach().float().cpu()
    if cam.dim() != 2:
        raise AttributionError(f"overlay takes one H x W map, got shape {tuple(cam.shape)}")
    base = image.convert("RGB")
    w, h = base.size
    if cam.shape != (h, w):
        # Maps are computed on the resized/cropped network input; stretch to the shown image.
        cam = F.interpolate(cam[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    heat = colorize(cam, colormap).astype(np.float32)
    blended = (1.0 - alpha) * np.asarray(base, dtype=np.float32) + alpha * heat
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8))


def png_bytes(image: Image.Image) -> bytes:
    """PNG file contents, for a download button."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Trust check 1: does the map point at the object?
# --------------------------------------------------------------------------------------------


def pointing_game(maps: Tensor, masks: Tensor) -> Tensor:
    """Per image: the share of the map's maximal pixels that lie inside the mask.

    With a single maximum this is the usual hit (1) or miss (0). Ties are split evenly, so a
    uniform map scores the mask's area fraction, the chance level, instead of whatever the
    first pixel happens to be.
    """
    maps, masks = _paired(maps, masks)
    flat = maps.reshape(maps.shape[0], -1)
    top = flat == flat.max(dim=1, keepdim=True).values
    inside = masks.reshape(masks.shape[0], -1)
    return (top & inside).sum(dim=1).double() / top.sum(dim=1).double()


def energy_inside(maps: Tensor, masks: Tensor) -> Tensor:
    """Per image: the share of the map's positive mass inside the mask (a map with no positive
    mass says nothing and scores the mask's area fraction, like a uniform map)."""
    maps, masks = _paired(maps, masks)
    flat = maps.clamp_min(0).reshape(maps.shape[0], -1).double()
    inside = masks.reshape(masks.shape[0], -1)
    total = flat.sum(dim=1)
    share = (flat * inside).sum(dim=1) / total.clamp_min(torch.finfo(torch.float64).tiny)
    return torch.where(total > 0, share, inside.double().mean(dim=1))


def _paired(maps: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    maps = torch.nan_to_num(torch.as_tensor(maps).detach().float().cpu())
    masks = torch.as_tensor(masks).detach().cpu().bool()
    if maps.dim() == 2:
        maps, masks = maps[None], masks.reshape(1, *masks.shape[-2:])
    if maps.shape != masks.shape:
        raise AttributionError(f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} must have the same shape")
    return maps, masks


BASELINES = {"uniform": "Uniform map (chance)", "random": "Random map (chance)"}


def localization_scores(model: nn.Module, images: Tensor, masks: Tensor,
                        methods: Sequence[str] = ("gradcam",), targets: Sequence[int] | None = None,
                        layer: nn.Module | str | None = None, batch_size: int = 32, seed: int = 0,
                        method_options: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Pointing game and energy inside the object mask, averaged over images, per method.

    `images` are normalised N x 3 x H x W, `masks` boolean N x H x W; `targets` the class to
    explain per image (pass the true labels; None explains the predictions). Two baselines
    are added: a uniform map and an i.i.d. random map (seeded); both sit at chance, the mean
    mask area fraction. Returns one row per method: method, label, pointing_game,
    energy_inside, mask_fraction, n.
    """
    x = torch.as_tensor(images)
    masks = torch.as_tensor(masks).bool().cpu()
    if x.dim() != 4 or masks.shape != (x.shape[0], *x.shape[2:]):
        raise AttributionError(f"images {tuple(x.shape)} and masks {tuple(masks.shape)} do not match "
                               "(need N x 3 x H x W and N x H x W)")
    options = method_options or {}
    fraction = masks.reshape(masks.shape[0], -1).double().mean(dim=1)
    rows = []
    for method in methods:
        maps = []
        for start in range(0, x.shape[0], batch_size):
            part_targets = None if targets is None else list(targets)[start:start + batch_size]
            maps.append(explain_batch(model, x[start:start + batch_size], method, part_targets, layer,
                                      **options.get(method, {})).maps)
        rows.append(_score_row(method, METHOD_LABELS[method], torch.cat(maps), masks, fraction))
    gen = torch.Generator().manual_seed(seed)
    rows.append(_score_row("uniform", BASELINES["uniform"], torch.ones(masks.shape), masks, fraction))
    rows.append(_score_row("random", BASELINES["random"], torch.rand(masks.shape, generator=gen), masks, fraction))
    return rows


def _score_row(method: str, label: str, maps: Tensor, masks: Tensor, fraction: Tensor) -> dict[str, Any]:
    return {
        "method": method,
        "label": label,
        "pointing_game": float(pointing_game(maps, masks).mean()),
        "energy_inside": float(energy_inside(maps, masks).mean()),
        "mask_fraction": float(fraction.mean()),
        "n": int(masks.shape[0]),
    }


# --------------------------------------------------------------------------------------------
# Trust check 2: cascading randomization (Adebayo et al. 2018)
# --------------------------------------------------------------------------------------------


def rank(values: Tensor) -> Tensor:
    """1-based ranks of a 1-D tensor, ties given their average rank (float64)."""
    values = values.detach().reshape(-1)
    sorted_values, order = torch.sort(values)
    _, inverse, counts = torch.unique_consecutive(sorted_values, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    average = ends - (counts.double() - 1) / 2
    ranks = torch.empty(values.numel(), dtype=torch.float64, device=values.device)
    ranks[order] = average[inverse]
    return ranks


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation of two maps (ties averaged). 0.0 if either map is constant,
    since a constant map shares no ordering with anything."""
    ra, rb = rank(torch.nan_to_num(a.float())), rank(torch.nan_to_num(b.float()))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    return float((ra * rb).sum()) / denominator if denominator > 0 else 0.0


def randomization_steps(model: nn.Module, granularity: str = "block") -> list[tuple[str, list[nn.Module]]]:
    """The cascade, head first: ("fc", [...]), then each block (or stage) from the last down,
    then ("stem", [...]). Each step lists the modules whose weights it re-initialises."""
    if granularity not in ("block", "stage"):
        raise AttributionError(f"granularity must be 'block' or 'stage', got {granularity!r}")
    stages = _stage_names(model)
    staged = {id(m) for s in stages for m in getattr(model, s).modules()}
    head = [m for n, m in model.named_children() if n in ("fc", "final_bn")]
    steps: list[tuple[str, list[nn.Module]]] = [("fc", head)] if head else []
    for stage in reversed(stages):
        module = getattr(model, stage)
        if granularity == "stage":
            steps.append((stage, [module]))
        else:
            steps.extend((f"{stage}.{name}", [block]) for name, block in reversed(list(module.named_children())))
    stem = [m for n, m in model.named_children()
            if id(m) not in staged and m not in head and any(p.numel() for p in m.parameters())]
    if stem:
        steps.append(("stem", stem))
    return steps


def _reinitialise(modules: Sequence[nn.Module], gen: torch.Generator) -> None:
    """Fresh random weights (the model's own init scheme); BN reset to the identity."""
    with torch.no_grad():
        for top in modules:
            for m in top.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                    if m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(m.in_features), generator=gen)
                    if m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.reset_parameters()


@dataclass
class RandomizationResult:
    """Spearman correlation with the trained model's map, per method, per cascade step.

    `steps[0]` is "original" (correlation 1); step i has every module of steps 1..i re-initialised.
    `maps[method][i]` is the H x W map at step i, for display.
    """

    steps: list[str]
    correlations: dict[str, list[float]]
    maps: dict[str, list[Tensor]] = field(default_factory=dict)
    target: int = 0

    def rows(self) -> list[dict[str, Any]]:
        return [{"step": s, "method": m, "label": METHOD_LABELS.get(m, m), "spearman": c[i]}
                for m, c in self.correlations.items() for i, s in enumerate(self.steps)]


def randomization_check(model: nn.Module, image: Tensor, methods: Sequence[str] = ("gradcam", "guided_gradcam"),
                        target: int | None = None, layer: str | None = None, granularity: str = "block",
                        seed: int = 0, keep_maps: bool = True,
                        progress: Callable[[float, str], None] | None = None) -> RandomizationResult:
    """Cascading randomization on a deep copy of `model` (the model itself is not touched).

    The target is fixed to the trained model's class (its prediction if None) at every step, and
    the layer is given by module path so it resolves in each copy.
    """
    x = _as_batch(model, image)[:1]
    if target is None:
        target = int(predict(model, x)[0].argmax())
    layer_name = resolve_layer(model, layer)[0]
    with model_lock(model):
        randomized = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    steps = randomization_steps(randomized, granularity)
    names = ["original"] + [name for name, _ in steps]
    originals: dict[str, Tensor] = {}
    result = RandomizationResult(names, {m: [] for m in methods}, {m: [] for m in methods}, target)
    for i, name in enumerate(names):
        if i > 0:
            _reinitialise(steps[i - 1][1], gen)
        for method in methods:
            layer_arg = layer_name if method in LAYER_METHODS else None
            m = explain(randomized, x, method, target=target, layer=layer_arg)
            originals.setdefault(method, m)
            result.correlations[method].append(1.0 if i == 0 else spearman(originals[method], m))
            if keep_maps:
                result.maps[method].append(m)
        if progress is not None:
            progress((i + 1) / len(names), name)
    return result


# ---- what is explained: a model with its classes and preprocessing ----------------------------------

@dataclass
class Subject:
    """The model being explained, with what is needed to feed it and to name its classes.

    `key` identifies the weights (not just the architecture), so cached maps never outlive them.
    """

    model: nn.Module
    classes: list[str]
    pre: Preprocess
    key: str
    title: str
    on_shapes: bool = False


def numbered_classes(n: int) -> list[str]:
    """Names for a model whose classes were never named."""
    return [f"class {i}" for i in range(n)]


def usable_runs(runs_dir: Any) -> list[RunInfo]:
    """Runs that ended and saved their weights, newest first: the ones worth explaining."""
    return [r for r in list_runs(runs_dir) if r.has_model and r.status in ("finished", "stopped")]


def run_is_residual(run: RunInfo) -> bool:
    model = run.config.get("model") if isinstance(run.config.get("model"), dict) else {}
    return bool(model.get("residual", True))


def shapes_runs(runs: Sequence[RunInfo], residual: bool) -> list[RunInfo]:
    """The residual (or plain) runs trained on Shapes, in the order given (newest first from list_runs)."""
    return [r for r in runs if r.dataset == "shapes" and run_is_residual(r) == residual]


def shapes_pair(runs: Sequence[RunInfo]) -> dict[bool, RunInfo | None]:
    """The newest residual (True) and plain (False) runs trained on Shapes, None where there is none."""
    return {residual: next(iter(shapes_runs(runs, residual)), None) for residual in (True, False)}


def run_subject(run: RunInfo, model: nn.Module, classes: Sequence[str] | None, preprocess: dict | None,
                mtime: float) -> Subject:
    """A saved run's model (as `runs.load_run_model` returns it); `mtime` of its weights file keys it."""
    pre = Preprocess.from_dict(preprocess, default_size=32)
    classes = classes or numbered_classes(model.fc.out_features)
    on_shapes = run.dataset == "shapes" and list(classes) == list(SHAPES_CLASSES)
    acc = "" if run.val_acc is None else f", validation accuracy {100 * run.val_acc:.1f}%"
    return Subject(model, list(classes), pre, f"run:{run.path}:{mtime}", f"run {run.name} ({run.arch}{acc})", on_shapes)


def built_subject(model: nn.Module) -> Subject:
    """A model built from a config (random weights), fed like its stem expects: 32 px CIFAR, 224 px ImageNet."""
    cfg = model.config
    size = 32 if cfg.stem == "cifar" else 224
    pre = Preprocess(image_size=size, resize=default_resize(size))
    return Subject(model, numbered_classes(cfg.num_classes), pre, f"build:{id(model)}:{hash(cfg)}",
                   "the Build page's model (untrained)")


def pretrained_subject(loaded: PretrainedModel, arch: str, weights_name: str) -> Subject:
    pre = Preprocess.from_dict(loaded.preprocess)
    return Subject(loaded.model, list(loaded.categories), pre, f"tv:{arch}:{weights_name}",
                   f"torchvision {arch} ({weights_name})")


def checkpoint_subject(model: nn.Module, ckpt: Checkpoint, cfg: Any, key: str, file_name: str) -> Subject:
    """An uploaded checkpoint's model whose weights fit `cfg`; puts it in eval mode."""
    model.eval()
    classes = checkpoint_classes(ckpt, cfg)
    return Subject(model, classes, checkpoint_preprocess(ckpt, cfg), f"upload:{key}", f"uploaded {file_name}",
                   classes == list(SHAPES_CLASSES))


def demo_trainer(residual: bool, data: DataBundle, runs_dir: Any) -> Trainer:
    """The one-click demo run (not started): ResNet-20, or its plain twin, on `data` (demos.SHAPES_DATA),
    with the app's one Shapes recipe (demos.SHAPES_TRAIN)."""
    preset = "resnet20" if residual else "plain20"
    model = build_model_for(get_preset(preset), data.num_classes, seed=0)
    return create_trainer(model, data, SHAPES_TRAIN, runs_dir=runs_dir, name=f"gradcam-demo-{preset}-shapes")


def randomization_granularity(model: nn.Module) -> tuple[str, int]:
    """("block" or "stage", number of blocks): past ~20 blocks (resnet50 has 16, resnet152 50) a
    block-by-block cascade takes minutes on a CPU, so whole stages are randomized at a time."""
    blocks = len(randomization_steps(model, "block")) - 2
    return ("block" if blocks <= 20 else "stage"), blocks


__all__ = [
    "COLORMAPS",
    "LAYER_METHODS",
    "METHODS",
    "METHOD_LABELS",
    "AttributionError",
    "Explanation",
    "RandomizationResult",
    "Subject",
    "built_subject",
    "checkpoint_subject",
    "colorize",
    "default_layer",
    "demo_trainer",
    "energy_inside",
    "explain",
    "explain_batch",
    "explaining",
    "localization_scores",
    "model_lock",
    "normalize_map",
    "numbered_classes",
    "occlusion_window",
    "overlay",
    "png_bytes",
    "pointing_game",
    "predict",
    "pretrained_subject",
    "randomization_check",
    "randomization_granularity",
    "randomization_steps",
    "rank",
    "resolve_layer",
    "run_is_residual",
    "run_subject",
    "shapes_pair",
    "shapes_runs",
    "spearman",
    "target_layers",
    "topk",
    "usable_runs",
]
