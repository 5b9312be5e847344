"""Plain vs Residual page: the degradation problem and what shortcuts change, measured live.

Every number comes from resnet_core.analysis on real networks, except the degradation demo's recorded run
(bundled under assets/, shown at once with its provenance, and drawn faintly behind a live run). The
side-by-side training runs as one job of the server's training queue (a worker process per net, followed
through its run folder); quick measurements (depth sweep, lesion study, shattering sweep) run in the server's
few analysis threads. Fragments redraw while the work goes on, next to the button that started it; every
action says its time here before the click, and every caption reads its chart's numbers
(resnet_core.analysis.readings). The views of the degradation demo and the lesion study live in
ui/degradation.py and ui/lesion.py.
"""

import dataclasses

import streamlit as st

from resnet_core import ConfigError, list_presets
from resnet_core.analysis import (
    MAX_DEPTH,
    SWEEP_DEPTHS,
    GradientError,
    SideBySide,
    config_label,
    parse_depths,
    profile_pair,
    shattering_job,
    sweep_job,
    twin_configs,
    zero_init_warning,
)
from resnet_core.analysis.readings import blocks_reading, profile_reading, shattering_reading, sweep_reading
from resnet_core.charts import autocorrelation_figure, depth_sweep_figure, gradient_profile_figure, shattering_figure
from resnet_core.data import DatasetError
from resnet_core.device import best_device
from resnet_core.estimates import profile_seconds, shattering_seconds, side_by_side_seconds, sweep_seconds
from resnet_core.model import default_image_size, get_preset
from resnet_core.recipes import DEGRADATION_DATA, DEGRADATION_DEPTHS, DEGRADATION_TRAIN, SWEEP_BATCH
from resnet_core.serving import RefusedError
from resnet_core.share import escape_markdown
from resnet_core.train import TrainConfigError, TrainerError
from resnet_core.train.config import LIMITS as TRAIN_LIMITS
from ui.captions import CAPTIONS, caption
from ui.charts import chart
from ui.degradation import degradation_panel, live_view, recorded_run
from ui.demos import demo_panel, on_this_device
from ui.frame import page_setup
from ui.jobs import calibrated, job_running, job_view, start_stop, training_queue
from ui.landscape import landscape_pointer, landscape_section
from ui.lesion import lesion_controls, lesion_results
from ui.share import Linked, apply_link, by_key, share_link
from ui.state import current_config
from ui.visitor import actor, allow_analysis, share

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

PROFILE_KEY, SWEEP_KEY, PAIR_KEY, LESION_KEY, SHATTER_KEY = (
    "pvr_profile", "pvr_sweep_job", "pvr_pair", "pvr_lesion_job", "pvr_shatter_job")
# Where a run's view is drawn: next to the button that started it, the demo's panel ("demo") or its section.
PAIR_WHERE, SWEEP_WHERE = "pvr_pair_where", "pvr_sweep_where"
BAD_INPUT = (GradientError, ConfigError, TrainConfigError, TrainerError, DatasetError, RefusedError)
AGAINST = {"twin": "its twin", "preset": "a preset"}  # short: the select sits in a quarter column
LINKED = (
    Linked("pvr_against", "against", "twin", tuple(AGAINST)),
    Linked("pvr_other", "other", "plain20", tuple(list_presets())),
    Linked("pvr_seeds", "seeds", 3, bounds=(1, 5)),
    Linked("pvr_batch", "batch", 32, (8, 16, 32, 64)),
    Linked("pvr_size", "px", lambda cfg: min(default_image_size(cfg), 64), (16, 32, 64, 128, 224)),
    Linked("pvr_sweep_depths", "depths", list(SWEEP_DEPTHS), SWEEP_DEPTHS),
    Linked("pvr_sweep_extra", "more_depths", ""),
    Linked("pvr_sweep_seeds", "sweep_seeds", 1, bounds=(1, 5)),
    Linked("pvr_sweep_size", "sweep_px", 32, (16, 32)),
    Linked("pvr_sweep_nobn", "no_bn", False),
    Linked("pvr_depth_a", "shallow", DEGRADATION_DEPTHS[0], SWEEP_DEPTHS),
    Linked("pvr_depth_b", "deep", DEGRADATION_DEPTHS[1], SWEEP_DEPTHS),
    Linked("pvr_n_train", "n", DEGRADATION_DATA.n_train, bounds=(256, 20_000)),
    Linked("pvr_epochs", "epochs", DEGRADATION_TRAIN.epochs, bounds=(1, 100)),
    Linked("pvr_lr", "lr", DEGRADATION_TRAIN.lr, bounds=(1e-4, 1.0)),
    Linked("pvr_seed", "seed", 0, bounds=TRAIN_LIMITS["seed"]),
    Linked("pvr_every", "every", 5, bounds=(1, 100)),
    Linked("pvr_shatter_depths", "shatter_depths", [8, 20, 56], SWEEP_DEPTHS),
    Linked("pvr_shatter_points", "points", 64, (16, 32, 64, 128)),
    Linked("pvr_shatter_seeds", "shatter_seeds", 1, bounds=(1, 5)),
)
L = by_key(LINKED)
apply_link(LINKED)
share_link(LINKED)
landscape_pointer()


