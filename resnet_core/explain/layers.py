"""Which layer to explain: Grad-CAM at every stage (and inside a block: after the addition or on the residual
branch alone), each with its map's resolution, its localization and its faithfulness, and which scores best.

A stage's map has the resolution of that stage's output (32, 16 and 8 px wide in a CIFAR ResNet at 32 px),
so an earlier stage can draw finer maps; a later stage's activations are the ones the classifier reads, so
its gradients say more directly what the class depends on. The numbers here let a model show which of the
two matters more for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .faithfulness import DEFAULT_BASELINE, DEFAULT_STEPS, Faithfulness, faithfulness_scores
from .methods import (
    AttributionError,
    as_batch,
    explain,
    explain_batch,
    explaining,
    predict,
    resolve_layer,
    stage_names,
)
from .trust import energy_inside, pointing_game
from .verdicts import layer_verdict

LAYER_KINDS = {
    "stage": "stage output",
    "after_add": "after the addition (the block's output)",
    "branch": "residual branch alone, before the addition",
    "block": "block output (a plain block: no addition)",
}


@dataclass
class LayerScore:
    """Grad-CAM at one layer, for one image."""

    layer: str  # module path, e.g. "layer3" or "layer3.2.bn2"
    kind: str  # a key of LAYER_KINDS
    label: str  # e.g. "layer3 (8×8)"
    resolution: tuple[int, int]  # the layer output's height and width: the map's own resolution
    map: Tensor  # H x W, upsampled to the image's size
    faithfulness: Faithfulness
    pointing_game: float | None = None  # None: no object mask given
    energy_inside: float | None = None
    same_as: str | None = None  # the stage whose output this layer's is (a stage's last block): the same map

    def record(self) -> dict[str, Any]:
        """A flat dict for a table (the map and the curves left out)."""
        f = self.faithfulness
        return {"layer": self.layer, "kind": self.kind, "label": self.label,
                "resolution": f"{self.resolution[0]}×{self.resolution[1]}", "height": self.resolution[0],
                "width": self.resolution[1], "pointing_game": self.pointing_game, "energy_inside": self.energy_inside,
                "deletion_auc": f.deletion.auc, "insertion_auc": f.insertion.auc, "faithfulness": f.score,
                "average_drop": f.average_drop, "same_as": self.same_as}


@dataclass
class LayerReport:
    """Grad-CAM at several layers of one model on one image, and which layer scores best."""

    rows: list[LayerScore]
    best: str | None  # None for one image, which decides nothing (verdicts.layer_verdict over several images)
    sentence: str  # this image's numbers, and that one image decides nothing
    target: int
    probability: float
    baseline: str
    seconds: float

    def records(self) -> list[dict[str, Any]]:
        return [r.record() for r in self.rows]

    def row(self, layer: str) -> LayerScore:
        for r in self.rows:
            if r.layer == layer:
                return r
        raise KeyError(layer)


def block_names(model: nn.Module) -> list[str]:
    """Every block's module path, input to output ("layer1.0", ...), for a picker of `block=`."""
    return [f"{stage}.{name}" for stage in stage_names(model) for name, _ in getattr(model, stage).named_children()]


def block_layers(model: nn.Module, block: str, image: Tensor) -> list[tuple[str, str]]:
    """(module path, kind) of the layers inside `block` worth comparing: its output after the addition, and
    the residual branch's last module (the BN, or the conv in a pre-activation block) before it. A plain
    block has no addition, so only its output is given.

    The branch's end is found by running `image` once and watching the block's own modules: the last one to
    run before the addition, skipping the shortcut's projection and, in a post-activation block, the ReLU
    after the addition. That covers this app's blocks and torchvision's (whose one ReLU runs twice).
    """
    _, module = resolve_layer(model, block)
    if block not in block_names(model):
        raise AttributionError(f"{block!r} is not a block of this model; choose one of {block_names(model)[:6]}...")
    if getattr(module, "residual", True) is False:
        return [(block, "block")]
    order: list[str] = []
    _watch(model, image, [(child, lambda *_, n=name: order.append(n))  # append gives None: the output stays
                          for name, child in module.named_children() if name not in ("downsample", "shortcut")])
    if order and isinstance(module.get_submodule(order[-1]), nn.ReLU):
        order = order[:-1]  # post-activation: that ReLU runs after the addition
    if not order:
        return [(block, "after_add")]
    return [(block, "after_add"), (f"{block}.{order[-1]}", "branch")]


