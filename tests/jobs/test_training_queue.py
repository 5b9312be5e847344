"""The server's training queue with real worker processes, the command a request becomes, following a run
folder as it is written, and the bounded pool of analysis threads."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from resnet_core.background import ANALYSIS_SLOTS, BackgroundJob
from resnet_core.data import DatasetSpec
from resnet_core.jobs.training_queue import JobEnd, TrainingQueue
from resnet_core.model import get_preset
from resnet_core.recipes import SHAPES_DATA, SHAPES_TRAIN
from resnet_core.status import Status
from resnet_core.train import (
    RunFollower,
    StatusEvent,
    StepEvent,
    TrainConfig,
    TrainRequest,
    event_to_dict,
    list_runs,
    read_run,
)
from resnet_core.train.cli import _parser, config_from_args, dataset_from_args
from resnet_core.train.launch import cli_flags

TINY = get_preset("resnet20").replace(stage_blocks=(1, 1), stage_widths=(4, 8), stem_width=4)
TINY_DATA = DatasetSpec(kind="shapes", n_train=128, n_val=32, image_size=16)


def tiny_request(name: str, **train) -> TrainRequest:
    config = TrainConfig(**{"epochs": 1, "batch_size": 32, "device": "cpu", **train})
    return TrainRequest(TINY, TINY_DATA, config, name)


def wait_for(condition, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def queue(tmp_path):
    q = TrainingQueue(tmp_path / "runs", slots=1, poll_s=0.1)
    yield q
    q.close()


# ---- the command a request becomes ---------------------------------------------------------------------------


@pytest.mark.parametrize("config, spec", [
    (SHAPES_TRAIN, SHAPES_DATA),
    (TrainConfig(epochs=2, batch_size=8, optimizer="adamw", lr=3e-4, schedule="step", warmup_steps=7, gamma=0.2,
                 augment_crop=False, augment_flip=False, bf16=False, channels_last=True, max_steps=11,
                 eval_batch_size=64, milestones=(0.3, 0.6, 0.9), label_smoothing=0.1, seed=5),
     DatasetSpec(kind="imagefolder", root="/data/x", n_train=100, n_val=10, image_size=48, val_fraction=0.3,
                 seed=2)),
])
def test_the_worker_command_reproduces_every_setting_of_the_request(config, spec, tmp_path):
    flags = cli_flags(TrainRequest(TINY, spec, config, "r"), tmp_path / "m.json")
    args = _parser().parse_args(flags)
    assert config_from_args(args) == config
    assert dataset_from_args(args) == spec
    assert args.model_config == tmp_path / "m.json"


# ---- the queue -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_one_slot_runs_jobs_one_after_another_and_says_where_each_waits(queue):
    first = queue.submit("first", [tiny_request("first", epochs=3)], estimate_s=30)
    second = queue.submit("second", [tiny_request("second")], estimate_s=10)
    assert first.status is Status.RUNNING
    waiting = queue.view(second.id)
    assert waiting.status is Status.QUEUED and waiting.position == 1
    assert 0 < waiting.wait_s <= 30  # the first job's estimate, less what it has already run
    wait_for(lambda: queue.view(second.id).status is not Status.QUEUED)
    assert queue.view(first.id).status is Status.FINISHED  # the second started only once the first ended
    wait_for(lambda: not queue.view(second.id).active)
    assert queue.view(second.id).status is Status.FINISHED
    assert sorted(r.name for r in list_runs(queue.runs_dir)) == ["first", "second"]
    assert all(r.status is Status.FINISHED and r.has_model for r in list_runs(queue.runs_dir))


@pytest.mark.slow
def test_finished_jobs_correct_the_estimates_of_the_jobs_in_line(queue):
    """A speed probe taken while the server was busy overestimates every training: once one job has run, the
    waits in line (and the estimates pages show) follow what trainings here really took."""
    assert queue.calibration("cpu") == 1.0  # nothing measured yet: estimates stand as they are
    first = queue.submit("first", [tiny_request("first")], estimate_s=400)  # takes a few seconds, not 400
    wait_for(lambda: not queue.view(first.id).active)
    assert queue.view(first.id).status is Status.FINISHED
    scale = queue.calibration("cpu")
    assert scale == 0.25  # measured/estimated is far below, held at the lower bound
    assert queue.calibration("cuda") == 1.0  # another device learns nothing from this one
    blocker = queue.submit("blocker", [tiny_request("blocker", epochs=500)], estimate_s=400)
    waiting = queue.submit("waiting", [tiny_request("waiting")], estimate_s=400)
    wait_s = queue.view(waiting.id).wait_s
    assert 0 < wait_s <= 400 * scale  # the job ahead is expected to take its corrected estimate, not 400 s
    queue.cancel(waiting.id)
    queue.cancel(blocker.id)
    wait_for(lambda: not queue.view(blocker.id).active, timeout=30)
    assert queue.calibration("cpu") == scale  # a stopped run says nothing about how long a whole run takes


@pytest.mark.slow
def test_a_waiting_job_can_be_cancelled_and_a_running_one_stops_with_its_weights(queue):
    running = queue.submit("long", [tiny_request("long", epochs=500)], estimate_s=600)
    waiting = queue.submit("never", [tiny_request("never")], estimate_s=10)
    queue.cancel(waiting.id)
    assert queue.view(waiting.id).status is Status.STOPPED
    assert queue.view(waiting.id).end is JobEnd.CANCELLED
    follower = RunFollower(running.run_dirs[0])
    wait_for(lambda: follower.poll().step >= 2)
    queue.cancel(running.id)
    wait_for(lambda: not queue.view(running.id).active, timeout=30)
    assert queue.view(running.id).status is Status.STOPPED
    info = read_run(running.run_dirs[0])
    assert info.status is Status.STOPPED and info.has_model
    assert not (queue.runs_dir / "never").exists()  # a cancelled job never started a worker


@pytest.mark.slow
def test_a_worker_that_cannot_start_reports_why(queue):
    bad = TrainRequest(TINY, DatasetSpec(kind="imagefolder", root="/no/such/folder"), TrainConfig(device="cpu"),
                       "bad")
    job = queue.submit("bad", [bad], estimate_s=5)
    wait_for(lambda: not queue.view(job.id).active)
    view = queue.view(job.id)
    assert view.status is Status.FAILED
    assert "/no/such/folder" in view.error  # the worker's own message, not a bare exit code


def test_run_names_are_unique_on_disk_and_in_line(queue):
    (queue.runs_dir / "taken").mkdir(parents=True)
    assert queue.unique_name("taken") == "taken-2"
    assert queue.unique_name("free") == "free"


# ---- following a run folder ----------------------------------------------------------------------------------


def test_a_follower_reads_only_whole_lines_and_picks_up_what_is_appended(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    config = {"model": {}, "train": {}, "dataset": {}, "status": "running", "pid": os.getpid(),
              "host": socket.gethostname()}  # this test is the process that "trains" it
    (run / "config.json").write_text(json.dumps(config))
    metrics = run / "metrics.jsonl"
    start = StatusEvent(Status.RUNNING, "training", step=0, time=0.0, total_steps=4)
    step = lambda k: StepEvent(step=k, epoch=1, train_loss=1.0 / k, lr=0.1, samples_per_s=100.0, grad_norm=1.0,
                               time=float(k))
    line = lambda e: json.dumps(event_to_dict(e)) + "\n"
    metrics.write_text(line(start) + line(step(1)) + line(step(2))[:20])  # the writer is mid-line
    follower = RunFollower(run)
    snap = follower.poll()
    assert [e.step for e in snap.steps] == [1] and snap.total_steps == 4 and snap.progress == 0.25
    with open(metrics, "a") as f:
        f.write(line(step(2))[20:] + line(step(3)))
    snap = follower.poll()
    assert [e.step for e in snap.steps] == [1, 2, 3] and snap.eta_s == pytest.approx(1.0)
    assert snap.status is Status.RUNNING
    # its process is gone without a final status: the run reads as interrupted, not running forever
    (run / "config.json").write_text(json.dumps({**config, "pid": 2**22 + 12345}))
    assert follower.poll().status is Status.INTERRUPTED


# ---- analyses in the server: a bounded pool ----------------------------------------------------------------


def test_analyses_beyond_the_pool_wait_for_a_free_slot():
    release = threading.Event()

    def work(progress, stop):
        progress(1, 1, "working")
        release.wait(10)
        return "done"

    jobs = [BackgroundJob(work).start() for _ in range(ANALYSIS_SLOTS + 1)]
    try:
        wait_for(lambda: sum(j.snapshot().message == "working" for j in jobs) == ANALYSIS_SLOTS, timeout=10)
        time.sleep(0.3)
        waiting = [j for j in jobs if j.snapshot().message != "working"]
        assert len(waiting) == 1 and "waiting for its turn" in waiting[0].snapshot().message
    finally:
        release.set()
    assert all(j.join(10) for j in jobs)
    assert [j.snapshot().result for j in jobs] == ["done"] * len(jobs)


def test_spool_files_stay_out_of_the_run_history(queue, tmp_path):
    queue.spool.mkdir(parents=True)
    (queue.spool / "x.log").write_text("hello")
    assert list_runs(queue.runs_dir) == []
    assert Path(queue.runs_dir).is_dir()


def test_many_queues_in_one_process_share_one_memory_release_per_period():
    """Every queue's housekeeping hands freed memory back (a full gc.collect and malloc_trim); a process with one
    queue per runs folder (this test suite holds dozens) must pay for one per period, not one per queue: 46 queues
    each collecting every 15 s made a busy loop in the same process 17x slower while they did."""
    from resnet_core.serving.memory import release_freed_memory

    release_freed_memory()  # unconditional: it may run
    assert release_freed_memory(at_most_every_s=3600) is False  # another caller did it a moment ago
