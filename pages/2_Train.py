"""Train page: pick a model and a dataset, press Start, watch the loss fall live.

Training runs in a worker process under the server's training queue (resnet_core.jobs.training_queue):
the same `python -m resnet_core.train` a terminal would run. This page follows the run's folder once a
second (resnet_core.train.follow), so the run survives its tab, and a run started in a terminal can be
followed here too.
"""

import secrets
import time
from pathlib import Path

import streamlit as st
import torch

from resnet_core import ConfigError, ResNetConfig, list_presets
from resnet_core.charts import (
    LIVE_POINTS_DRAWN,
    MAX_POINTS_DRAWN,
    OVERLAY_METRICS,
    epoch_metrics_figure,
    lr_figure,
    runs_overlay_figure,
    throughput_figure,
    training_loss_figure,
)
from resnet_core.data import (
    DATA_ROOT_ENV,
    DatasetError,
    DatasetSpec,
    clean_uploads,
    data_root,
    discard_upload,
    replace_upload,
    visitor_path,
)
from resnet_core.data.spec import LIMITS as DATA_LIMITS
from resnet_core.device import best_device
from resnet_core.estimates import format_duration, run_seconds
from resnet_core.jobs.training_queue import JobEnd
from resnet_core.model import get_preset
from resnet_core.recipes import SHAPES_DATA, SHAPES_TRAIN
from resnet_core.serving import RefusedError, class_demo_run, demote, promote, remove_run, stop_run
from resnet_core.share import escape_markdown
from resnet_core.status import Status
from resnet_core.train import (
    DEVICES,
    MODEL_FILE,
    OPTIMIZERS,
    SCHEDULES,
    TORCHVISION_ARCHS,
    USUAL_LR,
    RunError,
    StatusEvent,
    TrainConfig,
    TrainConfigError,
    TrainerError,
    WeightsUnavailableError,
    arch_name,
    default_runs_dir,
    fetch_weights,
    find_run,
    is_cached,
    list_runs,
    load_metrics,
    metrics_csv,
    read_run,
    schedule_preview,
)
from resnet_core.train.config import LIMITS as TRAIN_LIMITS
from resnet_core.train.launch import TrainRequest
from resnet_core.train.safe_read import MAX_CHECKPOINT_BYTES, read_bytes
from ui.charts import chart
from ui.demos import on_this_device
from ui.frame import page_setup
from ui.jobs import calibrated, follower, show_queued, show_run_progress, start_stop, training_queue
from ui.share import Linked, apply_link, by_key, share_link
from ui.state import current_config
from ui.visitor import actor, class_limits, is_lecturer, owner_label, share, visible_runs

page_setup("Train")
st.title("Train")
st.markdown(
    "Training lowers the cross-entropy loss $L = -\\log p_{\\text{true class}}$ by stepping every weight against "
    "its gradient, $w \\leftarrow w - \\eta\\, \\partial L / \\partial w$. Press **Start**: the model from the "
    "Build page learns the built-in Shapes dataset while the loss falls live (a ResNet-20 reaches about 94% "
    "validation accuracy with these defaults; how long it takes on this server is said next to **Start**). "
    "Each run trains in its own "
    "process and is saved as a folder, so it goes on if you close the tab, and you can compare and download "
    "runs below."
)
with st.expander("How it works"):
    st.markdown(
        "- **Step**: a batch of images goes forward, the loss is averaged over it, `backward()` fills every "
        "$\\partial L/\\partial w$, and the optimizer updates the weights. SGD with momentum $\\mu$ keeps a velocity "
        "$v \\leftarrow \\mu v + g$ and steps $w \\leftarrow w - \\eta v$ (Nesterov looks one step ahead).\n"
        "- **Learning rate** $\\eta$ follows the schedule drawn below: a short warm-up from 0 keeps deep nets from "
        "blowing up in their first steps, then cosine decay to 0 lets the weights settle.\n"
        "- **Weight decay** adds $\\lambda w$ to each gradient; **augmentation** (random shifts and flips) shows "
        "each image slightly differently in every epoch, so the net cannot memorise pixels.\n"
        "- **Validation accuracy** is measured after every epoch on images never trained on: the gap between it "
        "and training accuracy is overfitting.\n"
        "- The **gradient norm** $\\lVert g \\rVert_2$ over all weights is recorded each step; a loss of NaN or "
        "infinity stops the run as *diverged* (lower the learning rate).")

