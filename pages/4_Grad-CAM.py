"""Grad-CAM page: classify images and see where the network looks, then check the explanation.

Everything here is widgets, layout and page words; decoding lives in resnet_core.data, attributions, the trust
checks, their time estimates and what their numbers say in resnet_core.explain, figures in resnet_core.charts.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
import torch

from resnet_core.assets import is_bundled
from resnet_core.charts import localization_figure, probability_figure, randomization_figure
from resnet_core.data import (
    SHAPES_CLASSES,
    GalleryItem,
    decode_images,
    for_display,
    prepare,
    prepare_uint8,
    sample_images,
    shapes_items,
    tensor_digest,
)
from resnet_core.estimates import format_duration
from resnet_core.explain import (
    COLORMAPS,
    LAYER_METHODS,
    METHOD_LABELS,
    METHODS,
    REPEATABLE_METHODS,
    AttributionError,
    explain_batch,
    localization_scores,
    overlay,
    png_bytes,
    predict,
    randomization_check,
    randomization_granularity,
    target_layers,
    topk,
)
from resnet_core.explain.costs import localization_seconds, randomization_seconds, timed
from resnet_core.explain.readings import best_example, randomization_readings, randomization_sentence
from resnet_core.recipes import LOCALIZATION_IMAGES
from resnet_core.share import escape_markdown
from resnet_core.train import RunInfo
from ui.charts import chart
from ui.demos import demo_panel
from ui.frame import page_setup
from ui.gradcam_trust import (
    AUTO_COMPUTE_S,
    layer_view,
    localization_caption,
    localization_records,
    reusable_maps,
    trust_view,
    verdict_images,
)
from ui.memo import memo_get
from ui.model_sources import (
    ARCH_OPTION,
    SOURCES,
    cached_shapes_check,
    forget_training_failure,
    load_run_subject,
    recorded_text,
    shapes_model_ready,
    shapes_pair_runs,
    shapes_training_text,
    show_training,
    start_training,
    train_button,
    training_failed,
    training_running,
)
from ui.share import Linked, apply_link, by_key, share_link

page_setup("Grad-CAM")
st.title("Grad-CAM")
st.markdown(
    "Classify images and see **where the network looks**. Grad-CAM weighs each feature map $A^k$ of the last "
    "stage by how much the class score $y^c$ depends on it, $\\alpha_k = \\operatorname{mean}_{ij}\\, "
    "\\partial y^c / \\partial A^k_{ij}$, and keeps the positive evidence: "
    "$\\text{map} = \\operatorname{ReLU}(\\sum_k \\alpha_k A^k)$, upsampled to the image. Then check whether the "
    "map explains *this model* at all: the trust checks at the bottom score it against true object masks, against "
    "maps that know nothing of the model, and against the same model with its weights randomized."
)
with st.expander("How it works"):
    st.markdown(
        "- The last stage's feature maps are coarse (the size for the model chosen below is named under its "
        "maps), so the map is smooth and class-specific; pick an earlier layer for finer, less specific maps.\n"
        "- **Guided Grad-CAM** multiplies the map by guided backpropagation (gradients through ReLUs that pass "
        "only positive signal), for pixel-level detail. **Saliency** is $|\\partial y^c / \\partial x|$; "
        "**Integrated Gradients** averages the gradient along a straight path from a black image to this one and "
        "multiplies by the difference, so attributions add up to $y^c(x) - y^c(0)$; **Occlusion** slides a grey "
        "patch over the image and records how much the score drops.\n"
        "- Every map comes from [captum](https://captum.ai) on the real model, in eval mode, with hooks removed "
        "afterwards. A map is an explanation only if it passes the checks below: it should land on the object "
        "(pointing game), removing its pixels first should hurt the prediction most (deletion, Petsiuk et al. "
        "2018), and it should change when the weights are randomized (Adebayo et al. 2018).")

MAX_GALLERY = 12
LINKED = (
    Linked("gc_source", "source", "shapes", tuple(SOURCES)),
    ARCH_OPTION,
    Linked("gc_alpha", "alpha", 0.5, bounds=(0.0, 1.0)),
    Linked("gc_colormap", "colormap", next(iter(COLORMAPS)), tuple(COLORMAPS)),
    Linked("gc_topk", "topk", 5, bounds=(1, 10)),
    Linked("gc_methods", "methods", ["gradcam", "guided_gradcam"], METHODS),
    Linked("gc_ig_steps", "ig_steps", 32, bounds=(8, 128)),
    Linked("gc_ig_smooth", "smoothgrad", 0, bounds=(0, 16)),
    Linked("gc_rand_methods", "check_methods", ["gradcam", "guided_gradcam"],
           REPEATABLE_METHODS),  # a registry entry says whether it is quick enough to repeat per layer
)
L = by_key(LINKED)
apply_link(LINKED)
share_link(LINKED)
DEMO_PENDING_KEY = "gc_demo_pending"


def gradcam_demo() -> None:
    """Shapes model, Grad-CAM and Guided Grad-CAM, then the localization score (training the model first if needed)."""
    st.session_state.update(gc_source="shapes", gc_methods=["gradcam", "guided_gradcam"])
    st.session_state[DEMO_PENDING_KEY] = True
    forget_training_failure()


demo_panel("gradcam", gradcam_demo, model_ready=shapes_model_ready())

st.subheader("Model")
source = L["gc_source"].widget(st.radio, "Model to explain", format_func=lambda k: SOURCES[k][0], horizontal=True)
show_training()
subject = SOURCES[source][1]()
if st.session_state.get(DEMO_PENDING_KEY) and source == "shapes":
    if subject is not None:
        st.session_state.pop(DEMO_PENDING_KEY)
        st.session_state["gc_autoscore"] = True
        st.session_state.pop("gc_samples_True", None)  # back to the default: every Shapes sample
    elif training_failed():
        st.session_state.pop(DEMO_PENDING_KEY)  # show why; the demo button tries again
    elif not training_running() and start_training(residual=True):
        st.rerun()  # the demo continues when the model is trained
if subject is None:
    st.stop()
origin = {"recorded": " (recorded: bundled with the app)", "live": " (live: trained here)"}.get(subject.origin, "")
st.caption(f"Explaining **{escape_markdown(subject.title)}**{origin}: {len(subject.classes)} classes, input "
           f"{subject.pre.image_size}x{subject.pre.image_size} px.")

# ---- images --------------------------------------------------------------------------------------

st.subheader("Images")
photos = {s.name: s for s in sample_images()}
shape_items: dict[str, tuple[GalleryItem, int]] = {}  # name -> (item, its true class)
if subject.on_shapes:
    check = cached_shapes_check(LOCALIZATION_IMAGES, subject.pre.image_size)
    listed = shapes_items(check.images, check.labels, check.masks, SHAPES_CLASSES)
    shape_items = {item.name: (item, int(label)) for item, label in zip(listed, check.labels.tolist())}
options = list(shape_items) + list(photos)
default = list(shape_items) if subject.on_shapes else options[:1]
cols = st.columns([1, 1])
chosen = cols[0].multiselect("Sample images", options, default=default, key=f"gc_samples_{subject.on_shapes}",
                             help="Bundled public-domain / CC0 photos (see assets/samples/CREDITS.md), and, for a "
                                  "Shapes model, held-out Shapes images.")
uploads = cols[1].file_uploader("Or upload images (JPEG, PNG, WebP, BMP, GIF, TIFF; several at once)",
                                accept_multiple_files=True, key="gc_uploads")
good, bad = decode_images([(u.name, u.getvalue()) for u in uploads or []])
for _, message in bad:
    st.error(escape_markdown(message))  # it names the visitor's file: shown as plain text
for decoded in good:
    for note in decoded.notes:
        st.info(escape_markdown(note))

# Each image with its true class where it is one of the model's own dataset's images (None: a photo, an upload).
items: list[GalleryItem] = []
labels: list[int | None] = []
for name in chosen:
    item, label = shape_items[name] if name in shape_items else (GalleryItem(name, photos[name].load()), None)
    items.append(item)
    labels.append(label)
items += [GalleryItem(d.name, d.image) for d in good]
labels += [None] * len(good)
if not items:
    st.info("Choose a sample image or upload one to see predictions.")
    st.stop()
if len(items) > MAX_GALLERY:
    st.warning(f"{len(items)} images: showing the first {MAX_GALLERY}.")
    items, labels = items[:MAX_GALLERY], labels[:MAX_GALLERY]
meaningful = [subject.answer_meaningful(label is not None) for label in labels]

prepared = [prepare(item.image, subject.pre) for item in items]
views = [for_display(view) for view, _ in prepared]
batch = torch.stack([x for _, x in prepared])
image_keys = [tensor_digest(x) for x in batch]

# ---- overview: every image's prediction and Grad-CAM, in one batched pass -------------------------

try:
    probs = memo_get(("probs", subject.key, tuple(image_keys)), lambda: predict(subject.model, batch))
    # Timed: one Grad-CAM pass per image on this model, the unit of the trust checks' estimates below.
    overview, overview_s = memo_get(("overview", subject.key, tuple(image_keys)),
                                    lambda: timed(lambda: explain_batch(subject.model, batch, "gradcam")))
except (AttributionError, RuntimeError, ValueError) as exc:
    st.error(f"The model could not process these images: {escape_markdown(exc)}")
    st.stop()
# The batch above may be this model's first Grad-CAM in the process (hooks, kernels, captum warming up), which read
# several times slow on a busy cold server and sent quick checks behind buttons: a second, warm pass on one image
# is timed too, and the faster reading is the unit.
_, warm_s = memo_get(("warm-pass", subject.key),
                     lambda: timed(lambda: explain_batch(subject.model, batch[:1], "gradcam")))
seconds_per_pass = min(overview_s / len(items), warm_s)

controls = st.columns(3)
alpha = L["gc_alpha"].widget(controls[0].slider, "Overlay opacity", step=0.05)
colormap = L["gc_colormap"].widget(controls[1].selectbox, "Colour map")
st.session_state["gc_topk"] = min(st.session_state["gc_topk"], len(subject.classes))
# No more ranks than the model has classes (a slider needs two values, hence at least 2).
top_k = L["gc_topk"].widget(controls[2].slider, "Top-k predictions",
                            max_value=max(2, min(L["gc_topk"].bounds[1], len(subject.classes))))

unknown = [i for i, ok in enumerate(meaningful) if not ok]
if unknown:
    known = escape_markdown(", ".join(subject.classes[:12])) + (
        f" and {len(subject.classes) - 12} more" if len(subject.classes) > 12 else "")
    answers = "; ".join(escape_markdown(f"{items[i].name}: {topk(probs[i], subject.classes, 1)[0]['label']} "
                                        f"({100 * float(probs[i].max()):.1f}%)") for i in unknown)
    trained_on = f" (it was trained on {subject.trained_on})" if subject.trained_on else ""
    st.warning(f"**This model knows only these {len(subject.classes)} classes: {known}**{trained_on}. "
               f"{'These images are' if len(unknown) > 1 else 'This image is'} not from its dataset, and any image "
               f"gets one of its classes whatever it shows, so its answer is not meaningful here ({answers}). "
               "To classify a photo, choose **ImageNet weights (torchvision)** under *Model to explain* above "
               "(1000 everyday classes).", icon=":material/help:")

gallery = st.columns(6)
for i, item in enumerate(items):
    best = topk(probs[i], subject.classes, 1)[0]
    flag = "" if meaningful[i] else " — not meaningful"
    with gallery[i % len(gallery)]:
        st.image(overlay(views[i], overview.maps[i], alpha, colormap), width="stretch",
                 caption=f"{item.name}: {best['label']} ({100 * best['probability']:.1f}%){flag}")
if overview.native_size:
    h, w = overview.native_size
    cell = f", {subject.pre.image_size // h} px per cell" if h and subject.pre.image_size % h == 0 else ""
    st.caption(f"Grad-CAM of each image's predicted class at {overview.layer}: its map is {h}x{w} for this "
               f"{subject.pre.image_size}-px input{cell}, upsampled to the image.")

# ---- one image in detail ---------------------------------------------------------------------------

st.subheader("Explain one image")
first = best_example(probs, labels)  # the most confident correct answer, so the close-up opens on a clear case
index = st.selectbox("Image", range(len(items)), index=first, format_func=lambda i: items[i].name, key="gc_image",
                     help="Opens on the image the model is surest of among those it gets right.")
item, view, x = items[index], views[index], batch[index]
rows = topk(probs[index], subject.classes, top_k)
left, right = st.columns([1, 2], vertical_alignment="center")
with left:
    st.image(view, caption=f"what the network sees ({subject.pre.image_size} px)", width="stretch")
with right:
    chart(probability_figure(rows, revision=f"probs-{subject.key}"), key="gc_probs_chart")
    st.dataframe([{"rank": r["rank"], "class": r["label"], "probability %": round(100 * r["probability"], 2)}
                  for r in rows], hide_index=True)
    if labels[index] is not None:
        truth = subject.classes[labels[index]]
        verdict = "right" if rows[0]["class_index"] == labels[index] else f"wrong (it is a {truth})"
        st.caption(f"True class: **{truth}**; the model is {verdict}, {100 * rows[0]['probability']:.1f}% sure.")
    elif not meaningful[index]:
        st.caption(":material/help: Not meaningful: this image is none of the model's "
                   f"{len(subject.classes)} classes (see the note above the gallery).")

ranked = torch.argsort(probs[index], descending=True).tolist()
target = st.selectbox("Explain the class", ranked, key=f"gc_target_{subject.key}_{image_keys[index]}",
                      format_func=lambda c: f"{subject.classes[c]} ({100 * float(probs[index][c]):.1f}%)",
                      help="Defaults to the prediction; pick another class to see the evidence for it.")
settings = st.columns(2)
methods = L["gc_methods"].widget(settings[0].multiselect, "Methods", format_func=METHOD_LABELS.get)
layers = target_layers(subject.model)
layer = settings[1].selectbox("Layer (Grad-CAM, Guided Grad-CAM)", layers, key=f"gc_layer_{subject.key}",
                              help="The last stage by default; earlier layers give finer but less class-specific maps.")
options_by_method: dict[str, dict[str, Any]] = {}
if "integrated_gradients" in methods:
    ig = st.columns(2)
    options_by_method["integrated_gradients"] = {
        "n_steps": L["gc_ig_steps"].widget(ig[0].slider, "Integrated Gradients: steps", step=8),
        "smoothgrad_samples": L["gc_ig_smooth"].widget(ig[1].slider, "SmoothGrad samples (0 = off)"),
    }
call_seconds: dict[str, float] = {}  # one map of this image per method, timed (the randomization check's unit)
shown_maps: dict[str, torch.Tensor] = {}  # the close-up's maps, reused by the trust table


def compute_map(method: str) -> torch.Tensor:
    opts = options_by_method.get(method, {})
    key = ("map", subject.key, image_keys[index], method, int(target),
           layer if method in LAYER_METHODS else None, tuple(sorted(opts.items())))
    cam, seconds = memo_get(key, lambda: timed(lambda: explain_batch(
        subject.model, x, method, [int(target)], layer if method in LAYER_METHODS else None, **opts).maps[0]))
    call_seconds[method] = seconds
    return cam


if methods:
    panels = st.columns(max(3, len(methods)))
    for method, panel in zip(methods, panels):
        with panel:
            try:
                with st.spinner(f"{METHOD_LABELS[method]}..."):
                    cam = compute_map(method)
            except (AttributionError, RuntimeError, ValueError) as exc:
                st.error(f"{METHOD_LABELS[method]}: {escape_markdown(exc)}")
                continue
            shown_maps[method] = cam
            shown = overlay(view, cam, alpha, colormap)
            st.image(shown, caption=METHOD_LABELS[method], width="stretch")
            st.download_button("Download PNG", png_bytes(shown), file_name=f"{item.name}-{method}.png",
                               mime="image/png", key=f"gc_dl_{method}", on_click="ignore")
    st.caption("Grad-CAM and Occlusion show evidence *for* the class (≥ 0). Saliency, Integrated Gradients and "
               "Guided Grad-CAM show |attribution| summed over colour channels: pixels that matter either way.")

per_call = call_seconds.get("gradcam") or overview_s  # one Grad-CAM call on this one image (or on the gallery)
held_out = verdict_images(batch, probs, labels, meaningful, [it.mask for it in items], image_keys, index,
                          check if subject.on_shapes else None, subject.pre)
layer_view(subject, x, int(target), item.mask, image_keys[index], view, alpha, colormap, per_call, seconds_per_pass,
           held_out)

# ---- plain vs residual -------------------------------------------------------------------------------

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
else:
    def compare_panel(run: RunInfo, kind: str) -> None:
        """The chosen image through another run's model: its prediction and its own Grad-CAM."""
        other = load_run_subject(run)
        if other is None:
            return
        try:
            other_view, other_x = prepare(item.image, other.pre)
            key = (other.key, image_keys[index])
            other_probs = memo_get(("compare-probs", *key), lambda: predict(other.model, other_x))
            cam = memo_get(("compare-map", *key), lambda: explain_batch(other.model, other_x, "gradcam").maps[0])
        except (AttributionError, RuntimeError, ValueError) as exc:
            st.error(f"{kind}: {escape_markdown(exc)}")
            return
        best = topk(other_probs, other.classes, 1)[0]
        where = "recorded" if other.origin == "recorded" else "live, trained here"
        flag = "" if other.answer_meaningful(labels[index] is not None) else " — not meaningful"
        st.image(overlay(for_display(other_view), cam, alpha, colormap), width="stretch",
                 caption=f"{kind} ({where}): {other.title} — predicts {best['label']} "
                         f"({100 * best['probability']:.1f}%){flag}")

    panels = st.columns(3)
    with panels[0]:
        compare_panel(pair[True], "residual")
    with panels[1]:
        compare_panel(pair[False], "plain")
    recorded = [(kind, run) for kind, run in (("residual", pair[True]), ("plain", pair[False])) if is_bundled(run.path)]
    with panels[2]:
        for kind, run in recorded:
            st.caption(f"**Recorded** {kind} net, bundled with the app: {recorded_text(run)}.")
        if recorded:
            st.caption("A net you train here replaces the recorded one.")
            if pair[False] in [run for _, run in recorded]:
                train_button(False, f"Train a fresh plain-20 here ({shapes_training_text()})")

