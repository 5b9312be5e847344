"""Presenter mode: larger text for a projector; the layout is already wide on every page."""

import streamlit as st

_CSS = """
<style>
html { font-size: 21px; }
[data-testid="stMetricValue"] { font-size: 2.6rem; }
.js-plotly-plot .gtitle, .js-plotly-plot .xtitle, .js-plotly-plot .ytitle { font-size: 1.1rem !important; }
</style>
"""


def presenter_toggle() -> None:
    """A sidebar switch shared by every page; it stays on across pages for the session."""
    on = st.sidebar.toggle("Presenter mode (larger text)", key="presenter_mode",
                           help="For a projector: larger text and numbers on every page.")
    if on:
        st.html(_CSS)
