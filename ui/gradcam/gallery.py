"""The Grad-CAM page's images: sample photos, held-out Shapes images and uploads, each classified and drawn with
its Grad-CAM in one batched pass, with a note where the model's answer means nothing."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from resnet_core.data import (
    SHAPES_CLASSES,
    GalleryItem,
    decode_images,
    for_display,
    prepare,
    sample_images,
    shapes_items,
    tensor_digest,
)
from resnet_core.explain import AttributionError, explain_batch, overlay, predict, topk
from resnet_core.explain.costs import timed
from resnet_core.explain.subjects import Subject
from resnet_core.recipes import LOCALIZATION_IMAGES
from resnet_core.share import escape_markdown
from ui.gradcam.sources import cached_shapes_check
from ui.gradcam.subject import L
from ui.memo import memo_get

MAX_GALLERY = 12


@dataclass(frozen=True)
class Gallery:
    """The images shown, prepared for the model, and what the model said of them."""

    items: list[GalleryItem]
    labels: list[int | None]  # each image's true class where it is one of the model's own dataset's images
    meaningful: list[bool]  # whether the model's answer means anything for it (not for a photo of a Shapes model)
    views: list  # each image as the network sees it, for display
    batch: torch.Tensor  # the prepared images, N x 3 x H x W
    image_keys: list[str]  # each prepared image's digest (memo keys)
    probs: torch.Tensor
    check: object | None  # the held-out Shapes images with masks (a Shapes model), else None
    seconds_per_pass: float  # one Grad-CAM pass of one image on this model: the trust checks' time unit
    overview_s: float  # the gallery's batched Grad-CAM, timed


@dataclass(frozen=True)
class Looks:
    alpha: float
    colormap: str
    top_k: int


def _chosen_items(subject: Subject) -> tuple[list[GalleryItem], list[int | None], object | None]:
    photos = {s.name: s for s in sample_images()}
    shape_items: dict[str, tuple[GalleryItem, int]] = {}  # name -> (item, its true class)
    check = None
    if subject.on_shapes:
        check = cached_shapes_check(LOCALIZATION_IMAGES, subject.pre.image_size)
        listed = shapes_items(check.images, check.labels, check.masks, SHAPES_CLASSES)
        shape_items = {item.name: (item, int(label)) for item, label in zip(listed, check.labels.tolist())}
    options = list(shape_items) + list(photos)
    default = list(shape_items) if subject.on_shapes else options[:1]
    cols = st.columns([1, 1])
    chosen = cols[0].multiselect("Sample images", options, default=default, key=f"gc_samples_{subject.on_shapes}",
                                 help="Bundled public-domain / CC0 photos (see assets/samples/CREDITS.md), and, for "
                                      "a Shapes model, held-out Shapes images.")
    uploads = cols[1].file_uploader("Or upload images (JPEG, PNG, WebP, BMP, GIF, TIFF; several at once)",
                                    accept_multiple_files=True, key="gc_uploads")
    good, bad = decode_images([(u.name, u.getvalue()) for u in uploads or []])
    for _, message in bad:
        st.error(escape_markdown(message))  # it names the visitor's file: shown as plain text
    for decoded in good:
        for note in decoded.notes:
            st.info(escape_markdown(note))
    items: list[GalleryItem] = []
    labels: list[int | None] = []
    for name in chosen:
        item, label = shape_items[name] if name in shape_items else (GalleryItem(name, photos[name].load()), None)
        items.append(item)
        labels.append(label)
    items += [GalleryItem(d.name, d.image) for d in good]
    labels += [None] * len(good)
    return items, labels, check


def gallery_images(subject: Subject) -> tuple[Gallery, Looks]:
    """The images section: choose and upload, then classify them (the page stops here without an image)."""
    st.subheader("Images")
    items, labels, check = _chosen_items(subject)
    if not items:
        st.info("Choose a sample image or upload one to see predictions.")
        st.stop()
    if len(items) > MAX_GALLERY:
        st.warning(f"{len(items)} images: showing the first {MAX_GALLERY}.")
        items, labels = items[:MAX_GALLERY], labels[:MAX_GALLERY]
    prepared = [prepare(item.image, subject.pre) for item in items]
    batch = torch.stack([x for _, x in prepared])
    keys = [tensor_digest(x) for x in batch]
    try:
        probs = memo_get(("probs", subject.key, tuple(keys)), lambda: predict(subject.model, batch))
        # Timed: one Grad-CAM pass per image on this model, the unit of the trust checks' estimates below.
        overview, overview_s = memo_get(("overview", subject.key, tuple(keys)),
                                        lambda: timed(lambda: explain_batch(subject.model, batch, "gradcam")))
    except (AttributionError, RuntimeError, ValueError) as exc:
        st.error(f"The model could not process these images: {escape_markdown(exc)}")
        st.stop()
    # The batch above may be this model's first Grad-CAM in the process (hooks, kernels, captum warming up), which
    # read several times slow on a busy cold server and sent quick checks behind buttons: a second, warm pass on
    # one image is timed too, and the faster reading is the unit.
    _, warm_s = memo_get(("warm-pass", subject.key),
                         lambda: timed(lambda: explain_batch(subject.model, batch[:1], "gradcam")))
    gallery = Gallery(items, labels, [subject.answer_meaningful(label is not None) for label in labels],
                      [for_display(view) for view, _ in prepared], batch, keys, probs, check,
                      min(overview_s / len(items), warm_s), overview_s)
    looks = _looks(subject)
    _not_meaningful_note(subject, gallery)
    _overview(subject, gallery, overview, looks)
    return gallery, looks


def _looks(subject: Subject) -> Looks:
    controls = st.columns(3)
    alpha = L["gc_alpha"].widget(controls[0].slider, "Overlay opacity", step=0.05)
    colormap = L["gc_colormap"].widget(controls[1].selectbox, "Colour map")
    st.session_state["gc_topk"] = min(st.session_state["gc_topk"], len(subject.classes))
    # No more ranks than the model has classes (a slider needs two values, hence at least 2).
    top_k = L["gc_topk"].widget(controls[2].slider, "Top-k predictions",
                                max_value=max(2, min(L["gc_topk"].bounds[1], len(subject.classes))))
    return Looks(alpha, colormap, top_k)


def _not_meaningful_note(subject: Subject, g: Gallery) -> None:
    unknown = [i for i, ok in enumerate(g.meaningful) if not ok]
    if not unknown:
        return
    known = escape_markdown(", ".join(subject.classes[:12])) + (
        f" and {len(subject.classes) - 12} more" if len(subject.classes) > 12 else "")
    answers = "; ".join(escape_markdown(f"{g.items[i].name}: {topk(g.probs[i], subject.classes, 1)[0]['label']} "
                                        f"({100 * float(g.probs[i].max()):.1f}%)") for i in unknown)
    trained_on = f" (it was trained on {subject.trained_on})" if subject.trained_on else ""
    st.warning(f"**This model knows only these {len(subject.classes)} classes: {known}**{trained_on}. "
               f"{'These images are' if len(unknown) > 1 else 'This image is'} not from its dataset, and any image "
               f"gets one of its classes whatever it shows, so its answer is not meaningful here ({answers}). "
               "To classify a photo, choose **ImageNet weights (torchvision)** under *Model to explain* above "
               "(1000 everyday classes).", icon=":material/help:")


def _overview(subject: Subject, g: Gallery, overview, looks: Looks) -> None:
    columns = st.columns(6)
    for i, item in enumerate(g.items):
        best = topk(g.probs[i], subject.classes, 1)[0]
        flag = "" if g.meaningful[i] else " — not meaningful"
        with columns[i % len(columns)]:
            st.image(overlay(g.views[i], overview.maps[i], looks.alpha, looks.colormap), width="stretch",
                     caption=f"{item.name}: {best['label']} ({100 * best['probability']:.1f}%){flag}")
    if overview.native_size:
        h, w = overview.native_size
        cell = f", {subject.pre.image_size // h} px per cell" if h and subject.pre.image_size % h == 0 else ""
        st.caption(f"Grad-CAM of each image's predicted class at {overview.layer}: its map is {h}x{w} for this "
                   f"{subject.pre.image_size}-px input{cell}, upsampled to the image.")