def output_sizes(model: nn.Module, image: Tensor, layers: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Each layer's output height and width for this image (one forward pass)."""
    sizes: dict[str, tuple[int, int]] = {}

    def seen(name: str) -> Any:
        def hook(_module: nn.Module, _inputs: Any, out: Any) -> None:  # returning a value would replace the output
            if name not in sizes and isinstance(out, Tensor):
                sizes[name] = tuple(out.shape[-2:]) if out.dim() == 4 else (1, 1)
        return hook

    _watch(model, image, [(resolve_layer(model, name)[1], seen(name)) for name in layers])
    missing = [name for name in layers if name not in sizes]
    if missing:
        raise AttributionError(f"layer(s) {missing} did not run in the model's forward pass")
    return {name: (int(sizes[name][0]), int(sizes[name][1])) for name in layers}


def _watch(model: nn.Module, image: Tensor, hooks: Sequence[tuple[nn.Module, Any]]) -> None:
    """One forward pass of `image` with forward hooks on, registered under the model's lock so that no other
    explanation running on a shared model sees them, and removed however the pass ends."""
    with explaining(model), torch.no_grad():
        handles = [module.register_forward_hook(hook) for module, hook in hooks]
        try:
            model(as_batch(model, image)[:1])
        finally:
            for h in handles:
                h.remove()


def layer_scores(model: nn.Module, image: Tensor, target: int | None = None, mask: Tensor | None = None,
                 block: str | None = None, layers: Sequence[str] | None = None,
                 baseline: str | Tensor = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS,
                 own_data: bool = True, computed: Mapping[str, Tensor] | None = None) -> LayerReport:
    """Grad-CAM at every stage of `model` (or at `layers`), plus inside `block` if given, on one image.

    Each row has the map's own resolution, the pointing game and energy inside `mask` (an H x W boolean
    object mask, e.g. from Shapes; None leaves them out), and the deletion / insertion areas with pixels
    removed towards `baseline` ("mean": the dataset mean, 0 after normalisation; "blur"; or an image; see
    faithfulness.faithfulness_scores). `target`: the class explained, None = the prediction. Which layer is
    most faithful (insertion minus deletion area) is a verdict over several images: `layer_verdict` of several
    reports' rows (see `layer_reports`); one image names none. `own_data=False`: the image is not from the
    model's dataset. `computed`: Grad-CAM maps already made (layer -> H x W), reused.
    """
    start = time.perf_counter()
    x = as_batch(model, image)[:1]
    names: list[tuple[str, str]] = [(n, "stage") for n in (layers if layers is not None else stage_names(model))]
    if not names:
        raise AttributionError("the model has no stages to compare; pass layers=[...] (module paths)")
    if block is not None:
        names += block_layers(model, block, x)
    if target is None:
        target = int(predict(model, x)[0].argmax())
    sizes = output_sizes(model, x, [n for n, _ in names])
    # The last block of a stage gives the stage's own output: one map, computed once, shown under both names.
    same = {n: _same_output(model, n, [s for s, k in names if k == "stage"]) for n, k in names if k != "stage"}
    maps: dict[str, Tensor] = {}
    for name, _ in names:
        if same.get(name):
            maps[name] = maps[same[name]]
        else:
            maps[name] = computed[name] if computed and name in computed else explain(
                model, x, "gradcam", target=target, layer=name)
    unique = {n: m for n, m in maps.items() if not same.get(n)}
    faithful = faithfulness_scores(model, x, unique, target=target, baseline=baseline, steps=steps,
                                   labels={n: n for n in unique})
    rows = []
    for name, kind in names:
        h, w = sizes[name]
        label = f"{name} ({h}×{w})" if kind == "stage" else _block_label(name, kind, h, w)
        row = LayerScore(name, kind, label, (h, w), maps[name], faithful[same.get(name) or name],
                         same_as=same.get(name))
        if mask is not None:
            m = torch.as_tensor(mask).bool().reshape(maps[name].shape)
            row.pointing_game = float(pointing_game(maps[name], m)[0])
            row.energy_inside = float(energy_inside(maps[name], m)[0])
        rows.append(row)
    said = layer_verdict([rows], own_data=own_data)
    first = rows[0].faithfulness
    return LayerReport(rows, said.best, said.sentence, int(target), first.probability, first.baseline,
                       time.perf_counter() - start)


def layer_reports(model: nn.Module, images: Tensor, targets: Sequence[int],
                  masks: Sequence[Tensor | None] | None = None, block: str | None = None,
                  baseline: str | Tensor = DEFAULT_BASELINE, steps: int = DEFAULT_STEPS) -> list[LayerReport]:
    """`layer_scores` of each of N images (one target and one mask or None each), each layer's Grad-CAM made for
    all the images in one batch; give their rows to `layer_verdict` for what they support together."""
    x = as_batch(model, images)
    if len(targets) != x.shape[0]:
        raise AttributionError(f"{x.shape[0]} images but {len(targets)} targets")
    targets = [int(t) for t in targets]
    masks = list(masks) if masks is not None else [None] * len(targets)
    names = list(stage_names(model)) + ([n for n, _ in block_layers(model, block, x[:1])] if block else [])
    batched = {name: explain_batch(model, x, "gradcam", targets, name).maps for name in names}
    return [layer_scores(model, x[i], targets[i], masks[i], block, baseline=baseline, steps=steps,
                         computed={name: maps[i] for name, maps in batched.items()})
            for i in range(len(targets))]


def _same_output(model: nn.Module, layer: str, stages: Sequence[str]) -> str | None:
    """The stage among `stages` whose output is `layer`'s own (a stage's last block), else None."""
    module = resolve_layer(model, layer)[1]
    for stage in stages:
        children = list(resolve_layer(model, stage)[1].children())
        if children and children[-1] is module:
            return stage
    return None


def _block_label(name: str, kind: str, h: int, w: int) -> str:
    if kind == "branch":
        block, _, last = name.rpartition(".")
        return f"{block} residual branch ({last}, {h}×{w})"
    return f"{name} {'after the addition' if kind == 'after_add' else 'output'} ({h}×{w})"