JOB_KEY = "train_job"  # this session's job in the server's training queue
FOLLOW_KEY = "train_follow"  # a run folder this session follows (its own job's, or one picked below)
RUN_PARAM = "run"  # the followed run's folder name in the URL
RUNS_DIR = default_runs_dir()
SOURCES = {"build": "the model from the Build page", "preset": "a preset", "pretrained": "ImageNet weights (fine-tune)"}
DATASETS = {
    "shapes": "Shapes (built in, 10 classes)",
    "cifar10": "CIFAR-10 (from a folder)",
    "cifar100": "CIFAR-100 (from a folder)",
    "imagefolder": "ImageFolder (a folder on this machine)",
    "upload": "ImageFolder (upload a .zip)",
}
# Green only for a run that learned: "did not learn" and a cut-off run are warnings with their reason.
STATUS_BOX = {Status.FINISHED: st.success, Status.STOPPED: st.info, Status.DID_NOT_LEARN: st.warning,
              Status.INTERRUPTED: st.warning, Status.DIVERGED: st.error, Status.FAILED: st.error}
T, TL, DL = SHAPES_TRAIN, TRAIN_LIMITS, DATA_LIMITS  # each widget's range is the engine's own
LINKED = (
    Linked("train_source", "source", "build", tuple(SOURCES)),
    Linked("train_preset", "train_preset", "resnet20", tuple(list_presets())),
    Linked("train_pretrained", "pretrained", "resnet18", TORCHVISION_ARCHS),
    Linked("train_freeze", "freeze", False),
    Linked("train_dataset", "data", SHAPES_DATA.kind, tuple(DATASETS)),
    Linked("train_n_train", "n", SHAPES_DATA.n_train, bounds=DL["n_train"]),
    Linked("train_n_val", "n_val", SHAPES_DATA.n_val, bounds=DL["n_val"]),
    Linked("train_image_size", "px", SHAPES_DATA.image_size, bounds=DL["image_size"]),
    Linked("train_epochs", "epochs", T.epochs, bounds=TL["epochs"]),
    Linked("train_batch", "batch", T.batch_size, bounds=TL["batch_size"]),
    Linked("train_optimizer", "opt", T.optimizer, OPTIMIZERS),
    Linked("train_lr", "lr", T.lr, bounds=TL["lr"]),
    Linked("train_schedule", "schedule", T.schedule, SCHEDULES),
    Linked("train_warmup", "warmup", T.warmup_epochs, bounds=TL["warmup_epochs"]),
    Linked("train_momentum", "momentum", T.momentum, bounds=TL["momentum"]),
    Linked("train_nesterov", "nesterov", T.nesterov),
    Linked("train_wd", "wd", T.weight_decay, bounds=TL["weight_decay"]),
    Linked("train_smoothing", "smoothing", T.label_smoothing, bounds=TL["label_smoothing"]),
    Linked("train_seed", "seed", T.seed, bounds=TL["seed"]),
    Linked("train_device", "device", T.device, DEVICES),
    Linked("train_max_steps", "max_steps", 0, bounds=(0, TL["max_steps"][1])),  # 0: no limit
    Linked("train_crop", "crop", T.augment_crop),
    Linked("train_padding", "padding", T.crop_padding, bounds=TL["crop_padding"]),
    Linked("train_flip", "flip", T.augment_flip),
)
L = by_key(LINKED)
apply_link(LINKED)

