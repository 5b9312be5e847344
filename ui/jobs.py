"""Background work owned by a browser session: start/stop buttons and status for resnet_core jobs."""

from __future__ import annotations

from typing import Any

import streamlit as st

from resnet_core.jobs import BackgroundJob, JobSnapshot
from resnet_core.status import Status


def job_running(key: str) -> bool:
    """Whether this session's job under session-state `key` is still working."""
    job = st.session_state.get(key)
    return job is not None and job.snapshot().running


def start_stop(start_col: Any, stop_col: Any, label: str, key_prefix: str, running: bool, stoppable: Any,
               **start_kwargs: Any) -> bool:
    """A "start" and a "■ Stop" button (keys `{key_prefix}_start` / `_stop`); True when start was clicked.

    `stoppable` is the current job (anything with .stop()) or None; stopping is a callback so it
    takes effect before the rerun draws the buttons again.
    """
    clicked = start_col.button(label, disabled=running, key=f"{key_prefix}_start", **start_kwargs)
    stop_col.button("■ Stop", disabled=not running, key=f"{key_prefix}_stop",
                    on_click=stoppable.stop if stoppable is not None else None)
    return clicked


def show_job_status(job: BackgroundJob, what: str) -> None:
    snap = job.snapshot()
    if snap.running:
        st.progress(min(snap.fraction, 1.0), text=f"{what}: {snap.done} of {snap.total or '…'} — {snap.message}")
    elif snap.status is Status.FAILED:
        st.error(f"The {what} failed: {snap.error}")
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

