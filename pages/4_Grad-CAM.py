"""Grad-CAM page: classify images and see where the network looks, then check the explanation.

Everything here is widgets and layout; decoding lives in resnet_core.images, attributions and
the trust checks in resnet_core.attribution, figures in resnet_core.charts.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import streamlit as st
import torch
from PIL import Image
from torch import nn

from resnet_core import ConfigError, build_model, get_preset, list_presets
from resnet_core.attribution import (
    COLORMAPS,
    LAYER_METHODS,
    METHOD_LABELS,
    METHODS,
    AttributionError,
    explain_batch,
    localization_scores,
    overlay,
    png_bytes,
    predict,
    randomization_check,
    randomization_steps,
    target_layers,
    topk,
)
from resnet_core.charts import localization_figure, probability_figure, randomization_figure
from resnet_core.checkpoint import CheckpointError, load_checkpoint
from resnet_core.data import SHAPES_CLASSES, load_shapes, make_shapes
from resnet_core.images import Preprocess, decode_images, prepare, sample_images
from resnet_core.runs import RunError, RunInfo, default_runs_dir, list_runs, load_run_model
from resnet_core.train import TrainConfig, TrainerError, build_model_for, check_idle, create_trainer
from resnet_core.weights import (
    WeightsUnavailableError,
    available_weights,
    imagenet_categories,
    infer_config_from_state_dict,
    is_cached,
    load_pretrained,
    load_state_dict_report,
    weights_file_path,
)
from ui.frame import page_setup
from ui.state import current_model

page_setup("Grad-CAM", "🔍")
st.title("🔍 Grad-CAM")
st.markdown(
    "Classify images and see **where the network looks**: Grad-CAM weighs the last stage's feature maps by "
    "how much the chosen class's score depends on them. Compare it with other attribution methods, with a plain "
    "net's maps, and check whether the map explains *this model* at all (the trust checks at the bottom)."
)

RUNS_DIR = default_runs_dir()
TRAINER_KEY = "gc_trainer"
TRAIN_ERROR_KEY = "gc_train_error"
PRETRAINED_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
# The one-click demo: ResNet-20 on 6,000 Shapes images, 48k samples seen. AdamW with one-cycle and
# small batches learns Shapes far faster in a fixed budget than SGD at lr 0.1 (measured on 2 shared
# CPU cores: 72% validation accuracy after 8 epochs, against 22% for SGD after 6); random crops are
# off because they push objects off the 32 px canvas.
DEMO_DATA = {"n_train": 6000, "n_val": 500, "seed": 0, "size": 32}
DEMO_TRAIN = TrainConfig(epochs=8, batch_size=64, optimizer="adamw", lr=3e-3, weight_decay=0.05,
                         schedule="onecycle", augment_crop=False)
SHAPES_CHECK_IMAGES = 64
MAX_GALLERY = 12


@dataclass
class Subject:
    """The model being explained, with what is needed to feed it and to name its classes."""

    model: nn.Module
    classes: list[str]
    pre: Preprocess
    key: str
    title: str
    on_shapes: bool = False


# ---- shared, read-only resources ---------------------------------------------------------------


@st.cache_resource(max_entries=2, show_spinner=False)
def cached_pretrained(arch: str, weights_name: str, _progress=None):
    """Pretrained ImageNet models are never trained here, so every session may share them."""
    return load_pretrained(arch, weights_name, progress=_progress)


@st.cache_resource(max_entries=2, show_spinner="Generating the Shapes images...")
def cached_shapes_data(n_train: int, n_val: int, seed: int, size: int):
    return load_shapes(n_train=n_train, n_val=n_val, seed=seed, size=size)


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_shapes_check(n: int, size: int):
    """Held-out Shapes images with their object masks, for the samples and the localization check."""
    return make_shapes(n, seed=90_210, size=size)


def session_memo() -> OrderedDict:
    """Per-session cache of computed maps, models loaded from disk, and check results (bounded)."""
    return st.session_state.setdefault("gc_memo", OrderedDict())


def memo_get(key: tuple, compute):
    memo = session_memo()
    if key in memo:
        memo.move_to_end(key)
        return memo[key]
    value = memo[key] = compute()
    while len(memo) > 48:
        memo.popitem(last=False)
    return value


# ---- model sources -------------------------------------------------------------------------------


def usable_runs() -> list[RunInfo]:
    return [r for r in list_runs(RUNS_DIR) if r.has_model and r.status in ("finished", "stopped")]


def run_is_residual(run: RunInfo) -> bool:
    model = run.config.get("model") if isinstance(run.config.get("model"), dict) else {}
    return bool(model.get("residual", True))


def run_subject(run: RunInfo) -> Subject | None:
    try:
        mtime = (run.path / "model.pt").stat().st_mtime
        model, classes, preprocess = memo_get(("run", str(run.path), mtime), lambda: load_run_model(run.path))
    except (RunError, OSError) as exc:
        st.error(f"Run {run.name}: {exc}")
        return None
    pre = Preprocess.from_dict(preprocess, default_size=32)
    classes = classes or [f"class {i}" for i in range(model.fc.out_features)]
    on_shapes = run.dataset == "shapes" and list(classes) == list(SHAPES_CLASSES)
    acc = "" if run.val_acc is None else f", validation accuracy {100 * run.val_acc:.1f}%"
    return Subject(model, list(classes), pre, f"run:{run.path}:{mtime}", f"run {run.name} ({run.arch}{acc})", on_shapes)


def start_training(residual: bool) -> bool:
    """Start the demo training in the background (Trainer thread); False, with a message, if it cannot."""
    try:
        check_idle(st.session_state.get(TRAINER_KEY))
        data = cached_shapes_data(**DEMO_DATA)
        preset = "resnet20" if residual else "plain20"
        model = build_model_for(get_preset(preset), data.num_classes, seed=0)
        trainer = create_trainer(model, data, DEMO_TRAIN, runs_dir=RUNS_DIR, name=f"gradcam-demo-{preset}-shapes")
        st.session_state[TRAINER_KEY] = trainer.start()
    except (TrainerError, ValueError, OSError) as exc:
        st.session_state[TRAIN_ERROR_KEY] = f"Training could not start: {exc}"
        return False
    st.session_state.pop(TRAIN_ERROR_KEY, None)
    return True


def training_status() -> None:
    """Progress of this session's demo training; redrawn every second only while there is one."""
    trainer = st.session_state.get(TRAINER_KEY)
    if trainer is None:
        return
    if trainer.is_running:
        done, eta = trainer.progress
        left = "" if eta is None else f" — about {eta:.0f} s left"
        st.progress(min(1.0, done), text=f"Training on Shapes: step {trainer.step} of {trainer.total_steps}{left}")
        return
    st.session_state.pop(TRAINER_KEY)
    if trainer.status not in ("finished", "stopped"):
        st.session_state[TRAIN_ERROR_KEY] = f"The demo training ended with status {trainer.status}: {trainer.message}"
    st.rerun(scope="app")  # the new run (or the message) appears in the whole page


