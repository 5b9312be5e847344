"""The Grad-CAM page's model pickers: each draws its widgets and returns a Subject, or None with a message.

Building the Subject (classes, preprocessing, keys) lives in resnet_core.explain.subjects, loading weights in
resnet_core.train (runs, pretrained) and resnet_core.model (checkpoints); what is here is widgets, session state
and shared caches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import streamlit as st

from resnet_core import ConfigError, list_presets
from resnet_core.assets import bundled_model, is_bundled, provenance
from resnet_core.data import ImageSet, make_shapes
from resnet_core.device import best_device
from resnet_core.estimates import shapes_recipe_seconds
from resnet_core.explain import (
    Subject,
    built_subject,
    checkpoint_subject,
    pretrained_subject,
    run_subject,
    shapes_pair,
    shapes_runs,
    usable_runs,
)
from resnet_core.model import (
    CheckpointError,
    check_cost,
    checkpoint_config,
    default_image_size,
    fitted_model,
    load_checkpoint,
    misfit_message,
    preset_for_checkpoint,
)
from resnet_core.recipes import CHECK_SEED, DEFAULT_PRESET, demo_request
from resnet_core.serving import class_demo_run
from resnet_core.share import escape_markdown
from resnet_core.status import Status
from resnet_core.train import (
    MODEL_FILE,
    TORCHVISION_ARCHS,
    PretrainedModel,
    RunError,
    RunInfo,
    WeightsUnavailableError,
    available_weights,
    default_runs_dir,
    is_cached,
    load_pretrained,
    load_run_model,
    read_run,
    weights_file_path,
)
from ui.demos import on_this_device
from ui.jobs import calibrated, follower, show_queued, show_run_progress, training_queue
from ui.memo import memo_forget, memo_get
from ui.share import Linked
from ui.state import current_model
from ui.visitor import actor, share, visible_runs

JOB_KEY = "gc_train_job"  # the demo model's job in the server's training queue
# The pretrained source's architecture picker, linked in the Grad-CAM page's URL (the page lists it in LINKED).
ARCH_OPTION = Linked("gc_arch", "arch", TORCHVISION_ARCHS[0], TORCHVISION_ARCHS)
TRAIN_ERROR_KEY = "gc_train_error"
# The runs folder is read on every call, not at import: this module outlives a page's reruns,
# and the folder comes from the environment (RESNET_EXPLORER_RUNS_DIR).


# ---- shared, read-only resources ---------------------------------------------------------------


@st.cache_resource(max_entries=2, show_spinner=False)
def cached_pretrained(arch: str, weights_name: str, _progress=None) -> PretrainedModel:
    """Pretrained ImageNet models are never trained here, so every session may share them."""
    return load_pretrained(arch, weights_name, progress=_progress)


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_shapes_check(n: int, size: int) -> ImageSet:
    """Held-out Shapes images with their object masks, for the samples and the localization check."""
    return make_shapes(n, seed=CHECK_SEED, size=size)


def load_run_subject(run: RunInfo) -> Subject | None:
    """A run's model, loaded once per session (and again when its weights file changes); a bundled model is
    "recorded" (with its provenance), a run of the runs folder "live"."""
    try:
        mtime = (run.path / MODEL_FILE).stat().st_mtime
        model, classes, preprocess = memo_get(("run", str(run.path), mtime), lambda: load_run_model(run.path))
        if is_bundled(run.path):
            return run_subject(run, model, classes, preprocess, mtime, origin="recorded",
                               provenance=recorded_text(run))
        return run_subject(run, model, classes, preprocess, mtime, origin="live")
    except (RunError, OSError, ValueError, TypeError) as exc:  # a run folder is outside input: never a traceback
        st.error(f"Run {escape_markdown(run.name)}: {escape_markdown(exc)}")
        return None


def recorded_text(run: RunInfo) -> str:
    """ "validation accuracy 94.1%, recorded on 2026-12-01 on cpu (2 cores, x86_64), 105 s, rebuilt by `…`" """
    made = provenance(run.path)
    results = next(iter(made.results.values()), {}) if made is not None else {}
    acc = results.get("val_acc", run.val_acc)
    parts = ([] if acc is None else [f"validation accuracy {100 * acc:.1f}%"]) + \
        ([made.summary()] if made is not None else ["provenance.json is missing"])
    return ", ".join(parts)


# ---- the one-click Shapes demo training -----------------------------------------------------------


def start_training(residual: bool) -> bool:
    """Queue the demo training (a worker process); False, with a message, if it cannot."""
    queue = training_queue()
    current = queue.view(st.session_state[JOB_KEY]) if JOB_KEY in st.session_state else None
    if current is not None and current.active:
        return False
    try:
        preset = DEFAULT_PRESET if residual else "plain20"
        request = demo_request(residual, queue.unique_name(f"gradcam-demo-{preset}-shapes"))
        st.session_state[JOB_KEY] = queue.submit("Grad-CAM demo model", [request], shapes_recipe_seconds(),
                                                 best_device(), **share()).id
    except (ValueError, OSError) as exc:  # RefusedError (the class's limits) is a ValueError
        st.session_state[TRAIN_ERROR_KEY] = f"Training could not start: {exc}"
        return False
    st.session_state.pop(TRAIN_ERROR_KEY, None)
    return True


def training_status() -> None:
    """Progress of this session's demo training; redrawn every second only while there is one."""
    job = training_queue().view(st.session_state[JOB_KEY]) if JOB_KEY in st.session_state else None
    if job is None:
        return
    if job.queued:
        show_queued(job)
        return
    if job.active:
        show_run_progress(follower(job.run_dirs[0]).poll(), "Training on Shapes")
        return
    st.session_state.pop(JOB_KEY)
    if job.status.bad or not job.status.kept_weights:  # did not learn, diverged, failed or cancelled
        st.session_state[TRAIN_ERROR_KEY] = f"The demo training ended with status {job.status}: {job.error}"
    st.rerun(scope="app")  # the new run (or the message) appears in the whole page


