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
from typing import Any, TypeVar

import streamlit as st
from PIL import Image
from torch import Tensor

from resnet_core.charts import deletion_insertion_figure, trust_figure
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
from resnet_core.share import escape_markdown
from ui.charts import chart
from ui.memo import memo_get

T = TypeVar("T")

# A check on the Grad-CAM page (these views, the localization score) computes by itself when its estimate here is
# at most this long; a longer one waits for a button that says its time.
AUTO_COMPUTE_S = 8.0
GRANULARITY = "stage"  # the trust table randomizes a stage at a time: 5 steps for a CIFAR ResNet, not 11
_MEMO = "gc_trust_memo"  # its own small memo, so the page can tell a result already computed from one to ask for
NO_MASK = "no mask"


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
# The tables' short headers, explained where the reader points at them.
COLUMN_HELP = {
    "peak inside": st.column_config.Column(help="Whether the map's highest pixel lies on the object (the "
                                                   "pointing game, on one image)"),
    "energy inside %": st.column_config.Column(help="The share of the map's total that lies on the object; a "
                                                       "uniform map scores the object's area"),
    "deletion ↓": st.column_config.Column(help="Area under the deletion curve: the class's probability as the "
                                               "map's most important pixels are removed first (lower is better)"),
    "insertion ↑": st.column_config.Column(help="Area under the insertion curve: the class's probability as they "
                                                "are put back first (higher is better)"),
    "ins − del ↑": st.column_config.Column(help="Insertion area minus deletion area: one faithfulness number, "
                                                "about 0 for a map in random order"),
    "Avg Drop %": st.column_config.Column(help="Average Drop: how much the class's probability falls on the image "
                                               "multiplied by the map scaled to [0, 1] (lower is better)"),
    "Incr. Conf. %": st.column_config.Column(help="Increase in Confidence: 100 when that product scores higher than "
                                                  "the image itself, else 0"),
    "rand. ρ": st.column_config.Column(help="Mean Spearman rank correlation with the trained model's map while the "
                                            "weights are re-initialised from the head down (low: the map depends "
                                            "on the weights)"),
    "faithful": st.column_config.Column(help="Whether its ins − del beats every reference map's"),
    "sensitive": st.column_config.Column(help=f"Whether its rand. ρ is below {SENSITIVE_RHO}"),
}


def _located(pointing: float | None, energy: float | None) -> dict[str, Any]:
    if pointing is None or energy is None:
        return {"peak inside": NO_MASK, "energy inside %": NO_MASK}
    return {"peak inside": _yes(pointing >= 0.5), "energy inside %": round(100 * energy, 1)}


def _faithful(deletion: float, insertion: float, score: float) -> dict[str, float]:
    return {"deletion ↓": round(deletion, 3), "insertion ↑": round(insertion, 3), "ins − del ↑": round(score, 3)}


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _rho(row: TrustRow) -> str:
    """Text, so that a reference map's cell shows a dash (a number column would show NaN): it reads no weights."""
    if row.reference:
        return "—"
    return "not measured" if row.randomization_rho is None else f"{row.randomization_rho:.2f}"


def layer_view(subject: Subject, x: Tensor, target: int, mask: Tensor | None, image_key: str, view: Image.Image,
               alpha: float, colormap: str, seconds_per_call: float, seconds_per_pass: float) -> LayerReport | None:
    """Grad-CAM of the close-up's image and class at every stage (and inside one block), each with its map's
    resolution, localization and faithfulness, and which layer scores best here."""
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
    report = _measured(("layers", subject.key, image_key, int(target), block, located is not None),
                       lambda: layer_scores(model, x, target=int(target), mask=located, block=block),
                       estimate, "Compare Grad-CAM at every stage", "gc_layers_button", "Grad-CAM at every layer")
    if report is None:
        return None

    panels = st.columns(max(3, len(report.rows)))
    for row, panel in zip(report.rows, panels):
        same = f" — the same map as {row.same_as}" if row.same_as else ""
        panel.image(overlay(view, row.map, alpha, colormap), caption=f"{row.label}{same}", width="stretch")
    st.dataframe([{"layer": r.label, "resolution": f"{r.resolution[0]}×{r.resolution[1]}",
                   **_located(r.pointing_game, r.energy_inside),
                   **_faithful(r.faithfulness.deletion.auc, r.faithfulness.insertion.auc, r.faithfulness.score)}
                  for r in report.rows], hide_index=True, column_config=COLUMN_HELP)
    if located is None:
        st.caption(NO_MASK_WORDS)
    st.markdown(report.sentence)
    stage_rows = [r for r in report.rows if r.kind == "stage"]
    if stage_rows:
        last = stage_rows[-1]
        agree = ("On this image the numbers agree: the last stage's map is the most faithful."
                 if report.best == last.layer else
                 f"On this image the numbers differ: {report.row(report.best).label} is more faithful than the last "
                 f"stage ({report.row(report.best).faithfulness.score:.2f} against {last.faithfulness.score:.2f}).")
        st.caption(
            f"Why the last stage is the usual choice: it is the coarsest map ({last.label} for this "
            f"{subject.pre.image_size}-px input; the last stage of He et al.'s CIFAR ResNets is 8×8 at 32 px, "
            "torchvision's 7×7 at 224 px), but its activations are the ones the classifier reads, through global "
            "average pooling and one linear layer, so the class score's gradient with respect to them says most "
            "directly what the class depends on; earlier stages draw finer maps of features that are not yet about "
            f"the class. {agree} Deletion and insertion here replace pixels with {baseline_label(DEFAULT_BASELINE)}; "
            f"computed in {report.seconds:.1f} s here.")
    return report


def trust_view(subject: Subject, x: Tensor, target: int, mask: Tensor | None, image_key: str,
               methods: Sequence[str], layer: str, maps: Mapping[str, Tensor], seconds_per_call: float,
               seconds_per_pass: float) -> TrustTable | None:
    """Deletion and insertion curves of the close-up's maps and of the reference maps, then the trust table:
    localization, faithfulness and sensitivity to the weights for each, with the sentence computed from it.
    `maps`: maps of this image already computed with default options (reused, not recomputed)."""
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
    key = ("trust", subject.key, image_key, int(target), tuple(methods), layer, located is not None)
    table = _measured(key, lambda: trust_table(
        subject.model, x, target=int(target), mask=located, methods=methods, layer=layer, granularity=GRANULARITY,
        mean=subject.pre.mean, std=subject.pre.std, maps={m: maps[m] for m in methods if m in maps}),
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
    st.dataframe([{"map": r.label, **_located(r.pointing_game, r.energy_inside),
                   **_faithful(r.deletion_auc, r.insertion_auc, r.faithfulness),
                   "Avg Drop %": round(r.average_drop, 1), "Incr. Conf. %": round(r.increase_in_confidence),
                   "rand. ρ": _rho(r), "faithful": "—" if r.reference else _yes(r.faithful),
                   "sensitive": "—" if r.sensitive is None else _yes(r.sensitive)}
                  for r in table.rows], hide_index=True, column_config=COLUMN_HELP)
    st.markdown(table.sentence)
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
        f"there to add its row.{mask_words} Computed in {table.seconds['total']:.1f} s here.")
    return table


def reusable_maps(maps: Mapping[str, Tensor], options: Mapping[str, Any]) -> dict[str, Tensor]:
    """The close-up's maps the trust table can reuse: those made with default options (its randomized maps
    use the defaults, so a map made with other options would not be compared like with like)."""
    return {m: cam for m, cam in maps.items() if not options.get(m)}