def train_button(residual: bool, label: str) -> None:
    busy = st.session_state.get(TRAINER_KEY) is not None
    if st.button(label, key=f"gc_train_{'res' if residual else 'plain'}", disabled=busy) and start_training(residual):
        st.rerun()  # show the progress bar at the top


def shapes_source() -> Subject | None:
    runs = [r for r in usable_runs() if r.dataset == "shapes" and run_is_residual(r)]
    if not runs:
        st.info("No model trained on Shapes yet. Shapes is the built-in dataset (10 kinds of shapes, with exact "
                "object masks, so the maps can be scored). Train a ResNet-20 on it here, offline, in about a minute.")
        train_button(True, "Train a small Shapes model (ResNet-20, about a minute)")
        return None
    return run_subject(runs[0])


def run_source() -> Subject | None:
    runs = usable_runs()
    if not runs:
        st.info("No finished training run with saved weights yet: train one on the Train page, or here with the "
                "Shapes demo model.")
        return None
    labels = {r.name: f"{r.name} — {r.arch}, {r.dataset}" for r in runs}
    name = st.selectbox("Run", list(labels), format_func=labels.get, key="gc_run")
    return run_subject(next(r for r in runs if r.name == name))


def build_source() -> Subject:
    model = current_model()
    cfg = model.config
    size = 32 if cfg.stem == "cifar" else 224
    st.caption(f"The Build page's model ({cfg.depth} layers, {'residual' if cfg.residual else 'plain'}) has "
               "**random weights** until it is trained: its predictions and maps are noise — which is what the "
               "randomization check below should tell you too.")
    pre = Preprocess(image_size=size, resize=None if size < 64 else round(size * 256 / 224))
    classes = [f"class {i}" for i in range(cfg.num_classes)]
    return Subject(model, classes, pre, f"build:{id(model)}:{hash(cfg)}", "the Build page's model (untrained)")


