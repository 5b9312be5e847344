"""Which model the Grad-CAM page explains: the Shapes demo model, a run, an upload or ImageNet weights; the demo
button's pending state (it trains the Shapes model first when there is none)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from resnet_core.explain import COLORMAPS, METHODS, REPEATABLE_METHODS
from resnet_core.explain.subjects import Subject
from resnet_core.share import escape_markdown
from ui.demos import demo_panel
from ui.gradcam.sources import (
    ARCH_OPTION,
    SOURCES,
    forget_training_failure,
    shapes_model_ready,
    show_training,
    start_training,
    training_failed,
    training_running,
)
from ui.share import Linked, by_key

LINKED = (
    Linked("gc_source", "source", "shapes", tuple(SOURCES)),
    ARCH_OPTION,
    Linked("gc_alpha", "alpha", 0.5, bounds=(0.0, 1.0)),
    Linked("gc_colormap", "colormap", next(iter(COLORMAPS)), tuple(COLORMAPS)),
    Linked("gc_topk", "topk", 5, bounds=(1, 10)),
    Linked("gc_methods", "methods", ["gradcam", "guided_gradcam"], METHODS),
    Linked("gc_ig_steps", "ig_steps", 32, bounds=(8, 128)),
    Linked("gc_ig_smooth", "smoothgrad", 0, bounds=(0, 16)),
    Linked("gc_rand_methods", "check_methods", ["gradcam", "guided_gradcam"],
           REPEATABLE_METHODS),  # a registry entry says whether it is quick enough to repeat per layer
)
L = by_key(LINKED)
DEMO_PENDING_KEY = "gc_demo_pending"
DEMO_RAN_KEY = "gc_demo_ran"  # the demo was run in this session: its answer is shown in its panel
AUTOSCORE_KEY = "gc_autoscore"  # the demo asks the localization check to score at once


def _gradcam_demo() -> None:
    """Shapes model, Grad-CAM and Guided Grad-CAM, then the localization score (training the model first if needed)."""
    st.session_state.update(gc_source="shapes", gc_methods=["gradcam", "guided_gradcam"])
    st.session_state[DEMO_PENDING_KEY] = st.session_state[DEMO_RAN_KEY] = True
    forget_training_failure()


def chosen_subject() -> tuple[Subject, Any]:
    """The demo panel, the model choice, and the model chosen (the page stops here while there is none), with the
    demo panel's slot for its answer."""
    answer_slot = demo_panel("gradcam", _gradcam_demo, model_ready=shapes_model_ready())
    st.subheader("Model")
    source = L["gc_source"].widget(st.radio, "Model to explain", format_func=lambda k: SOURCES[k][0],
                                   horizontal=True)
    show_training()
    subject = SOURCES[source][1]()
    if st.session_state.get(DEMO_PENDING_KEY) and source == "shapes":
        if subject is not None:
            st.session_state.pop(DEMO_PENDING_KEY)
            st.session_state[AUTOSCORE_KEY] = True
            st.session_state.pop("gc_samples_True", None)  # back to the default: every Shapes sample
        elif training_failed():
            st.session_state.pop(DEMO_PENDING_KEY)  # show why; the demo button tries again
        elif not training_running() and start_training(residual=True):
            st.rerun()  # the demo continues when the model is trained
    if subject is None:
        st.stop()
    origin = {"recorded": " (recorded: bundled with the app)", "live": " (live: trained here)"}.get(subject.origin, "")
    st.caption(f"Explaining **{escape_markdown(subject.title)}**{origin}: {len(subject.classes)} classes, input "
               f"{subject.pre.image_size}x{subject.pre.image_size} px.")
    return subject, answer_slot