queue = training_queue()
job = queue.view(st.session_state[JOB_KEY]) if JOB_KEY in st.session_state else None
if job is None and FOLLOW_KEY not in st.session_state:
    # The URL names the run this page followed (?run=...): reopening the tab, or a shared link, re-attaches to it.
    linked_run = find_run(RUNS_DIR.resolve(), st.query_params.get(RUN_PARAM))
    if linked_run is not None:
        st.session_state[FOLLOW_KEY] = linked_run
followed: Path | None = job.run_dirs[0] if job is not None else st.session_state.get(FOLLOW_KEY)
if job is None and followed is not None and not followed.is_dir():
    followed = None
share_link(LINKED, {RUN_PARAM: followed.name} if followed is not None else None)
# "running" locks the form: this session's job waits or trains, or the run it follows is still training.
running = job.active if job is not None else (followed is not None and follower(followed).poll().running)
queued = job is not None and job.queued
me = actor()
# Another visitor's run (followed from the list or a ?run= link) is watched read-only: its Stop stays disabled.
followed_owner = read_run(followed).owner if followed is not None and job is None else None
mine = job is not None or followed is None or me.may_control(followed_owner)
REFUSED_KEY = "train_refused"  # why the last Stop / Remove / promote was refused, said once


def on_optimizer_change() -> None:
    st.session_state["train_lr"] = USUAL_LR[st.session_state["train_optimizer"]]


# ---- setup ---------------------------------------------------------------------------------

UPLOAD_KEY = "train_upload"  # (upload id, saved path or None, refusal message or None) of the zip uploaded
root_problem: str | None = None  # why the typed folder cannot be used (served mode); said when Start is pressed


def typed_folder(text: str, what: str) -> str | None:
    """The typed folder as the server will read it; in served mode confined to the data root."""
    global root_problem
    if not text:
        return None
    try:
        return str(visitor_path(text, what))
    except DatasetError as exc:
        root_problem = str(exc)
        return None


@st.cache_resource(show_spinner=False)
def clean_last_servers_uploads() -> int:
    """Once per server process, at the first Train page: the uploads a previous server left (every upload is made
    on this page, so this server's own are younger; the minute spares a file another process is writing now)."""
    return clean_uploads(max_age_s=60)


def kept_upload(upload) -> str | None:
    """The uploaded zip saved on disk under its own name, checked from its directory at once. A refused one is
    deleted at once and its reason shown; a replaced or removed one is deleted (uploads.clean_uploads removes
    the rest: at server start, and ones a closed tab left a day ago)."""
    clean_last_servers_uploads()
    before = st.session_state.get(UPLOAD_KEY)
    if upload is None:
        if before is not None and not running:
            discard_upload(before[1])
            del st.session_state[UPLOAD_KEY]
        return None
    upload_id = getattr(upload, "file_id", None) or (upload.name, upload.size)
    if before is None or before[0] != upload_id or (before[1] and not Path(before[1]).is_file()):
        owner = st.session_state.setdefault("train_upload_owner", secrets.token_hex(8))
        path, refusal = replace_upload(upload.getvalue(), upload.name, owner, before[1] if before else None)
        before = (upload_id, str(path) if path else None, refusal)
        st.session_state[UPLOAD_KEY] = before
    if before[2]:
        st.error(before[2])
    return before[1]


model_col, data_col = st.columns(2)
with model_col:
    st.subheader("Model")
    source = L["train_source"].widget(st.radio, "Start from", format_func=SOURCES.get, horizontal=True,
                                      disabled=running)
    if source == "build":
        built = current_config()
        st.caption(f"**{arch_name(built)}** from the Build page: {built.depth} layers, "
                   f"{'residual' if built.residual else 'plain'}, stages {list(built.stage_blocks)}. "
                   "Its number of outputs is set to the dataset's number of classes.")
    elif source == "preset":
        L["train_preset"].widget(st.selectbox, "Preset", disabled=running)
    else:
        L["train_pretrained"].widget(st.selectbox, "Pretrained architecture (torchvision)", disabled=running)
        L["train_freeze"].widget(st.checkbox, "Freeze the backbone (train only the new final layer)", disabled=running)
        st.caption("The final layer is replaced to fit the dataset's classes; images are normalised with "
                   "ImageNet's statistics. Larger images (64–224 px) suit these models better than 32 px.")

