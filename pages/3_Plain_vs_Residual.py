"""Plain vs Residual page: the degradation problem and what shortcuts change, measured live.

Every number comes from resnet_core.analysis on real networks, except the degradation demo's recorded run
(bundled under assets/, shown at once with its provenance, and drawn faintly behind a live run). The
side-by-side training runs as one job of the server's training queue (a worker process per net, followed
through its run folder); quick measurements (depth sweep, lesion study, shattering sweep) run in the server's
few analysis threads. Fragments redraw while the work goes on, next to the button that started it; every
action says its time here before the click, and every caption reads its chart's numbers
(resnet_core.analysis.readings). Its views are in ui/plain_vs_residual/ (the degradation demo's, the lesion
study's and the loss landscape's among them).
"""

import streamlit as st

from ui.demos import demo_panel
from ui.frame import page_setup
from ui.jobs import job_running
from ui.plain_vs_residual.degradation import degradation_panel, live_view, recorded_run
from ui.plain_vs_residual.landscape import landscape_pointer, landscape_section
from ui.plain_vs_residual.lesion import lesion_controls, lesion_results
from ui.plain_vs_residual.options import LESION_KEY, LINKED, PAIR_KEY, SWEEP_KEY, degradation_demo, normalization_demo
from ui.plain_vs_residual.profile import gradient_profile
from ui.plain_vs_residual.shattering import shattered_gradients
from ui.plain_vs_residual.side_by_side import current_pair, side_by_side
from ui.plain_vs_residual.sweep import depth_sweep, sweep_in_demo, sweep_view
from ui.share import apply_link, share_link

page_setup("Plain vs Residual")
st.title("Plain vs Residual")
st.markdown(
    "Stack more plain layers and a network gets **worse** — not from overfitting, and not because its gradients "
    "vanish (with BatchNorm they don't), but because deep plain nets are harder to optimize (He et al. 2015). "
    "Add shortcuts and depth helps again. Every chart below is measured live on real networks."
)
with st.expander("How it works: why the shortcut carries the gradient"):
    st.markdown("A residual block computes $y = x + \\mathcal{F}(x)$, so by the chain rule")
    st.latex(r"\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}"
             r"\left(I + \frac{\partial \mathcal{F}}{\partial x}\right)")
    st.markdown(
        "The identity term passes the gradient from the loss to every earlier block unchanged, whatever the "
        "block's layers do. A plain block ($y = \\mathcal{F}(x)$) multiplies the gradient by its Jacobian instead, "
        "and the product of many such Jacobians grows or shrinks exponentially with depth: at initialization, "
        "BatchNorm makes a plain net's gradients *explode* towards the input (Yang et al. 2019).  \n"
        "Sections 1 and 2 measure $\\lVert \\partial L / \\partial W \\rVert$ for every convolution on one batch; "
        "section 3 trains both kinds; section 4 deletes blocks from trained nets; section 5 measures how similar "
        "the gradients at neighbouring inputs are; section 6 draws the loss around trained weights.")

apply_link(LINKED)
share_link(LINKED)
landscape_pointer()

# ---- the lecture demos: the degradation problem (recorded at once, live on request), why normalization matters
pair, training, pair_in_demo = current_pair()
recorded = recorded_run()
degradation_panel(
    recorded, degradation_demo, disabled=training,
    live_view=(lambda: live_view(PAIR_KEY, recorded, training, heatmaps_folded=True)) if pair_in_demo else None,
    stop=pair.stop if pair_in_demo and training else None,
    elsewhere="Four nets started in section 3 are training there." if training and not pair_in_demo else "")
demo_panel("normalization", normalization_demo, disabled=job_running(SWEEP_KEY))
if sweep_in_demo():
    sweep_view()

gradient_profile()  # 1
depth_sweep()  # 2
side_by_side(recorded)  # 3

st.header("4 · Lesion study on trained nets")
st.markdown("Delete one block at a time from each trained network and measure validation accuracy again: a "
            "residual net keeps its shortcut, a plain net simply skips the block (where the shapes allow).")
lesion_running = job_running(LESION_KEY)
lesion_controls(LESION_KEY, pair, training, lesion_running)
lesion_results(LESION_KEY, lesion_running)

shattered_gradients()  # 5
landscape_section()  # 6 (ui/plain_vs_residual/landscape.py)
