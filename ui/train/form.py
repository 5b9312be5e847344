"""The Train page's form: the model to start from, the dataset (folder, CIFAR or an uploaded zip) and the
hyper-parameters, each widget linked to the URL with the engine's own range."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from resnet_core import ResNetConfig, list_presets
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
from resnet_core.estimates import run_seconds
from resnet_core.model import get_preset
from resnet_core.recipes import SHAPES_DATA, SHAPES_TRAIN
from resnet_core.train import DEVICES, OPTIMIZERS, SCHEDULES, TORCHVISION_ARCHS, USUAL_LR, TrainConfig, arch_name
from resnet_core.train.config import LIMITS as TRAIN_LIMITS
from resnet_core.train.launch import TrainRequest
from ui.share import Linked, by_key
from ui.state import current_config

SOURCES = {"build": "the model from the Build page", "preset": "a preset", "pretrained": "ImageNet weights (fine-tune)"}
DATASETS = {
    "shapes": "Shapes (built in, 10 classes)",
    "cifar10": "CIFAR-10 (from a folder)",
    "cifar100": "CIFAR-100 (from a folder)",
    "imagefolder": "ImageFolder (a folder on this machine)",
    "upload": "ImageFolder (upload a .zip)",
}
UPLOAD_KEY = "train_upload"  # (upload id, saved path or None, refusal message or None) of the zip uploaded
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


@dataclass(frozen=True)
class TrainForm:
    """What the form holds: everything Start needs to queue a run."""

    source: str  # a SOURCES key
    kind: str  # a DATASETS key
    root: str | None  # the dataset's folder (or saved zip) as the server reads it
    root_problem: str | None  # why the typed folder cannot be used (served mode): said when Start is pressed
    upload_refused: bool  # the uploaded zip was refused (its reason is shown above)
    n_train: int
    n_val: int
    image_size: int
    hyper: dict[str, Any]  # TrainConfig fields as the widgets hold them
    gpus: int  # all of them train the run (torchrun); 1 otherwise

    def config(self) -> TrainConfig:
        """The recipe the form describes (raises TrainConfigError with the field named)."""
        h = self.hyper
        return SHAPES_TRAIN.with_choices(
            epochs=int(h["epochs"]), batch_size=int(h["batch_size"]), optimizer=h["optimizer"], lr=float(h["lr"]),
            momentum=float(h["momentum"]), nesterov=bool(h["nesterov"]), weight_decay=float(h["weight_decay"]),
            schedule=h["schedule"], warmup_epochs=float(h["warmup"]), label_smoothing=float(h["label_smoothing"]),
            augment_crop=h["crop"], crop_padding=int(h["padding"]), augment_flip=h["flip"], seed=int(h["seed"]),
            device=h["device"], max_steps=int(h["max_steps"]) or None)

    def architecture(self) -> ResNetConfig:
        """The model Start will train: the Build page's, a preset, or the pretrained one's."""
        if self.source == "pretrained":
            return get_preset(st.session_state["train_pretrained"])
        return current_config() if self.source == "build" else get_preset(st.session_state["train_preset"])

    @property
    def finetune(self) -> str | None:
        return st.session_state["train_pretrained"] if self.source == "pretrained" else None

    def dataset(self) -> DatasetSpec:
        """The dataset the form names (raises DatasetError saying what to choose)."""
        if self.root_problem:
            raise DatasetError(self.root_problem)
        if self.upload_refused:
            raise DatasetError("the uploaded zip was refused (see above); upload another one")
        if self.kind in ("imagefolder", "upload") and not self.root:
            raise DatasetError("choose a folder (or upload a .zip) with one sub-folder of images per class")
        return DatasetSpec(kind="imagefolder" if self.kind == "upload" else self.kind, root=self.root,
                           n_train=self.n_train, n_val=self.n_val, seed=SHAPES_DATA.seed, image_size=self.image_size)

    def planned_seconds(self, config: TrainConfig) -> float | None:
        """How long the run takes here, from a measurement on this device scaled by the model's MACs (before the
        queue's correction); None when it cannot be planned (too small an image, a device not here: Start will
        say why)."""
        size = 32 if self.kind in ("cifar10", "cifar100") else self.image_size
        try:
            return run_seconds(self.architecture(), size, self.n_train, self.n_val, config,
                               device=None if config.device == "auto" else config.device)
        except (RuntimeError, ValueError, AssertionError):
            return None

    def request(self, name: str) -> TrainRequest:
        """The run Start queues, in the folder `name`."""
        return TrainRequest(model=self.architecture(), data=self.dataset(), train=self.config(), name=name,
                            finetune=self.finetune,
                            freeze_backbone=self.source == "pretrained" and st.session_state["train_freeze"],
                            nproc=self.gpus)

    @property
    def label(self) -> str:
        return f"{arch_name(self.architecture())} on {self.kind}"


def _on_optimizer_change() -> None:
    st.session_state["train_lr"] = USUAL_LR[st.session_state["train_optimizer"]]


@st.cache_resource(show_spinner=False)
def _clean_last_servers_uploads() -> int:
    """Once per server process, at the first Train page: the uploads a previous server left (every upload is made
    on this page, so this server's own are younger; the minute spares a file another process is writing now)."""
    return clean_uploads(max_age_s=60)


def _kept_upload(upload, running: bool) -> str | None:
    """The uploaded zip saved on disk under its own name, checked from its directory at once. A refused one is
    deleted at once and its reason shown; a replaced or removed one is deleted (uploads.clean_uploads removes
    the rest: at server start, and ones a closed tab left a day ago)."""
    _clean_last_servers_uploads()
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


def _model_choice(running: bool) -> str:
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
    return source


def _data_choice(running: bool) -> dict[str, Any]:
    st.subheader("Data")
    kind = L["train_dataset"].widget(st.selectbox, "Dataset", format_func=DATASETS.get, disabled=running)
    typed, what = None, ""
    served_help = (f"This server reads only folders inside its data folder ({DATA_ROOT_ENV}): type a path "
                   "relative to it." if data_root() is not None else None)
    root = problem = None
    if kind in ("cifar10", "cifar100"):
        typed, what = st.text_input("Folder with the CIFAR files (downloaded there if missing and online)",
                                    value="data", key="train_root", disabled=running, help=served_help), "CIFAR folder"
    elif kind == "imagefolder":
        typed, what = st.text_input("Folder with one sub-folder of images per class (or a .zip path)",
                                    key="train_folder", disabled=running, help=served_help), "image folder"
    elif kind == "upload":
        upload = st.file_uploader("A .zip with one folder of images per class", type=["zip"], key="train_zip",
                                  disabled=running)
        root = _kept_upload(upload, running)
    if typed:  # the typed folder as the server will read it; in served mode confined to the data root
        try:
            root = str(visitor_path(typed, what))
        except DatasetError as exc:
            problem = str(exc)
    n_cols = st.columns(3)
    return dict(
        kind=kind, root=root, root_problem=problem,
        upload_refused=kind == "upload" and not root and bool(st.session_state.get(UPLOAD_KEY)),
        n_train=int(L["train_n_train"].widget(n_cols[0].number_input, "Training images", step=500, disabled=running)),
        n_val=int(L["train_n_val"].widget(n_cols[1].number_input, "Validation images", step=500, disabled=running)),
        image_size=int(L["train_image_size"].widget(n_cols[2].number_input, "Image size (px)", step=8,
                                                    disabled=running,
                                                    help="Shapes (up to 512 px) and ImageFolder; CIFAR is always "
                                                         "32 px")))


def _hyper_parameters(running: bool) -> dict[str, Any]:
    h = st.columns(4)
    v = {"epochs": L["train_epochs"].widget(h[0].number_input, "Epochs", disabled=running),
         "batch_size": L["train_batch"].widget(h[1].number_input, "Batch size", disabled=running),
         "optimizer": L["train_optimizer"].widget(h[2].selectbox, "Optimizer", disabled=running,
                                                  on_change=_on_optimizer_change),
         "lr": L["train_lr"].widget(h[3].number_input, "Learning rate", format="%.4g", disabled=running)}
    h = st.columns(4)
    v["schedule"] = L["train_schedule"].widget(
        h[0].selectbox, "Schedule", disabled=running,
        help="step: /10 at 50% and 75% of training (He et al.); cosine: to 0 at the end; onecycle warms up over "
             "the first 30%, then anneals")
    v["warmup"] = L["train_warmup"].widget(h[1].number_input, "Warm-up epochs", step=0.5,
                                           disabled=running or v["schedule"] == "onecycle")
    v["momentum"] = L["train_momentum"].widget(h[2].number_input, "Momentum (SGD)", disabled=running)
    v["weight_decay"] = L["train_wd"].widget(h[3].number_input, "Weight decay", format="%.2g", disabled=running)
    h = st.columns(4)
    v["label_smoothing"] = L["train_smoothing"].widget(h[0].number_input, "Label smoothing", disabled=running)
    v["seed"] = L["train_seed"].widget(h[1].number_input, "Seed", disabled=running)
    v["device"] = L["train_device"].widget(h[2].selectbox, "Device", disabled=running,
                                           help="auto: CUDA, then Apple MPS, then CPU")
    v["max_steps"] = L["train_max_steps"].widget(h[3].number_input, "Stop after steps (0: no limit)",
                                                 disabled=running)
    h = st.columns(4)
    v["nesterov"] = L["train_nesterov"].widget(h[0].checkbox, "Nesterov momentum",
                                               disabled=running or v["optimizer"] != "sgd")
    v["crop"] = L["train_crop"].widget(h[1].checkbox, "Random crop", disabled=running)
    v["padding"] = L["train_padding"].widget(h[2].number_input, "Crop padding (px)", disabled=running or not v["crop"])
    v["flip"] = L["train_flip"].widget(h[3].checkbox, "Random flip", disabled=running)
    return v


def train_form(running: bool) -> TrainForm:
    """Draw the form (locked while this session's run waits or trains) and return what it holds."""
    model_col, data_col = st.columns(2)
    with model_col:
        source = _model_choice(running)
    with data_col:
        data = _data_choice(running)
    with st.expander("Hyper-parameters", expanded=False):
        hyper = _hyper_parameters(running)
    gpus = torch.cuda.device_count()
    all_gpus = gpus > 1 and st.checkbox(f"Train on all {gpus} GPUs (torchrun with DistributedDataParallel; the "
                                        "batch is split between them)", key="train_all_gpus", disabled=running)
    return TrainForm(source=source, hyper=hyper, gpus=gpus if all_gpus else 1, **data)