with data_col:
    st.subheader("Data")
    kind = L["train_dataset"].widget(st.selectbox, "Dataset", format_func=DATASETS.get, disabled=running)
    root = None
    served_help = (f"This server reads only folders inside its data folder ({DATA_ROOT_ENV}): type a path "
                   "relative to it." if data_root() is not None else None)
    if kind in ("cifar10", "cifar100"):
        root = typed_folder(st.text_input("Folder with the CIFAR files (downloaded there if missing and online)",
                                          value="data", key="train_root", disabled=running, help=served_help),
                            "CIFAR folder")
    elif kind == "imagefolder":
        root = typed_folder(st.text_input("Folder with one sub-folder of images per class (or a .zip path)",
                                          key="train_folder", disabled=running, help=served_help), "image folder")
    elif kind == "upload":
        upload = st.file_uploader("A .zip with one folder of images per class", type=["zip"], key="train_zip",
                                  disabled=running)
        root = kept_upload(upload)
    n_cols = st.columns(3)
    n_train = L["train_n_train"].widget(n_cols[0].number_input, "Training images", step=500, disabled=running)
    n_val = L["train_n_val"].widget(n_cols[1].number_input, "Validation images", step=500, disabled=running)
    image_size = L["train_image_size"].widget(n_cols[2].number_input, "Image size (px)", step=8, disabled=running,
                                              help="Shapes (up to 512 px) and ImageFolder; CIFAR is always 32 px")

with st.expander("Hyper-parameters", expanded=False):
    h = st.columns(4)
    epochs = L["train_epochs"].widget(h[0].number_input, "Epochs", disabled=running)
    batch_size = L["train_batch"].widget(h[1].number_input, "Batch size", disabled=running)
    optimizer = L["train_optimizer"].widget(h[2].selectbox, "Optimizer", disabled=running,
                                            on_change=on_optimizer_change)
    lr = L["train_lr"].widget(h[3].number_input, "Learning rate", format="%.4g", disabled=running)
    h = st.columns(4)
    schedule = L["train_schedule"].widget(h[0].selectbox, "Schedule", disabled=running,
                              help="step: /10 at 50% and 75% of training (He et al.); cosine: to 0 at the end; "
                                   "onecycle warms up over the first 30%, then anneals")
    warmup = L["train_warmup"].widget(h[1].number_input, "Warm-up epochs", step=0.5,
                                      disabled=running or schedule == "onecycle")
    momentum = L["train_momentum"].widget(h[2].number_input, "Momentum (SGD)", disabled=running)
    weight_decay = L["train_wd"].widget(h[3].number_input, "Weight decay", format="%.2g", disabled=running)
    h = st.columns(4)
    label_smoothing = L["train_smoothing"].widget(h[0].number_input, "Label smoothing", disabled=running)
    seed = L["train_seed"].widget(h[1].number_input, "Seed", disabled=running)
    device = L["train_device"].widget(h[2].selectbox, "Device", disabled=running,
                                      help="auto: CUDA, then Apple MPS, then CPU")
    max_steps = L["train_max_steps"].widget(h[3].number_input, "Stop after steps (0: no limit)", disabled=running)
    h = st.columns(4)
    nesterov = L["train_nesterov"].widget(h[0].checkbox, "Nesterov momentum", disabled=running or optimizer != "sgd")
    crop = L["train_crop"].widget(h[1].checkbox, "Random crop", disabled=running)
    padding = L["train_padding"].widget(h[2].number_input, "Crop padding (px)", disabled=running or not crop)
    flip = L["train_flip"].widget(h[3].checkbox, "Random flip", disabled=running)