def pretrained_source() -> Subject | None:
    cols = st.columns(2)
    arch = cols[0].selectbox("Architecture", PRETRAINED_ARCHS, key="gc_arch")
    versions = available_weights(arch)
    name = cols[1].selectbox("Weights", versions, key="gc_weights")
    failures = st.session_state.setdefault("gc_weights_failed", {})
    if not is_cached(arch, name):
        if (arch, name) in failures:
            # Offline: do not retry the network on every rerun, only when asked.
            st.warning(f"{failures[(arch, name)]}\n\nThe other model sources still work.")
            if not st.button("Try the download again", key="gc_retry_weights"):
                return None
            failures.pop((arch, name))
        st.caption(f"Not downloaded yet: {weights_file_path(arch, name)} is fetched on first use.")
    bar = st.empty()
    try:
        loaded = cached_pretrained(arch, name, _progress=lambda f, msg="": bar.progress(min(1.0, f), text=msg or None))
    except (WeightsUnavailableError, CheckpointError) as exc:
        bar.empty()
        failures[(arch, name)] = str(exc)
        st.warning(f"{exc}\n\nThe other model sources still work.")
        return None
    bar.empty()
    pre = Preprocess.from_dict(loaded.preprocess)
    return Subject(loaded.model, list(loaded.categories), pre, f"tv:{arch}:{name}", f"torchvision {arch} ({name})")


def fitted(cfg, state_dict):
    """A model of `cfg` with the weights loaded when they fit, and the report of how they fit."""
    model = build_model(cfg)
    return model, load_state_dict_report(model, state_dict)


