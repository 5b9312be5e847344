"""The Grad-CAM page's trust views for the image in the close-up: Grad-CAM layer by layer ("Which layer?"), and
the trust table (localization, faithfulness, sensitivity to the weights, with reference maps as rows).

The numbers and their sentences come from resnet_core.explain (layers, trust_table), the figures from
resnet_core.charts; what is here is widgets, layout and the page's words. Both views compute inline, memoised
per session: on the Shapes models they take about a second each here, so they show on the page's first open.
A model whose estimate (from the page's own timed Grad-CAM pass) exceeds AUTO_COMPUTE_S waits for a button that
says how long it takes, as the page's localization check does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import streamlit as st
import torch
from PIL import Image
from torch import Tensor

from resnet_core.charts import deletion_insertion_figure, trust_figure
from resnet_core.data import ImageSet, Preprocess, prepare_uint8, tensor_digest
from resnet_core.estimates import format_duration
from resnet_core.explain import (
    DEFAULT_BASELINE,
    DEFAULT_STEPS,
    LAYER_METHODS,
    METHOD_LABELS,
    SENSITIVE_RHO,
    AttributionError,
    LayerReport,
    Subject,
    TrustRow,
    TrustTable,
    baseline_label,
    block_names,
    layer_scores,
    overlay,
    stage_names,
    trust_table,
)
from resnet_core.explain.costs import layer_view_seconds, trust_table_seconds
from resnet_core.explain.layers import layer_reports
from resnet_core.explain.trust_table import trust_tables
from resnet_core.explain.verdicts import (
    ONE_IMAGE,
    LayerVerdict,
    TrustVerdict,
    layer_verdict,
    localization_sentence,
    trust_verdict,
)
from resnet_core.model.summary import UNIT_SPACE
from resnet_core.share import escape_markdown
from resnet_core.stats import Interval, mean_interval
from ui.charts import chart
from ui.memo import memo_get
from ui.tables import wrapping_table

T = TypeVar("T")

# A check on the Grad-CAM page (these views, the localization score) computes by itself when its estimate here is
# at most this long; a longer one waits for a button that says its time.
AUTO_COMPUTE_S = 8.0
GRANULARITY = "stage"  # the trust table randomizes a stage at a time: 5 steps for a CIFAR ResNet, not 11
_MEMO = "gc_trust_memo"  # its own small memo, so the page can tell a result already computed from one to ask for
NO_MASK = "no mask"
# Verdicts (which method, which layer) are read over at most this many images from the model's dataset: 8 keep
# both checks within seconds on 2 CPU cores, and on the bundled model they already separate Grad-CAM from the
# reference maps by several times the interval.
VERDICT_IMAGES = 8


@dataclass(frozen=True)
class VerdictImages:
    """The images a verdict is read over: the close-up's first (unless it is not from the model's dataset), then
    the model's held-out images (a Shapes model's check set) or the gallery's other images from its dataset, each
    with the class it is explained for (its true class where known, else the prediction) and its mask (None
    where unknown)."""

    images: Tensor
    targets: tuple[int, ...]
    masks: tuple[Tensor | None, ...]
    keys: tuple[str, ...]
    own_data: bool  # whether the close-up image is from the model's dataset; if not, nothing is decided

    def __len__(self) -> int:
        return len(self.targets)


def verdict_images(batch: Tensor, probs: Tensor, labels: Sequence[int | None], meaningful: Sequence[bool],
                   masks: Sequence[Tensor | None], keys: Sequence[str], index: int, held_out: ImageSet | None = None,
                   pre: Preprocess | None = None) -> VerdictImages:
    """The close-up image (`index`), then up to VERDICT_IMAGES - 1 more: the model's held-out images with their
    masks where it has them (`held_out`, a Shapes check set, normalised with `pre`), else the gallery's other
    meaningful images."""
    images, targets, fitted, chosen_keys = [], [], [], []

    def add(x: Tensor, target: int, mask: Tensor | None, key: str) -> None:
        if len(targets) < VERDICT_IMAGES and key not in chosen_keys:
            images.append(x)
            targets.append(int(target))
            fitted.append(_mask_for(x, mask))
            chosen_keys.append(key)

    def target_of(i: int) -> int:
        return int(labels[i]) if labels[i] is not None else int(probs[i].argmax())

    if meaningful[index]:
        add(batch[index], target_of(index), masks[index], keys[index])
    if held_out is not None and pre is not None:
        extra = prepare_uint8(held_out.images[:VERDICT_IMAGES], pre)
        for x, label, mask in zip(extra, held_out.labels.tolist(), held_out.masks[:VERDICT_IMAGES]):
            add(x, label, mask, tensor_digest(x))
    for i in range(len(keys)):
        if meaningful[i]:
            add(batch[i], target_of(i), masks[i], keys[i])
    stacked = torch.stack(images) if images else batch[:0]
    return VerdictImages(stacked, tuple(targets), tuple(fitted), tuple(chosen_keys), bool(meaningful[index]))


def _mask_for(x: Tensor, mask: Tensor | None) -> Tensor | None:
    """The object mask when it matches the image the model sees (a Shapes image), else None."""
    return mask if mask is not None and tuple(mask.shape[-2:]) == tuple(x.shape[-2:]) else None


def _measured(key: tuple, compute: Callable[[], T], estimate: float, label: str, button_key: str,
              what: str) -> T | None:
    """`compute()` memoised under `key`; at once when it was computed before or is quick here, else after a
    click on a button that says how long it takes. None (with a message) when it fails or is not asked for."""
    memo = st.session_state.get(_MEMO) or {}
    took = format_duration(estimate)
    if key not in memo and estimate > AUTO_COMPUTE_S and not st.button(f"{label} ({took})", key=button_key):
        return None
    try:
        with st.spinner(f"Computing {what} ({took})..."):
            return memo_get(key, compute, name=_MEMO, limit=8)
    except (AttributionError, RuntimeError, ValueError) as exc:
        st.error(f"Computing {what} failed: {escape_markdown(exc)}")
        return None


NO_MASK_WORDS = f"Localization needs the object's mask, known only for Shapes images: '{NO_MASK}' for this one."
# The tables' short headers, explained under each table (ui.tables).
COLUMN_HELP = {
    "peak inside": "whether the map's highest pixel lies on the object (the pointing game, on one image)",
    "energy inside %": "the share of the map's total that lies on the object; a uniform map scores the object's area",
    "deletion ↓": "area under the deletion curve: the class's probability as the map's most important pixels are "
                  "removed first (lower is better)",
    "insertion ↑": "area under the insertion curve: the class's probability as they are put back first (higher is "
                   "better)",
    "ins − del ↑": "insertion area minus deletion area: one faithfulness number, about 0 for a map in random order",
    "Avg Drop %": "Average Drop: how much the class's probability falls on the image multiplied by the map scaled "
                  "to [0, 1] (lower is better)",
    "Incr. Conf. %": "Increase in Confidence: 100 when that product scores higher than the image itself, else 0",
    "rand. ρ": "mean Spearman rank correlation with the trained model's map while the weights are re-initialised "
               "from the head down (low: the map depends on the weights)",
    "faithful": "whether its ins − del beats every reference map's beyond the noise (the 95% interval of each "
                "difference, image by image, excludes 0)",
    "sensitive": f"whether its rand. ρ is below {SENSITIVE_RHO} beyond the noise",
}
UNDECIDED = "not decided"


def _located(pointing: float | None, energy: float | None) -> dict[str, Any]:
    if pointing is None or energy is None:
        return {"peak inside": NO_MASK, "energy inside %": NO_MASK}
    return {"peak inside": _yes(pointing >= 0.5), "energy inside %": round(100 * energy, 1)}


def _faithful(deletion: float, insertion: float, score: float) -> dict[str, float]:
    return {"deletion ↓": round(deletion, 3), "insertion ↑": round(insertion, 3), "ins − del ↑": round(score, 3)}


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _call(value: bool | None) -> str:
    return UNDECIDED if value is None else _yes(value)


def _interval(i: Interval | None, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
    return "—" if i is None else i.text(digits, scale, unit)


def _few_images(n: int, what: str) -> None:
    """Why there is no verdict over several images: the gallery holds too few of the model's own images."""
    have = "no image" if n == 0 else "one image"
    st.caption(f"There is {have} from the model's dataset here, and {ONE_IMAGE}: add images from it to the "
               f"gallery to decide {what} (up to {VERDICT_IMAGES} are used).")