def read_config() -> TrainConfig:
    return SHAPES_TRAIN.with_choices(
        epochs=int(epochs), batch_size=int(batch_size), optimizer=optimizer, lr=float(lr), momentum=float(momentum),
        nesterov=bool(nesterov), weight_decay=float(weight_decay), schedule=schedule, warmup_epochs=float(warmup),
        label_smoothing=float(label_smoothing), augment_crop=crop, crop_padding=int(padding), augment_flip=flip,
        seed=int(seed), device=device, max_steps=int(max_steps) or None)


def chosen_architecture() -> ResNetConfig:
    """The model the Start button will train: the Build page's, a preset, or the pretrained one's."""
    if source == "pretrained":
        return get_preset(st.session_state["train_pretrained"])
    return current_config() if source == "build" else get_preset(st.session_state["train_preset"])


def planned_seconds(config: TrainConfig) -> float | None:
    """How long the run Start would queue takes here, from a measurement on this device scaled by the model's
    MACs (before the queue's correction); None when it cannot be planned (too small an image, a device not here:
    Start will say why)."""
    size = 32 if kind in ("cifar10", "cifar100") else int(image_size)
    try:
        return run_seconds(chosen_architecture(), size, int(n_train), int(n_val), config,
                           device=None if config.device == "auto" else config.device)
    except (RuntimeError, ValueError, AssertionError):
        return None


def run_estimate(config: TrainConfig) -> str:
    """ " — about 2 min on this CPU, after about 3 min in line": the planned time, corrected by how long runs here
    really took, and the wait in the server's queue a run started now would have."""
    seconds = planned_seconds(config)
    if seconds is None:
        return ""
    device = best_device() if config.device == "auto" else config.device
    wait = queue.wait_for_new(device)
    line = f", after about {format_duration(wait)} waiting in line" if wait >= 5 else ""
    return f" — {on_this_device(calibrated(seconds, device))}{line}"


def refusal(config: TrainConfig) -> str | None:
    """Why Start would be refused for this visitor now (their share, the cap), before they press it."""
    seconds = planned_seconds(config)
    device = best_device() if config.device == "auto" else config.device
    refused = queue.refusal(me, class_limits(), seconds or 0.0, device)
    return None if refused is None else str(refused)


def dataset_spec() -> DatasetSpec:
    if root_problem:
        raise DatasetError(root_problem)
    if kind == "upload" and not root and st.session_state.get(UPLOAD_KEY):
        raise DatasetError("the uploaded zip was refused (see above); upload another one")
    if kind in ("imagefolder", "upload") and not root:
        raise DatasetError("choose a folder (or upload a .zip) with one sub-folder of images per class")
    return DatasetSpec(kind="imagefolder" if kind == "upload" else kind, root=root, n_train=int(n_train),
                       n_val=int(n_val), seed=SHAPES_DATA.seed, image_size=int(image_size))


gpus = torch.cuda.device_count()
all_gpus = False
if gpus > 1:
    all_gpus = st.checkbox(f"Train on all {gpus} GPUs (torchrun with DistributedDataParallel; the batch is split "
                           "between them)", key="train_all_gpus", disabled=running)


def start_training() -> None:
    """Queue the run: a worker process will load the data, build the model and train it."""
    config = read_config()
    spec = dataset_spec()
    spec.check_source()
    arch = chosen_architecture()
    if source == "pretrained" and not is_cached(st.session_state["train_pretrained"]):
        with st.spinner("Downloading the pretrained weights…"):  # here, so a failure is said at once
            fetch_weights(st.session_state["train_pretrained"])
    name = queue.unique_name(f"{time.strftime('%Y%m%d-%H%M%S')}-{arch_name(arch)}-{spec.kind}")
    request = TrainRequest(model=arch, data=spec, train=config, name=name,
                           finetune=st.session_state["train_pretrained"] if source == "pretrained" else None,
                           freeze_backbone=source == "pretrained" and st.session_state["train_freeze"],
                           nproc=gpus if all_gpus else 1)
    estimate = planned_seconds(config) or 60.0  # the queue corrects it by what runs here really took
    device = best_device() if config.device == "auto" else config.device
    new = queue.submit(f"{arch_name(arch)} on {spec.kind}", [request], estimate, device, **share())
    st.session_state[JOB_KEY] = new.id
    st.session_state.pop(FOLLOW_KEY, None)


