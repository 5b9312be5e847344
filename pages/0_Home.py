"""ResNet Explorer's landing page (Home, at /): what each page does, and the lecture demos."""

import streamlit as st

from resnet_core.device import describe_device
from ui.demos import demo_links
from ui.frame import PAGES, page_setup
from ui.share import page_query

page_setup("Home")
st.title("ResNet Explorer")
st.markdown(
    "**Build** a real ResNet (or its plain twin) and see every layer's shape, parameters and MACs.  \n"
    "**Train** it briefly with live loss curves, and **compare** plain and residual networks as depth grows.  \n"
    "**Explain** its predictions on your own images with Grad-CAM, and check whether the explanation holds."
)
device = describe_device()
st.info(f"Device found: **{device.name}** — {device.detail}")

pages, demos = st.columns(2)
with pages:
    st.subheader("Pages")
    for path, title, icon, description in PAGES:
        st.page_link(path, label=f"{title} — {description}", icon=icon, query_params=page_query(path))
    st.caption("Every page opens on a working example, and its **Copy link** button gives a URL that reproduces "
               "the model, seed and options: put it on a slide or the course page.")
with demos:
    st.subheader("Lecture demos: one click each")
    st.caption("Times *here* are measured on this machine when the app starts and scaled to each demo's work; "
               "*recorded* times are those of the machine that built the bundled demo assets "
               "(`python -m resnet_core.assets`).")
    demo_links()

st.latex(r"y = \mathcal{F}(x) + x")
st.caption(
    "A residual block learns the change F(x) to its input and adds the input back. Identity shortcuts add no "
    "parameters; deep plain nets (the same layers without the addition) are harder to optimise, which is what "
    "this explorer lets you measure."
)