def _rho(row: TrustRow) -> str:
    """Text, so that a reference map's cell shows a dash (a number column would show NaN): it reads no weights."""
    if row.reference:
        return "—"
    return "not measured" if row.randomization_rho is None else f"{row.randomization_rho:.2f}"


def layer_view(subject: Subject, x: Tensor, target: int, mask: Tensor | None, image_key: str, view: Image.Image,
               alpha: float, colormap: str, seconds_per_call: float, seconds_per_pass: float,
               held_out: VerdictImages) -> LayerReport | None:
    """Grad-CAM of the close-up's image and class at every stage (and inside one block), each with its map's
    resolution, localization and faithfulness; then the same over `held_out`, and which layer, if any, scores best
    beyond the noise."""
    st.subheader("Which layer? Grad-CAM at every stage")
    st.markdown(
        "The same image and class, Grad-CAM taken at the output of each stage. Each map has the resolution of its "
        "layer's output, named under it. **Faithful?** Remove the pixels in the map's order and the class's "
        "probability should fall fast (small deletion area); put them back in that order and it should rise fast "
        "(large insertion area): insertion − deletion is one number, higher is better, about 0 for a map in random "
        "order. Inside a block, the map after the addition (the block's output) is set against the map of the "
        "residual branch alone, before the shortcut is added.")
    model = subject.model
    blocks = block_names(model)
    stages = stage_names(model)
    last_stage = [b for b in blocks if b.startswith(f"{stages[-1]}.")] if stages else []
    options: list[str | None] = [None, *blocks]
    block = st.selectbox("Also look inside a block", options, key=f"gc_block_{subject.key}",
                         index=options.index(last_stage[0]) if last_stage else 0,
                         format_func=lambda b: "none: stages only" if b is None else b,
                         help="The first block of the last stage by default.")
    located = _mask_for(x, mask)
    layers = len(stages) + (2 if block else 0)
    estimate = layer_view_seconds(seconds_per_call, seconds_per_pass, layers, DEFAULT_STEPS)
    own = held_out.own_data
    report = _measured(("layers", subject.key, image_key, int(target), block, located is not None, own),
                       lambda: layer_scores(model, x, target=int(target), mask=located, block=block, own_data=own),
                       estimate, "Compare Grad-CAM at every stage", "gc_layers_button", "Grad-CAM at every layer")
    if report is None:
        return None

    panels = st.columns(max(3, len(report.rows)))
    for row, panel in zip(report.rows, panels):
        same = f" — the same map as {row.same_as}" if row.same_as else ""
        panel.image(overlay(view, row.map, alpha, colormap), caption=f"{row.label}{same}", width="stretch")
    wrapping_table([{"layer": r.label, "resolution": f"{r.resolution[0]}×{r.resolution[1]}",
                     **_located(r.pointing_game, r.energy_inside),
                     **_faithful(r.faithfulness.deletion.auc, r.faithfulness.insertion.auc, r.faithfulness.score)}
                    for r in report.rows], COLUMN_HELP)
    if located is None:
        st.caption(NO_MASK_WORDS)
    st.markdown(report.sentence)
    said = _layers_over_images(subject, block, held_out, seconds_per_pass, layers) if own else None
    stage_rows = [r for r in report.rows if r.kind == "stage"]
    if stage_rows:
        last = stage_rows[-1]
        if said is None or said.best is None:
            agree = ("Which layer is most faithful for this model is not decided here: that needs several images "
                     "from its dataset and a difference beyond the noise." if own else "")
        elif said.best == last.layer:
            agree = (f"Over these {said.n} images the numbers agree: the last stage's map is the most faithful, "
                     "beyond the noise.")
        else:
            best = said.standing(said.best)
            agree = (f"Over these {said.n} images the numbers differ: {best.label} is more faithful than the last "
                     f"stage beyond the noise ({best.faithfulness.text()} against "
                     f"{said.standing(last.layer).faithfulness.text()}).")
        st.caption(
            f"Why the last stage is the usual choice: it is the coarsest map ({last.label} for this "
            f"{subject.pre.image_size}-px input; the last stage of He et al.'s CIFAR ResNets is 8×8 at "
            f"32{UNIT_SPACE}px, torchvision's 7×7 at 224{UNIT_SPACE}px), but its activations are the ones the "
            "classifier reads, through global average pooling and one linear layer, so the class score's gradient "
            "with respect to them says most "
            "directly what the class depends on; earlier stages draw finer maps of features that are not yet about "
            f"the class. {agree} Deletion and insertion here replace pixels with {baseline_label(DEFAULT_BASELINE)}; "
            f"computed in {report.seconds:.1f}{UNIT_SPACE}s here.")
    return report


