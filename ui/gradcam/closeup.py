"""One image in detail on the Grad-CAM page: its top predictions, the class to explain, and each chosen method's
map at the chosen layer, computed once per image, class, layer and options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st
import torch

from resnet_core.charts import probability_figure
from resnet_core.data import GalleryItem
from resnet_core.explain import (
    LAYER_METHODS,
    METHOD_LABELS,
    AttributionError,
    explain_batch,
    overlay,
    png_bytes,
    target_layers,
    topk,
)
from resnet_core.explain.costs import timed
from resnet_core.explain.readings import best_example
from resnet_core.explain.subjects import Subject
from resnet_core.share import escape_markdown
from ui.charts import chart
from ui.gradcam.gallery import Gallery, Looks
from ui.gradcam.subject import L
from ui.memo import memo_get


@dataclass
class CloseUp:
    """The image explained in detail and how: what the trust checks below reuse."""

    index: int
    item: GalleryItem
    view: Any  # the image as the network sees it
    x: torch.Tensor  # the prepared image, 3 x H x W
    image_key: str
    target: int
    methods: list[str]
    layer: str
    options_by_method: dict[str, dict[str, Any]]
    shown_maps: dict[str, torch.Tensor] = field(default_factory=dict)  # the close-up's maps, by method
    call_seconds: dict[str, float] = field(default_factory=dict)  # one map per method, timed


def _predictions(subject: Subject, g: Gallery, index: int, top_k: int) -> None:
    rows = topk(g.probs[index], subject.classes, top_k)
    left, right = st.columns([1, 2], vertical_alignment="center")
    with left:
        st.image(g.views[index], caption=f"what the network sees ({subject.pre.image_size} px)", width="stretch")
    with right:
        chart(probability_figure(rows, revision=f"probs-{subject.key}"), key="gc_probs_chart")
        st.dataframe([{"rank": r["rank"], "class": r["label"], "probability %": round(100 * r["probability"], 2)}
                      for r in rows], hide_index=True)
        if g.labels[index] is not None:
            truth = subject.classes[g.labels[index]]
            verdict = "right" if rows[0]["class_index"] == g.labels[index] else f"wrong (it is a {truth})"
            st.caption(f"True class: **{truth}**; the model is {verdict}, {100 * rows[0]['probability']:.1f}% sure.")
        elif not g.meaningful[index]:
            st.caption(":material/help: Not meaningful: this image is none of the model's "
                       f"{len(subject.classes)} classes (see the note above the gallery).")


def _choices(subject: Subject, g: Gallery, index: int) -> CloseUp:
    ranked = torch.argsort(g.probs[index], descending=True).tolist()
    target = st.selectbox("Explain the class", ranked, key=f"gc_target_{subject.key}_{g.image_keys[index]}",
                          format_func=lambda c: f"{subject.classes[c]} ({100 * float(g.probs[index][c]):.1f}%)",
                          help="Defaults to the prediction; pick another class to see the evidence for it.")
    settings = st.columns(2)
    methods = L["gc_methods"].widget(settings[0].multiselect, "Methods", format_func=METHOD_LABELS.get)
    layer = settings[1].selectbox("Layer (Grad-CAM, Guided Grad-CAM)", target_layers(subject.model),
                                  key=f"gc_layer_{subject.key}",
                                  help="The last stage by default; earlier layers give finer but less class-specific "
                                       "maps.")
    options: dict[str, dict[str, Any]] = {}
    if "integrated_gradients" in methods:
        ig = st.columns(2)
        options["integrated_gradients"] = {
            "n_steps": L["gc_ig_steps"].widget(ig[0].slider, "Integrated Gradients: steps", step=8),
            "smoothgrad_samples": L["gc_ig_smooth"].widget(ig[1].slider, "SmoothGrad samples (0 = off)"),
        }
    return CloseUp(index, g.items[index], g.views[index], g.batch[index], g.image_keys[index], int(target),
                   list(methods), layer, options)


def _map(subject: Subject, c: CloseUp, method: str) -> torch.Tensor:
    opts = c.options_by_method.get(method, {})
    layer = c.layer if method in LAYER_METHODS else None
    key = ("map", subject.key, c.image_key, method, c.target, layer, tuple(sorted(opts.items())))
    cam, seconds = memo_get(key, lambda: timed(lambda: explain_batch(
        subject.model, c.x, method, [c.target], layer, **opts).maps[0]))
    c.call_seconds[method] = seconds
    return cam


def _maps(subject: Subject, c: CloseUp, looks: Looks) -> None:
    panels = st.columns(max(3, len(c.methods)))
    for method, panel in zip(c.methods, panels):
        with panel:
            try:
                with st.spinner(f"{METHOD_LABELS[method]}..."):
                    cam = _map(subject, c, method)
            except (AttributionError, RuntimeError, ValueError) as exc:
                st.error(f"{METHOD_LABELS[method]}: {escape_markdown(exc)}")
                continue
            c.shown_maps[method] = cam
            shown = overlay(c.view, cam, looks.alpha, looks.colormap)
            st.image(shown, caption=METHOD_LABELS[method], width="stretch")
            st.download_button("Download PNG", png_bytes(shown), file_name=f"{c.item.name}-{method}.png",
                               mime="image/png", key=f"gc_dl_{method}", on_click="ignore")
    st.caption("Grad-CAM and Occlusion show evidence *for* the class (≥ 0). Saliency, Integrated Gradients and "
               "Guided Grad-CAM show |attribution| summed over colour channels: pixels that matter either way.")


def close_up(subject: Subject, g: Gallery, looks: Looks) -> CloseUp:
    st.subheader("Explain one image")
    first = best_example(g.probs, g.labels)  # the most confident correct answer: the close-up opens on a clear case
    index = st.selectbox("Image", range(len(g.items)), index=first, format_func=lambda i: g.items[i].name,
                         key="gc_image", help="Opens on the image the model is surest of among those it gets right.")
    _predictions(subject, g, index, looks.top_k)
    c = _choices(subject, g, index)
    if c.methods:
        _maps(subject, c, looks)
    return c