def upload_source() -> Subject | None:
    upload = st.file_uploader("A checkpoint (.pt / .pth): a run's model.pt or a torchvision state_dict",
                              type=["pt", "pth"], key="gc_ckpt",
                              help="Up to 50 MB (server.maxUploadSize in .streamlit/config.toml): enough for CIFAR "
                                   "nets and resnet18; use the ImageNet weights source for the larger torchvision nets.")
    if upload is None:
        return None
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    try:
        ckpt = memo_get(("ckpt", digest), lambda: load_checkpoint(data))
    except CheckpointError as exc:
        st.error(f"{upload.name}: {exc}")
        return None
    cfg, how = ckpt.config, "recorded in the checkpoint"
    if cfg is None:
        try:
            cfg, how = infer_config_from_state_dict(ckpt.state_dict), "inferred from the weight names and shapes"
        except (ValueError, KeyError) as exc:
            how = "unknown: pick it"
            st.warning(f"{upload.name}: the architecture is not recorded and could not be inferred ({exc}). "
                       "Pick it in the list below.")
    presets = list_presets()
    choice = st.selectbox(f"Architecture ({how})", ["as found"] + presets, key="gc_ckpt_arch",
                          help="Override when the architecture was not recorded or was guessed wrongly.")
    if choice != "as found":
        try:
            classes_in_file = ckpt.state_dict.get("fc.weight")
            n = int(classes_in_file.shape[0]) if classes_in_file is not None else get_preset(choice).num_classes
            cfg = get_preset(choice).replace(num_classes=n)
        except ConfigError as exc:
            st.error(str(exc))
            return None
    if cfg is None:
        st.error(f"{upload.name}: the architecture is unknown; pick it in the list above.")
        return None
    model, report = memo_get(("ckpt-model", digest, choice), lambda: fitted(cfg, ckpt.state_dict))
    if not report.ok:
        target = choice if choice != "as found" else ("the recorded" if ckpt.config else "the inferred") + " architecture"
        lines = [f"{upload.name}: the weights do not fit {target}."]
        wrong = [f"{key} (model {tuple(expected)}, file {tuple(got)})" for key, expected, got in report.wrong_shape]
        for title, keys in (("missing", report.missing), ("unexpected", report.unexpected), ("wrong shape", wrong)):
            if keys:
                shown = ", ".join(keys[:12]) + (" ..." if len(keys) > 12 else "")
                lines.append(f"- {title} ({len(keys)}): {shown}")
        lines.append("Pick the right architecture above.")
        st.error("\n".join(lines))
        return None
    model.eval()
    size = 32 if cfg.stem == "cifar" else 224
    pre = Preprocess.from_dict(ckpt.preprocess, default_size=size)
    if pre.resize is None and pre.image_size >= 64:
        pre = Preprocess(pre.image_size, pre.mean, pre.std, round(pre.image_size * 256 / 224))
    classes = list(ckpt.classes or [])
    if not classes:  # a bare state_dict: 1000 outputs are ImageNet's classes (names ship with torchvision)
        classes = imagenet_categories() if cfg.num_classes == 1000 else [f"class {i}" for i in range(cfg.num_classes)]
    on_shapes = classes == list(SHAPES_CLASSES)
    return Subject(model, classes, pre, f"upload:{digest}:{choice}", f"uploaded {upload.name}", on_shapes)


SOURCES = {
    "Shapes demo model": shapes_source,
    "A finished training run": run_source,
    "The Build page's model": build_source,
    "ImageNet weights (torchvision)": pretrained_source,
    "Upload a checkpoint": upload_source,
}

st.subheader("Model")
source = st.radio("Model to explain", list(SOURCES), key="gc_source", horizontal=True)
if st.session_state.get(TRAINER_KEY) is not None:
    st.fragment(training_status, run_every=1.0)()
if TRAIN_ERROR_KEY in st.session_state:
    st.error(st.session_state[TRAIN_ERROR_KEY])
subject = SOURCES[source]()
if subject is None:
    st.stop()
st.caption(f"Explaining **{subject.title}**: {len(subject.classes)} classes, input "
           f"{subject.pre.image_size}x{subject.pre.image_size} px.")

# ---- images --------------------------------------------------------------------------------------


@dataclass
class Item:
    name: str
    image: Image.Image
    mask: torch.Tensor | None = None


def shapes_samples(size: int, count: int = 4) -> list[Item]:
    data = cached_shapes_check(SHAPES_CHECK_IMAGES, size)
    items = []
    for i in range(count):
        array = data.images[i].permute(1, 2, 0).numpy()
        label = SHAPES_CLASSES[int(data.labels[i])]
        items.append(Item(f"Shapes sample {i + 1} ({label})", Image.fromarray(array), data.masks[i]))
    return items


