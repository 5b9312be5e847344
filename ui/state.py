"""The model the user built, kept per browser session and shared by every page."""

from __future__ import annotations

import streamlit as st
from torch import nn

from resnet_core import ResNetConfig, build_model, get_preset
from resnet_core.recipes import DEFAULT_PRESET

_CONFIG_KEY = "model_config"
_MODEL_KEY = "model"


def current_config() -> ResNetConfig:
    """The config from the Build page, or the default preset on a fresh session."""
    if _CONFIG_KEY not in st.session_state:
        st.session_state[_CONFIG_KEY] = get_preset(DEFAULT_PRESET)
    return st.session_state[_CONFIG_KEY]


def set_config(cfg: ResNetConfig) -> None:
    if st.session_state.get(_CONFIG_KEY) != cfg:
        st.session_state[_CONFIG_KEY] = cfg
        st.session_state.pop(_MODEL_KEY, None)


def current_model() -> nn.Module:
    """A model built from current_config(); rebuilt only when the config changes."""
    cfg = current_config()
    model = st.session_state.get(_MODEL_KEY)
    if model is None or getattr(model, "config", None) != cfg:
        model = build_model(cfg)
        st.session_state[_MODEL_KEY] = model
    return model