# ---- trust checks -----------------------------------------------------------------------------------

st.subheader("Can the map be trusted?")
st.markdown("**Does it point at the object?** On held-out Shapes images the object's exact mask is known: the "
            "pointing game counts how often the map's peak lies on the object, and the energy share how much of the "
            "map lies there. A uniform or random map scores the object's area fraction (chance).")
size = (subject.pre.image_size, subject.pre.image_size)
if not subject.on_shapes:
    st.info("This check needs a model trained on Shapes (the only images here with known object masks): choose the "
            "Shapes demo model or a Shapes run.")
else:
    check_methods = [m for m in methods if m in REPEATABLE_METHODS] or ["gradcam"]
    check_options = {m: o for m, o in options_by_method.items() if m in check_methods}
    loc_key = (subject.key, tuple(check_methods), layer, tuple(sorted((m, tuple(sorted(o.items())))
                                                                      for m, o in check_options.items())))
    loc_estimate = localization_seconds(seconds_per_pass, check_methods, LOCALIZATION_IMAGES, size, check_options)
    took = format_duration(loc_estimate)
    last = st.session_state.get("gc_loc_result")
    fresh = last is not None and last[0] == loc_key
    # Scored by itself when it is quick (or the demo asks); else a button that says how long it takes.
    asked = st.session_state.pop("gc_autoscore", False)
    score = not fresh and (asked or loc_estimate <= AUTO_COMPUTE_S)
    if not fresh and not score:
        score = st.button(f"Score {', '.join(METHOD_LABELS[m] for m in check_methods)} on {LOCALIZATION_IMAGES} "
                          f"Shapes images ({took})", key="gc_loc_button")
    if score:
        data = cached_shapes_check(LOCALIZATION_IMAGES, subject.pre.image_size)
        try:
            with st.spinner(f"Explaining {LOCALIZATION_IMAGES} images with each method ({took})..."):
                check_x = prepare_uint8(data.images, subject.pre)
                scored, scored_s = timed(lambda: localization_scores(
                    subject.model, check_x, data.masks, check_methods, targets=data.labels.tolist(), layer=layer,
                    method_options=check_options))
            last = st.session_state["gc_loc_result"] = (loc_key, scored, scored_s)
            fresh = True
        except (AttributionError, RuntimeError, ValueError) as exc:
            st.error(f"The localization check failed: {escape_markdown(exc)}")
    if last is not None and last[0][0] == subject.key:
        _, loc_rows, loc_s = last
        if not fresh:
            st.caption(f"Shown: the last scores, for {', '.join(r['label'] for r in loc_rows[:-2])}; press the "
                       "button for the methods and layer chosen above.")
        chart(localization_figure(loc_rows), key="gc_loc_chart")
        st.dataframe(localization_records(loc_rows), hide_index=True)
        st.caption(localization_caption(loc_rows, loc_s))

