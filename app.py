"""ResNet Explorer: landing page."""

from pathlib import Path

import streamlit as st

from resnet_core.device import describe_device

ROOT = Path(__file__).resolve().parent
PAGES = [
    ("pages/1_Build.py", "Build — assemble a ResNet, see its shapes, parameters and shortcuts", "🧱"),
    ("pages/2_Train.py", "Train — brief training with live loss curves", "📉"),
    ("pages/3_Plain_vs_Residual.py", "Plain vs Residual — gradient norms, depth sweep, lesions", "⚖️"),
    ("pages/4_Grad-CAM.py", "Grad-CAM — classify an image and see where the network looks", "🔍"),
]

st.set_page_config(page_title="ResNet Explorer", page_icon="🧱", layout="wide")

st.title("ResNet Explorer")
st.markdown(
    "**Build** a real ResNet (or its plain twin) and see every layer's shape, parameters and MACs.  \n"
    "**Train** it briefly with live loss curves, and **compare** plain and residual networks' gradients as depth grows.  \n"
    "**Explain** its predictions on your own images with Grad-CAM, and check whether the explanation can be trusted."
)

device = describe_device()
icon = {"cuda": "🟢", "mps": "🟢", "cpu": "🔵"}[device.kind]
st.info(f"{icon} Device found: **{device.name}** — {device.detail}")

st.subheader("Pages")
for path, label, icon in PAGES:
    if (ROOT / path).exists():  # a page under construction is simply not listed yet
        st.page_link(path, label=label, icon=icon)

st.latex(r"y = \mathcal{F}(x) + x")
st.caption(
    "A residual block learns the change F(x) to its input and adds the input back. Identity shortcuts add no "
    "parameters; deep plain nets (the same layers without the addition) are harder to optimise, which is what "
    "this explorer lets you measure."
)
