"""Plain vs Residual, section 5: shattered gradients, how similar the input gradients at neighbouring points on a
line between two images are, plain against residual, at initialization."""

from __future__ import annotations

import streamlit as st

from resnet_core.analysis import shattering_job
from resnet_core.analysis.readings import shattering_reading
from resnet_core.charts import autocorrelation_figure, shattering_figure
from resnet_core.estimates import shattering_seconds
from resnet_core.share import escape_markdown
from ui.captions import caption
from ui.charts import chart
from ui.demos import on_this_device
from ui.jobs import job_running, job_view, start_stop
from ui.plain_vs_residual.options import BAD_INPUT, SHATTER_KEY, L
from ui.visitor import actor, allow_analysis


def shattered_gradients() -> None:
    st.header("5 · Shattered gradients")
    st.markdown("Walk along a straight line between two images and take the gradient of the output with respect to "
                "the input at each point: do neighbouring points get similar gradients?")
    running = job_running(SHATTER_KEY)
    cols = st.columns([3, 1, 1])
    depths = L["pvr_shatter_depths"].widget(cols[0].multiselect, "Depths")
    points = int(L["pvr_shatter_points"].widget(cols[1].select_slider, "Points on the line"))
    seeds = int(L["pvr_shatter_seeds"].widget(cols[2].number_input, "Seeds"))
    buttons = st.columns([1, 1, 4])
    start = start_stop(buttons[0], buttons[1], "Measure", "pvr_shatter", running, st.session_state.get(SHATTER_KEY))
    buttons[2].caption(f"{2 * seeds * len(depths)} networks at initialization: "
                       f"{on_this_device(shattering_seconds(depths, seeds, points))}.")
    if start:
        try:
            allow_analysis(shattering_seconds(depths, seeds, points))
            job = shattering_job(depths, tuple(range(seeds)), points, image_size=16)
        except BAD_INPUT as exc:
            st.error(f"Cannot measure shattering: {escape_markdown(exc)}")
        else:
            st.session_state[SHATTER_KEY] = job.start(owner=actor().owner)
            st.rerun()

    @st.fragment(run_every=0.5 if running else None)
    def view() -> None:
        snap = job_view(SHATTER_KEY, running, "shattering sweep")
        if snap is None:
            return
        sweep = snap.result
        if sweep is None or not sweep.points:
            return
        left, right = st.columns(2)
        chart(shattering_figure(sweep), key="pvr_shatter_chart", where=left)
        chart(autocorrelation_figure(sweep.deepest_profiles()), key="pvr_autocorr_chart", where=right)
        st.caption(caption("shattering", shattering_reading(sweep)))

    view()
