"""Train page: pick a model and a dataset, press Start, watch the loss fall live.

Training runs in a worker process under the server's training queue (resnet_core.jobs.training_queue):
the same `python -m resnet_core.train` a terminal would run. This page follows the run's folder once a
second (resnet_core.train.follow), so the run survives its tab, and a run started in a terminal can be
followed here too. Its views are in ui/train/.
"""

import streamlit as st

from ui.frame import page_setup
from ui.share import apply_link, share_link
from ui.train.form import LINKED, train_form
from ui.train.history import run_history
from ui.train.live import live_view
from ui.train.session import RUN_PARAM, load_session
from ui.train.start import start_row

page_setup("Train")
st.title("Train")
st.markdown(
    "Training lowers the cross-entropy loss $L = -\\log p_{\\text{true class}}$ by stepping every weight against "
    "its gradient, $w \\leftarrow w - \\eta\\, \\partial L / \\partial w$. Press **Start**: the model from the "
    "Build page learns the built-in Shapes dataset while the loss falls live (a ResNet-20 reaches about 94% "
    "validation accuracy with these defaults; how long it takes on this server is said next to **Start**). "
    "Each run trains in its own "
    "process and is saved as a folder, so it goes on if you close the tab, and you can compare and download "
    "runs below."
)
with st.expander("How it works"):
    st.markdown(
        "- **Step**: a batch of images goes forward, the loss is averaged over it, `backward()` fills every "
        "$\\partial L/\\partial w$, and the optimizer updates the weights. SGD with momentum $\\mu$ keeps a velocity "
        "$v \\leftarrow \\mu v + g$ and steps $w \\leftarrow w - \\eta v$ (Nesterov looks one step ahead).\n"
        "- **Learning rate** $\\eta$ follows the schedule drawn below: a short warm-up from 0 keeps deep nets from "
        "blowing up in their first steps, then cosine decay to 0 lets the weights settle.\n"
        "- **Weight decay** adds $\\lambda w$ to each gradient; **augmentation** (random shifts and flips) shows "
        "each image slightly differently in every epoch, so the net cannot memorise pixels.\n"
        "- **Validation accuracy** is measured after every epoch on images never trained on: the gap between it "
        "and training accuracy is overfitting.\n"
        "- The **gradient norm** $\\lVert g \\rVert_2$ over all weights is recorded each step; a loss of NaN or "
        "infinity stops the run as *diverged* (lower the learning rate).")

apply_link(LINKED)
session = load_session()
share_link(LINKED, {RUN_PARAM: session.followed.name} if session.followed is not None else None)
if session.running:  # the curves go first, in view on a projector; the run's settings, locked, below them
    start_row(None, session)
    live_view(None, session)
    train_form(running=True)
else:
    form = train_form(running=False)
    start_row(form, session)
    live_view(form, session)
run_history(session)
