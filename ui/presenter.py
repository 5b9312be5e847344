"""Presenter mode: larger text for a projector; the layout is already wide on every page."""

import streamlit as st

# Text sizes follow the root font (rem), so one size enlarges the page; metric values get more on top. Chart
# text is not here: plotly sizes it when it lays a chart out (ui/charts.py enlarges it there). The main
# column keeps 2rem margins instead of 5rem (105 px each side at this size; below 1200 px ui/frame.py's
# 1.5rem holds), and less space above the title: on a projector the room goes to the content. Streamlit's
# own rules that cut text off are undone for every page in ui/frame.py.
_CSS = """
<style>
html { font-size: 21px; }
[data-testid="stMetricValue"] { font-size: 2.6rem; }
[data-testid="stMainBlockContainer"] { padding-top: 3rem; }
@media (min-width: 1200px) { [data-testid="stMainBlockContainer"] { padding-left: 2rem; padding-right: 2rem; } }
</style>
"""


PRESENTER_KEY = "presenter_mode"
PRESENTER_SCALE = 1.5  # chart text in presenter mode, relative to plotly's sizes
_WIDGET_KEY = "presenter_mode_toggle"
PRESENTER_PARAM = "presenter"  # in the URL while presenter mode is on (ui.share.publish writes it)
_FROM_LINK_KEY = "_presenter_from_link_read"


def _remember() -> None:
    st.session_state[PRESENTER_KEY] = st.session_state[_WIDGET_KEY]


def presenter_toggle() -> None:
    """A sidebar switch shared by every page; it stays on across pages for the session.

    Streamlit drops a widget's state when another page runs, so the choice lives in a plain
    session key and the toggle is set from it on every page. It travels in the URL (`presenter=1`), so a reload
    or a link copied in presenter mode opens in presenter mode.
    """
    if st.query_params.get(PRESENTER_PARAM) == "1" and not st.session_state.get(_FROM_LINK_KEY):
        st.session_state[PRESENTER_KEY] = True  # a reload or a shared link from presenter mode keeps it on
    st.session_state[_FROM_LINK_KEY] = True  # only the page a visitor arrives on reads it: the switch rules after
    st.session_state[_WIDGET_KEY] = st.session_state.get(PRESENTER_KEY, False)
    st.sidebar.toggle("Presenter mode (larger text)", key=_WIDGET_KEY, on_change=_remember,
                      help="For a projector: larger text and numbers on every page.")
    if presenter_on():
        st.html(_CSS)
        if st.query_params.get(PRESENTER_PARAM) != "1":  # pages that publish a link write it there too
            st.query_params[PRESENTER_PARAM] = "1"
    elif PRESENTER_PARAM in st.query_params:
        del st.query_params[PRESENTER_PARAM]


def presenter_on() -> bool:
    return bool(st.session_state.get(PRESENTER_KEY, False))
