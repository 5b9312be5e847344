"""The Build page's configuration fields: one widget per ResNetConfig field, loaded from a preset or a config,
read back into a config, and the sidebar's note on what the fields make."""

from __future__ import annotations

import streamlit as st

from resnet_core import ResNetConfig
from resnet_core.model import default_image_size, get_preset, parse_int_list, preset_name_of, preset_note

FIELDS = ("block", "stage_blocks", "stage_widths", "stem", "stem_width", "shortcut", "stride_placement",
          "avg_down", "residual", "preact", "norm", "zero_init_residual", "width_multiplier", "num_classes",
          "in_channels")
LIST_FIELDS = ("stage_blocks", "stage_widths")


def load_into_widgets(cfg: ResNetConfig, reset_size: bool = True) -> None:
    for name in FIELDS:
        value = getattr(cfg, name)
        if name in LIST_FIELDS:
            value = ", ".join(map(str, value))
        elif name == "width_multiplier":
            value = float(value)
        st.session_state[f"cfg_{name}"] = value
    if reset_size:
        st.session_state["build_image_size"] = default_image_size(cfg)


def on_preset_change() -> None:
    if st.session_state["build_preset"] is not None:
        load_into_widgets(get_preset(st.session_state["build_preset"]))


def config_from_widgets() -> ResNetConfig:
    values = {name: st.session_state[f"cfg_{name}"] for name in FIELDS}
    for name in LIST_FIELDS:
        values[name] = parse_int_list(name, values[name])
    return ResNetConfig(**values)


def model_note(cfg: ResNetConfig | None, start: str | None) -> str:
    """The sidebar's line under the preset: the preset's own note (its paper result) only when the model is
    that preset; a custom model (a link's, a loaded file's, or edited fields) gets no paper numbers."""
    if cfg is None:
        return "The fields below do not make a model yet: see the message on the page."
    name = preset_name_of(cfg)
    if name is not None:
        note = preset_note(name)
        return note if name == start else f"Equals the preset {name}. {note}"
    edited = f" (edited from {start})" if start else ""
    return f"Custom model{edited}: it matches no preset, so no paper result applies."
