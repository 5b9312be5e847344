"""Plain vs Residual, section 2 (and the normalization demo): the depth sweep, how much larger the gradient is at
the first convolution than at the last for CIFAR nets of many depths, with BatchNorm and without."""

from __future__ import annotations

import streamlit as st

from resnet_core.analysis import MAX_DEPTH, GradientError, parse_depths, sweep_job
from resnet_core.analysis.readings import sweep_reading
from resnet_core.charts import depth_sweep_figure
from resnet_core.estimates import sweep_seconds
from resnet_core.recipes import SWEEP_BATCH
from resnet_core.share import escape_markdown
from ui.captions import caption
from ui.charts import chart
from ui.demos import on_this_device
from ui.jobs import job_running, job_view, start_stop
from ui.plain_vs_residual.options import AUTOSTART_SWEEP, BAD_INPUT, SWEEP_KEY, SWEEP_WHERE, L
from ui.visitor import actor, allow_analysis


def sweep_in_demo() -> bool:
    """Whether the sweep shown was started by the normalization demo (then it is drawn in the demo's panel)."""
    return SWEEP_KEY in st.session_state and st.session_state.get(SWEEP_WHERE) == "demo"


def sweep_view() -> None:
    """The sweep's charts and captions, redrawn while it runs."""
    running = job_running(SWEEP_KEY)

    @st.fragment(run_every=0.5 if running else None)
    def view() -> None:
        snap = job_view(SWEEP_KEY, running, "depth sweep")
        if snap is None:
            st.info("Press **Run sweep**, or run the lecture demo *Why normalization matters* at the top.")
            return
        result = snap.result
        if result is None or not result.points:
            return
        chart(depth_sweep_figure(result, "batch"), key="pvr_sweep_chart")
        st.caption(caption("sweep", sweep_reading(result, "batch")))
        if any(p.norm == "none" for p in list(result.points)):  # drawn once it has its first point
            chart(depth_sweep_figure(result, "none"), key="pvr_sweep_chart_nobn")
            st.caption(caption("sweep_no_bn", sweep_reading(result, "none")))

    view()


def depth_sweep() -> None:
    st.header("2 · Depth sweep")
    st.markdown("CIFAR ResNets of depth 6n+2 and their plain twins, at initialization: how much larger is the "
                "gradient at the first convolution than at the last?")
    cols = st.columns([3, 2, 1, 1])
    depths = L["pvr_sweep_depths"].widget(cols[0].multiselect, "Depths")
    extra = L["pvr_sweep_extra"].widget(cols[1].text_input, f"More depths (6n+2, up to {MAX_DEPTH})",
                                        placeholder="e.g. 74, 164")
    seeds = int(L["pvr_sweep_seeds"].widget(cols[2].number_input, "Seeds"))
    size = L["pvr_sweep_size"].widget(cols[3].select_slider, "Image px")
    no_bn = L["pvr_sweep_nobn"].widget(st.toggle, "Also without normalization (norm='none')")
    norms = ("batch", "none") if no_bn else ("batch",)
    buttons = st.columns([1, 1, 4])
    start = start_stop(buttons[0], buttons[1], "Run sweep", "pvr_sweep", job_running(SWEEP_KEY),
                       st.session_state.get(SWEEP_KEY))
    try:
        typed = parse_depths(extra)
    except GradientError:
        typed = []  # said when the sweep is started
    seconds = sweep_seconds(list(depths) + typed, norms, seeds, SWEEP_BATCH, size)
    buttons[2].caption(f"{2 * len(norms) * seeds * len(set(depths) | set(typed))} networks, one batch each: "
                       f"{on_this_device(seconds)}.")
    if start or st.session_state.pop(AUTOSTART_SWEEP, False):
        try:
            chosen = list(depths) + parse_depths(extra)
            allow_analysis(sweep_seconds(chosen, norms, seeds, SWEEP_BATCH, size))
            job = sweep_job(chosen, norms, tuple(range(seeds)), batch_size=SWEEP_BATCH, image_size=size)
        except BAD_INPUT as exc:
            st.error(f"Cannot run the sweep: {escape_markdown(exc)}")
        else:
            st.session_state[SWEEP_KEY] = job.start(owner=actor().owner)
            if start:
                st.session_state[SWEEP_WHERE] = "section"
            st.rerun()
    if sweep_in_demo():
        st.caption("This sweep was started by the lecture demo *Why normalization matters*: its charts are under the "
                   "demo at the top.")
    else:
        sweep_view()
