"""Training under torchrun (DistributedDataParallel, gloo on the CPU) and stopping a run through its folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from resnet_core.data import DataBundle, ImageSet
from resnet_core.model import build_seeded, get_preset
from resnet_core.status import Status
from resnet_core.train import StepEvent, TrainConfig, Trainer, TrainerError, create_trainer, list_runs, load_run_model
from resnet_core.train.cli import main
from resnet_core.train.distributed import DistContext, env_ranks, start
from resnet_core.train.runs import request_stop

ROOT = Path(__file__).resolve().parents[2]
# No BatchNorm: with it each rank would normalise its half-batch alone and the weights would differ by design.
TINY = get_preset("resnet20").replace(stage_blocks=(1, 1), stage_widths=(4, 8), stem_width=4, norm="none")
# Augmentation stays on: every rank augments the whole global batch with the same seeds, then takes its slice.
FLAGS = ["--dataset", "shapes", "--n-train", "256", "--n-val", "64", "--image-size", "16", "--batch-size", "32",
         "--device", "cpu", "--no-progress"]


def _run(launcher: list[str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *launcher, "-m", "resnet_core.train", *args], cwd=cwd, env=env,
                          check=False, capture_output=True, text=True, timeout=300)


def wait_for_a_step(proc: subprocess.Popen, run_dir: Path, timeout: float = 120) -> None:
    """Until the run in `run_dir` has logged a training step (its process still alive)."""
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + timeout
    while not (metrics.is_file() and '"type": "step"' in metrics.read_text()):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run did not start training in time"
        time.sleep(0.05)


TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@pytest.mark.slow
def test_two_gloo_ranks_train_exactly_the_weights_of_one_process(tmp_path):
    model_json = tmp_path / "tiny.json"
    model_json.write_text(TINY.to_json())
    common = [*FLAGS, "--model-config", str(model_json), "--max-steps", "3", "--runs-dir", str(tmp_path / "runs")]
    ddp = _run(TORCHRUN, *common, "--name", "ddp", cwd=tmp_path)
    assert ddp.returncode == 0, ddp.stderr
    single = _run([], *common, "--name", "single", cwd=tmp_path)
    assert single.returncode == 0, single.stderr

    # Rank 0 alone wrote a folder and printed; the other rank stayed quiet.
    runs = {info.name: info for info in list_runs(tmp_path / "runs")}
    assert set(runs) == {"ddp", "single"}
    assert ddp.stdout.count("final validation accuracy") == 1 and ddp.stderr.count("run folder:") == 1
    for name, world in (("ddp", 2), ("single", 1)):
        assert runs[name].status is Status.FINISHED and runs[name].steps == 3
        assert json.loads((runs[name].path / "config.json").read_text())["world_size"] == world
    # model.pt holds the bare model (no "module." prefix): a single process loads it as is.
    a, b = (load_run_model(runs[name].path)[0].state_dict() for name in ("ddp", "single"))
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst < 1e-5, f"the weights differ by up to {worst:g}"
    # The losses logged are the global batch's means, so the two runs log the same curve.
    curves = [[e["train_loss"] for e in map(json.loads, (runs[n].path / "metrics.jsonl").read_text().splitlines())
               if e["type"] == "step"] for n in ("ddp", "single")]
    assert curves[0] == pytest.approx(curves[1], abs=1e-5) and len(curves[0]) == 3


@pytest.mark.slow
def test_a_stop_file_stops_every_rank_at_the_same_step_with_the_weights_saved(tmp_path):
    model_json = tmp_path / "tiny.json"
    model_json.write_text(TINY.to_json())
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, *TORCHRUN, "-m", "resnet_core.train", *FLAGS, "--model-config", str(model_json),
            "--epochs", "1000", "--runs-dir", str(runs), "--name", "long"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_a_step(proc, runs / "long")
        request_stop(runs / "long")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err  # both ranks ended cleanly: none was left waiting in a collective
    (info,) = list_runs(runs)
    assert info.status is Status.STOPPED and info.has_model, info.reason
    assert info.steps < 100 and f"stopped at step {info.steps}" in info.reason
    load_run_model(info.path)


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_saves_a_stopped_run(tmp_path):
    # A Ctrl-C that interrupts Thread.join leaves (on Python 3.11) the thread marked finished while it still runs;
    # the command line must still wait for the trainer to save its model and final status.
    model_json = tmp_path / "tiny.json"
    model_json.write_text(TINY.to_json())
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # `python -m resnet_core.train` with Ctrl-C turned back into KeyboardInterrupt first: a shell that runs the
    # tests in the background starts them with SIGINT ignored, and Python then leaves it ignored.
    launch = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
              "runpy.run_module('resnet_core.train', run_name='__main__', alter_sys=True)")
    argv = [sys.executable, "-c", launch, *FLAGS, "--model-config", str(model_json), "--epochs", "1000",
            "--runs-dir", str(runs), "--name", "ctrl-c"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_a_step(proc, runs / "ctrl-c")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    (info,) = list_runs(runs)
    assert info.status is Status.STOPPED and info.has_model, info.reason


def test_a_stop_file_stops_a_single_process_run_within_one_step(tmp_path):
    images = ImageSet(torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8), torch.arange(64) % 2)
    data = DataBundle(images, images, ["a", "b"], (0.5,) * 3, (0.25,) * 3, {"kind": "test"})
    config = TrainConfig(epochs=1000, batch_size=16, lr=0.05, device="cpu")
    trainer = create_trainer(build_seeded(TINY, 0, 2), data, config, runs_dir=tmp_path)
    trainer.start()
    deadline = time.monotonic() + 60
    while trainer.step < 2:
        assert trainer.is_running and time.monotonic() < deadline, trainer.message
        time.sleep(0.01)
    at_stop = trainer.step
    request_stop(trainer.run.path)
    assert trainer.join(30)
    snap = trainer.snapshot()
    assert snap.status is Status.STOPPED and at_stop <= snap.step <= at_stop + 1, snap.message
    assert [e.step for e in snap.events if isinstance(e, StepEvent)] == list(range(1, snap.step + 1))
    (info,) = list_runs(tmp_path)
    assert info.status is Status.STOPPED and info.has_model and info.steps == snap.step
    assert json.loads((info.path / "config.json").read_text())["world_size"] == 1


def test_each_rank_needs_an_image_of_every_batch():
    images = ImageSet(torch.zeros(8, 3, 8, 8, dtype=torch.uint8), torch.arange(8) % 2)
    data = DataBundle(images, images, ["a", "b"], (0.5,) * 3, (0.25,) * 3, {"kind": "test"})
    model = build_seeded(TINY, 0, 2)
    with pytest.raises(TrainerError, match="batch size 2 is smaller than the 4 processes"):
        Trainer(model, data, TrainConfig(batch_size=2, device="cpu"), dist=DistContext(4, 0, 0))
    Trainer(model, data, TrainConfig(batch_size=4, device="cpu"), dist=DistContext(4, 3, 3))  # one image each


def test_without_torchrun_no_process_group_is_started(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert env_ranks() == (1, 0, 0)
    assert start(torch.device("cpu")) is None
    assert not torch.distributed.is_initialized()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(TrainerError, match="inconsistent torchrun environment"):
        env_ranks()


def test_sync_bn_on_the_cpu_is_refused_before_any_data_is_loaded(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--sync-bn", "--device", "cpu", "--runs-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--sync-bn needs CUDA GPUs" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
