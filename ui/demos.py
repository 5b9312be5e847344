"""The lecture demos' panels: what each does, how long it takes on this device, and its one button."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from resnet_core.assets import bundled_model, demo_times, format_recorded, recorded_degradation
from resnet_core.device import describe_device
from resnet_core.estimates import estimate_seconds, format_duration, landscape_seconds
from resnet_core.landscape_assets import recorded_landscape
from ui.frame import GRADCAM_PAGE, PLAIN_VS_RESIDUAL_PAGE
from ui.jobs import calibrated
from ui.share import LINKED_DEMO_KEY


@dataclass(frozen=True)
class Demo:
    """A one-click lecture demo: which page runs it, what it does and what to look for."""

    key: str
    title: str
    page: str
    does: str
    look_for: str


DEMOS: dict[str, Demo] = {d.key: d for d in (
    Demo("degradation", "The degradation problem", PLAIN_VS_RESIDUAL_PAGE,
         "Trains plain-20, plain-56, ResNet-20 and ResNet-56 side by side on Shapes: same data, seed and recipe.",
         "Training loss, each net's band over the recorded seeds: whether plain-56 stays above plain-20 (more layers, "
         "worse fit on the training set itself: degradation, not overfitting) and whether ResNet-56 closes that gap. "
         "The caption orders two nets only where their seed ranges do not overlap."),
    Demo("normalization", "Why normalization matters", PLAIN_VS_RESIDUAL_PAGE,
         "Measures, at initialization, how much larger the gradient is at the first conv than at the last, for "
         "depths 8 to 110, plain and residual, with BatchNorm and without.",
         "With BatchNorm the plain net's ratio grows exponentially with depth (about 10^6 at 110 layers) while the "
         "residual net's stays within about 10^2. Without normalization neither explodes at initialization: in a "
         "plain net the explosion is BatchNorm's doing (Yang et al. 2019), and the shortcut keeps it in check."),
    Demo("gradcam", "Where does the network look?", GRADCAM_PAGE,
         "Explains a ResNet-20 trained on Shapes with Grad-CAM on held-out images, and scores the maps against each "
         "object's true mask.",
         "The map's peak falls on the object in most images — far above chance, which is the object's share of "
         "the image."),
    Demo("landscape", "The loss landscape", PLAIN_VS_RESIDUAL_PAGE,
         "Draws the loss around the trained weights of a plain net and its residual twin along filter-normalized "
         "random directions (Li et al. 2018): 1-D slices and 2-D surfaces on one colour scale.",
         "Li et al. found plain-56's surface chaotic and ResNet-56's smooth and nearly convex; the caption under "
         "the surfaces says what these nets show: how far from the minimum the loss doubles, and the share of the "
         "plane that is locally convex."),
)}


def on_this_device(seconds: float) -> str:
    """ "about 2 min on this CPU": how every time estimate in the app reads."""
    return f"{format_duration(seconds)} on this {describe_device().name}"


# The demos that train (in worker processes, under the training queue), and whose estimates the queue corrects.
TRAINING_DEMOS = ("degradation",)


def estimate_text(key: str, *, model_ready: bool = True) -> str:
    """How long demo `key` takes here: measured once per process on this device, then scaled (and for a
    training, corrected by how long trainings here really took lately)."""
    seconds = estimate_seconds(key, model_ready=model_ready)
    trains = key in TRAINING_DEMOS or (key == "gradcam" and not model_ready)
    return on_this_device(calibrated(seconds) if trains else seconds)


def timing_text(key: str, *, model_ready: bool = True) -> str:
    """When the demo's answer appears: at once from the bundled assets where there are some, else its time here."""
    if key == "landscape":
        live = on_this_device(landscape_seconds(()))
        return f"the recorded 56-layer pair at once; the live 20-layer pair, {live}" if recorded_landscape() else live
    if key == "degradation" and recorded_degradation():
        return f"the recorded run at once; live, {estimate_text(key)}"
    if key == "gradcam" and not model_ready and bundled_model(True) is not None:
        return "at once, with the bundled ResNet-20"
    return estimate_text(key, model_ready=model_ready)


def recorded_times_text(key: str) -> str:
    """What the demo took when the bundled assets were built (one source: assets/recorded/demo_times.json, which
    the README quotes too); "" when that file is missing."""
    times = demo_times()
    if not times:
        return ""
    when = f"on {times['device']}, {str(times['date'])[:10]}"
    if key == "degradation":
        return f"Recorded {when}: the live run took {format_recorded(times['degradation'])}."
    if key == "normalization":
        return f"Recorded {when}: {format_recorded(times['normalization'])}."
    if key == "landscape":
        found = recorded_landscape()
        return "" if found is None else (f"Recorded on {found[1].device}, {found[1].day}: both 56-layer landscapes "
                                         f"took {format_recorded(found[1].seconds)}.")
    return (f"Recorded {when}: {format_recorded(times['gradcam'])} to score 64 images; training its model took "
            f"{format_recorded(times['gradcam_model'])}.")


def demo_panel(key: str, on_click: Callable[[], None], *, model_ready: bool = True, disabled: bool = False) -> Any:
    """A bordered panel: the demo's title, its duration here, what it does, what to look for, a Run button; returns
    an empty slot under the button, where the page writes the demo's answer once it has it (so the answer appears
    next to the button that asked for it, with a pointer to its full view further down).

    `on_click` runs as a button callback, before the page redraws: it sets the page's widgets and
    asks the section below to start, so the demo's settings are visible (and shareable) as it runs.
    """
    demo = DEMOS[key]
    with st.container(border=True, key=f"demo_panel_{key}"):
        text, button = st.columns([5, 1], vertical_alignment="center")
        when = timing_text(key, model_ready=model_ready)
        text.markdown(f":material/school: **Lecture demo: {demo.title}** — {when}.  \n{demo.does}")
        text.caption(f"**Look for:** {demo.look_for}")
        button.button("Run demo", icon=":material/play_arrow:", key=f"demo_{key}", type="primary", on_click=on_click,
                      disabled=disabled, width="stretch")
        if st.session_state.get(LINKED_DEMO_KEY) == key:
            st.caption("You followed a link to this demo: press **Run demo** when you are ready.")
        return st.empty()


def demo_links() -> None:
    """The landing page's list: every demo, when its answer appears here, what it took when recorded, a link."""
    for demo in DEMOS.values():
        with st.container(border=True):
            st.markdown(f"**{demo.title}** — {timing_text(demo.key, model_ready=False)}.  \n{demo.does}")
            recorded = recorded_times_text(demo.key)
            if recorded:
                st.caption(recorded)
            st.page_link(demo.page, label=f"Open the demo: {demo.title}", icon=":material/school:",
                         query_params={"demo": demo.key})
