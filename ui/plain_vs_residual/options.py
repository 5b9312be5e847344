"""The Plain vs Residual page's linked options, session keys and lecture-demo buttons' callbacks."""

from __future__ import annotations

import streamlit as st

from resnet_core import ConfigError, list_presets
from resnet_core.analysis import SWEEP_DEPTHS, GradientError
from resnet_core.data import DatasetError
from resnet_core.model import default_image_size
from resnet_core.recipes import DEGRADATION_DATA, DEGRADATION_DEPTHS, DEGRADATION_TRAIN
from resnet_core.serving import RefusedError
from resnet_core.train import TrainConfigError, TrainerError
from resnet_core.train.config import LIMITS as TRAIN_LIMITS
from ui.share import Linked, by_key

PROFILE_KEY, SWEEP_KEY, PAIR_KEY, LESION_KEY, SHATTER_KEY = (
    "pvr_profile", "pvr_sweep_job", "pvr_pair", "pvr_lesion_job", "pvr_shatter_job")
# Where a run's view is drawn: next to the button that started it, the demo's panel ("demo") or its section.
PAIR_WHERE, SWEEP_WHERE = "pvr_pair_where", "pvr_sweep_where"
AUTOSTART_TRAIN, AUTOSTART_SWEEP = "pvr_autostart_train", "pvr_autostart_sweep"
BAD_INPUT = (GradientError, ConfigError, TrainConfigError, TrainerError, DatasetError, RefusedError)
AGAINST = {"twin": "its twin", "preset": "a preset"}  # short: the select sits in a quarter column
LINKED = (
    Linked("pvr_against", "against", "twin", tuple(AGAINST)),
    Linked("pvr_other", "other", "plain20", tuple(list_presets())),
    Linked("pvr_seeds", "seeds", 3, bounds=(1, 5)),
    Linked("pvr_batch", "batch", 32, (8, 16, 32, 64)),
    Linked("pvr_size", "px", lambda cfg: min(default_image_size(cfg), 64), (16, 32, 64, 128, 224)),
    Linked("pvr_sweep_depths", "depths", list(SWEEP_DEPTHS), SWEEP_DEPTHS),
    Linked("pvr_sweep_extra", "more_depths", ""),
    Linked("pvr_sweep_seeds", "sweep_seeds", 1, bounds=(1, 5)),
    Linked("pvr_sweep_size", "sweep_px", 32, (16, 32)),
    Linked("pvr_sweep_nobn", "no_bn", False),
    Linked("pvr_depth_a", "shallow", DEGRADATION_DEPTHS[0], SWEEP_DEPTHS),
    Linked("pvr_depth_b", "deep", DEGRADATION_DEPTHS[1], SWEEP_DEPTHS),
    Linked("pvr_n_train", "n", DEGRADATION_DATA.n_train, bounds=(256, 20_000)),
    Linked("pvr_epochs", "epochs", DEGRADATION_TRAIN.epochs, bounds=(1, 100)),
    Linked("pvr_lr", "lr", DEGRADATION_TRAIN.lr, bounds=(1e-4, 1.0)),
    Linked("pvr_seed", "seed", 0, bounds=TRAIN_LIMITS["seed"]),
    Linked("pvr_every", "every", 5, bounds=(1, 100)),
    Linked("pvr_shatter_depths", "shatter_depths", [8, 20, 56], SWEEP_DEPTHS),
    Linked("pvr_shatter_points", "points", 64, (16, 32, 64, 128)),
    Linked("pvr_shatter_seeds", "shatter_seeds", 1, bounds=(1, 5)),
)
L = by_key(LINKED)


def _reset_options(*keys: str) -> None:
    """Put these widgets back to their defaults (a demo runs with the settings it was timed for)."""
    for key in keys:
        st.session_state[key] = L[key].default_value()


def degradation_demo() -> None:
    _reset_options("pvr_depth_a", "pvr_depth_b", "pvr_n_train", "pvr_epochs", "pvr_lr", "pvr_seed")
    st.session_state[AUTOSTART_TRAIN] = True
    st.session_state[PAIR_WHERE] = "demo"


def normalization_demo() -> None:
    _reset_options("pvr_sweep_depths", "pvr_sweep_extra", "pvr_sweep_seeds", "pvr_sweep_size")
    st.session_state["pvr_sweep_nobn"] = True
    st.session_state[AUTOSTART_SWEEP] = True
    st.session_state[SWEEP_WHERE] = "demo"
