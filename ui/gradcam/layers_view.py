"""The Grad-CAM page's "Which layer?" view: Grad-CAM of the close-up's image at every stage (and inside one block),
each map's localization and faithfulness, then the same over several images and which layer, if any, is best beyond
the noise. Numbers and sentences come from resnet_core.explain (layers, verdicts)."""

from __future__ import annotations

import streamlit as st
from PIL import Image
from torch import Tensor

from resnet_core.explain import (
    DEFAULT_BASELINE,
    DEFAULT_STEPS,
    LayerReport,
    Subject,
    baseline_label,
    block_names,
    layer_scores,
    overlay,
    stage_names,
)
from resnet_core.explain.costs import layer_view_seconds
from resnet_core.explain.layers import layer_reports
from resnet_core.explain.verdicts import LayerVerdict, layer_verdict
from resnet_core.model.summary import UNIT_SPACE
from ui.gradcam.scoring import (
    COLUMN_HELP,
    NO_MASK_WORDS,
    VerdictImages,
    faithful_cells,
    interval_text,
    located_cells,
    mask_for,
    measured,
    verdict_count,
)
from ui.tables import wrapping_table


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
    located = mask_for(x, mask)
    layers = len(stages) + (2 if block else 0)
    estimate = layer_view_seconds(seconds_per_call, seconds_per_pass, layers, DEFAULT_STEPS)
    own = held_out.own_data
    report = measured(("layers", subject.key, image_key, int(target), block, located is not None, own),
                      lambda: layer_scores(model, x, target=int(target), mask=located, block=block, own_data=own),
                      estimate, "Compare Grad-CAM at every stage", "gc_layers_button", "Grad-CAM at every layer")
    if report is None:
        return None

    panels = st.columns(max(3, len(report.rows)))
    for row, panel in zip(report.rows, panels):
        same = f" — the same map as {row.same_as}" if row.same_as else ""
        panel.image(overlay(view, row.map, alpha, colormap), caption=f"{row.label}{same}", width="stretch")
    wrapping_table([{"layer": r.label, "resolution": f"{r.resolution[0]}×{r.resolution[1]}",
                     **located_cells(r.pointing_game, r.energy_inside),
                     **faithful_cells(r.faithfulness.deletion.auc, r.faithfulness.insertion.auc, r.faithfulness.score)}
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
    n = verdict_count(held_out, "which layer is most faithful")
    if not n:
        return None
    # Each layer's maps are made for all the images in one batch: a pass per image, not a call.
    estimate = n * layer_view_seconds(seconds_per_pass, seconds_per_pass, layers, DEFAULT_STEPS)
    reports = measured(("layers-set", subject.key, held_out.keys, held_out.targets, block),
                       lambda: layer_reports(subject.model, held_out.images, held_out.targets, held_out.masks, block),
                       estimate, f"Compare the layers over {n} images", "gc_layers_set_button",
                       f"Grad-CAM at every layer of {n} images")
    if reports is None:
        return None
    said = layer_verdict([r.rows for r in reports])
    st.markdown(f"**Over {n} images from the model's dataset** (the close-up's first, then held-out ones; mean ± "
                "95% interval): a layer is named best only when it beats every other layer beyond the noise.")
    wrapping_table([{"layer": s.label, "ins − del ↑ (mean ± 95%)": interval_text(s.faithfulness),
                     **({"energy inside % (mean ± 95%)": interval_text(s.energy_inside, 0, 100)}
                        if held_out.masked else {})}
                    for s in said.standings], COLUMN_HELP)
    st.markdown(said.sentence)
    return said

