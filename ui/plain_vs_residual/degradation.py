"""The Plain vs Residual page's degradation views: the lecture demo's panel, which answers at once with the
recorded run (curves, final numbers, provenance) and offers the live run beside it, and the live view of four
nets training side by side, drawn next to the button that started it, with the recorded curves faintly behind.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from resnet_core import assets
from resnet_core.analysis import SideBySide
from resnet_core.analysis.partial import (
    first_validation_step,
    heatmap_note,
    too_early_note,
    validation_note,
    warmup_end,
)
from resnet_core.analysis.readings import (
    band_reading,
    heatmap_reading,
    slow_start_reading,
    spread,
    training_reading,
)
from resnet_core.analysis.recorded import RecordedRun
from resnet_core.analysis.twins import label_depth
from resnet_core.assets import LONG_EPOCHS, recorded_degradation
from resnet_core.charts import (
    LIVE_POINTS_DRAWN,
    MAX_POINTS_DRAWN,
    grad_heatmap_figure,
    plain_vs_residual_training_figure,
)
from resnet_core.recipes import DEGRADATION_DATA, DEGRADATION_DEPTHS, DEGRADATION_TRAIN
from resnet_core.share import escape_markdown
from resnet_core.status import Status
from ui.captions import (
    DEEP_PLAIN_SLOW,
    FINAL_LOSS_MEANS,
    RECORDED_MISSING,
    RECORDED_OTHER_RECIPE,
    RECORDED_STALE,
    caption,
)
from ui.charts import chart
from ui.demos import DEMOS, estimate_text
from ui.jobs import show_queued
from ui.share import LINKED_DEMO_KEY

DEMO = "degradation"


@st.cache_resource(show_spinner=False, max_entries=4)
def _recorded(stamp: tuple, long: bool) -> RecordedRun | None:
    return assets.recorded_run(long=long)


def recorded_run(long: bool = False) -> RecordedRun | None:
    """The bundled recording of the degradation demo (`long`: of the same recipe trained LONG_EPOCHS epochs),
    None when this checkout lacks it. Read once per version of its files and shared by every session: it is
    read-only."""
    folders = recorded_degradation(long=long)
    if not folders:
        return None
    try:
        stamp = tuple((str(p), (p / "metrics.jsonl").stat().st_mtime) for paths in folders.values() for p in paths)
    except OSError:  # being rebuilt this very moment
        return None
    return _recorded(stamp, long)


def degradation_panel(recorded: RecordedRun | None, on_live: Callable[[], None], *, disabled: bool,
                      live_view: Callable[[], None] | None = None, stop: Callable[[], None] | None = None,
                      elsewhere: str = "") -> None:
    """The demo's bordered panel: title, live duration here, what it does and what to look for, the
    **Run it live** button (and **Stop** beside it, given `stop`, for the live run it started); below them
    the live run when `live_view` is given (it was started here), else the recorded run. `elsewhere`: a line
    saying that a live run started elsewhere on the page is going on."""
    demo = DEMOS[DEMO]
    with st.container(border=True, key=f"demo_panel_{DEMO}"):
        text, button = st.columns([5, 1], vertical_alignment="center")
        title = text.empty()  # filled in last: the live estimate may first measure this device (seconds)
        text.caption(f"**Look for:** {demo.look_for}")
        button.button("Run it live", icon=":material/play_arrow:", key=f"demo_{DEMO}", type="primary",
                      on_click=on_live, disabled=disabled, width="stretch",
                      help="Trains the four nets here, in worker processes; the recorded curves stay drawn faintly "
                           "behind the live ones.")
        if stop is not None:
            button.button("Stop", icon=":material/stop:", key=f"demo_{DEMO}_stop", on_click=stop, width="stretch")
        if st.session_state.get(LINKED_DEMO_KEY) == DEMO:
            st.caption("You followed a link to this demo: the recorded run is below; press **Run it live** when "
                       "you are ready.")
        if elsewhere:
            st.caption(elsewhere)
        if live_view is not None:
            live_view()
        elif recorded is not None:
            recorded_view(recorded)
        else:
            st.info(RECORDED_MISSING, icon=":material/info:")
        live = estimate_text(DEMO)
        answer = (f"training live below, {live} in all" if live_view is not None and stop is not None else
                  f"the live run is below; running it again takes {live}" if live_view is not None else
                  f"its recorded run is below, at once; **Run it live** takes {live}" if recorded is not None else
                  f"**Run it live** takes {live}")
        title.markdown(f":material/school: **Lecture demo: {demo.title}** — {answer}.  \n{demo.does}")


def recorded_view(recorded: RecordedRun) -> None:
    """The recorded run over its seeds: each net's final numbers (mean, and range over the seeds), its two charts
    (mean and min-max band per net), and what they show with where they came from. The cards and the caption
    quote the same values (RecordedRun.finals, written by readings.spread)."""
    finals = recorded.finals()
    cols = st.columns(len(finals))
    for col, (label, (losses, accs)) in zip(cols, finals.items()):
        col.metric(f"{label}: validation accuracy", spread(accs, percent=True).split(" (")[0],
                   help="the last validation of each recorded seed, averaged")
        col.caption(f"final training loss {spread(losses)}; validation accuracy {spread(accs, percent=True)}")
    left, right = st.columns(2)
    chart(plain_vs_residual_training_figure({}, "train_loss", revision="pvr-recorded", recorded=recorded.runs,
                                            warmup_step=recorded.warmup_step), key="pvr_rec_loss", where=left)
    chart(plain_vs_residual_training_figure({}, "val_acc", revision="pvr-recorded", recorded=recorded.runs),
          key="pvr_rec_acc", where=right)
    if not recorded.matches(DEGRADATION_DATA, DEGRADATION_TRAIN, DEGRADATION_DEPTHS):
        st.caption(RECORDED_STALE)
    where = f": {escape_markdown(recorded.summary)}" if recorded.summary else ""
    seeds = f"{recorded.seeds} seed{'s' if recorded.seeds != 1 else ''} per net"
    st.caption(f":material/history: **Recorded**, not live, {seeds} (each line their mean, its band their min to "
               f"max){where}. "
               f"{FINAL_LOSS_MEANS} " + caption("training", band_reading(finals)))
    longer_view()


def longer_view() -> None:
    """The same recipe trained LONG_EPOCHS epochs instead of the lecture's 4 (recorded): where the deep plain net
    does learn. The lecture's run, live or recorded, is the start of this one; its numbers and its verdict
    (band_reading: no ordering from one seed) come from its own files."""
    long = recorded_run(long=True)
    if long is None:
        return
    finals = long.finals()
    epochs = long.epochs or LONG_EPOCHS
    seeds = f"{long.seeds} seed{'s' if long.seeds != 1 else ''}"
    with st.expander(f"The same recipe, {epochs} epochs instead of {DEGRADATION_TRAIN.epochs}: recorded, {seeds}",
                     icon=":material/history:"):
        st.markdown(f"The lecture's run is the first {DEGRADATION_TRAIN.epochs} epochs of this recipe. Trained "
                    f"{epochs / DEGRADATION_TRAIN.epochs:g}× as long (learning-rate schedule stretched to match), "
                    "each net ends at:")
        st.markdown("  \n".join(f"**{label}**: final training loss {spread(losses)}, validation accuracy "
                                f"{spread(accs, percent=True)}" for label, (losses, accs) in finals.items()))
        slow = slow_start_reading(long.runs, long.steps_per_epoch, DEGRADATION_TRAIN.epochs)
        if slow:
            st.markdown(f"{slow}.")
        chart(plain_vs_residual_training_figure({}, "train_loss", revision="pvr-long", recorded=long.runs,
                                                warmup_step=long.warmup_step), key="pvr_long_loss")
        where = f" ({escape_markdown(long.summary)})" if long.summary else ""
        st.caption(f":material/history: **Recorded**, not live{where}. {FINAL_LOSS_MEANS} "
                   + caption("training", band_reading(finals)))


def live_view(pair_key: str, recorded: RecordedRun | None, running: bool, *, heatmaps_folded: bool) -> None:
    """The live side-by-side run under session-state `pair_key`, redrawn once a second while it trains (four
    live curves and two heatmaps cost the browser and server real CPU on a laptop)."""

    @st.fragment(run_every=1.0 if running else None)
    def view() -> None:
        current: SideBySide | None = st.session_state.get(pair_key)
        if current is None:
            return
        if running and not current.running:
            st.rerun()  # all runs ended: redraw the buttons and unlock the lesion study
        job = current.view()
        if job is not None and job.queued:
            show_queued(job)
            return
        curves = current.curves()
        if job is not None and job.status.bad and job.error and not any(c["step"] for c in curves.values()):
            st.error(f"The training could not run: {escape_markdown(job.error)}")
            return
        _live_body(current, curves, recorded, heatmaps_folded)

    view()


def _live_body(pair: SideBySide, curves: dict, recorded: RecordedRun | None, heatmaps_folded: bool) -> None:
    status_cols = st.columns(len(curves))
    deep_plain = max((n for n in curves if n.startswith("plain")), key=label_depth, default=None)
    for col, (name, c) in zip(status_cols, curves.items()):
        col.progress(min(c["progress"], 1.0), text=f"{name}: {c['status']}")
        if c["status"] is Status.DID_NOT_LEARN and name == deep_plain and len(curves) > 2:
            col.caption(DEEP_PLAIN_SLOW.format(name=name))  # the demo's lesson, not a user error
        elif c["status"].bad:  # diverged or failed
            col.error(c["message"])
    plan = pair.plan
    warm = warmup_end(pair.train_config, plan)
    early = too_early_note(curves, warm, plan.steps_per_epoch)
    val_note = validation_note(curves, first_validation_step(pair.train_config, plan), plan.steps_per_epoch)
    same = recorded is not None and recorded.matches(pair.data, pair.train_config, pair.depths)
    behind = recorded.runs if same else None
    spreads = {label: losses for label, (losses, _) in recorded.finals().items()} if same else None
    left, right = st.columns(2)
    points = LIVE_POINTS_DRAWN if pair.running else MAX_POINTS_DRAWN
    chart(plain_vs_residual_training_figure(curves, "train_loss", max_points=points, recorded=behind,
                                            warmup_step=warm, too_early=bool(early)), key="pvr_train_loss", where=left)
    chart(plain_vs_residual_training_figure(curves, "val_acc", recorded=behind, note=val_note),
          key="pvr_train_acc", where=right)
    if early:
        st.info(early, icon=":material/hourglass_top:")
    if behind is not None:
        against = (f"Faint bands: the recorded runs of the same recipe over {recorded.seeds} seeds (dotted: their "
                   "mean, shaded: min to max), to see whether this run is typical")
        against += f" ({escape_markdown(recorded.summary)}). " if recorded.summary else ". "
    else:
        against = ""
    reading = "" if early else training_reading(curves, plan.total_steps, plan.steps_per_epoch, spreads)
    st.caption(against + (f"{FINAL_LOSS_MEANS} " if reading else "") + caption("training", reading))
    if recorded is not None and behind is None:
        st.caption(RECORDED_OTHER_RECIPE)
    if heatmaps_folded:
        with st.expander("Block-gradient heatmaps of these runs", icon=":material/grid_on:"):
            _heatmaps(pair)
    else:
        _heatmaps(pair)


def _heatmaps(pair: SideBySide) -> None:
    depth = st.selectbox("Heatmaps for depth", pair.depths, len(pair.depths) - 1, key="pvr_heat_depth")
    snaps, zrange = pair.heatmaps(depth)
    if zrange is None:
        st.caption(heatmap_note(pair.record_every))
        return
    cols = st.columns(len(snaps))
    for col, (name, (paths, steps, matrix)) in zip(cols, snaps.items()):
        chart(grad_heatmap_figure(paths, steps, matrix, title=name, zrange=zrange, revision=f"heat-{name}"),
              key=f"pvr_heat_{name}", where=col)
    st.caption(caption("heatmap", heatmap_reading(snaps)))
