"""Plain vs Residual, section 3 (and the degradation demo's live run): plain and residual nets of two depths
trained side by side as one job of the server's training queue, drawn live against the recorded run."""

from __future__ import annotations

import dataclasses

import streamlit as st

from resnet_core.analysis import SideBySide
from resnet_core.device import best_device
from resnet_core.estimates import side_by_side_seconds
from resnet_core.recipes import DEGRADATION_DATA, DEGRADATION_TRAIN
from resnet_core.share import escape_markdown
from ui.demos import on_this_device
from ui.jobs import calibrated, start_stop, training_queue
from ui.plain_vs_residual.degradation import live_view
from ui.plain_vs_residual.options import AUTOSTART_TRAIN, BAD_INPUT, LESION_KEY, PAIR_KEY, PAIR_WHERE, L
from ui.visitor import share


def current_pair() -> tuple[SideBySide | None, bool, bool]:
    """This session's four nets (or None), whether they train, and whether the demo's panel shows them."""
    pair: SideBySide | None = st.session_state.get(PAIR_KEY)
    return pair, pair is not None and pair.running, pair is not None and st.session_state.get(PAIR_WHERE) == "demo"


def side_by_side(recorded) -> None:
    pair, training, in_demo = current_pair()
    st.header("3 · Training side by side")
    st.markdown("Plain and residual nets of two depths, trained on the built-in Shapes dataset with the same data, "
                "seed and recipe (SGD with momentum, warm-up, cosine schedule), all four at once: He et al.'s "
                "Figure 6 in miniature.")
    cols = st.columns(4)  # two rows: seven inputs in one row leave a depth select too narrow for "56" at 1024 px
    depth_a = int(L["pvr_depth_a"].widget(cols[0].selectbox, "Shallow depth"))
    depth_b = int(L["pvr_depth_b"].widget(cols[1].selectbox, "Deep depth"))
    n_train = L["pvr_n_train"].widget(cols[2].number_input, "Training images", step=256)
    epochs = L["pvr_epochs"].widget(cols[3].number_input, "Epochs")
    cols = st.columns(4)
    lr = L["pvr_lr"].widget(cols[0].number_input, "Learning rate", format="%.4f")
    seed = L["pvr_seed"].widget(cols[1].number_input, "Seed")
    every = L["pvr_every"].widget(cols[2].number_input, "Record gradients every k steps")
    buttons = st.columns([1, 1, 4])
    start = start_stop(buttons[0], buttons[1], "Train all four", "pvr_train", training, pair)
    config_error: Exception | None = None
    try:
        config = DEGRADATION_TRAIN.replace(epochs=int(epochs), lr=float(lr), seed=int(seed))
        spec = dataclasses.replace(DEGRADATION_DATA, n_train=int(n_train))
        seconds = side_by_side_seconds(spec, config, (depth_a, depth_b))
        buttons[2].caption(f"Four worker processes at once: {on_this_device(calibrated(seconds))}.")
    except BAD_INPUT as exc:
        config_error = exc
    if start or st.session_state.pop(AUTOSTART_TRAIN, False):
        try:
            if config_error is not None:
                raise config_error
            new_pair = SideBySide(spec, config, depths=(depth_a, depth_b), record_every=int(every))
            new_pair.submit(training_queue(), seconds, best_device(), **share())
        except BAD_INPUT as exc:
            st.error(f"Cannot start training: {escape_markdown(exc)}")
        else:
            st.session_state[PAIR_KEY] = new_pair
            if start:
                st.session_state[PAIR_WHERE] = "section"
            st.session_state.pop(LESION_KEY, None)
            st.rerun()
    if pair is None:
        st.info("Press **Train all four** to train them here; the lecture demo *The degradation problem* at the top "
                "shows its recorded run at once, and **Run it live** trains it.")
    elif in_demo:
        st.info("These four nets were started by the lecture demo at the top: they train in its panel, drawn against "
                "the recorded run.", icon=":material/arrow_upward:")
    else:
        live_view(PAIR_KEY, recorded, training, heatmaps_folded=False)
