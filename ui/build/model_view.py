"""The Build page's view of a valid model: its numbers, its plain twin's, the architecture chart, the stage and layer
tables, the conv arithmetic, the Python that rebuilds it, and the downloads (config, ONNX)."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from resnet_core import ResNetConfig
from resnet_core.charts import architecture_figure, stage_table
from resnet_core.model import (
    ExportError,
    config_to_python,
    conv_output_size,
    export_onnx,
    format_bytes,
    format_count,
    preset_name_of,
)
from resnet_core.share import escape_markdown
from ui.charts import chart
from ui.share import Linked, share_link
from ui.state import current_model, set_config
from ui.summaries import cached_summary


def show_twin(summary, twin, batch: int) -> None:
    if twin is None:
        st.info("This is a plain net: residual connections are off, so there is no shortcut to draw.")
        return
    cols = st.columns(4)
    extra = summary.total_params - twin.total_params
    cols[0].metric("Plain twin: parameters", format_count(twin.total_params),
                   delta=f"{-extra:+,}" if extra else None, delta_color="off")
    cols[1].metric("Plain twin: MACs", format_count(twin.total_macs))
    cols[2].metric("Plain twin: activation memory", format_bytes(twin.activation_bytes(batch)))
    cols[3].caption("Identity shortcuts add no parameters; only projection shortcuts do, so the plain twin "
                    "differs only by the 1x1 projections (nothing for option A).")


def show_model(cfg: ResNetConfig, linked: Sequence[Linked]) -> None:
    """The model the fields make: it becomes the session's model, used by every page."""
    set_config(cfg)
    model = current_model()  # kept in the session: the Train, Compare and Grad-CAM pages use it
    size = int(st.session_state["build_image_size"])
    batch = int(st.session_state["build_batch"])
    summary = cached_summary(cfg.to_json(), size)
    twin = cached_summary(cfg.plain_twin().to_json(), size) if cfg.residual else None
    st.subheader(f"{preset_name_of(cfg) or 'Custom ResNet'} — {cfg.depth} weighted layers")
    cols = st.columns(4, vertical_alignment="bottom")  # the values line up when a long label wraps
    cols[0].metric("Parameters", format_count(summary.total_params))
    cols[1].metric(f"MACs at {size}x{size}", format_count(summary.total_macs))
    cols[2].metric(f"Activation memory, batch {batch}", format_bytes(summary.activation_bytes(batch)),
                   help="Every layer's output kept for the backward pass, float32: a rough training-time estimate")
    cols[3].metric("Output", f"{summary.output_shape[0]} logits")
    show_twin(summary, twin, batch)
    chart(architecture_figure(summary, "Stages and blocks (hover a block for its numbers)"),
                    key="build_architecture")
    st.dataframe(stage_table(summary), hide_index=True)
    with st.expander("How the resolution halves: the conv output size"):
        st.latex(r"\text{out} = \left\lfloor \frac{\text{in} - \text{kernel} + 2\cdot\text{padding}}"
                 r"{\text{stride}} \right\rfloor + 1")
        conv = model.first_conv
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        first = summary.rows[0]
        st.markdown(f"The first conv here: ({size} − {k} + 2·{p}) / {s} + 1 = **{conv_output_size(size, k, s, p)}**; "
                    f"the table shows `{first.path}` → {first.output_shape}. The first block of each later stage "
                    "uses stride 2, so every stage halves the resolution and (usually) doubles the channels.")
    with st.expander(f"Per-layer table ({len(summary.rows)} layers)"):
        st.dataframe(summary.records(), hide_index=True, height=400)
    with st.expander("Python: rebuild this model with the API"):
        st.code(config_to_python(cfg), language="python")
    show_downloads(cfg, model, size)
    share_link(linked)


def show_downloads(cfg: ResNetConfig, model, size: int) -> None:
    left, right = st.columns(2)
    left.download_button("Download config (JSON)", cfg.to_json(), file_name="resnet_config.json",
                         mime="application/json")
    with right:
        onnx_key = ("onnx", cfg.to_json(), size)
        if st.button("Export to ONNX (opens in Netron)"):
            try:
                with st.spinner("Exporting…"):
                    st.session_state["onnx_export"] = (onnx_key, export_onnx(model, (cfg.in_channels, size, size)))
            except ExportError as exc:
                st.error(f"{escape_markdown(exc)}. Try a smaller input size or a simpler configuration.")
        export = st.session_state.get("onnx_export")
        if export and export[0] == onnx_key:
            st.download_button("Download model.onnx", export[1], file_name="model.onnx",
                               mime="application/octet-stream")
            st.caption("Open it at [netron.app](https://netron.app) to browse the graph.")