def reset_options(*keys: str) -> None:
    """Put these widgets back to their defaults (a demo runs with the settings it was timed for)."""
    for key in keys:
        st.session_state[key] = L[key].default_value()


def degradation_demo() -> None:
    reset_options("pvr_depth_a", "pvr_depth_b", "pvr_n_train", "pvr_epochs", "pvr_lr", "pvr_seed")
    st.session_state["pvr_autostart_train"] = True
    st.session_state[PAIR_WHERE] = "demo"


def normalization_demo() -> None:
    reset_options("pvr_sweep_depths", "pvr_sweep_extra", "pvr_sweep_seeds", "pvr_sweep_size")
    st.session_state["pvr_sweep_nobn"] = True
    st.session_state["pvr_autostart_sweep"] = True
    st.session_state[SWEEP_WHERE] = "demo"


sweep_running = job_running(SWEEP_KEY)


@st.fragment(run_every=0.5 if sweep_running else None)
def sweep_view() -> None:
    snap = job_view(SWEEP_KEY, sweep_running, "depth sweep")
    if snap is None:
        st.info("Press **Run sweep**, or run the lecture demo *Why normalization matters* at the top.")
        return
    result = snap.result
    if result is None or not result.points:
        return
    chart(depth_sweep_figure(result, "batch"), key="pvr_sweep_chart")
    st.caption(caption("sweep", sweep_reading(result, "batch")))
    if any(p.norm == "none" for p in list(result.points)):  # drawn once it has its first point
        chart(depth_sweep_figure(result, "none"), key="pvr_sweep_chart_nobn")
        st.caption(caption("sweep_no_bn", sweep_reading(result, "none")))


pair: SideBySide | None = st.session_state.get(PAIR_KEY)
training = pair is not None and pair.running
pair_in_demo = pair is not None and st.session_state.get(PAIR_WHERE) == "demo"
recorded = recorded_run()
degradation_panel(
    recorded, degradation_demo, disabled=training,
    live_view=(lambda: live_view(PAIR_KEY, recorded, training, heatmaps_folded=True)) if pair_in_demo else None,
    stop=pair.stop if pair_in_demo and training else None,
    elsewhere="Four nets started in section 3 are training there." if training and not pair_in_demo else "")
demo_panel("normalization", normalization_demo, disabled=sweep_running)
sweep_in_demo = SWEEP_KEY in st.session_state and st.session_state.get(SWEEP_WHERE) == "demo"
if sweep_in_demo:
    sweep_view()


# ---- 1 · gradient profile --------------------------------------------------------------------------------

cfg = current_config()
residual_cfg, plain_cfg = twin_configs(cfg)
st.header("1 · Gradient norms at initialization")
st.markdown(f"Your model from the **Build** page is **{config_label(cfg)}**. Both nets are built from the same "
            "seed and measured on the same random batch (cross-entropy against random labels), in train mode.")
warning = zero_init_warning(cfg)
if warning:
    st.warning(warning)

cols = st.columns(4)
against = L["pvr_against"].widget(cols[0].selectbox, "Compare with", format_func=AGAINST.get,
                                  help="Its twin: the same layers with the shortcuts toggled.")
other_name = L["pvr_other"].widget(cols[1].selectbox, "Preset", disabled=against != "preset")
seeds = L["pvr_seeds"].widget(cols[2].slider, "Seeds (band)")
batch = L["pvr_batch"].widget(cols[3].select_slider, "Batch size")
size = L["pvr_size"].widget(st.select_slider, "Image size (pixels)",
                            help="ImageNet-stem models are measured at 64 px by default to keep it quick.")

first, second = (residual_cfg, plain_cfg) if against == "twin" else (cfg, get_preset(other_name))
try:
    profile_time = profile_seconds((first, second), size, batch, seeds)
except (RuntimeError, ValueError):  # e.g. an image too small for the model: measuring will say so
    profile_time = 0.0
AUTO_PROFILE_SECONDS = 3.0  # measured on arrival when it is this quick, so the page opens with its chart drawn
measure = st.button("Measure gradient profile", type="primary", key="pvr_profile_run",
                    help=on_this_device(profile_time))
first_visit = PROFILE_KEY not in st.session_state
if first_visit and not measure and profile_time > AUTO_PROFILE_SECONDS:
    st.info(f"Press **Measure gradient profile**: for this model it takes {on_this_device(profile_time)}.")
    st.session_state[PROFILE_KEY] = None
