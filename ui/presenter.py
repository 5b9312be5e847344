"""Presenter mode: larger text for a projector; the layout is already wide on every page."""

import streamlit as st

_CSS = """
<style>
html { font-size: 21px; }
[data-testid="stMetricValue"] { font-size: 2.6rem; }
.js-plotly-plot .gtitle, .js-plotly-plot .xtitle, .js-plotly-plot .ytitle { font-size: 1.1rem !important; }
</style>
"""


PRESENTER_KEY = "presenter_mode"
PRESENTER_SCALE = 1.5  # chart text in presenter mode, relative to plotly's sizes
_WIDGET_KEY = "presenter_mode_toggle"


def _remember() -> None:
    st.session_state[PRESENTER_KEY] = st.session_state[_WIDGET_KEY]


def presenter_toggle() -> None:
    """A sidebar switch shared by every page; it stays on across pages for the session.

    Streamlit drops a widget's state when another page runs, so the choice lives in a plain
    session key and the toggle is set from it on every page.
    """
    st.session_state[_WIDGET_KEY] = st.session_state.get(PRESENTER_KEY, False)
    st.sidebar.toggle("Presenter mode (larger text)", key=_WIDGET_KEY, on_change=_remember,
                      help="For a projector: larger text and numbers on every page.")
    if st.session_state.get(PRESENTER_KEY, False):
        st.html(_CSS)


def presenter_on() -> bool:
    return bool(st.session_state.get(PRESENTER_KEY, False))
