"""Build page: assemble a ResNet from a preset or field by field, and look at it (views in ui/build/)."""

import streamlit as st

from resnet_core import ConfigError, ResNetConfig, list_presets
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
    check_cost,
    default_image_size,
    preset_name_of,
)
from resnet_core.share import escape_markdown
from ui.build.fields import config_from_widgets, load_into_widgets, model_note, on_preset_change
from ui.build.model_view import show_model
from ui.frame import page_setup
from ui.share import Linked, apply_link, by_key
from ui.state import current_config

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

LINKED = (Linked("build_image_size", "size", default_image_size, bounds=(8, 1024)),
          Linked("build_batch", "batch", 128, bounds=(1, 4096)))
L = by_key(LINKED)


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


if cfg is not None:
    with results:
        show_model(cfg, LINKED)

with st.sidebar:
    uploaded = st.file_uploader("Load a config (JSON)", type=["json"], key="build_config_upload")
    if uploaded is not None:
        try:
            loaded = ResNetConfig.from_json(uploaded.getvalue().decode("utf-8", errors="replace"))
        except ConfigError as exc:
            st.error(escape_markdown(f"{uploaded.name}: {exc}"))
        else:
            st.button("Use this config", on_click=load_into_widgets, args=(loaded,))
