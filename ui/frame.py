"""What every page shares, drawn once per run by the entry point: the navigation (`st.navigation`), page config,
the sidebar's page links, presenter mode, the visitor, the layout rules.

`app.py` calls `run_app`, which registers the pages (PAGES: adding a page is one entry there), draws the frame and
runs the page the URL names. A page file run on its own (AppTest, `streamlit run pages/…`) has no entry point
around it, so each page's first line, `page_setup`, draws the frame then, and does nothing under `run_app`.
"""

from __future__ import annotations

import threading

import streamlit as st
from streamlit.errors import StreamlitAPIException

from ui.jobs import training_queue
from ui.presenter import presenter_toggle
from ui.share import on_page, page_query
from ui.visitor import actor, lecturer_sign_in, remember_visitor

# Applied on every page, presenter mode or not. Streamlit cuts text that does not fit with an ellipsis
# ("294.0 …", "▶ R…"); here it wraps instead, so a number, a label or a button is never cut off on a
# projector or a small laptop screen:
# - metric values and labels, button, page-link and widget labels wrap between words (a word itself is
#   never broken: a number split over two lines reads as two numbers);
# - a multiselect shows all its choices over several lines instead of scrolling them out of sight;
# - a row of columns wraps rather than squeeze a metric or button below its widest word (a number and its unit
#   are one word: ui formatters join them with a no-break space) or a select below 8rem: on a projector a row
#   of four metrics becomes two rows instead of four cut-off numbers;
# - below 1200 px the main column keeps 1.5rem margins instead of 5rem, which gives the content the room
#   a second or third column needs next to the open sidebar.
LAYOUT_CSS = """
<style>
.stMarkdownEllipsis, .stMarkdownEllipsis p,
[data-testid="stPageLink-NavLink"] span, [data-testid="stPageLink-NavLink"] p,
button span, button p {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: normal; word-break: normal !important; min-width: 0;
}
[data-testid="stMetricValue"] p { line-height: 1.15; }
[data-testid="stMultiSelectTagsContainer"] { flex-wrap: wrap; overflow: visible; height: auto !important; }
[data-testid="stMultiSelect"] div:has(> [data-testid="stMultiSelectTagsContainer"]) {
  height: auto !important; max-height: none !important;
}
[data-testid="stMultiSelectTagsContainer"] > span[role="group"] { display: contents; }
[data-testid="stMultiSelectTagsContainer"] [data-tag], [data-testid="stMultiSelectTagsContainer"] [data-tag] > span {
  max-width: none; overflow: visible; text-overflow: clip; flex-shrink: 0;
}
[data-testid="stHorizontalBlock"] { flex-wrap: wrap; }
[data-testid="stColumn"]:has([data-testid="stMetric"]), [data-testid="stColumn"]:has([data-testid="stButton"]) {
  min-width: min-content;
}
[data-testid="stColumn"]:has([data-testid="stSelectbox"]) { min-width: min(100%, 8rem); }
@media (max-width: 1199.98px) {
  [data-testid="stMainBlockContainer"] { padding-left: 1.5rem; padding-right: 1.5rem; }
}
.st-key-frame_scripts, .st-key-frame_visitor { display: none; }
</style>
"""

# Streamlit collapses the sidebar by itself only up to 768 px (its "md" breakpoint, fixed in its frontend:
# no config option or page_config value moves it). Between 768 and 1000 px an open sidebar leaves the page
# too narrow for its columns ("269.…", "▶ R…"), so a window narrower than 1000 px starts with the sidebar
# collapsed. That is behaviour, not style, so it takes a script, which only presses Streamlit's own
# collapse button: once, and only while the visitor has not chosen (Streamlit keeps that choice in
# localStorage under "stSidebarCollapsed-…"). The entry the script's own press writes is removed again, so
# a wider window later still opens with the sidebar, and a visitor who opens it keeps it open.
SIDEBAR_SCRIPT = """
<script>
(() => {
  if (window.innerWidth >= 1000) return;
  const choices = () => Object.keys(localStorage).filter(k => k.startsWith("stSidebarCollapsed-"));
  if (choices().length) return;
  const open = document.querySelector('[data-testid="stSidebar"][data-collapsed="false"]');
  const collapse = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
  if (!open || !collapse) return;
  collapse.click();
  choices().forEach(k => localStorage.removeItem(k));
})();
</script>
"""

