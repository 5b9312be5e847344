"""What the Train page follows in this browser session: its job in the server's queue or a run folder, whether
that is running, and whether this visitor may stop it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from resnet_core.jobs.training_queue import JobView, TrainingQueue
from resnet_core.serving import Actor, RefusedError, stop_run
from resnet_core.train import RunError, default_runs_dir, find_run, read_run
from ui.jobs import follower, training_queue
from ui.visitor import actor

JOB_KEY = "train_job"  # this session's job in the server's training queue
FOLLOW_KEY = "train_follow"  # a run folder this session follows (its own job's, or one picked below)
REFUSED_KEY = "train_refused"  # why the last Stop / Remove / promote was refused, said once
RUN_PARAM = "run"  # the followed run's folder name in the URL


@dataclass(frozen=True)
class TrainSession:
    """This session's view of training, read once per page run."""

    queue: TrainingQueue
    runs_dir: Path
    job: JobView | None  # this session's job, waiting, running or ended
    followed: Path | None  # the run folder shown live: the job's, or one picked / linked
    running: bool  # locks the form: the job waits or trains, or the followed run still trains
    me: Actor
    followed_owner: str | None  # the followed run's owner when it is not this session's job

    @property
    def queued(self) -> bool:
        return self.job is not None and self.job.queued

    @property
    def mine(self) -> bool:
        """Whether this visitor may stop what is shown: another visitor's run is watched read-only."""
        return self.job is not None or self.followed is None or self.me.may_control(self.followed_owner)

    def follow(self, run_dir: Path) -> None:
        """Watch `run_dir` from now on (a run training elsewhere, picked in the list)."""
        st.session_state.pop(JOB_KEY, None)
        st.session_state[FOLLOW_KEY] = run_dir

    def started(self, job: JobView) -> None:
        """Show `job` (just queued) from now on."""
        st.session_state[JOB_KEY] = job.id
        st.session_state.pop(FOLLOW_KEY, None)

    def stop(self) -> None:
        """Leave the queue, or ask the run shown to stop after its current step; only its owner or the lecturer
        may (the engine checks, and a refusal is said on the next draw)."""
        if self.job is not None:
            guarded(self.queue.cancel, self.job.id, self.me)
        elif self.followed is not None:
            guarded(stop_run, self.followed, self.me)


def guarded(action, *args) -> None:
    """Run a button's action; a refusal (not the owner, still running) is said on the next draw."""
    try:
        action(*args)
    except (RefusedError, OSError, RunError) as exc:
        st.session_state[REFUSED_KEY] = str(exc)


def load_session() -> TrainSession:
    """The queue, this session's job and the run it follows. The URL names the run this page followed
    (?run=...): reopening the tab, or a shared link, re-attaches to it."""
    queue, runs_dir = training_queue(), default_runs_dir()
    job = queue.view(st.session_state[JOB_KEY]) if JOB_KEY in st.session_state else None
    if job is None and FOLLOW_KEY not in st.session_state:
        linked_run = find_run(runs_dir.resolve(), st.query_params.get(RUN_PARAM))
        if linked_run is not None:
            st.session_state[FOLLOW_KEY] = linked_run
    followed: Path | None = job.run_dirs[0] if job is not None else st.session_state.get(FOLLOW_KEY)
    if job is None and followed is not None and not followed.is_dir():
        followed = None
    running = job.active if job is not None else (followed is not None and follower(followed).poll().running)
    owner = read_run(followed).owner if followed is not None and job is None else None
    return TrainSession(queue, runs_dir, job, followed, running, actor(), owner)