elif measure or first_visit:
    try:
        with st.spinner("Measuring both networks…"):
            st.session_state[PROFILE_KEY] = profile_pair(first, second, seeds=tuple(range(seeds)),
                                                         batch_size=batch, image_size=size)
    except BAD_INPUT as exc:
        st.error(f"Cannot compare: {escape_markdown(exc)}")
        st.session_state[PROFILE_KEY] = None

pair_profile = st.session_state.get(PROFILE_KEY)
if pair_profile is not None:
    if cfg not in (pair_profile.a.config, pair_profile.b.config):
        st.info("Measured for an earlier model; press **Measure gradient profile** again for the current one.")
    metrics = st.columns(2)
    for col, side in zip(metrics, (pair_profile.a, pair_profile.b)):
        ratio = side.median_ratio
        col.metric(f"{side.label}: first / last conv gradient", "∞ (last conv gets 0)" if ratio == float("inf")
                   else f"{ratio:.3g}×", help="stem conv over the last conv before the fc, median over seeds")
    chart(gradient_profile_figure(pair_profile, "convs"), key="pvr_profile_convs")
    st.caption(caption("profile", profile_reading(pair_profile)))
    if any(side.warnings for side in (pair_profile.a, pair_profile.b)):
        st.caption(CAPTIONS["zero_init"])
    chart(gradient_profile_figure(pair_profile, "blocks"), key="pvr_profile_blocks")
    st.caption(caption("blocks", blocks_reading(pair_profile)))


# ---- 2 · depth sweep -----------------------------------------------------------------------------------

st.header("2 · Depth sweep")
st.markdown("CIFAR ResNets of depth 6n+2 and their plain twins, at initialization: how much larger is the "
            "gradient at the first convolution than at the last?")
cols = st.columns([3, 2, 1, 1])
depths = L["pvr_sweep_depths"].widget(cols[0].multiselect, "Depths")
extra = L["pvr_sweep_extra"].widget(cols[1].text_input, f"More depths (6n+2, up to {MAX_DEPTH})",
                                    placeholder="e.g. 74, 164")
sweep_seeds = L["pvr_sweep_seeds"].widget(cols[2].number_input, "Seeds")
sweep_size = L["pvr_sweep_size"].widget(cols[3].select_slider, "Image px")
no_bn = L["pvr_sweep_nobn"].widget(st.toggle, "Also without normalization (norm='none')")
norms = ("batch", "none") if no_bn else ("batch",)
buttons = st.columns([1, 1, 4])
start_sweep = start_stop(buttons[0], buttons[1], "Run sweep", "pvr_sweep", sweep_running,
                         st.session_state.get(SWEEP_KEY))
try:
    typed = parse_depths(extra)
except GradientError:
    typed = []  # said when the sweep is started
sweep_time = sweep_seconds(list(depths) + typed, norms, int(sweep_seeds), SWEEP_BATCH, sweep_size)
buttons[2].caption(f"{2 * len(norms) * int(sweep_seeds) * len(set(depths) | set(typed))} networks, one batch each: "
                   f"{on_this_device(sweep_time)}.")
if start_sweep or st.session_state.pop("pvr_autostart_sweep", False):
    try:
        chosen = list(depths) + parse_depths(extra)
        allow_analysis(sweep_seconds(chosen, norms, int(sweep_seeds), SWEEP_BATCH, sweep_size))
        job = sweep_job(chosen, norms, tuple(range(int(sweep_seeds))), batch_size=SWEEP_BATCH, image_size=sweep_size)
    except BAD_INPUT as exc:
        st.error(f"Cannot run the sweep: {escape_markdown(exc)}")
    else:
        st.session_state[SWEEP_KEY] = job.start(owner=actor().owner)
        if start_sweep:
            st.session_state[SWEEP_WHERE] = "section"
        st.rerun()
if sweep_in_demo:
    st.caption("This sweep was started by the lecture demo *Why normalization matters*: its charts are under the demo "
               "at the top.")
else:
    sweep_view()


# ---- 3 · side-by-side training ----------------------------------------------------------------------------

st.header("3 · Training side by side")
st.markdown("Plain and residual nets of two depths, trained on the built-in Shapes dataset with the same data, "
            "seed and recipe (SGD with momentum, warm-up, cosine schedule), all four at once: He et al.'s Figure 6 "
            "in miniature.")