# Streamlit pushes a browser-history entry whenever a run changes the query string, so every slider step or
# checkbox (each is in the URL, for links) added one and Back walked through them. A change of the query alone
# now replaces the current entry; moving to another page still pushes one, so one Back press leaves a page.
HISTORY_SCRIPT = """
<script>
(() => {
  if (window.__resnetHistoryPatched) return;
  window.__resnetHistoryPatched = true;
  const push = window.history.pushState.bind(window.history);
  window.history.pushState = function (state, title, url) {
    try {
      const next = new URL(url, window.location.href);
      if (next.pathname === window.location.pathname) return window.history.replaceState(state, title, url);
    } catch (e) { /* an unusual url: leave it to the browser */ }
    return push(state, title, url);
  };
})();
</script>
"""

HOME_PAGE = "pages/0_Home.py"
BUILD_PAGE = "pages/1_Build.py"
TRAIN_PAGE = "pages/2_Train.py"
PLAIN_VS_RESIDUAL_PAGE = "pages/3_Plain_vs_Residual.py"
GRADCAM_PAGE = "pages/4_Grad-CAM.py"

HOME_ICON = ":material/home:"
# (file, title, Material icon, one-line description for the landing page)
PAGES = [
    (BUILD_PAGE, "Build", ":material/construction:", "assemble a ResNet, see its shapes, parameters and shortcuts"),
    (TRAIN_PAGE, "Train", ":material/trending_down:", "brief training with live loss curves"),
    (PLAIN_VS_RESIDUAL_PAGE, "Plain vs Residual", ":material/compare_arrows:",
     "gradient norms, depth sweep, side-by-side training, lesions"),
    (GRADCAM_PAGE, "Grad-CAM", ":material/visibility:", "classify an image and see where the network looks"),
]


# Set while run_app runs a page: the frame is drawn, the page's own page_setup has nothing to do. Per thread:
# Streamlit runs each session's script in a thread of its own.
_framed = threading.local()


def run_app() -> None:
    """The app: Home (at /) and PAGES under one navigation, the frame drawn once, then the page.

    The navigation's own menu is hidden: the sidebar's links (drawn here) carry the query each page writes
    (ui.share.page_query), so following one adds one browser-history entry, not two.
    """
    pages = [st.Page(HOME_PAGE, title="Home", icon=HOME_ICON, default=True)] + [
        # URL paths as the pages had them under pages/ ("Plain_vs_Residual"): links already shared keep working
        st.Page(path, title=title, icon=icon, url_path=title.replace(" ", "_")) for path, title, icon, _ in PAGES]
    page = st.navigation(pages, position="hidden")
    _draw_frame(page.title)
    _framed.active = True
    try:
        page.run()
    finally:
        _framed.active = False


def page_setup(title: str) -> None:
    """First line of every page: the frame, when the page runs on its own; under `run_app`, nothing."""
    if not getattr(_framed, "active", False):
        _draw_frame(title)


def _draw_frame(title: str) -> None:
    """Wide layout, page links in the sidebar, presenter switch, the visitor's cookie, the layout rules.

    Icons are Streamlit's Material icons: emoji render as empty boxes on machines without an emoji font.
    """
    path, icon = next(((p, i) for p, t, i, _ in PAGES if t == title), (HOME_PAGE, HOME_ICON))
    st.set_page_config(page_title=f"{title} · ResNet Explorer" if title != "Home" else "ResNet Explorer",
                       page_icon=icon, layout="wide")
    with st.sidebar:
        links = st.empty()
        on_page(path, lambda: _page_links(links))  # publish() redraws them with the page's final query
        _page_links(links)
        st.divider()
        with st.container(key="frame_scripts"):
            st.html(SIDEBAR_SCRIPT, unsafe_allow_javascript=True)
            st.html(HISTORY_SCRIPT, unsafe_allow_javascript=True)
            remember_visitor()
    lecturer_sign_in()
    st.html(LAYOUT_CSS)
    presenter_toggle()
    training_queue().touch(actor().owner)  # this visitor is here: their waiting jobs keep their place


def _page_links(slot) -> None:
    """Home and every page; a link carries the query its page writes when it opens (ui.share.page_query),
    so following it adds one browser-history entry, not two."""
    with slot.container():
        try:
            st.page_link(HOME_PAGE, label="Home", icon=HOME_ICON)
            for path, page_title, page_icon, _ in PAGES:
                st.page_link(path, label=page_title, icon=page_icon, query_params=page_query(path))
        except StreamlitAPIException:
            pass  # a page run on its own (`streamlit run pages/…`, AppTest) has no other pages to link