st.subheader("Images")
photos = {s.name: s for s in sample_images()}
shape_items = {i.name: i for i in shapes_samples(subject.pre.image_size)} if subject.on_shapes else {}
options = list(shape_items) + list(photos)
default = options[:2] if subject.on_shapes else options[:1]
cols = st.columns([1, 1])
chosen = cols[0].multiselect("Sample images", options, default=default, key=f"gc_samples_{subject.on_shapes}",
                             help="Bundled public-domain / CC0 photos (see assets/samples/CREDITS.md), and, for a "
                                  "Shapes model, held-out Shapes images.")
uploads = cols[1].file_uploader("Or upload images (JPEG, PNG, WebP, BMP, GIF, TIFF; several at once)",
                                accept_multiple_files=True, key="gc_uploads")
good, bad = decode_images([(u.name, u.getvalue()) for u in uploads or []])
for _, message in bad:
    st.error(message)
for decoded in good:
    for note in decoded.notes:
        st.info(note)

items = [shape_items[n] if n in shape_items else Item(n, photos[n].load()) for n in chosen]
items += [Item(d.name, d.image) for d in good]
if not items:
    st.info("Choose a sample image or upload one to see predictions.")
    st.stop()
if len(items) > MAX_GALLERY:
    st.warning(f"{len(items)} images: showing the first {MAX_GALLERY}.")
    items = items[:MAX_GALLERY]

def for_display(view: Image.Image) -> Image.Image:
    """Small network inputs (32 px) are enlarged with visible pixels, so the overlay is readable."""
    return view.resize((256, 256), Image.Resampling.NEAREST) if view.width < 128 else view


prepared = [prepare(item.image, subject.pre) for item in items]
views = [for_display(view) for view, _ in prepared]
batch = torch.stack([x for _, x in prepared])
image_keys = [hashlib.sha256(x.numpy().tobytes()).hexdigest()[:16] for x in batch]

# ---- overview: every image's prediction and Grad-CAM, in one batched pass -------------------------

try:
    probs = memo_get(("probs", subject.key, tuple(image_keys)), lambda: predict(subject.model, batch))
    overview = memo_get(("overview", subject.key, tuple(image_keys)),
                        lambda: explain_batch(subject.model, batch, "gradcam"))
except (AttributionError, RuntimeError) as exc:
    st.error(f"The model could not process these images: {exc}")
    st.stop()

controls = st.columns(3)
alpha = controls[0].slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key="gc_alpha")
colormap = controls[1].selectbox("Colour map", list(COLORMAPS), key="gc_colormap")
top_k = controls[2].slider("Top-k predictions", 1, min(10, len(subject.classes)), min(5, len(subject.classes)),
                           key="gc_topk")

gallery = st.columns(6)
for i, item in enumerate(items):
    best = topk(probs[i], subject.classes, 1)[0]
    with gallery[i % len(gallery)]:
        st.image(overlay(views[i], overview.maps[i], alpha, colormap), width="stretch",
                 caption=f"{item.name}: {best['label']} ({100 * best['probability']:.1f}%)")

# ---- one image in detail ---------------------------------------------------------------------------

st.subheader("Explain one image")
index = st.selectbox("Image", range(len(items)), format_func=lambda i: items[i].name, key="gc_image")
item, view, x = items[index], views[index], batch[index]
rows = topk(probs[index], subject.classes, top_k)
left, right = st.columns([1, 2], vertical_alignment="center")
with left:
    st.image(view, caption=f"what the network sees ({subject.pre.image_size} px)", width="stretch")
with right:
    st.plotly_chart(probability_figure(rows, revision=f"probs-{subject.key}"), key="gc_probs_chart")
    st.dataframe([{"rank": r["rank"], "class": r["label"], "probability %": round(100 * r["probability"], 2)}
                  for r in rows], hide_index=True)

ranked = torch.argsort(probs[index], descending=True).tolist()
target = st.selectbox("Explain the class", ranked, key=f"gc_target_{subject.key}_{image_keys[index]}",
                      format_func=lambda c: f"{subject.classes[c]} ({100 * float(probs[index][c]):.1f}%)",
                      help="Defaults to the prediction; pick another class to see the evidence for it.")