def stop_training() -> None:
    """Leave the queue, or ask the run (this session's, or the one followed) to stop after its current step; only
    its owner or the lecturer may (the engine checks)."""
    try:
        if job is not None:
            queue.cancel(job.id, me)
        elif followed is not None:
            stop_run(followed, me)
    except RefusedError as exc:
        st.session_state[REFUSED_KEY] = str(exc)


def guarded(action, *args) -> None:
    """Run a history button's action; a refusal (not the owner, still running) is said on the next draw."""
    try:
        action(*args)
    except (RefusedError, OSError, RunError) as exc:
        st.session_state[REFUSED_KEY] = str(exc)


buttons = st.columns([1, 1, 4])
start_clicked = start_stop(buttons[0], buttons[1], "Start", "train", running, stop_training, can_stop=mine,
                           type="primary")
if REFUSED_KEY in st.session_state:
    st.warning(escape_markdown(st.session_state.pop(REFUSED_KEY)))
if followed is not None and not mine:
    st.caption(f"You are watching `{followed.name}`, started by {owner_label(followed_owner)}: "
               "read-only (only its owner or the lecturer can stop it).")
if not running:
    try:
        preview = read_config()
        # What Start would train, kept for tests (the command line's defaults must equal the page's).
        try:
            planned_data = dataset_spec() if kind in ("shapes", "cifar10", "cifar100") else None
        except DatasetError as exc:  # a folder outside the data root, a Shapes set too big: said here, and at Start
            planned_data = None
            st.warning(escape_markdown(exc))
        st.session_state["train_planned"] = (chosen_architecture(), preview, planned_data)
        buttons[2].caption(f"{preview.optimizer.upper()}, lr {preview.lr:g}, {preview.schedule} schedule, "
                           f"{preview.epochs} epochs of batches of {preview.batch_size}"
                           + run_estimate(preview))
        why_not = refusal(preview)
        if why_not:
            buttons[2].warning(f"Start would be refused: {escape_markdown(why_not)}", icon=":material/block:")
    except TrainConfigError as exc:
        buttons[2].error(str(exc))

if start_clicked:
    try:
        start_training()
    except WeightsUnavailableError as exc:
        st.warning(f"The pretrained weights are not available: {escape_markdown(exc)}")
    except (TrainConfigError, ConfigError, DatasetError, TrainerError, RefusedError) as exc:
        st.error(f"Could not start training: {escape_markdown(exc)}")
    except Exception as exc:  # noqa: BLE001 - a message, never a traceback
        st.error(f"Could not start training: {type(exc).__name__}: {escape_markdown(exc)}")
    else:
        st.rerun()


# ---- live view -----------------------------------------------------------------------------


def attach_choices() -> None:
    """Runs training right now whose folders are here (started by another tab or a terminal): follow one."""
    live = [r for r in visible_runs(list_runs(RUNS_DIR)) if r.status is Status.RUNNING and r.path != followed]
    if not live:
        return
    cols = st.columns([3, 1])
    pick = cols[0].selectbox("Runs training now (from another tab or a terminal)", [r.name for r in live],
                             key="train_attach_pick")
    if cols[1].button("Follow this run", key="train_attach"):
        st.session_state.pop(JOB_KEY, None)
        st.session_state[FOLLOW_KEY] = RUNS_DIR.resolve() / pick
        st.rerun()


