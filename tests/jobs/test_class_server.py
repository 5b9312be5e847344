"""A class on one server: owners, per-visitor shares, the disk budget, a restart that keeps the queue, visitors
who leave, fair analysis slots, and a disk that fills mid-run. Real worker processes and run folders."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from resnet_core.background import BackgroundJob
from resnet_core.jobs.training_queue import JobEnd, TrainingQueue
from resnet_core.serving import (
    Actor,
    ClassLimits,
    NotOwnerError,
    Refusal,
    RefusedError,
    class_demo_run,
    make_room,
    owner_of,
    promote,
    remove_run,
    stop_run,
)
from resnet_core.serving.disk import DiskBudgetError
from resnet_core.status import Status
from resnet_core.train import RunFollower, read_run
from tests.jobs.test_training_queue import tiny_request, wait_for

A, B = Actor(owner_of("a" * 32)), Actor(owner_of("b" * 32))
LECTURER = Actor(owner_of("l" * 32), lecturer=True)
SERVED = ClassLimits(served=True)


def as_if_running(q: TrainingQueue, job_id: str) -> None:
    """Mark a job started, with a real process standing in for its worker (the bookkeeping is what is tested)."""
    job = q._jobs[job_id]
    job.status, job.started = Status.RUNNING, time.time()
    job.procs = [subprocess.Popen(["sleep", "120"])]


def stop_stand_ins(q: TrainingQueue) -> None:
    for job in q._jobs.values():
        for proc in job.procs:
            proc.kill()
            proc.wait()


@pytest.fixture
def queue(tmp_path):
    q = TrainingQueue(tmp_path / "runs", slots=1, poll_s=0.1)
    yield q
    q.close()


def test_visitor_ids_hash_to_owners_that_never_contain_the_id():
    owner = owner_of("x" * 32)
    assert owner.startswith("v-") and "x" * 8 not in owner and owner == owner_of("x" * 32)
    assert owner != owner_of("y" * 32)
    assert A.may_control(A.owner) and not A.may_control(B.owner) and not A.may_control(None)
    assert LECTURER.may_control(A.owner) and LECTURER.may_control("terminal")


@pytest.mark.slow
def test_only_the_owner_or_the_lecturer_stops_cancels_or_removes(queue):
    running = queue.submit("a's run", [tiny_request("a-run", epochs=500)], 600, actor=A, limits=SERVED)
    waiting = queue.submit("a's next", [tiny_request("a-next")], 10, actor=A, limits=SERVED)
    with pytest.raises(NotOwnerError):
        queue.cancel(waiting.id, B)
    assert queue.view(waiting.id).queued  # B's click changed nothing
    follower = RunFollower(running.run_dirs[0])
    wait_for(lambda: follower.poll().step >= 2)
    assert read_run(running.run_dirs[0]).owner == A.owner  # recorded in config.json by the worker
    with pytest.raises(NotOwnerError):
        stop_run(running.run_dirs[0], B)
    with pytest.raises(NotOwnerError):
        queue.cancel(running.id, B)
    time.sleep(1.0)
    assert follower.poll().running and not (running.run_dirs[0] / "stop").exists()
    queue.cancel(waiting.id, A)
    assert queue.view(waiting.id).end is JobEnd.CANCELLED
    stop_run(running.run_dirs[0], LECTURER)  # the lecturer can
    wait_for(lambda: not queue.view(running.id).active, timeout=30)
    assert read_run(running.run_dirs[0]).status is Status.STOPPED
    with pytest.raises(NotOwnerError):
        remove_run(running.run_dirs[0], B)
    remove_run(running.run_dirs[0], A)
    assert not running.run_dirs[0].exists()


def test_one_visitor_gets_one_running_and_one_waiting_and_a_reason_for_the_rest(tmp_path):
    q = TrainingQueue(tmp_path / "runs", slots=1, poll_s=3600)  # housekeeping asleep: nothing starts by itself
    try:
        q._closed = True  # submit must not launch workers here: this checks the bookkeeping alone
        first = q.submit("1", [tiny_request("one")], 30, actor=A, limits=SERVED)
        as_if_running(q, first.id)
        q.submit("2", [tiny_request("two")], 30, actor=A, limits=SERVED)
        for name in ("three", "four", "five"):  # five tabs pressing Start
            with pytest.raises(RefusedError) as refused:
                q.submit(name, [tiny_request(name)], 30, actor=A, limits=SERVED)
            assert refused.value.kind is Refusal.QUEUED_LIMIT and "1 running, 1 waiting" in str(refused.value)
        assert q.refusal(A, SERVED, 30, "cpu") is not None and q.refusal(B, SERVED, 30, "cpu") is None
        q.submit("b", [tiny_request("b")], 30, actor=B, limits=SERVED)  # another visitor is not affected
        q.submit("l", [tiny_request("l")], 30, actor=LECTURER, limits=SERVED)  # the lecturer is exempt
        assert len([j for j in q.jobs() if j.owner == A.owner]) == 2
        # Outside served mode (one person's streamlit run) nothing is capped.
        q.submit("free", [tiny_request("free")], 30, actor=A, limits=ClassLimits(served=False))
    finally:
        q.close(stop_running=False)
        stop_stand_ins(q)


def test_a_542_hour_training_is_refused_before_it_queues(queue):
    with pytest.raises(RefusedError) as refused:
        queue.submit("huge", [tiny_request("huge")], 542.6 * 3600, actor=A, limits=SERVED)
    assert refused.value.kind is Refusal.TOO_LONG
    assert "about 32556 min here" in str(refused.value) and "cap of 15 min" in str(refused.value)
    assert queue.jobs() == [] and not (queue.runs_dir / "huge").exists()


def test_the_wait_in_line_is_part_of_the_estimate(tmp_path):
    q = TrainingQueue(tmp_path / "runs", slots=1, poll_s=3600)
    try:
        q._closed = True
        assert q.wait_for_new("cpu") == 0
        first = q.submit("1", [tiny_request("one")], 100, actor=A)
        as_if_running(q, first.id)
        q.submit("2", [tiny_request("two")], 200, actor=B)
        assert 280 <= q.wait_for_new("cpu") <= 300  # what is left of the running one, then the waiting one
    finally:
        q.close(stop_running=False)
        stop_stand_ins(q)


def test_a_visitor_who_left_loses_their_place_after_the_grace_period(tmp_path):
    q = TrainingQueue(tmp_path / "runs", slots=1, poll_s=3600)
    try:
        q._closed = True
        job = q.submit("x", [tiny_request("x")], 30, actor=A, limits=SERVED)
        stays = q.submit("y", [tiny_request("y")], 30, actor=B, limits=SERVED)
        now = time.time()
        q.touch(B.owner)
        assert q.drop_absent(SERVED, now=now + 10) == []
        assert q.drop_absent(ClassLimits(served=False), now=now + 1000) == []  # one person's app: never
        q.touch(B.owner)
        q._seen[B.owner] = now + 1000
        assert q.drop_absent(SERVED, now=now + SERVED.leave_grace_s + 5) == [job.id]
        assert q.view(job.id).end is JobEnd.LEFT and q.view(stays.id).queued
    finally:
        q.close(stop_running=False)


def _run_folder(runs: Path, name: str, owner: str, status: str = "finished", size: int = 1000,
                created: str = "2026-01-01T00:00:00") -> Path:
    path = runs / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({
        "model": {}, "train": {}, "dataset": {"kind": "shapes"}, "status": status, "owner": owner,
        "created": created, "pid": 1, "host": "elsewhere"}))
    (path / "metrics.jsonl").write_text("")
    (path / "model.pt").write_bytes(b"\0" * size)
    return path


def test_the_disk_budget_prunes_the_oldest_visitor_runs_and_never_the_protected_ones(tmp_path):
    runs = tmp_path / "runs"
    _run_folder(runs, "old-visitor", A.owner, size=40_000, created="2026-01-01T00:00:00")
    _run_folder(runs, "terminal-run", "terminal", size=40_000, created="2026-01-01T00:00:01")
    _run_folder(runs, "promoted", B.owner, size=40_000, created="2026-01-01T00:00:02")
    _run_folder(runs, "newer-visitor", B.owner, size=40_000, created="2026-01-02T00:00:00")
    pruned = make_room(runs, need=50_000, budget=200_000, prune=True, protected=("promoted",))
    assert pruned == ["old-visitor"]
    assert {p.name for p in runs.iterdir()} == {"terminal-run", "promoted", "newer-visitor"}
    with pytest.raises(DiskBudgetError) as refused:  # not enough even after pruning every visitor run
        make_room(runs, need=10**6, budget=150_000, prune=True, protected=("promoted",))
    assert refused.value.kind is Refusal.DISK_BUDGET and "budget" in str(refused.value)
    assert (runs / "terminal-run").exists() and (runs / "promoted").exists()
    with pytest.raises(DiskBudgetError):  # one person's app: refused with the reason, nothing deleted
        make_room(runs, need=10**6, budget=150_000, prune=False)


def test_a_full_runs_folder_refuses_a_training_before_it_queues(queue):
    limits = ClassLimits(served=True, runs_budget_bytes=16 * 1024**2)
    _run_folder(queue.runs_dir, "mine", "terminal", size=17 * 1024**2)
    with pytest.raises(RefusedError) as refused:
        queue.submit("x", [tiny_request("x")], 30, actor=A, limits=limits)
    assert refused.value.kind is Refusal.DISK_BUDGET and queue.jobs() == []


def test_only_the_lecturer_promotes_a_finished_run_to_be_the_class_demo(tmp_path):
    runs = tmp_path / "runs"
    _run_folder(runs, "good", A.owner)
    _run_folder(runs, "stopped", A.owner, status="stopped")
    with pytest.raises(RefusedError):
        promote(runs, "good", A)
    with pytest.raises(RefusedError):
        promote(runs, "stopped", LECTURER)  # a stopped run is never anyone's default
    promote(runs, "good", LECTURER)
    assert class_demo_run(runs).name == "good"
    with pytest.raises(RefusedError):
        remove_run(runs / "good", A, protected=("good",))


@pytest.mark.slow
def test_a_restart_keeps_the_line_and_reattaches_the_running_worker(tmp_path):
    """A server (its own process) with one running and two waiting jobs is killed with SIGKILL; the next
    server re-attaches the running worker (it counts against the one slot) and starts the waiting ones in order."""
    runs = tmp_path / "runs"
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from resnet_core.jobs.training_queue import TrainingQueue
from tests.jobs.test_training_queue import tiny_request
from tests.jobs.test_class_server import A
q = TrainingQueue({str(runs)!r}, slots=1, poll_s=0.1)
q.submit("long", [tiny_request("long", epochs=3, batch_size=16)], 60, actor=A)
q.submit("second", [tiny_request("second")], 10, actor=A)
q.submit("third", [tiny_request("third")], 10, actor=A)
print("ready", flush=True)
time.sleep(600)
"""
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        wait_for(lambda: RunFollower(runs / "long").poll().step >= 1, timeout=60)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    assert not (runs / "second").exists()
    q = TrainingQueue(runs, slots=1, poll_s=0.1)
    try:
        jobs = q.jobs()
        assert [j.label for j in jobs] == ["long", "second", "third"]
        assert jobs[0].status is Status.RUNNING and jobs[0].end is JobEnd.STARTED_BEFORE_RESTART
        assert [j.position for j in jobs[1:]] == [1, 2] and all(j.owner == A.owner for j in jobs)
        time.sleep(1.0)
        assert not (runs / "second").exists()  # the adopted worker holds the one slot
        wait_for(lambda: not q.view(jobs[2].id).active, timeout=180)
        # Each ran to its end (a tiny net may end "did not learn"): none interrupted, none failed.
        assert all(read_run(runs / n).status.kept_weights for n in ("long", "second", "third"))
        assert read_run(runs / "second").created <= read_run(runs / "third").created
    finally:
        q.close()


