"""Grad-CAM page: classify images and see where the network looks, then check the explanation.

A composition of views (ui/gradcam/): the model to explain, the images, one image in detail, the plain and
residual pair, and the trust checks. Decoding lives in resnet_core.data, attributions, the trust checks, their time
estimates and what their numbers say in resnet_core.explain, figures in resnet_core.charts.
"""

from __future__ import annotations

import streamlit as st

from ui.frame import page_setup
from ui.gradcam.checks import localization_check, randomization_view
from ui.gradcam.closeup import close_up
from ui.gradcam.compare import plain_and_residual
from ui.gradcam.gallery import gallery_images
from ui.gradcam.layers_view import layer_view
from ui.gradcam.scoring import verdict_images
from ui.gradcam.subject import LINKED, chosen_subject
from ui.gradcam.trust import reusable_maps, trust_view
from ui.share import apply_link, share_link

page_setup("Grad-CAM")
st.title("Grad-CAM")
st.markdown(
    "Classify images and see **where the network looks**. Grad-CAM weighs each feature map $A^k$ of the last "
    "stage by how much the class score $y^c$ depends on it, $\\alpha_k = \\operatorname{mean}_{ij}\\, "
    "\\partial y^c / \\partial A^k_{ij}$, and keeps the positive evidence: "
    "$\\text{map} = \\operatorname{ReLU}(\\sum_k \\alpha_k A^k)$, upsampled to the image. Then check whether the "
    "map explains *this model* at all: the trust checks at the bottom score it against true object masks, against "
    "maps that know nothing of the model, and against the same model with its weights randomized."
)
with st.expander("How it works"):
    st.markdown(
        "- The last stage's feature maps are coarse (the size for the model chosen below is named under its "
        "maps), so the map is smooth and class-specific; pick an earlier layer for finer, less specific maps.\n"
        "- **Guided Grad-CAM** multiplies the map by guided backpropagation (gradients through ReLUs that pass "
        "only positive signal), for pixel-level detail. **Saliency** is $|\\partial y^c / \\partial x|$; "
        "**Integrated Gradients** averages the gradient along a straight path from a black image to this one and "
        "multiplies by the difference, so attributions add up to $y^c(x) - y^c(0)$; **Occlusion** slides a grey "
        "patch over the image and records how much the score drops.\n"
        "- Every map comes from [captum](https://captum.ai) on the real model, in eval mode, with hooks removed "
        "afterwards. A map is an explanation only if it passes the checks below: it should land on the object "
        "(pointing game), removing its pixels first should hurt the prediction most (deletion, Petsiuk et al. "
        "2018), and it should change when the weights are randomized (Adebayo et al. 2018).")

apply_link(LINKED)
share_link(LINKED)

subject, demo_answer = chosen_subject()
gallery, looks = gallery_images(subject)
c = close_up(subject, gallery, looks)
per_call = c.call_seconds.get("gradcam") or gallery.overview_s  # one Grad-CAM call on this image (or the gallery)
held_out = verdict_images(gallery.batch, gallery.probs, gallery.labels, gallery.meaningful,
                          [it.mask for it in gallery.items], gallery.image_keys, c.index, gallery.check, subject.pre)
layer_view(subject, c.x, c.target, c.item.mask, c.image_key, c.view, looks.alpha, looks.colormap, per_call,
           gallery.seconds_per_pass, held_out)
plain_and_residual(c, gallery, looks)

st.subheader("Can the map be trusted?")
localization_check(subject, c, gallery, demo_answer)
randomization_view(subject, c, gallery, per_call)
trust_view(subject, c.x, c.target, c.item.mask, c.image_key, c.methods, c.layer,
           reusable_maps(c.shown_maps, c.options_by_method), per_call, gallery.seconds_per_pass, held_out)
