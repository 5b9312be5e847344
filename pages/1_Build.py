"""Build page: assemble a ResNet from a preset or field by field, and look at it."""

import streamlit as st

from resnet_core import ConfigError, ResNetConfig, list_presets
from resnet_core.charts import architecture_figure, stage_table
from resnet_core.model import (
    BLOCK_TYPES,
    MAX_CLASSES,
    MAX_IN_CHANNELS,
    MAX_WIDTH,
    NORM_TYPES,
    SHORTCUT_MEANING,
    SHORTCUT_TYPES,
    STEM_TYPES,
    STRIDE_PLACEMENTS,
    ExportError,
    check_cost,
    config_to_python,
    conv_output_size,
    default_image_size,
    export_onnx,
    format_bytes,
    format_count,
    get_preset,
    parse_int_list,
    preset_name_of,
    preset_note,
)
from resnet_core.share import escape_markdown
from ui.charts import chart
from ui.frame import page_setup
from ui.share import Linked, apply_link, by_key, share_link
from ui.state import current_config, current_model, set_config
from ui.summaries import cached_summary

page_setup("Build")
st.title("Build a ResNet")
st.markdown(
    "A residual block computes $y = \\mathcal{F}(x) + x$: its layers learn only the *change* $\\mathcal{F}$ to "
    "the input, and the shortcut carries $x$ (and its gradient) straight through. The **plain twin** has the same "
    "layers without the addition. Pick a preset or edit any field; every number below comes from a real forward pass."
)
with st.expander("How it works: blocks, shortcuts and where the numbers come from"):
    st.markdown(
        "- A **basic** block is two 3x3 convolutions; a **bottleneck** block is 1x1 (reduce the channels 4x), 3x3, "
        "1x1 (expand again), which makes 50+ layer nets affordable.\n"
        "- When a block changes the shape (stride 2, more channels), $x$ cannot be added as it is. Shortcut **A** "
        "subsamples $x$ and pads the new channels with zeros (no parameters, He et al.'s CIFAR nets); **B** uses a "
        "1x1 convolution only there (torchvision); **C** uses one in every block.\n"
        "- **Pre-activation** (ResNet v2) moves BN and ReLU before each convolution, so the path from input to output "
        "is a pure sum of the shortcuts: $x_L = x_l + \\sum_{i=l}^{L-1} \\mathcal{F}(x_i)$.\n"
        "- Parameters are counted from the built model; MACs and shapes come from one real forward pass with hooks "
        "on every layer; the activation memory counts every layer's output kept for the backward pass.")

FIELDS = ("block", "stage_blocks", "stage_widths", "stem", "stem_width", "shortcut", "stride_placement",
          "avg_down", "residual", "preact", "norm", "zero_init_residual", "width_multiplier", "num_classes",
          "in_channels")
LIST_FIELDS = ("stage_blocks", "stage_widths")


LINKED = (Linked("build_image_size", "size", default_image_size, bounds=(8, 1024)),
          Linked("build_batch", "batch", 128, bounds=(1, 4096)))
L = by_key(LINKED)


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


new_link = apply_link(LINKED)
if new_link or "cfg_block" not in st.session_state:
    load_into_widgets(current_config(), reset_size=False)
    st.session_state["build_preset"] = preset_name_of(current_config())  # None: a custom model

with st.sidebar:
    st.selectbox("Start from a preset", list_presets(), key="build_preset", on_change=on_preset_change,
                 placeholder="Custom model",
                 help="Loads every field below from the preset; edit them freely afterwards.")
    note = st.empty()  # filled once the fields are parsed: it describes the model they make
    L["build_image_size"].widget(st.number_input, "Input image size (pixels)", step=8)
    L["build_batch"].widget(st.number_input, "Batch size for the memory estimate")

results = st.container()  # drawn above the editor, filled once the config is parsed
editor = st.expander("Configuration — edit any field", expanded=True)
left, right = editor.columns(2)
with left:
    st.selectbox("Block", BLOCK_TYPES, key="cfg_block", help="basic: two 3x3 convs; bottleneck: 1x1, 3x3, 1x1 (x4)")
    st.text_input("Blocks per stage", key="cfg_stage_blocks", help="Comma-separated, one number per stage")
    st.text_input("Stage widths", key="cfg_stage_widths", help="Comma-separated channel widths, one per stage")
    st.selectbox("Stem", STEM_TYPES, key="cfg_stem",
                 help="imagenet: 7x7/2 conv + max-pool; cifar: 3x3/1 conv; deep: three 3x3 convs (ResNet-C)")
    st.number_input("Stem width", 1, MAX_WIDTH, key="cfg_stem_width")
    st.number_input("Width multiplier", 0.01, 16.0, key="cfg_width_multiplier", step=0.25)
    st.number_input("Classes", 1, MAX_CLASSES, key="cfg_num_classes")
    st.number_input("Input channels", 1, MAX_IN_CHANNELS, key="cfg_in_channels")
with right:
    # A radio, not a selectbox: each option's meaning is a sentence, and a selectbox shows its value on one line
    # that a narrow column (or presenter mode) cuts off.
    st.radio("Shortcut", SHORTCUT_TYPES, key="cfg_shortcut", captions=[SHORTCUT_MEANING[k] for k in SHORTCUT_TYPES])
    st.selectbox("Stride placement (bottleneck)", STRIDE_PLACEMENTS, key="cfg_stride_placement",
                 help="v1: stride in the first 1x1; v1.5: in the 3x3, as torchvision")
    st.selectbox("Normalization", NORM_TYPES, key="cfg_norm")
    st.toggle("Residual connections (off = plain twin)", key="cfg_residual")
    st.toggle("Pre-activation (ResNet v2)", key="cfg_preact")
    st.toggle("ResNet-D average-pool shortcut", key="cfg_avg_down")
    st.toggle("Zero-init the last BN gamma of each block", key="cfg_zero_init_residual")

try:
    cfg = config_from_widgets()
    # Estimated from the config alone: nothing is built for a model past the limits.
    check_cost(cfg, int(st.session_state["build_image_size"]))
except (ConfigError, TypeError) as exc:
    # The values in the message are the visitor's own typing (a link's values were checked on the way in).
    results.error(f"**This configuration cannot be built.** {exc}  \nFix the field above; the "
                  f"last valid model ({preset_name_of(current_config()) or 'custom'}) is still the one the other "
                  "pages use.")
    cfg = None
note.caption(model_note(cfg, st.session_state["build_preset"]))


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


def show_model(cfg: ResNetConfig) -> None:
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
    share_link(LINKED)


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


if cfg is not None:
    with results:
        show_model(cfg)

with st.sidebar:
    uploaded = st.file_uploader("Load a config (JSON)", type=["json"], key="build_config_upload")
    if uploaded is not None:
        try:
            loaded = ResNetConfig.from_json(uploaded.getvalue().decode("utf-8", errors="replace"))
        except ConfigError as exc:
            st.error(escape_markdown(f"{uploaded.name}: {exc}"))
        else:
            st.button("Use this config", on_click=load_into_widgets, args=(loaded,))