def test_analyses_share_their_slots_fairly(monkeypatch):
    """A long sweep gives way to another visitor's short one at its next progress report."""
    def long(progress, stop):
        for i in range(60):
            if stop.is_set():
                return i
            time.sleep(0.05)
            progress(i, 60, "long")
        return "long"

    def short(progress, stop):
        progress(0, 1, "short")
        return "short"

    hog = BackgroundJob(long, "sweep", owner="hog").start()
    wait_for(lambda: hog.snapshot().done > 0, timeout=10)
    started = time.monotonic()
    quick = BackgroundJob(short, "sweep", owner="other").start()
    wait_for(lambda: not quick.snapshot().running, timeout=10)
    assert quick.snapshot().result == "short" and time.monotonic() - started < 2.5
    assert hog.snapshot().running  # still going, after its turn
    hog.stop()
    hog.join(5)


def test_a_disk_that_fills_mid_run_fails_the_run_as_disk_full_with_its_checkpoint_and_config_intact(tmp_path):
    """ENOSPC injected into the run folder's writes after the first epoch's checkpoint: the run ends "failed: disk
    full", config.json readable and saying so, model.pt the first epoch's (loadable)."""
    import torch

    from resnet_core.data import load_dataset
    from resnet_core.model import build_model
    from resnet_core.train import TrainConfig, load_run_model
    from resnet_core.train.runs import Run
    from resnet_core.train.trainer import create_trainer
    from tests.jobs.test_training_queue import TINY, TINY_DATA

    torch.manual_seed(0)
    data = load_dataset(TINY_DATA)
    model = build_model(TINY.replace(num_classes=len(data.classes)))
    trainer = create_trainer(model, data, TrainConfig(epochs=3, batch_size=32, device="cpu"), runs_dir=tmp_path)
    run: Run = trainer.run
    real_log, full = Run.log, threading.Event()

    def log(self, event):
        if getattr(event, "epoch", None) == 1 and type(event).__name__ == "EpochEvent":
            full.set()  # the disk fills just after epoch 1's checkpoint
        if full.is_set() and type(event).__name__ == "StepEvent":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_log(self, event)

    run.log = log.__get__(run)
    trainer.start()
    trainer.join(120)
    info = read_run(run.path)
    assert info.status is Status.FAILED and info.reason.startswith("disk full")
    assert info.saved_epoch == 1 and info.has_model
    model, classes, _ = load_run_model(run.path)
    assert classes == list(data.classes)
    assert not (run.path / ".reserve").exists()