# Every 0.8 s (so the charts move at least once a second, fragment time included), and only what changed is
# read from disk: the worker trains at full speed while the page watches. During a run two charts are live,
# each trace thinned to LIVE_POINTS_DRAWN points; the learning rate and throughput join them at the end.
# A job waiting in line has only its place and wait to show: every 2 s is enough, and a class of waiting pages
# then costs the server (and each visitor's browser) little.
@st.fragment(run_every=(2.0 if queued else 0.8) if running else None)
def live_view() -> None:
    current = queue.view(job.id) if job is not None else None
    if current is not None and current.queued:
        show_queued(current)
        return
    if queued:
        st.rerun()  # the job has just started: redraw at the live view's pace
    if followed is None:
        st.info(f"Press **Start** to train. Defaults: the Build page's model on {SHAPES_DATA.n_train:,} Shapes images "
                f"for {SHAPES_TRAIN.epochs} epochs (SGD with Nesterov momentum, warm-up, then cosine decay).")
        return
    snap = follower(followed).poll()
    ended = (current.status.ended if current is not None else snap.status.ended)
    if running and ended:
        st.rerun()  # the run just ended: redraw the buttons and the history with the final state
    if current is not None and current.end is JobEnd.CANCELLED:
        st.info("You left the line: the run never started.")
        return
    if current is not None and current.end is JobEnd.LEFT:
        st.info(f"The run never started: {escape_markdown(current.error)}. Press **Start** to queue it again.")
        return
    if current is not None and current.status.ended and current.error and not snap.events:
        st.error(f"The run could not start: {escape_markdown(current.error)}")
        return
    show_run_progress(snap, f"`{followed.name}`")
    if snap.status in STATUS_BOX:
        STATUS_BOX[snap.status](snap.message)
    else:
        st.caption(snap.message)

    smoothing, log_y = st.session_state.get("train_ema", 0.6), st.session_state.get("train_log_y", False)
    steps, validated = snap.steps, snap.validated_epochs
    metric_cols = st.columns(4)
    metric_cols[0].metric("Step", f"{snap.step} / {snap.total_steps}")
    metric_cols[1].metric("Training loss", f"{steps[-1].train_loss:.4f}" if steps else "–")
    metric_cols[2].metric("Validation accuracy", f"{100 * validated[-1].val_acc:.2f}%" if validated else "–")
    metric_cols[3].metric("Images / s", f"{steps[-1].samples_per_s:.0f}" if steps else "–")

    left, right = st.columns(2)
    points = LIVE_POINTS_DRAWN if snap.running else MAX_POINTS_DRAWN
    chart(training_loss_figure(snap.events, smoothing, log_y, max_points=points), key="train_loss_chart", where=left)
    if validated:
        chart(epoch_metrics_figure(snap.events), key="train_epoch_chart", where=right)
    else:  # an empty chart would show meaningless axes: say what comes, and when
        plan = next((e for e in snap.events if isinstance(e, StatusEvent) and e.steps_per_epoch), None)
        when = f" (step {plan.steps_per_epoch:,})" if plan is not None else ""
        right.info(f"Validation accuracy and loss per epoch appear here when epoch 1 ends{when}.",
                   icon=":material/schedule:")
    if not snap.running:
        chart(lr_figure([e.step for e in steps], [e.lr for e in steps]), key="train_lr_chart", where=left)
        chart(throughput_figure(snap.events, smoothing), key="train_speed_chart", where=right)


if followed is not None:
    # Drawn once, outside the live view: the fragment then redraws only numbers and charts every 0.8 s, and a
    # change here reruns the page (and the charts with it).
    controls = st.columns([2, 1, 3])
    controls[0].slider("Smoothing (EMA)", 0.0, 0.99, 0.6, 0.01, key="train_ema")
    controls[1].toggle("Log scale", key="train_log_y")
live_view()
if not running:
    attach_choices()

if not running and followed is None:
    try:
        lrs = schedule_preview(read_config(), int(n_train))
        chart(lr_figure(list(range(1, len(lrs) + 1)), lrs, title="Learning-rate schedule (preview)",
                                  revision="lr-preview"), key="train_lr_preview")
    except TrainConfigError:
        pass


