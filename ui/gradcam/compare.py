"""The Grad-CAM page's plain-vs-residual view: the chosen image through a residual and a plain net trained on
Shapes (recorded, or trained here), each with its prediction and its own Grad-CAM."""

from __future__ import annotations

import streamlit as st

from resnet_core.assets import is_bundled
from resnet_core.data import for_display, prepare
from resnet_core.explain import AttributionError, explain_batch, overlay, predict, topk
from resnet_core.share import escape_markdown
from resnet_core.train import RunInfo
from ui.gradcam.closeup import CloseUp
from ui.gradcam.gallery import Gallery, Looks
from ui.gradcam.sources import load_run_subject, recorded_text, shapes_pair_runs, shapes_training_text, train_button
from ui.memo import memo_get


def _panel(run: RunInfo, kind: str, c: CloseUp, own_data: bool, looks: Looks) -> None:
    """The chosen image through another run's model: its prediction and its own Grad-CAM."""
    other = load_run_subject(run)
    if other is None:
        return
    try:
        other_view, other_x = prepare(c.item.image, other.pre)
        key = (other.key, c.image_key)
        other_probs = memo_get(("compare-probs", *key), lambda: predict(other.model, other_x))
        cam = memo_get(("compare-map", *key), lambda: explain_batch(other.model, other_x, "gradcam").maps[0])
    except (AttributionError, RuntimeError, ValueError) as exc:
        st.error(f"{kind}: {escape_markdown(exc)}")
        return
    best = topk(other_probs, other.classes, 1)[0]
    where = "recorded" if other.origin == "recorded" else "live, trained here"
    flag = "" if other.answer_meaningful(own_data) else " — not meaningful"
    st.image(overlay(for_display(other_view), cam, looks.alpha, looks.colormap), width="stretch",
             caption=f"{kind} ({where}): {other.title} — predicts {best['label']} "
                     f"({100 * best['probability']:.1f}%){flag}")


def plain_and_residual(c: CloseUp, g: Gallery, looks: Looks) -> None:
    st.subheader("Plain vs residual: the same image, two networks")
    pair = shapes_pair_runs()
    if pair[True] is None or pair[False] is None:
        st.info(f"Needs a residual and a plain network trained on Shapes. Train the missing one here "
                f"({shapes_training_text()} each).")
        buttons = st.columns(2)
        with buttons[0]:
            if pair[True] is None:
                train_button(True, "Train ResNet-20 on Shapes", key="gc_train_res_pair")
        with buttons[1]:
            if pair[False] is None:
                train_button(False, "Train plain-20 (no shortcuts) on Shapes")
        return
    own_data = g.labels[c.index] is not None
    panels = st.columns(3)
    with panels[0]:
        _panel(pair[True], "residual", c, own_data, looks)
    with panels[1]:
        _panel(pair[False], "plain", c, own_data, looks)
    recorded = [(kind, run) for kind, run in (("residual", pair[True]), ("plain", pair[False])) if is_bundled(run.path)]
    with panels[2]:
        for kind, run in recorded:
            st.caption(f"**Recorded** {kind} net, bundled with the app: {recorded_text(run)}.")
        if recorded:
            st.caption("A net you train here replaces the recorded one.")
            if pair[False] in [run for _, run in recorded]:
                train_button(False, f"Train a fresh plain-20 here ({shapes_training_text()})")