def _layers_over_images(subject: Subject, block: str | None, held_out: VerdictImages, seconds_per_pass: float,
                        layers: int) -> LayerVerdict | None:
    """Each layer's scores over the verdict images, mean ± 95% interval, and which layer they support."""
    n = len(held_out)
    if n < 2:
        _few_images(n, "which layer is most faithful")
        return None
    # Each layer's maps are made for all the images in one batch: a pass per image, not a call.
    estimate = n * layer_view_seconds(seconds_per_pass, seconds_per_pass, layers, DEFAULT_STEPS)
    reports = _measured(("layers-set", subject.key, held_out.keys, held_out.targets, block),
                        lambda: layer_reports(subject.model, held_out.images, held_out.targets, held_out.masks, block),
                        estimate, f"Compare the layers over {n} images", "gc_layers_set_button",
                        f"Grad-CAM at every layer of {n} images")
    if reports is None:
        return None
    said = layer_verdict([r.rows for r in reports])
    located = all(m is not None for m in held_out.masks)
    st.markdown(f"**Over {n} images from the model's dataset** (the close-up's first, then held-out ones; mean ± "
                "95% interval): a layer is named best only when it beats every other layer beyond the noise.")
    wrapping_table([{"layer": s.label, "ins − del ↑ (mean ± 95%)": _interval(s.faithfulness),
                     **({"energy inside % (mean ± 95%)": _interval(s.energy_inside, 0, 100)} if located else {})}
                    for s in said.standings], COLUMN_HELP)
    st.markdown(said.sentence)
    return said


