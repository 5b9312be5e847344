"""The lecture demos' panels: what each does, how long it takes on this device, and its one button."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from resnet_core.demos import DEMOS, estimate_seconds, format_duration
from resnet_core.device import describe_device
from ui.share import LINKED_DEMO_KEY


def on_this_device(seconds: float) -> str:
    """ "about 2 min on this CPU": how every time estimate in the app reads."""
    return f"{format_duration(seconds)} on this {describe_device().name}"


def estimate_text(key: str, *, model_ready: bool = True) -> str:
    """How long demo `key` takes here: measured once per process on this device, then scaled."""
    return on_this_device(estimate_seconds(key, model_ready=model_ready))


def demo_panel(key: str, on_click: Callable[[], None], *, model_ready: bool = True, disabled: bool = False) -> None:
    """A bordered panel: the demo's title, its duration here, what it does, what to look for, a Run button.

    `on_click` runs as a button callback, before the page redraws: it sets the page's widgets and
    asks the section below to start, so the demo's settings are visible (and shareable) as it runs.
    """
    demo = DEMOS[key]
    with st.container(border=True, key=f"demo_panel_{key}"):
        text, button = st.columns([5, 1], vertical_alignment="center")
        text.markdown(f"🎓 **Lecture demo: {demo.title}** — {estimate_text(key, model_ready=model_ready)}.  \n"
                      f"{demo.does}")
        text.caption(f"**Look for:** {demo.look_for}")
        button.button("▶ Run demo", key=f"demo_{key}", type="primary", on_click=on_click, disabled=disabled,
                      width="stretch")
        if st.session_state.get(LINKED_DEMO_KEY) == key:
            st.caption("You followed a link to this demo: press **Run demo** when you are ready.")


def demo_links() -> None:
    """The landing page's list: every demo, its duration here, and a link to its page."""
    for demo in DEMOS.values():
        with st.container(border=True):
            when = estimate_text(demo.key)
            if demo.key == "gradcam":
                when += f" ({estimate_text(demo.key, model_ready=False)} the first time, to train its model)"
            st.markdown(f"**{demo.title}** — {when}.  \n{demo.does}")
            st.page_link(demo.page, label=f"Open the demo: {demo.title}", icon="🎓",
                         query_params={"demo": demo.key})
