"""Captum attribution methods on a model: safe to call on shared models, one map per image."""

from __future__ import annotations

import math
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from captum.attr import (
    GuidedGradCam,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import Tensor, nn

from ..device import device_of
from .registry import (
    AttributionError,
    Method,
    get_method,
    layer_methods,
    method_labels,
    method_names,
    register_method,
    repeatable_methods,
)

# Captum announces, on every guided-backprop call, that it hooks ReLUs and removes the hooks after:
# we know (and check it), so keep the console for real problems.
warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU activations", category=UserWarning)



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




def as_batch(model: nn.Module, images: Tensor) -> Tensor:
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
    return images.detach().to(device_of(model), torch.float32).clone()


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
    stages = stage_names(model)
    if stages:
        return stages[-1]
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise AttributionError("the model has no convolutional layer to explain")
    return convs[-1]


def stage_names(model: nn.Module) -> list[str]:
    names = getattr(model, "stage_names", None)
    if names:
        return list(names)
    # torchvision's ResNet has the same layerK attributes but no stage_names.
    return [n for n in (f"layer{i}" for i in range(1, 9)) if isinstance(getattr(model, n, None), nn.Module)]


def target_layers(model: nn.Module) -> list[str]:
    """Layers a map can be computed at, for a picker: default stage first, then every stage,
    block and convolution from the output back to the stem."""
    names: list[str] = []
    for stage in reversed(stage_names(model)):
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
            raise AttributionError(f"target class {t} is out of range: the model has {classes} classes "
                                   f"(0-{classes - 1})")
    return targets


# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------


def predict(model: nn.Module, batch: Tensor) -> Tensor:
    """Class probabilities (softmax), N x classes (or classes for a single 3 x H x W image), on the CPU."""
    single = isinstance(batch, Tensor) and batch.dim() == 3
    x = as_batch(model, batch)
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
    native_size: tuple[int, int] | None = None  # Grad-CAM: the layer's map size before upsampling to the image


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
    entry = get_method(method)
    layer_name, layer_module = resolve_layer(model, layer) if entry.needs_layer else (None, None)
    with explaining(model):
        # Copied inside: a tensor made under inference_mode cannot take part in autograd.
        x = as_batch(model, images)
        if targets is not None:
            targets = _check_targets(model, targets, x.shape[0])
        maps, used, native = entry.run(model, x, targets, layer_module, dict(opts))
    maps = torch.nan_to_num(maps.detach().float()).cpu()
    return Explanation(maps=maps, targets=[int(t) for t in used], method=method, layer=layer_name, native_size=native)


def _single_forward_method(model: nn.Module, x: Tensor, method: str, targets: list[int] | None,
                           layer: nn.Module | None, opts: dict[str, Any]
                           ) -> tuple[Tensor, list[int], tuple[int, int] | None]:
    """Grad-CAM, Guided Grad-CAM and saliency: the prediction comes from the same forward pass.
    Returns the maps, the classes explained and (Grad-CAM) the layer map's size before upsampling."""
    if opts:
        raise AttributionError(f"{method} takes no options, got {sorted(opts)}")
    if method != "gradcam":
        x.requires_grad_()  # captum would do it too, with a warning per call
    if targets is None:
        forward: nn.Module = _PredictedLogit(model)
        captum_target: Any = 0
    else:
        forward, captum_target = model, targets
    native = None
    if method == "gradcam":
        raw = LayerGradCam(forward, layer).attribute(x, target=captum_target, relu_attributions=True)
        if raw.dim() != 4:
            raise AttributionError("Grad-CAM needs a convolutional layer (a stage, block or conv), "
                                   f"whose output is N x C x H x W; this one gives {raw.dim()}-D output")
        native = (int(raw.shape[-2]), int(raw.shape[-1]))
        maps = LayerAttribution.interpolate(raw, tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0]
        maps = maps.clamp_min(0)  # bilinear interpolation of >= 0 values stays >= 0; guard rounding
    elif method == "guided_gradcam":
        raw = GuidedGradCam(forward, layer).attribute(x, target=captum_target, interpolate_mode="bilinear")
        maps = raw.abs().sum(dim=1)
    else:
        maps = Saliency(forward).attribute(x, target=captum_target, abs=True).sum(dim=1)
    used = forward.classes.tolist() if isinstance(forward, _PredictedLogit) else targets
    return maps, used, native


def _on_predicted(runner: Callable[[nn.Module, Tensor, list[int], dict[str, Any]], Tensor]):
    """A runner that needs the classes up front: the predicted ones when none are given (one extra forward)."""
    def run(model: nn.Module, x: Tensor, targets: list[int] | None, _layer: nn.Module | None,
            opts: dict[str, Any]) -> tuple[Tensor, list[int], None]:
        if targets is None:
            with torch.no_grad():
                targets = model(x).argmax(dim=1).tolist()
        return runner(model, x, targets, opts), targets, None
    return run


def _single_forward(method: str):
    def run(model: nn.Module, x: Tensor, targets: list[int] | None, layer: nn.Module | None,
            opts: dict[str, Any]) -> tuple[Tensor, list[int], tuple[int, int] | None]:
        return _single_forward_method(model, x, method, targets, layer, opts)
    return run


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


FORWARD_SHARE = 0.4  # a forward pass alone, as a share of a forward and backward pass


def _occlusion_passes(height: int, width: int, options: Mapping[str, Any]) -> float:
    window, stride = occlusion_window(height, width)
    window, stride = int(options.get("window", window)), int(options.get("stride", stride))
    places = (math.floor((height - window) / stride) + 1) * (math.floor((width - window) / stride) + 1)
    return (places + 1) * FORWARD_SHARE


def _ig_passes(_height: int, _width: int, options: Mapping[str, Any]) -> float:
    return float(int(options.get("n_steps", 32)) * max(1, int(options.get("smoothgrad_samples", 0))))


# The built-in methods (Okabe-Ito colours). A new method: one register_method call with its runner.
register_method(Method("gradcam", "Grad-CAM", True, lambda h, w, o: 1.0, _single_forward("gradcam"), "#0072B2"))
register_method(Method("guided_gradcam", "Guided Grad-CAM", True, lambda h, w, o: 2.0,  # Grad-CAM, then guided BP
                       _single_forward("guided_gradcam"), "#D55E00"))
register_method(Method("integrated_gradients", "Integrated Gradients", False, _ig_passes,
                       _on_predicted(_integrated_gradients), "#009E73"))
register_method(Method("saliency", "Saliency", False, lambda h, w, o: 1.0, _single_forward("saliency"), "#CC79A7"))
register_method(Method("occlusion", "Occlusion", False, _occlusion_passes, _on_predicted(_occlusion), "#E69F00",
                       repeatable=False))  # about 50 forward passes per image: too slow to repeat per layer

# Read-only views of the registry, for the code that lists them (the registry itself is the one source).
METHODS: tuple[str, ...] = method_names()
METHOD_LABELS: dict[str, str] = method_labels()
LAYER_METHODS: tuple[str, ...] = layer_methods()
REPEATABLE_METHODS: tuple[str, ...] = repeatable_methods()
