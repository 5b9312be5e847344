"""Background work a browser session starts: start/stop buttons, analysis status, the training queue, runs followed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from resnet_core.background import BackgroundJob, JobSnapshot
from resnet_core.device import best_device
from resnet_core.estimates import format_duration
from resnet_core.jobs.training_queue import JobView, TrainingQueue
from resnet_core.share import escape_markdown
from resnet_core.status import Status
from resnet_core.train import default_runs_dir
from resnet_core.train.follow import RunFollower
from resnet_core.train.snapshot import TrainerSnapshot


def job_running(key: str) -> bool:
    """Whether this session's job under session-state `key` is still working."""
    job = st.session_state.get(key)
    return job is not None and job.snapshot().running


def start_stop(start_col: Any, stop_col: Any, label: str, key_prefix: str, running: bool, stoppable: Any,
               can_stop: bool = True, **start_kwargs: Any) -> bool:
    """A "start" and a "Stop" button (Material icons), keys `{key_prefix}_start` / `_stop`; True when start was
    clicked.

    `stoppable` is the current job (anything with .stop()), a function that stops it, or None; stopping is a
    callback so it takes effect before the rerun draws the buttons again. `can_stop` False (someone else's run,
    followed read-only) keeps Stop disabled, with the reason in its tooltip.
    """
    start_kwargs.setdefault("icon", ":material/play_arrow:")
    clicked = start_col.button(label, disabled=running, key=f"{key_prefix}_start", **start_kwargs)
    stop_col.button("Stop", icon=":material/stop:", disabled=not (running and can_stop), key=f"{key_prefix}_stop",
                    on_click=getattr(stoppable, "stop", stoppable),
                    help=None if can_stop else "Started by another visitor: only they or the lecturer can stop it")
    return clicked


def show_job_status(job: BackgroundJob, what: str) -> None:
    snap = job.snapshot()
    if snap.running:
        st.progress(min(snap.fraction, 1.0), text=f"{what}: {snap.done} of {snap.total or '…'} — {snap.message}")
    elif snap.status is Status.FAILED:
        st.error(f"The {what} failed: {escape_markdown(snap.error)}")
    elif snap.status is Status.STOPPED:
        st.info(f"The {what} was stopped after {snap.done} of {snap.total}; showing what was measured.")


def job_view(key: str, was_running: bool, what: str) -> JobSnapshot | None:
    """For a fragment: the job's snapshot with its status drawn, None without a job.

    Reruns the whole page when the job ended since the page was drawn, to unlock its buttons.
    """
    job: BackgroundJob | None = st.session_state.get(key)
    if job is None:
        return None
    snap = job.snapshot()
    if was_running and not snap.running:
        st.rerun()
    show_job_status(job, what)
    return snap



# ---- trainings: worker processes under the server's one queue ---------------------------------------------


@st.cache_resource(show_spinner=False)
def _queue_for(runs_dir: str) -> TrainingQueue:
    return TrainingQueue(runs_dir)


def training_queue() -> TrainingQueue:
    """The server's one training queue (per runs folder): shared by every browser session on purpose, since
    it is what keeps a class pressing Start at once from running more trainings than the device can take."""
    return _queue_for(str(default_runs_dir().resolve()))


def calibrated(seconds: float, device: str | None = None) -> float:
    """A training's estimated duration, corrected by how long trainings on `device` (default: the best one here)
    really took on this server lately (TrainingQueue.calibration)."""
    return seconds * training_queue().calibration(device or best_device())


@st.cache_resource(max_entries=64, ttl=3600, show_spinner=False)
def _shared_follower(run_dir: str) -> RunFollower:
    return RunFollower(run_dir)


def follower(run_dir: Path) -> RunFollower:
    """The server's one follower of `run_dir`, shared by every session that shows it: a run folder is read-only
    to the pages, so thirty students following the lecturer's run hold its events once, not thirty times, and
    each poll reads only what the run appended since the last (RunFollower.poll is thread-safe)."""
    return _shared_follower(str(Path(run_dir).resolve()))


def show_run_progress(snap: TrainerSnapshot, label: str) -> None:
    """A followed run's progress bar: "<label>: step 120 of 748, about 40 s left" (or that its worker starts)."""
    left = f", about {snap.eta_s:.0f} s left" if snap.running and snap.eta_s is not None else ""
    words = f"step {snap.step} of {snap.total_steps}{left}" if snap.total_steps else "starting the worker…"
    st.progress(min(snap.progress, 1.0), text=f"{label}: {words}")


def show_queued(job: JobView) -> None:
    """A waiting job's place in line and the wait, in words."""
    wait = f", starting in {format_duration(job.wait_s)}" if job.wait_s is not None else ""
    ahead = "next in line" if job.position == 1 else f"number {job.position} in line"
    st.info(f"Waiting for a free training slot on this server: {ahead}{wait}. The server trains "
            f"{training_queue().slots} run(s) at a time so that every run gets the whole device; press "
            "**Stop** to leave the line.", icon=":material/hourglass_top:")