def shapes_training_text() -> str:
    """ "about 1 min on this CPU": the Shapes demo model's training, timed on this device."""
    return on_this_device(calibrated(shapes_recipe_seconds()))


def training_running() -> bool:
    return st.session_state.get(JOB_KEY) is not None


def training_failed() -> bool:
    """Whether the last demo training could not start or ended badly (its message is shown)."""
    return TRAIN_ERROR_KEY in st.session_state


def forget_training_failure() -> None:
    st.session_state.pop(TRAIN_ERROR_KEY, None)


def train_button(residual: bool, label: str, key: str | None = None) -> None:
    """A button that queues the Shapes demo training (`key` defaults to gc_train_res / gc_train_plain)."""
    busy = training_running()
    key = key or f"gc_train_{'res' if residual else 'plain'}"
    if st.button(label, key=key, disabled=busy, icon=":material/model_training:") and start_training(residual):
        st.rerun()  # show the progress bar at the top


def show_training() -> None:
    """The demo training's progress (a fragment while it runs) and why it failed, if it did."""
    if st.session_state.get(JOB_KEY) is not None:
        st.fragment(training_status, run_every=1.0)()
    if TRAIN_ERROR_KEY in st.session_state:
        st.error(st.session_state[TRAIN_ERROR_KEY])


# ---- model sources -------------------------------------------------------------------------------


