"""Run folders with hostile contents, runs that survive faults (a SIGKILL mid-epoch), and honest endings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from resnet_core.data import DataBundle, ImageSet
from resnet_core.model import get_preset, load_checkpoint
from resnet_core.status import Status
from resnet_core.train import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    EpochEvent,
    Run,
    RunError,
    StepEvent,
    TrainerError,
    create_trainer,
    list_runs,
    load_metrics,
    load_run_model,
    metrics_csv,
    read_run,
)
from resnet_core.train.faults import friendly_failure
from resnet_core.train.liveness import HEARTBEAT_FILE, STALE_S
from tests.memory import MEMORY_BOUND_MB, run_measured
from tests.train.test_train import CLASSES, ROOT, TINY, bundle, fast, finished, tiny_trainer

STEP = StepEvent(step=1, epoch=1, train_loss=1.5, lr=0.05, samples_per_s=100.0, grad_norm=2.0, time=0.1)


def finished_run(tmp_path: Path, name: str) -> Path:
    run = Run.create(tmp_path, TINY, fast().to_dict(), {"kind": "colours"}, CLASSES, {}, name=name)
    run.log(STEP)
    run.save_model(tiny_trainer(fast()).model, CLASSES, {})
    run.finish(Status.FINISHED, "done", {"steps": 1, "epochs": 1, "val_acc": 0.5, "val_loss": 1.0})
    return run.path


def rewrite_config(path: Path, **changes) -> None:
    config = json.loads((path / CONFIG_FILE).read_text())
    (path / CONFIG_FILE).write_text(json.dumps({**config, **changes}))


# ---- run folders with wrong types anywhere in their JSON -----------------------------------------------------


@pytest.mark.parametrize("changes, listed, note", [
    ({"final": {"val_acc": "high"}}, Status.FINISHED, "final.val_acc"),
    ({"final": {"val_acc": 7, "val_loss": "low", "steps": -3, "epochs": [1]}}, Status.FINISHED, "final.epochs"),
    ({"final": "all good"}, Status.FINISHED, "final"),
    ({"classes": {"a": 1}}, Status.FINISHED, "classes"),
    ({"message": {"x": 1}, "created": 5, "arch": None, "preprocess": [1, 2]}, Status.FINISHED, "preprocess"),
    ({"checkpoint": {"epoch": "one"}}, Status.FINISHED, ""),
    ({"train": {"epochs": "many"}}, Status.FINISHED, "train.epochs"),
    ({"status": 5}, Status.DAMAGED, "unknown status 5"),
    ({"status": "damaged"}, Status.DAMAGED, "unknown status"),
    ({"model": "x"}, Status.DAMAGED, "model must be JSON objects"),
    ({"dataset": [1], "train": 3}, Status.DAMAGED, "train, dataset must be JSON objects"),
])
def test_wrong_types_in_config_json_give_a_partial_or_damaged_row_never_a_traceback(tmp_path, changes, listed,
                                                                                      note):
    path = finished_run(tmp_path, "odd")
    rewrite_config(path, **changes)
    (info,) = list_runs(tmp_path)
    assert info.status is listed and note in info.reason
    row = info.record()  # the Run history table
    assert row["val acc %"] is None or isinstance(row["val acc %"], float)
    assert all(isinstance(row[k], str) for k in ("run", "status", "model", "dataset", "created", "note"))
    assert info.epochs is None or isinstance(info.epochs, int)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "\xff\xfe", "null", '"text"', "{"],
                         ids=["nested-100k-deep", "not-utf8", "null", "a-string", "cut-off"])
def test_an_unreadable_config_json_is_damaged(tmp_path, text):
    path = finished_run(tmp_path, "odd")
    (path / CONFIG_FILE).write_text(text, encoding="latin-1")
    info = read_run(path)
    assert info.status is Status.DAMAGED and CONFIG_FILE in info.reason


def test_a_corrupt_metrics_line_is_skipped_by_the_csv_export(tmp_path):
    path = finished_run(tmp_path, "r")
    with open(path / METRICS_FILE, "a") as f:
        f.write("{garbage\n" + json.dumps({"type": "step", "step": 2, "epoch": 1, "train_loss": 1.0, "lr": 0.1,
                                           "samples_per_s": 1.0, "grad_norm": 1.0, "time": 0.2}) + "\n")
    with pytest.raises(RunError, match="line 2, is not valid JSON"):  # the charts say the file is damaged
        load_metrics(path)
    rows = metrics_csv(path).splitlines()
    assert rows[0].startswith("type,step") and [r.split(",")[1] for r in rows[1:]] == ["1", "2"]


def test_a_model_pt_that_is_not_a_checkpoint_is_a_run_error(tmp_path):
    path = finished_run(tmp_path, "r")
    (path / MODEL_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RunError, match="model.pt"):
        load_run_model(path)


@pytest.mark.slow
def test_listing_hostile_run_folders_stays_small_in_memory(tmp_path):
    big = finished_run(tmp_path, "big")
    (big / CONFIG_FILE).write_text('{"pad": "' + "x" * (20 * 1024**2) + '"}')  # past the 16 MB limit
    deep = finished_run(tmp_path, "deep")
    (deep / CONFIG_FILE).write_text("[" * 1_000_000)
    code = ("import sys; from resnet_core.train import list_runs; "
            "print(sorted((r.name, r.status.value) for r in list_runs(sys.argv[1])))")
    peak_mb, out = run_measured(code.replace("sys.argv[1]", repr(str(tmp_path))))
    assert out.strip() == "[('big', 'damaged'), ('deep', 'damaged')]"
    assert peak_mb < MEMORY_BOUND_MB, f"peak RSS {peak_mb:.0f} MB"


# ---- stale "running" runs: heartbeat, not the pid alone -------------------------------------------------------


def test_a_running_run_with_a_live_pid_but_a_stale_heartbeat_is_interrupted(tmp_path):
    run = Run.create(tmp_path, TINY, fast().to_dict(), {"kind": "colours"}, CLASSES, {}, name="r")
    run._heartbeat.stop()  # this process's pid stays alive: as after a restart that gave the pid to another
    assert read_run(run.path).status is Status.RUNNING  # beating a moment ago
    old = time.time() - STALE_S - 5
    os.utime(run.path / HEARTBEAT_FILE, (old, old))
    info = read_run(run.path)
    assert info.status is Status.INTERRUPTED and "heartbeat stopped" in info.reason, info.reason
    assert "cut off before its first epoch ended" in info.reason


def test_a_run_from_another_machine_is_followed_by_its_heartbeat(tmp_path):
    run = Run.create(tmp_path, TINY, fast().to_dict(), {"kind": "colours"}, CLASSES, {}, name="r")
    rewrite_config(run.path, host=socket.gethostname() + "-elsewhere", pid=2**22 + 12345)
    assert read_run(run.path).status is Status.RUNNING
    run._heartbeat.stop(remove=True)
    assert read_run(run.path).status is Status.INTERRUPTED


# ---- checkpoints at every epoch end --------------------------------------------------------------------------


@pytest.mark.slow
def test_every_epoch_end_is_checkpointed_and_recorded(tmp_path):
    trainer = create_trainer(tiny_trainer(fast()).model, bundle(), fast(epochs=2), runs_dir=tmp_path)
    finished(trainer)
    config = json.loads((trainer.run.path / CONFIG_FILE).read_text())
    epochs = trainer.snapshot().epochs
    assert config["checkpoint"]["epoch"] == 2 and config["checkpoint"]["val_acc"] == epochs[-1].val_acc
    assert load_checkpoint(trainer.run.path / MODEL_FILE).extra["epoch"] == 2
    assert not (trainer.run.path / HEARTBEAT_FILE).exists()  # the run ended: no heartbeat left behind
    assert load_metrics(trainer.run.path)[-1].status is Status.FINISHED  # the closing event is in the file


@pytest.mark.slow
def test_a_cli_run_killed_in_epoch_2_keeps_epoch_1_and_says_it_was_cut_off(tmp_path):
    model_file = tmp_path / "tiny.json"  # ResNet-8: one block per stage
    model_file.write_text(json.dumps(get_preset("resnet20").replace(stage_blocks=(1, 1, 1)).to_dict()))
    cmd = [sys.executable, "-m", "resnet_core.train", "--model-config", str(model_file), "--device", "cpu",
           "--n-train", "2400",
           "--n-val", "64", "--batch-size", "16", "--epochs", "5", "--runs-dir", str(tmp_path), "--name", "killed",
           "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    config_file = tmp_path / "killed" / CONFIG_FILE
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "epoch 1 did not end in time"
            try:
                mark = json.loads(config_file.read_text()).get("checkpoint")
            except (OSError, ValueError):
                mark = None
            if mark:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # during epoch 2 (150 steps each)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert mark["epoch"] == 1
    epoch1 = [e for e in load_metrics(tmp_path / "killed") if isinstance(e, EpochEvent)]
    assert [e.epoch for e in epoch1] == [1]  # killed before epoch 2 ended
    (info,) = list_runs(tmp_path)
    assert info.status is Status.INTERRUPTED and "cut off after epoch 1 of 5" in info.reason, info.reason
    assert info.val_acc == epoch1[0].val_acc and info.epochs == 1 and info.openable
    assert info.weights_note == "last epoch 1 of 5: the run interrupted"
    model, classes, _ = load_run_model(info.path)
    assert load_checkpoint(info.path / MODEL_FILE).extra["epoch"] == 1 and len(classes) == 10
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


# ---- honest endings -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_learning_rate_of_10_ends_did_not_learn_not_finished(tmp_path):
    trainer = create_trainer(tiny_trainer(fast()).model, bundle(), fast(lr=10.0, schedule="constant"),
                             runs_dir=tmp_path)
    finished(trainer)
    assert trainer.status is Status.DID_NOT_LEARN and trainer.status.bad, trainer.message
    assert "training loss rose" in trainer.message and "learning rate 10 is too high" in trainer.message
    (info,) = list_runs(tmp_path)
    assert info.status is Status.DID_NOT_LEARN and info.has_model and info.reason == trainer.message


@pytest.mark.slow
def test_labels_that_cannot_be_learned_end_near_chance_with_the_likely_cause():
    d = bundle()
    g = torch.Generator().manual_seed(5)
    noise = DataBundle(ImageSet(d.train.images, torch.randint(0, 4, (len(d.train.labels),), generator=g)),
                       ImageSet(d.val.images, torch.randint(0, 4, (len(d.val.labels),), generator=g)),
                       d.classes, d.mean, d.std, d.description)
    trainer = finished(tiny_trainer(fast(), data=noise))
    assert trainer.status is Status.DID_NOT_LEARN, trainer.message
    assert "near chance (25.0% for 4 classes)" in trainer.message and "too few steps (32)" in trainer.message


@pytest.mark.slow
def test_a_learning_run_still_finishes():
    trainer = finished(tiny_trainer(fast()))
    assert trainer.status is Status.FINISHED, trainer.message


@pytest.mark.slow
def test_batch_size_1_where_batchnorm_sees_one_value_is_refused_up_front():
    # An ImageNet stem on 32 px: the last stage's maps are 1x1, so BatchNorm needs two images per batch.
    cfg = get_preset("resnet18").replace(stage_blocks=(1, 1, 1, 1), stage_widths=(4, 4, 4, 4), stem_width=4,
                                         num_classes=4)
    from resnet_core.model import build_seeded

    data = DataBundle(ImageSet(torch.zeros(8, 3, 32, 32, dtype=torch.uint8), torch.arange(8) % 4),
                      ImageSet(torch.zeros(0, 3, 32, 32, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)),
                      list(CLASSES), (0.5,) * 3, (0.5,) * 3, {"kind": "colours"})
    with pytest.raises(TrainerError, match=r"batch size 1 cannot train this model: at layer4\.0\.bn\d the feature "
                                           r"map is 1x1"):
        create_trainer(build_seeded(cfg, 0, 4), data, fast(batch_size=1), save=False)
    finished(create_trainer(build_seeded(cfg, 0, 4), data, fast(batch_size=2, epochs=1), save=False))


def test_memory_errors_get_the_friendly_message():
    try:
        torch.empty(2**45)  # a real allocator failure: 128 TiB
    except RuntimeError as exc:
        cpu = friendly_failure(exc, torch.device("cpu"), 128, 224)
    assert "DefaultCPUAllocator" not in cpu
    assert cpu.startswith("out of memory on cpu with batch size 128, image size 224 (it tried to allocate 131072")
    assert "lower the batch size, the image size or the model's size" in cpu and "train on a GPU" in cpu
    gpu = friendly_failure(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "cuda:0", 64,
                           32)
    assert gpu.startswith("out of memory on cuda:0 with batch size 64") and "2.00 GiB" in gpu
    assert "train on the CPU" in gpu