cols = st.columns(4)  # two rows: seven inputs in one row leave a depth select too narrow for "56" at 1024 px
depth_a = L["pvr_depth_a"].widget(cols[0].selectbox, "Shallow depth")
depth_b = L["pvr_depth_b"].widget(cols[1].selectbox, "Deep depth")
n_train = L["pvr_n_train"].widget(cols[2].number_input, "Training images", step=256)
epochs = L["pvr_epochs"].widget(cols[3].number_input, "Epochs")
cols = st.columns(4)
lr = L["pvr_lr"].widget(cols[0].number_input, "Learning rate", format="%.4f")
train_seed = L["pvr_seed"].widget(cols[1].number_input, "Seed")
every = L["pvr_every"].widget(cols[2].number_input, "Record gradients every k steps")
buttons = st.columns([1, 1, 4])
start_training = start_stop(buttons[0], buttons[1], "Train all four", "pvr_train", training, pair)
try:
    config = DEGRADATION_TRAIN.replace(epochs=int(epochs), lr=float(lr), seed=int(train_seed))
    spec = dataclasses.replace(DEGRADATION_DATA, n_train=int(n_train))
    train_seconds = side_by_side_seconds(spec, config, (int(depth_a), int(depth_b)))
    buttons[2].caption(f"Four worker processes at once: {on_this_device(calibrated(train_seconds))}.")
except BAD_INPUT as exc:
    config_error: Exception | None = exc
else:
    config_error = None
if start_training or st.session_state.pop("pvr_autostart_train", False):
    try:
        if config_error is not None:
            raise config_error
        new_pair = SideBySide(spec, config, depths=(int(depth_a), int(depth_b)), record_every=int(every))
        new_pair.submit(training_queue(), train_seconds, best_device(), **share())
    except BAD_INPUT as exc:
        st.error(f"Cannot start training: {escape_markdown(exc)}")
    else:
        st.session_state[PAIR_KEY] = new_pair
        if start_training:
            st.session_state[PAIR_WHERE] = "section"
        st.session_state.pop(LESION_KEY, None)
        st.rerun()
if pair is None:
    st.info("Press **Train all four** to train them here; the lecture demo *The degradation problem* at the top "
            "shows its recorded run at once, and **Run it live** trains it.")
elif pair_in_demo:
    st.info("These four nets were started by the lecture demo at the top: they train in its panel, drawn against "
            "the recorded run.", icon=":material/arrow_upward:")
else:
    live_view(PAIR_KEY, recorded, training, heatmaps_folded=False)


# ---- 4 · lesion study -------------------------------------------------------------------------------------

st.header("4 · Lesion study on trained nets")
st.markdown("Delete one block at a time from each trained network and measure validation accuracy again: a "
            "residual net keeps its shortcut, a plain net simply skips the block (where the shapes allow).")
lesion_running = job_running(LESION_KEY)
lesion_controls(LESION_KEY, pair, training, lesion_running)
lesion_results(LESION_KEY, lesion_running)


# ---- 5 · gradient shattering -------------------------------------------------------------------------------

st.header("5 · Shattered gradients")
st.markdown("Walk along a straight line between two images and take the gradient of the output with respect to "
            "the input at each point: do neighbouring points get similar gradients?")
shatter_running = job_running(SHATTER_KEY)
cols = st.columns([3, 1, 1])
shatter_depths = L["pvr_shatter_depths"].widget(cols[0].multiselect, "Depths")
points = L["pvr_shatter_points"].widget(cols[1].select_slider, "Points on the line")
shatter_seeds = L["pvr_shatter_seeds"].widget(cols[2].number_input, "Seeds")
buttons = st.columns([1, 1, 4])
start_shatter = start_stop(buttons[0], buttons[1], "Measure", "pvr_shatter", shatter_running,
                           st.session_state.get(SHATTER_KEY))
buttons[2].caption(f"{2 * int(shatter_seeds) * len(shatter_depths)} networks at initialization: "
                   f"{on_this_device(shattering_seconds(shatter_depths, int(shatter_seeds), int(points)))}.")
if start_shatter:
    try:
        allow_analysis(shattering_seconds(shatter_depths, int(shatter_seeds), int(points)))
        job = shattering_job(shatter_depths, tuple(range(int(shatter_seeds))), int(points), image_size=16)
    except BAD_INPUT as exc:
        st.error(f"Cannot measure shattering: {escape_markdown(exc)}")
    else:
        st.session_state[SHATTER_KEY] = job.start(owner=actor().owner)
        st.rerun()


@st.fragment(run_every=0.5 if shatter_running else None)
def shattering_view() -> None:
    snap = job_view(SHATTER_KEY, shatter_running, "shattering sweep")
    if snap is None:
        return
    sweep = snap.result
    if sweep is None or not sweep.points:
        return
    left, right = st.columns(2)
    chart(shattering_figure(sweep), key="pvr_shatter_chart", where=left)
    chart(autocorrelation_figure(sweep.deepest_profiles()), key="pvr_autocorr_chart", where=right)
    st.caption(caption("shattering", shattering_reading(sweep)))


shattering_view()


# ---- 6 · loss landscape (ui/landscape.py) --------------------------------------------------------------

landscape_section()