settings = st.columns(2)
methods = settings[0].multiselect("Methods", METHODS, default=["gradcam", "guided_gradcam"], key="gc_methods",
                                  format_func=METHOD_LABELS.get)
layers = target_layers(subject.model)
layer = settings[1].selectbox("Layer (Grad-CAM, Guided Grad-CAM)", layers, key=f"gc_layer_{subject.key}",
                              help="The last stage by default; earlier layers give finer but less class-specific maps.")
options_by_method: dict[str, dict[str, Any]] = {}
if "integrated_gradients" in methods:
    ig = st.columns(2)
    options_by_method["integrated_gradients"] = {
        "n_steps": ig[0].slider("Integrated Gradients: steps", 8, 128, 32, 8, key="gc_ig_steps"),
        "smoothgrad_samples": ig[1].slider("SmoothGrad samples (0 = off)", 0, 16, 0, key="gc_ig_smooth"),
    }


def compute_map(method: str) -> torch.Tensor:
    opts = options_by_method.get(method, {})
    key = ("map", subject.key, image_keys[index], method, int(target),
           layer if method in LAYER_METHODS else None, tuple(sorted(opts.items())))
    return memo_get(key, lambda: explain_batch(subject.model, x, method, [int(target)],
                                               layer if method in LAYER_METHODS else None, **opts).maps[0])


if methods:
    panels = st.columns(max(3, len(methods)))
    for method, panel in zip(methods, panels):
        with panel:
            try:
                with st.spinner(f"{METHOD_LABELS[method]}..."):
                    cam = compute_map(method)
            except (AttributionError, RuntimeError) as exc:
                st.error(f"{METHOD_LABELS[method]}: {exc}")
                continue
            shown = overlay(view, cam, alpha, colormap)
            st.image(shown, caption=METHOD_LABELS[method], width="stretch")
            st.download_button("Download PNG", png_bytes(shown), file_name=f"{item.name}-{method}.png",
                               mime="image/png", key=f"gc_dl_{method}", on_click="ignore")
    st.caption("Grad-CAM and Occlusion show evidence *for* the class (≥ 0). Saliency, Integrated Gradients and "
               "Guided Grad-CAM show |attribution| summed over colour channels: pixels that matter either way.")

# ---- plain vs residual -------------------------------------------------------------------------------

st.subheader("Plain vs residual: the same image, two networks")
shapes_runs = [r for r in usable_runs() if r.dataset == "shapes"]
pair = {True: next((r for r in shapes_runs if run_is_residual(r)), None),
        False: next((r for r in shapes_runs if not run_is_residual(r)), None)}
if pair[True] is None or pair[False] is None:
    st.info("Needs a residual and a plain network trained on Shapes. Train the missing one here (about a minute each).")
    buttons = st.columns(2)
    with buttons[0]:
        if pair[True] is None:
            train_button(True, "Train ResNet-20 on Shapes")
    with buttons[1]:
        if pair[False] is None:
            train_button(False, "Train plain-20 (no shortcuts) on Shapes")
else:
    def compare_panel(run: RunInfo, kind: str) -> None:
        """The chosen image through another run's model: its prediction and its own Grad-CAM."""
        other = run_subject(run)
        if other is None:
            return
        other_view, other_x = prepare(item.image, other.pre)
        key = (other.key, image_keys[index])
        other_probs = memo_get(("compare-probs", *key), lambda: predict(other.model, other_x))
        cam = memo_get(("compare-map", *key), lambda: explain_batch(other.model, other_x, "gradcam").maps[0])
        best = topk(other_probs, other.classes, 1)[0]
        st.image(overlay(for_display(other_view), cam, alpha, colormap), width="stretch",
                 caption=f"{kind}: {other.title} — predicts {best['label']} ({100 * best['probability']:.1f}%)")

    panels = st.columns(3)
    with panels[0]:
        compare_panel(pair[True], "residual")
    with panels[1]:
        compare_panel(pair[False], "plain")