# ---- run history ---------------------------------------------------------------------------

st.subheader("Run history")
runs = visible_runs(list_runs(RUNS_DIR))
if not runs:
    st.caption(f"No runs yet in `{RUNS_DIR}`.")
else:
    demo_run = class_demo_run(RUNS_DIR)
    st.dataframe([{**r.record(), "started by": owner_label(r.owner),
                   "class demo": "yes" if demo_run is not None and demo_run.name == r.name else ""} for r in runs],
                 hide_index=True, key="train_history")
    damaged = [r for r in runs if r.status is Status.DAMAGED]
    if damaged:
        st.warning("Damaged run folders (not used below): " + "; ".join(f"{r.name}: {r.reason}" for r in damaged))
    usable = [r for r in runs if r.status is not Status.DAMAGED]
    by_name = {r.name: r for r in usable}
    chosen = st.multiselect("Compare runs on one chart", list(by_name), default=list(by_name)[:2],
                            key="train_overlay_runs")
    if chosen:
        o = st.columns([2, 1, 1])
        metric = o[0].selectbox("Metric", list(OVERLAY_METRICS), key="train_overlay_metric",
                                format_func=lambda m: OVERLAY_METRICS[m][1])
        overlay_smoothing = o[1].slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="train_overlay_ema")
        overlay_log = o[2].toggle("Log scale", key="train_overlay_log")
        series = {}
        for name in chosen:
            try:
                series[name] = load_metrics(by_name[name].path)
            except RunError as exc:
                st.warning(str(exc))
        chart(runs_overlay_figure(series, metric, overlay_smoothing, overlay_log),
                        key="train_overlay_chart")
    if usable:
        d = st.columns([2, 1, 1])
        pick = d[0].selectbox("Download a run", list(by_name), key="train_download_run")
        info = by_name[pick]
        # Callables: the file is read only when the button is clicked, not on every rerun.
        d[1].download_button("Metrics (CSV)", lambda path=info.path: metrics_csv(path),
                             file_name=f"{pick}-metrics.csv", mime="text/csv", on_click="ignore",
                             key="train_download_csv")
        if info.partial:
            d[2].caption(f"checkpoint from the {info.weights_note}")
        owned = me.may_control(info.owner)
        if info.has_model and not owned:
            d[2].caption("checkpoint: its owner's to download")
        elif info.has_model:
            d[2].download_button(f"Checkpoint ({MODEL_FILE})",
                                 lambda p=info.path: read_bytes(p / MODEL_FILE, MAX_CHECKPOINT_BYTES, folder=p),
                                 file_name=f"{pick}.pt",
                                 mime="application/octet-stream", on_click="ignore", key="train_download_pt")
        else:
            d[2].caption("no checkpoint (the run diverged, failed or is still running)")
        if info.status is Status.RUNNING and owned:
            d[2].button("Stop this run", icon=":material/stop:", key="train_stop_listed", on_click=guarded,
                        args=(stop_run, info.path, me))
        elif info.status.ended and owned:
            d[2].button("Remove this run", icon=":material/delete:", key="train_remove_listed", on_click=guarded,
                        args=(remove_run, info.path, me, () if demo_run is None else (demo_run.name,)),
                        help="Deletes the run's folder (config, metrics and weights) from this server")
        if is_lecturer() and info.status is Status.FINISHED and info.has_model:
            if demo_run is not None and demo_run.name == info.name:
                d[1].button("Back to the bundled demo model", key="train_demote", on_click=guarded,
                            args=(demote, RUNS_DIR, me))
            else:
                d[1].button("Make it the class's demo model", icon=":material/star:", key="train_promote",
                            on_click=guarded, args=(promote, RUNS_DIR, info.name, me),
                            help="Every visitor's Grad-CAM page then opens on this run")