def trust_view(subject: Subject, x: Tensor, target: int, mask: Tensor | None, image_key: str,
               methods: Sequence[str], layer: str, maps: Mapping[str, Tensor], seconds_per_call: float,
               seconds_per_pass: float, held_out: VerdictImages) -> TrustTable | None:
    """Deletion and insertion curves of the close-up's maps and of the reference maps, then the trust table:
    localization, faithfulness and sensitivity to the weights for each, on this image and over `held_out`, with
    the sentence computed from them. `maps`: maps of this image already computed with default options (reused)."""
    methods = list(methods) or ["gradcam"]
    st.markdown(
        "**Is it what the model uses?** Faithfulness, on the image in the close-up: deletion and insertion curves "
        "(lower deletion area and higher insertion area are better), Average Drop (how much the class's "
        "probability falls when the image is multiplied by the map, scaled to [0, 1]; lower is better) and "
        "Increase in Confidence (whether it rises instead). Three maps that know nothing of the model are the "
        "yardsticks: a **random** map, a **uniform** one and **Sobel** edges of the picture. A method that does "
        "no better than them explains nothing about the model.")
    located = _mask_for(x, mask)
    size = tuple(x.shape[-2:])
    estimate = trust_table_seconds(seconds_per_call, seconds_per_pass, subject.model, methods, size, DEFAULT_STEPS,
                                   GRANULARITY, computed=list(maps))
    own = held_out.own_data
    key = ("trust", subject.key, image_key, int(target), tuple(methods), layer, located is not None, own)
    table = _measured(key, lambda: trust_table(
        subject.model, x, target=int(target), mask=located, methods=methods, layer=layer, granularity=GRANULARITY,
        mean=subject.pre.mean, std=subject.pre.std, maps={m: maps[m] for m in methods if m in maps}, own_data=own),
        estimate, f"Score {', '.join(METHOD_LABELS[m] for m in methods)} against the reference maps",
        "gc_trust_button", "the trust table")
    if table is None:
        return None

    records = [f.record() for f in table.faithfulness_results.values()]
    chart(deletion_insertion_figure(records, baseline=baseline_label(DEFAULT_BASELINE),
                                    revision=f"deletion-{subject.key}"), key="gc_deletion_chart")
    st.markdown("**One table: all three checks on this image.** Localization (does the map's peak lie on the "
                "object, and how much of its energy), faithfulness (the curves above, Average Drop and Increase in "
                "Confidence) and sensitivity to the weights (the mean Spearman ρ between the map and the trained "
                "model's while the weights are re-initialised from the head down; reference maps never read the "
                "weights, so they have none).")
    wrapping_table([{"map": r.label, **_located(r.pointing_game, r.energy_inside),
                     **_faithful(r.deletion_auc, r.insertion_auc, r.faithfulness),
                     "Avg Drop %": round(r.average_drop, 1), "Incr. Conf. %": round(r.increase_in_confidence),
                     "rand. ρ": _rho(r)} for r in table.rows], COLUMN_HELP)
    st.markdown(table.sentence)
    said = _trust_over_images(subject, methods, layer, held_out, seconds_per_pass) if own else None
    if said is not None:
        chart(trust_figure([s.record() for s in said.standings], sensitive_below=SENSITIVE_RHO, n=said.n,
                           revision=f"trust-{subject.key}"), key="gc_trust_chart")
    else:
        chart(trust_figure(table.records(), sensitive_below=SENSITIVE_RHO, revision=f"trust-{subject.key}"),
              key="gc_trust_chart")
    steps = " → ".join(table.randomization_steps[1:])
    layered = [METHOD_LABELS[m] for m in methods if m in LAYER_METHODS]
    at_layer = f", {' and '.join(layered)} at {escape_markdown(layer)}" if layered else ""
    mask_words = "" if located is not None else f" {NO_MASK_WORDS}"
    st.caption(
        f"Class explained: {escape_markdown(subject.classes[table.target])} ({100 * table.probability:.1f}%)"
        f"{at_layer}. Curves: {DEFAULT_STEPS} steps of "
        f"{100 / DEFAULT_STEPS:.0f}% of the pixels, removed pixels replaced with {table.baseline}. Randomization: a "
        f"stage at a time ({steps}); ρ is averaged over the steps. The methods are those chosen above; add one "
        f"there to add its row.{mask_words} Computed in {table.seconds['total']:.1f}{UNIT_SPACE}s here.")
    return table


