"""The Train page's live view: the followed run's progress, numbers and curves, redrawn while it trains; runs
training elsewhere to follow; and the learning-rate schedule Start would use."""

from __future__ import annotations

import streamlit as st

from resnet_core.charts import (
    LIVE_POINTS_DRAWN,
    MAX_POINTS_DRAWN,
    epoch_metrics_figure,
    lr_figure,
    throughput_figure,
    training_loss_figure,
)
from resnet_core.jobs.training_queue import JobEnd
from resnet_core.recipes import SHAPES_DATA, SHAPES_TRAIN
from resnet_core.share import escape_markdown
from resnet_core.status import Status
from resnet_core.train import StatusEvent, TrainConfigError, list_runs, schedule_preview
from resnet_core.train.snapshot import TrainerSnapshot
from ui.charts import chart
from ui.jobs import follower, show_queued, show_run_progress
from ui.train.form import TrainForm
from ui.train.session import TrainSession
from ui.visitor import visible_runs

# Green only for a run that learned: "did not learn" and a cut-off run are warnings with their reason.
STATUS_BOX = {Status.FINISHED: st.success, Status.STOPPED: st.info, Status.DID_NOT_LEARN: st.warning,
              Status.INTERRUPTED: st.warning, Status.DIVERGED: st.error, Status.FAILED: st.error}


def _never_started(session: TrainSession, snap: TrainerSnapshot) -> bool:
    """Say why this session's job never trained (it left the line, or could not start); True when it did not."""
    current = session.queue.view(session.job.id) if session.job is not None else None
    if current is None:
        return False
    if current.end is JobEnd.CANCELLED:
        st.info("You left the line: the run never started.")
    elif current.end is JobEnd.LEFT:
        st.info(f"The run never started: {escape_markdown(current.error)}. Press **Start** to queue it again.")
    elif current.status.ended and current.error and not snap.events:
        st.error(f"The run could not start: {escape_markdown(current.error)}")
    else:
        return False
    return True


def _numbers_and_curves(snap: TrainerSnapshot) -> None:
    smoothing, log_y = st.session_state.get("train_ema", 0.6), st.session_state.get("train_log_y", False)
    steps, validated = snap.steps, snap.validated_epochs
    metric_cols = st.columns(4)
    metric_cols[0].metric("Step", f"{snap.step} / {snap.total_steps}")
    metric_cols[1].metric("Training loss", f"{steps[-1].train_loss:.4f}" if steps else "–")
    metric_cols[2].metric("Validation accuracy", f"{100 * validated[-1].val_acc:.2f}%" if validated else "–")
    metric_cols[3].metric("Images / s", f"{steps[-1].samples_per_s:.0f}" if steps else "–")
    left, right = st.columns(2)
    points = LIVE_POINTS_DRAWN if snap.running else MAX_POINTS_DRAWN
    chart(training_loss_figure(snap.events, smoothing, log_y, max_points=points), key="train_loss_chart", where=left)
    if validated:
        chart(epoch_metrics_figure(snap.events), key="train_epoch_chart", where=right)
    else:  # an empty chart would show meaningless axes: say what comes, and when
        plan = next((e for e in snap.events if isinstance(e, StatusEvent) and e.steps_per_epoch), None)
        when = f" (step {plan.steps_per_epoch:,})" if plan is not None else ""
        right.info(f"Validation accuracy and loss per epoch appear here when epoch 1 ends{when}.",
                   icon=":material/schedule:")
    if not snap.running:
        chart(lr_figure([e.step for e in steps], [e.lr for e in steps]), key="train_lr_chart", where=left)
        chart(throughput_figure(snap.events, smoothing), key="train_speed_chart", where=right)


def _live(session: TrainSession) -> None:
    # Every 0.8 s (so the charts move at least once a second, fragment time included), and only what changed is
    # read from disk: the worker trains at full speed while the page watches. During a run two charts are live,
    # each trace thinned to LIVE_POINTS_DRAWN points; the learning rate and throughput join them at the end.
    # A job waiting in line has only its place and wait to show: every 2 s is enough, and a class of waiting
    # pages then costs the server (and each visitor's browser) little.
    @st.fragment(run_every=(2.0 if session.queued else 0.8) if session.running else None)
    def live_view() -> None:
        current = session.queue.view(session.job.id) if session.job is not None else None
        if current is not None and current.queued:
            show_queued(current)
            return
        if session.queued:
            st.rerun()  # the job has just started: redraw at the live view's pace
        if session.followed is None:
            st.info(f"Press **Start** to train. Defaults: the Build page's model on {SHAPES_DATA.n_train:,} Shapes "
                    f"images for {SHAPES_TRAIN.epochs} epochs (SGD with Nesterov momentum, warm-up, then cosine "
                    "decay).")
            return
        snap = follower(session.followed).poll()
        ended = current.status.ended if current is not None else snap.status.ended
        if session.running and ended:
            st.rerun()  # the run just ended: redraw the buttons and the history with the final state
        if _never_started(session, snap):
            return
        show_run_progress(snap, f"`{session.followed.name}`")
        (STATUS_BOX.get(snap.status) or st.caption)(snap.message)
        _numbers_and_curves(snap)

    live_view()


def _follow_choices(session: TrainSession) -> None:
    """Runs training right now whose folders are here (started by another tab or a terminal): follow one."""
    live = [r for r in visible_runs(list_runs(session.runs_dir))
            if r.status is Status.RUNNING and r.path != session.followed]
    if not live:
        return
    cols = st.columns([3, 1])
    pick = cols[0].selectbox("Runs training now (from another tab or a terminal)", [r.name for r in live],
                             key="train_attach_pick")
    if cols[1].button("Follow this run", key="train_attach"):
        session.follow(session.runs_dir.resolve() / pick)
        st.rerun()


def live_view(form: TrainForm | None, session: TrainSession) -> None:
    """The followed run live, then its curves' smoothing and scale (drawn once, outside the fragment, so a change
    reruns the charts; below them, so the curves sit high enough to be in view while a run trains), runs to
    follow, and before any run the schedule Start would use."""
    _live(session)
    if session.followed is not None:
        controls = st.columns([2, 1, 3])
        controls[0].slider("Smoothing (EMA)", 0.0, 0.99, 0.6, 0.01, key="train_ema")
        controls[1].toggle("Log scale", key="train_log_y")
    if session.running:
        return
    _follow_choices(session)
    if session.followed is None and form is not None:
        try:
            lrs = schedule_preview(form.config(), form.n_train)
            chart(lr_figure(list(range(1, len(lrs) + 1)), lrs, title="Learning-rate schedule (preview)",
                            revision="lr-preview"), key="train_lr_preview")
        except TrainConfigError:
            pass
