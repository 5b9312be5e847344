"""Plain vs Residual, section 1: the gradient norm of every convolution at initialization, the Build page's model
against its twin or a preset, measured on arrival when that is quick."""

from __future__ import annotations

import streamlit as st

from resnet_core.analysis import config_label, profile_pair, twin_configs, zero_init_warning
from resnet_core.analysis.readings import blocks_reading, profile_reading
from resnet_core.charts import gradient_profile_figure
from resnet_core.estimates import profile_seconds
from resnet_core.model import get_preset
from resnet_core.share import escape_markdown
from ui.captions import CAPTIONS, caption
from ui.charts import chart
from ui.demos import on_this_device
from ui.plain_vs_residual.options import AGAINST, BAD_INPUT, PROFILE_KEY, L
from ui.state import current_config

AUTO_PROFILE_SECONDS = 3.0  # measured on arrival when it is this quick, so the page opens with its chart drawn


def _measure() -> None:
    cfg = current_config()
    residual_cfg, plain_cfg = twin_configs(cfg)
    cols = st.columns(4)
    against = L["pvr_against"].widget(cols[0].selectbox, "Compare with", format_func=AGAINST.get,
                                      help="Its twin: the same layers with the shortcuts toggled.")
    other_name = L["pvr_other"].widget(cols[1].selectbox, "Preset", disabled=against != "preset")
    seeds = L["pvr_seeds"].widget(cols[2].slider, "Seeds (band)")
    batch = L["pvr_batch"].widget(cols[3].select_slider, "Batch size")
    size = L["pvr_size"].widget(st.select_slider, "Image size (pixels)",
                                help="ImageNet-stem models are measured at 64 px by default to keep it quick.")
    first, second = (residual_cfg, plain_cfg) if against == "twin" else (cfg, get_preset(other_name))
    try:
        profile_time = profile_seconds((first, second), size, batch, seeds)
    except (RuntimeError, ValueError):  # e.g. an image too small for the model: measuring will say so
        profile_time = 0.0
    measure = st.button("Measure gradient profile", type="primary", key="pvr_profile_run",
                        help=on_this_device(profile_time))
    first_visit = PROFILE_KEY not in st.session_state
    if first_visit and not measure and profile_time > AUTO_PROFILE_SECONDS:
        st.info(f"Press **Measure gradient profile**: for this model it takes {on_this_device(profile_time)}.")
        st.session_state[PROFILE_KEY] = None
    elif measure or first_visit:
        try:
            with st.spinner("Measuring both networks…"):
                st.session_state[PROFILE_KEY] = profile_pair(first, second, seeds=tuple(range(seeds)),
                                                             batch_size=batch, image_size=size)
        except BAD_INPUT as exc:
            st.error(f"Cannot compare: {escape_markdown(exc)}")
            st.session_state[PROFILE_KEY] = None


def gradient_profile() -> None:
    cfg = current_config()
    st.header("1 · Gradient norms at initialization")
    st.markdown(f"Your model from the **Build** page is **{config_label(cfg)}**. Both nets are built from the same "
                "seed and measured on the same random batch (cross-entropy against random labels), in train mode.")
    warning = zero_init_warning(cfg)
    if warning:
        st.warning(warning)
    _measure()
    pair_profile = st.session_state.get(PROFILE_KEY)
    if pair_profile is None:
        return
    if cfg not in (pair_profile.a.config, pair_profile.b.config):
        st.info("Measured for an earlier model; press **Measure gradient profile** again for the current one.")
    metrics = st.columns(2)
    for col, side in zip(metrics, (pair_profile.a, pair_profile.b)):
        ratio = side.median_ratio
        col.metric(f"{side.label}: first / last conv gradient", "∞ (last conv gets 0)" if ratio == float("inf")
                   else f"{ratio:.3g}×", help="stem conv over the last conv before the fc, median over seeds")
    chart(gradient_profile_figure(pair_profile, "convs"), key="pvr_profile_convs")
    st.caption(caption("profile", profile_reading(pair_profile)))
    if any(side.warnings for side in (pair_profile.a, pair_profile.b)):
        st.caption(CAPTIONS["zero_init"])
    chart(gradient_profile_figure(pair_profile, "blocks"), key="pvr_profile_blocks")
    st.caption(caption("blocks", blocks_reading(pair_profile)))
