"""What every page shares: page config, the sidebar's page links, presenter mode.

Streamlit runs a file in pages/ directly (without app.py) when its URL is opened, so each
page calls `page_setup` first instead of relying on the entry point to draw the frame.
"""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException

from ui.presenter import presenter_toggle

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


def page_setup(title: str) -> None:
    """Call first on every page: wide layout, page links in the sidebar, presenter switch.

    Icons are Streamlit's Material icons: emoji render as empty boxes on machines without an emoji font.
    """
    icon = next((i for _, t, i, _ in PAGES if t == title), HOME_ICON)
    st.set_page_config(page_title=f"{title} · ResNet Explorer" if title != "Home" else "ResNet Explorer",
                       page_icon=icon, layout="wide")
    with st.sidebar:
        try:
            st.page_link("app.py", label="Home", icon=HOME_ICON)
            for path, page_title, page_icon, _ in PAGES:
                st.page_link(path, label=page_title, icon=page_icon)
        except StreamlitAPIException:
            pass  # a page run on its own (`streamlit run pages/…`, AppTest) has no other pages to link
        st.divider()
    presenter_toggle()