st.markdown("**Does it depend on the model?** Re-initialise the weights from the head down, block by block "
            "(Adebayo et al. 2018), and compare each map with the trained model's (Spearman rank correlation). "
            "An explanation of the model must change as the model is destroyed.")
randomization_methods = L["gc_rand_methods"].widget(st.multiselect, "Methods to check", format_func=METHOD_LABELS.get)
granularity, blocks = randomization_granularity(subject.model)
rand_options = {m: o for m, o in options_by_method.items() if m in randomization_methods}
rand_took = format_duration(randomization_seconds(per_call, subject.model, randomization_methods, size, granularity,
                                                  rand_options))
if st.button(f"Run the randomization check on this image ({rand_took})", key="gc_rand_button",
             disabled=not randomization_methods):
    bar = st.progress(0.0, text="randomizing...")
    try:
        result = randomization_check(subject.model, x, randomization_methods, target=int(target), layer=layer,
                                     granularity=granularity, keep_maps=False,
                                     progress=lambda f, step: bar.progress(f, text=f"randomized down to {step}"))
        st.session_state["gc_rand_result"] = (subject.key, image_keys[index], result)
    except (AttributionError, RuntimeError, ValueError) as exc:
        st.error(f"The randomization check failed: {escape_markdown(exc)}")
    bar.empty()
rand = st.session_state.get("gc_rand_result")
if rand and rand[0] == subject.key and rand[1] == image_keys[index]:
    result = rand[2]
    chart(randomization_figure(result.steps, result.correlations, METHOD_LABELS), key="gc_rand_chart")
    said = randomization_sentence(randomization_readings(result), meaningful[index])
    st.caption("Each point: every layer from the head down to the one named is re-initialised, and the map for the "
               f"same class is compared with the trained model's, on this one image. {said} Guided Grad-CAM is "
               "known to barely change (Adebayo et al. 2018, on ImageNet networks): its guided-backprop factor mostly "
               "recovers image edges whatever the weights, which is why it fails this check there. On small networks "
               "it can follow Grad-CAM more closely, since the Grad-CAM factor it multiplies by does change"
               + (f"; steps are whole stages for this {blocks}-block model." if granularity == "stage" else "."))

trust_view(subject, x, int(target), item.mask, image_keys[index], methods, layer,
           reusable_maps(shown_maps, options_by_method), per_call, seconds_per_pass, held_out)