def test_an_analysis_over_the_cap_is_refused_before_it_starts_in_served_mode_only():
    from resnet_core.serving import check_analysis

    with pytest.raises(RefusedError) as refused:
        check_analysis(13 * 60, SERVED)  # the 1,000-network sweep
    assert refused.value.kind is Refusal.TOO_LONG and "cap of 60 s" in str(refused.value)
    check_analysis(3, SERVED)  # the default sweep
    check_analysis(13 * 60, SERVED, lecturer=True)
    check_analysis(13 * 60, ClassLimits(served=False))


def test_the_lecturers_limits_are_saved_for_every_session_and_kept_in_range(tmp_path, monkeypatch):
    from resnet_core.serving import load_limits, save_limits

    monkeypatch.setenv("RESNET_EXPLORER_LECTURER_TOKEN", "t")
    monkeypatch.setenv("RESNET_EXPLORER_TRAINING_CAP_MIN", "20")
    limits = load_limits(tmp_path)
    assert limits.served and limits.training_cap_s == 20 * 60 and limits.max_running == 1
    save_limits(tmp_path, ClassLimits(served=True, max_queued=3, training_cap_s=-5, runs_budget_bytes=10**12))
    again = load_limits(tmp_path)
    assert again.max_queued == 3 and again.training_cap_s == 10.0 and again.runs_budget_bytes == 10**12


def test_the_readme_names_every_class_limit_with_its_setting_and_default():
    from resnet_core.serving import LIMITS_ENV

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Serving a class: who may do what"):]
    for field, (env, _unit, _factor) in LIMITS_ENV.items():
        assert env in section, f"README's 'Serving a class' section does not name {env} ({field})"
    for _what, value, env in ClassLimits().describe():
        row = next(line for line in section.splitlines() if env in line)
        assert value.split()[0] in row, f"README gives another default for {env} than {value}"
    assert "RESNET_EXPLORER_LECTURER_TOKEN" in section


def test_without_the_class_board_a_visitor_is_shown_only_their_own_runs(monkeypatch, tmp_path):
    from resnet_core.serving import load_limits

    monkeypatch.setenv("RESNET_EXPLORER_SERVED", "1")
    monkeypatch.setenv("RESNET_EXPLORER_CLASS_BOARD", "0")
    limits = load_limits(tmp_path)
    assert not limits.visible(B.owner, A.owner, lecturer=False) and limits.visible(A.owner, A.owner, False)
    assert limits.visible(B.owner, A.owner, lecturer=True)
    assert ClassLimits(served=True).visible(B.owner, A.owner, False)  # the default: the class's board