def shapes_source() -> Subject | None:
    """The Shapes demo model: the one the lecturer promoted for the class, else the newest this visitor trained
    here with the button below ("live"), else the bundled one ("recorded"), else a train button. Another
    visitor's run is never anyone's default (it is one pick away under "A finished training run")."""
    promoted = class_demo_run(default_runs_dir())
    runs = residual_shapes_runs()
    chosen = read_run(promoted) if promoted is not None else (runs[0] if runs else None)
    subject = load_run_subject(chosen) if chosen is not None else None
    if subject is None:
        bundled = bundled_model(True)
        subject = load_run_subject(bundled) if bundled is not None else None
    took = shapes_training_text()
    if subject is None:
        st.info("No model trained on Shapes yet. Shapes is the built-in dataset (10 kinds of shapes, with exact "
                f"object masks, so the maps can be scored). Train a ResNet-20 on it here, offline: {took}.")
        train_button(True, f"Train a small Shapes model (ResNet-20, {took})")
        return None
    text, button = st.columns([3, 1], vertical_alignment="center")
    if subject.origin == "recorded":
        text.info(f"**Recorded**: the Shapes ResNet-20 bundled with the app — {subject.provenance}. A ResNet you "
                  "train here on Shapes replaces it.", icon=":material/inventory_2:")
    elif promoted is not None:
        text.info(f"**Class demo model**: {escape_markdown(promoted.name)}, chosen by the lecturer.",
                  icon=":material/star:")
    else:
        text.info(f"**Live**: {escape_markdown(chosen.name)}, the Shapes ResNet you trained here.",
                  icon=":material/bolt:")
    with button:
        train_button(True, f"Train a fresh one here ({took})")
    return subject


def run_source() -> Subject | None:
    runs = visible_runs(usable_runs(default_runs_dir()))
    if not runs:
        st.info("No finished training run with saved weights yet: train one on the Train page, or here with the "
                "Shapes demo model.")
        return None
    labels = {r.name: f"{r.name} — {r.arch}, {r.dataset}" for r in runs}
    name = st.selectbox("Run", list(labels), format_func=labels.get, key="gc_run")
    return load_run_subject(next(r for r in runs if r.name == name))


def build_source() -> Subject:
    model = current_model()
    cfg = model.config
    st.caption(f"The Build page's model ({cfg.depth} layers, {'residual' if cfg.residual else 'plain'}) has "
               "**random weights** until it is trained: its predictions and maps are noise — which is what the "
               "randomization check below should tell you too.")
    return built_subject(model)


def pretrained_source() -> Subject | None:
    cols = st.columns(2)
    arch = ARCH_OPTION.widget(cols[0].selectbox, "Architecture")
    versions = available_weights(arch)
    name = cols[1].selectbox("Weights", versions, key="gc_weights", persist_state="page")
    failures = st.session_state.setdefault("gc_weights_failed", {})
    if not is_cached(arch, name) and (arch, name) in failures:
        # Offline: do not retry the network on every rerun, only when asked. One message says what to do.
        weights_unavailable(failures[(arch, name)])
        if not st.button("Try the download again", key="gc_retry_weights"):
            return None
        failures.pop((arch, name))
    bar = st.empty()
    if not is_cached(arch, name):
        bar.caption(f"Downloading {weights_file_path(arch, name).name} (first use only)…")
    try:
        loaded = cached_pretrained(arch, name, _progress=lambda f, msg="": bar.progress(min(1.0, f), text=msg or None))
    except (WeightsUnavailableError, CheckpointError) as exc:
        bar.empty()
        failures[(arch, name)] = str(exc)
        weights_unavailable(str(exc))
        return None
    bar.empty()
    return pretrained_subject(loaded, arch, name)


def weights_unavailable(message: str) -> None:
    """The one message of an ImageNet source that cannot load its weights: why, and the file and folder to fix it."""
    text = escape_markdown(message)
    st.warning(f"**ImageNet weights unavailable.** {text[:1].upper()}{text[1:]}.\n\nThe other model sources "
               "work offline: the Shapes demo model is bundled with the app.", icon=":material/cloud_off:")