# ---- trust checks -----------------------------------------------------------------------------------

st.subheader("Can the map be trusted?")
st.markdown("**Does it point at the object?** On held-out Shapes images the object's exact mask is known: the "
            "pointing game counts how often the map's peak lies on the object, and the energy share how much of the "
            "map lies there. A uniform or random map scores the object's area fraction (chance).")
if not subject.on_shapes:
    st.info("This check needs a model trained on Shapes (the only images here with known object masks): choose the "
            "Shapes demo model or a Shapes run.")
elif st.button("Score localization on 64 Shapes images", key="gc_loc_button"):
    data = cached_shapes_check(SHAPES_CHECK_IMAGES, subject.pre.image_size)
    check_x = torch.stack([prepare(Image.fromarray(im.permute(1, 2, 0).numpy()), subject.pre)[1] for im in data.images])
    check_methods = [m for m in methods if m != "occlusion"] or ["gradcam"]
    with st.spinner("Explaining 64 images with each method..."):
        st.session_state["gc_loc_result"] = (subject.key, localization_scores(
            subject.model, check_x, data.masks, check_methods, targets=data.labels.tolist(), layer=layer,
            method_options=options_by_method))
loc = st.session_state.get("gc_loc_result")
if subject.on_shapes and loc and loc[0] == subject.key:
    st.plotly_chart(localization_figure(loc[1]), key="gc_loc_chart")
    st.dataframe([{"method": r["label"], "pointing game %": round(100 * r["pointing_game"], 1),
                   "energy inside %": round(100 * r["energy_inside"], 1), "images": r["n"]} for r in loc[1]],
                 hide_index=True)

st.markdown("**Does it depend on the model?** Re-initialise the weights from the head down, block by block "
            "(Adebayo et al. 2018), and compare each map with the trained model's (Spearman rank correlation). "
            "An explanation of the model must change as the model is destroyed.")
randomization_methods = st.multiselect("Methods to check", [m for m in METHODS if m != "occlusion"],
                                       default=["gradcam", "guided_gradcam"], format_func=METHOD_LABELS.get,
                                       key="gc_rand_methods")
# Past ~20 blocks (resnet50 has 16, resnet152 50) a block-by-block cascade takes minutes on a CPU.
blocks = len(randomization_steps(subject.model, "block")) - 2
granularity = "block" if blocks <= 20 else "stage"
if st.button("Run the randomization check on this image", key="gc_rand_button", disabled=not randomization_methods):
    bar = st.progress(0.0, text="randomizing...")
    result = randomization_check(subject.model, x, randomization_methods, target=int(target), layer=layer,
                                 granularity=granularity, keep_maps=False,
                                 progress=lambda f, step: bar.progress(f, text=f"randomized down to {step}"))
    bar.empty()
    st.session_state["gc_rand_result"] = (subject.key, image_keys[index], result)
rand = st.session_state.get("gc_rand_result")
if rand and rand[0] == subject.key and rand[1] == image_keys[index]:
    result = rand[2]
    st.plotly_chart(randomization_figure(result.steps, result.correlations, METHOD_LABELS), key="gc_rand_chart")
    st.caption("Each point: every layer from the head down to the one named is re-initialised, and the map for the "
               "same class is compared with the trained model's. Grad-CAM should fall towards 0. Guided Grad-CAM is "
               "known to barely change (Adebayo et al. 2018, on ImageNet networks): its guided-backprop factor mostly "
               "recovers image edges whatever the weights, which is why it fails this check. On small networks it "
               "can follow Grad-CAM more closely, since the Grad-CAM factor it multiplies by does change"
               + (f"; steps are whole stages for this {blocks}-block model." if granularity == "stage" else "."))