def _trust_over_images(subject: Subject, methods: Sequence[str], layer: str, held_out: VerdictImages,
                       seconds_per_pass: float) -> TrustVerdict | None:
    """The trust table's scores over the verdict images, mean ± 95% interval, and the verdict they support."""
    n = len(held_out)
    if n < 2:
        _few_images(n, "whether a method is faithful and sensitive to the weights")
        return None
    size = tuple(held_out.images.shape[-2:])
    # The maps and the cascade run batched over the images, so each image costs a pass in a batch, not a call.
    estimate = n * trust_table_seconds(seconds_per_pass, seconds_per_pass, subject.model, methods, size,
                                       DEFAULT_STEPS, GRANULARITY)
    tables = _measured(("trust-set", subject.key, held_out.keys, held_out.targets, tuple(methods), layer),
                       lambda: trust_tables(subject.model, held_out.images, held_out.targets, held_out.masks,
                                            methods, layer, granularity=GRANULARITY, mean=subject.pre.mean,
                                            std=subject.pre.std),
                       estimate, f"Score the methods over {n} images", "gc_trust_set_button",
                       f"the trust table of {n} images")
    if tables is None:
        return None
    said = trust_verdict([t.rows for t in tables])
    located = all(m is not None for m in held_out.masks)
    st.markdown(f"**Over {n} images from the model's dataset** (the close-up's first, then held-out ones, each "
                "explained for its true class where known; mean ± 95% interval): a method is called faithful or "
                "sensitive only when the difference is larger than its interval.")
    wrapping_table([{"map": s.label,
                     **({"peak inside % (mean ± 95%)": _interval(s.pointing_game, 0, 100)} if located else {}),
                     "ins − del ↑ (mean ± 95%)": _interval(s.faithfulness),
                     "rand. ρ (mean ± 95%)": _interval(s.rho),
                     "faithful": "—" if s.reference else _call(s.faithful),
                     "sensitive": "—" if s.reference else _call(s.sensitive)}
                    for s in said.standings], COLUMN_HELP)
    st.markdown(said.sentence)
    return said


def localization_records(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The localization check's table: each method's pointing game and energy share, mean and 95% interval."""
    out = []
    for r in rows:
        pointing, energy = (mean_interval(r["per_image"][k]) for k in ("pointing_game", "energy_inside"))
        out.append({"method": r["label"], "pointing game %": round(100 * r["pointing_game"], 1),
                    "± 95% (points)": round(100 * pointing.half_width, 1) if pointing.known else None,
                    "energy inside %": round(100 * r["energy_inside"], 1),
                    "± 95% (points) ": round(100 * energy.half_width, 1) if energy.known else None, "images": r["n"]})
    return out


def localization_caption(rows: Sequence[Mapping[str, Any]], seconds: float) -> str:
    """What the localization rows show, each mean with its interval, ranked only beyond the noise."""
    said = localization_sentence(rows, METHOD_LABELS)
    return f"{said} Scored in {format_duration(seconds)}." if said else ""


def reusable_maps(maps: Mapping[str, Tensor], options: Mapping[str, Any]) -> dict[str, Tensor]:
    """The close-up's maps the trust table can reuse: those made with default options (its randomized maps
    use the defaults, so a map made with other options would not be compared like with like)."""
    return {m: cam for m, cam in maps.items() if not options.get(m)}
