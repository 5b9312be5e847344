"""ResNet Explorer: the entry point. It declares the pages and draws what every page shares."""

from pathlib import Path

import streamlit as st

from resnet_core.device import describe_device
from ui.presenter import presenter_toggle

ROOT = Path(__file__).resolve().parent
# (file, title, icon, url path, one-line description for the landing page)
PAGES = [
    ("pages/1_Build.py", "Build", "🧱", "Build", "assemble a ResNet, see its shapes, parameters and shortcuts"),
    ("pages/2_Train.py", "Train", "📉", "Train", "brief training with live loss curves"),
    ("pages/3_Plain_vs_Residual.py", "Plain vs Residual", "⚖️", "Plain_vs_Residual",
     "gradient norms, depth sweep, side-by-side training, lesions"),
    ("pages/4_Grad-CAM.py", "Grad-CAM", "🔍", "Grad-CAM", "classify an image and see where the network looks"),
]
AVAILABLE = [p for p in PAGES if (ROOT / p[0]).exists()]


def home() -> None:
    st.title("ResNet Explorer")
    st.markdown(
        "**Build** a real ResNet (or its plain twin) and see every layer's shape, parameters and MACs.  \n"
        "**Train** it briefly with live loss curves, and **compare** plain and residual networks as depth grows.  \n"
        "**Explain** its predictions on your own images with Grad-CAM, and check whether the explanation holds."
    )
    device = describe_device()
    st.info(f"Device found: **{device.name}** — {device.detail}")
    st.subheader("Pages")
    for path, title, icon, _, description in AVAILABLE:
        st.page_link(path, label=f"{title} — {description}", icon=icon)
    st.latex(r"y = \mathcal{F}(x) + x")
    st.caption(
        "A residual block learns the change F(x) to its input and adds the input back. Identity shortcuts add no "
        "parameters; deep plain nets (the same layers without the addition) are harder to optimise, which is what "
        "this explorer lets you measure."
    )


st.set_page_config(page_title="ResNet Explorer", page_icon="🧱", layout="wide")
navigation = st.navigation(
    [st.Page(home, title="Home", icon="🏠", default=True)]
    + [st.Page(path, title=title, icon=icon, url_path=url) for path, title, icon, url, _ in AVAILABLE]
)
presenter_toggle()
navigation.run()
