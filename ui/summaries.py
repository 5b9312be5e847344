"""Cached model summaries: shapes, parameters and MACs depend only on the config and input size."""

from __future__ import annotations

import streamlit as st

from resnet_core import ResNetConfig, build_model, summarize
from resnet_core.model import ModelSummary


@st.cache_data(max_entries=64, show_spinner="Measuring the model with a forward pass…")
def cached_summary(config_json: str, image_size: int) -> ModelSummary:
    cfg = ResNetConfig.from_json(config_json)
    return summarize(build_model(cfg), (cfg.in_channels, image_size, image_size))