def upload_source() -> Subject | None:
    upload = st.file_uploader(f"A checkpoint (.pt / .pth): a run's {MODEL_FILE} or a torchvision state_dict",
                              type=["pt", "pth"], key="gc_ckpt",
                              help="Up to 50 MB (server.maxUploadSize in .streamlit/config.toml): enough for CIFAR "
                                   "nets and resnet18; use the ImageNet weights source for the larger torchvision "
                                   "nets.")
    if upload is None:
        return None
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    name = upload.name
    # One uploaded checkpoint at a time: another file's weights and model leave the session.
    memo_forget(lambda key: key[0] not in ("ckpt", "ckpt-model") or key[1] == digest)

    def refuse(message: str) -> None:
        """Show why, as plain text, and keep nothing of this file (its bytes, tensors or model)."""
        memo_forget(lambda key: key[0] not in ("ckpt", "ckpt-model"))
        st.error(escape_markdown(message))

    try:
        ckpt = memo_get(("ckpt", digest), lambda data=data: load_checkpoint(data))
    except CheckpointError as exc:
        refuse(f"{name}: {exc}")
        return None
    del data
    cfg, how, why_unknown = checkpoint_config(ckpt)
    if why_unknown is not None:
        st.warning(escape_markdown(f"{name}: the architecture is not recorded and could not be inferred "
                                   f"({why_unknown}). Pick it in the list below."))
    choice = st.selectbox(f"Architecture ({how})", ["as found"] + list_presets(), key="gc_ckpt_arch",
                          help="Override when the architecture was not recorded or was guessed wrongly.")
    if choice != "as found":
        try:
            cfg = preset_for_checkpoint(ckpt, choice)
        except ConfigError as exc:
            st.error(escape_markdown(exc))
            return None
    if cfg is None:
        st.error(escape_markdown(f"{name}: the architecture is unknown; pick it in the list above."))
        return None
    size = (ckpt.preprocess or {}).get("image_size") or default_image_size(cfg)
    try:
        check_cost(cfg, size)  # from the config alone, before anything is built
    except ConfigError as exc:
        refuse(f"{name}: the model it describes is too costly to run here ({exc})")
        return None
    model, report = memo_get(("ckpt-model", digest, choice), lambda: fitted_model(cfg, ckpt.state_dict))
    if model is None:
        found = ("the recorded" if ckpt.config else "the inferred") + " architecture"
        target = choice if choice != "as found" else found
        memo_forget(lambda key: key[:3] != ("ckpt-model", digest, choice))
        st.error(plain_lines(misfit_message(report, name, target)))
        return None
    return checkpoint_subject(model, ckpt, cfg, f"{digest}:{choice}", upload.name)


def plain_lines(text: str) -> str:
    """A message of several lines, each shown as plain text (a line starting "- " stays a list item)."""
    lines = [("- " + escape_markdown(line[2:])) if line.startswith("- ") else escape_markdown(line)
             for line in text.split("\n")]
    return "\n".join(lines)


# code (as in links) -> (label, the picker that draws its widgets and returns the Subject)
SOURCES: dict[str, tuple[str, Callable[[], Subject | None]]] = {
    "shapes": ("Shapes demo model", shapes_source),
    "run": ("A finished training run", run_source),
    "build": ("The Build page's model", build_source),
    "imagenet": ("ImageNet weights (torchvision)", pretrained_source),
    "upload": ("Upload a checkpoint", upload_source),
}


def own_healthy_runs() -> list[RunInfo]:
    """This visitor's runs that finished as planned, newest first: the only runs a default may come from. A
    stopped, failed, diverged or did-not-learn run, or anyone else's, never is."""
    owner = actor().owner
    return [r for r in usable_runs(default_runs_dir()) if r.status is Status.FINISHED and r.owner == owner]


def residual_shapes_runs() -> list[RunInfo]:
    """This visitor's finished residual runs on Shapes, newest first: their Shapes demo model is the first."""
    return shapes_runs(own_healthy_runs(), residual=True)


def shapes_pair_runs() -> dict[bool, RunInfo | None]:
    """The residual (True) and plain (False) Shapes nets to compare: the newest this visitor trained here, else
    the bundled one ("recorded"), None where there is neither."""
    pair = shapes_pair(own_healthy_runs())
    return {residual: run if run is not None else bundled_model(residual) for residual, run in pair.items()}


def shapes_model_ready() -> bool:
    """Whether this visitor has a Shapes demo model of their own (or the class has a promoted one). Without one
    the bundled ResNet-20 answers at once (ui.demos says so for the demo); only without both does the demo train
    first."""
    return bool(residual_shapes_runs()) or class_demo_run(default_runs_dir()) is not None
