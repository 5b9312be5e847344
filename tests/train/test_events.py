"""The Trainer's typed events and the one Status type, through real run folders on disk (CPU, no mocks)."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import pytest

from resnet_core.model import build_seeded, save_checkpoint
from resnet_core.status import Status
from resnet_core.train import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    EpochEvent,
    Run,
    RunError,
    StatusEvent,
    StepEvent,
    create_trainer,
    event_from_dict,
    event_to_dict,
    list_runs,
    load_metrics,
    load_run_model,
    metrics_csv,
    read_run,
)
from tests.train.test_train import CLASSES, TINY, bundle, fast

STEP = StepEvent(step=1, epoch=1, train_loss=1.375, lr=0.05, samples_per_s=812.5, grad_norm=2.25, time=0.125)
EPOCH = EpochEvent(epoch=1, step=16, train_loss=0.9, train_acc=0.6, val_loss=0.7, val_acc=0.75, time=1.5)
EPOCH_NO_VAL = EpochEvent(epoch=2, step=32, train_loss=0.5, train_acc=0.8, time=3.0)
STARTED = StatusEvent(Status.RUNNING, "training on cpu", step=0, time=0.0, device="cpu", total_steps=32,
                      steps_per_epoch=16, batch_size=32)
ENDED = StatusEvent(Status.FINISHED, "finished 32 steps (2 epochs)", step=32, time=3.5)
ALL = [STARTED, STEP, EPOCH, EPOCH_NO_VAL, ENDED]

# The JSON objects the Trainer wrote before its events were typed (same keys, same "type" names).
OLD_LINES = [
    {"type": "status", "status": "running", "time": 0.0, "step": 0, "message": "training on cpu",
     "device": "cpu", "total_steps": 32, "steps_per_epoch": 16, "batch_size": 32},
    {"type": "step", "step": 1, "epoch": 1, "train_loss": 1.375, "lr": 0.05, "samples_per_s": 812.5,
     "grad_norm": 2.25, "time": 0.125},
    {"type": "epoch", "epoch": 1, "step": 16, "train_loss": 0.9, "train_acc": 0.6, "val_loss": 0.7,
     "val_acc": 0.75, "time": 1.5},
    {"type": "epoch", "epoch": 2, "step": 32, "train_loss": 0.5, "train_acc": 0.8, "time": 3.0},
    {"type": "status", "status": "finished", "message": "finished 32 steps (2 epochs)", "step": 32, "time": 3.5},
]


def new_run(tmp_path: Path, name: str = "run") -> Run:
    return Run.create(tmp_path, TINY, fast().to_dict(), {"kind": "colours"}, CLASSES, {}, name=name)


# ---- round trips through a run folder ---------------------------------------------------------------


def test_each_event_type_round_trips_through_a_run_folder(tmp_path):
    run = new_run(tmp_path)
    for event in ALL:
        run.log(event)
    run.finish(Status.DIVERGED, "no model needed for this check")
    loaded = load_metrics(run.path)
    assert loaded == ALL
    assert [type(e) for e in loaded] == [StatusEvent, StepEvent, EpochEvent, EpochEvent, StatusEvent]
    assert loaded[0].status is Status.RUNNING and loaded[-1].status is Status.FINISHED
    # On disk: exactly the keys the Trainer always wrote, a val-less epoch without val keys.
    lines = [json.loads(line) for line in (run.path / METRICS_FILE).read_text().splitlines()]
    assert lines == OLD_LINES
    assert [list(line) for line in lines][1:] == [list(line) for line in OLD_LINES][1:]  # same key order too


def test_a_nan_training_loss_is_kept_not_rejected(tmp_path):
    run = new_run(tmp_path)
    run.log(StepEvent(step=3, epoch=1, train_loss=math.nan, lr=0.1, samples_per_s=10.0, grad_norm=math.inf,
                      time=0.5))
    run.finish(Status.DIVERGED, "diverged at step 3")
    (event,) = load_metrics(run.path)
    assert isinstance(event, StepEvent) and event.step == 3
    assert math.isnan(event.train_loss) and math.isinf(event.grad_norm)


def test_a_real_trainer_writes_typed_events_that_read_back_equal(tmp_path):
    trainer = create_trainer(build_seeded(TINY, 0, 4), bundle(256, 32), fast(epochs=1), runs_dir=tmp_path)
    trainer.start()
    assert trainer.join(120)
    snap = trainer.snapshot()
    assert snap.status is Status.FINISHED and trainer.status is Status.FINISHED, snap.message
    loaded = load_metrics(trainer.run.path)
    assert loaded == snap.events  # the closing status event too: written before metrics.jsonl closes
    keys = {"step": set(OLD_LINES[1]), "epoch": set(OLD_LINES[2]), "status": set(OLD_LINES[0])}
    lines = [json.loads(line) for line in (trainer.run.path / METRICS_FILE).read_text().splitlines()]
    for obj in lines[:-1]:
        assert set(obj) == keys[obj["type"]]
    assert lines[-1] == {**OLD_LINES[4], "message": snap.message, "step": 8, "time": lines[-1]["time"]}
    assert metrics_csv(trainer.run.path).count("\n") == 1 + len(loaded)


# ---- outside input ------------------------------------------------------------------------------------


def test_damaged_metrics_lines_with_wrong_types_are_skipped(tmp_path):
    run = new_run(tmp_path)
    run.log(STEP)
    run.finish(Status.FAILED, "failed")
    bad = [
        {**OLD_LINES[1], "step": "2"},  # a number as text
        {**OLD_LINES[1], "step": 2.0},  # a float where an int belongs
        {**OLD_LINES[1], "epoch": True},  # a bool is no int
        {**OLD_LINES[1], "lr": None},
        {**OLD_LINES[1], "lr": math.nan},  # only losses and gradient norms may be NaN
        {k: v for k, v in OLD_LINES[1].items() if k != "grad_norm"},  # a field missing
        {**OLD_LINES[2], "val_acc": "75%"},
        {**OLD_LINES[4], "status": "exploded"},  # no such status
        {**OLD_LINES[4], "status": ["finished"]},
        {**OLD_LINES[4], "message": 42},
        {**OLD_LINES[0], "device": 0},
        {"type": "histogram", "step": 1},  # an unknown type
        {"step": 1, "train_loss": 0.5},  # no type
        [1, 2, 3], "text", 7, None,  # valid JSON, no object
    ]
    with open(run.path / METRICS_FILE, "a", encoding="utf-8") as f:
        for obj in bad:
            f.write(json.dumps(obj) + "\n")
        f.write(json.dumps(OLD_LINES[2]) + "\n")  # a good line after the bad ones still counts
        f.write('{"type": "step", "step": 9, "ep')  # and a writer cut off mid-line
    assert load_metrics(run.path) == [STEP, EPOCH]
    assert metrics_csv(run.path).splitlines()[1:] == ["step,1,1,1.375,0.05,812.5,2.25,,,,,,0.125",
                                                      "epoch,16,1,0.9,,,,0.7,0.75,0.6,,,1.5"]


def test_a_line_that_is_not_json_in_the_middle_still_says_the_file_is_damaged(tmp_path):
    run = new_run(tmp_path)
    run.finish(Status.FAILED, "failed")
    (run.path / METRICS_FILE).write_text("{oops\n" + json.dumps(OLD_LINES[1]) + "\n")
    with pytest.raises(RunError, match="line 1, is not valid JSON"):
        load_metrics(run.path)


@pytest.mark.parametrize("value", [
    None, 3, "step", [], {}, {"type": None}, {"type": ["step"]}, {"type": {"a": 1}},
    {"type": "status", "status": {"x": 1}, "message": "", "step": 0, "time": 0.0},
    {"type": "epoch", "epoch": 1, "step": 1, "train_loss": 1e400, "train_acc": 1e400, "time": 0},
    {"type": "step", "step": 10**30, "epoch": 1, "train_loss": 1, "lr": 1, "samples_per_s": 1, "grad_norm": 1,
     "time": float("inf")},
])
def test_event_from_dict_never_raises(value):
    assert event_from_dict(value) is None


def test_event_from_dict_accepts_ints_for_floats_and_gives_floats():
    event = event_from_dict({**OLD_LINES[1], "train_loss": 2, "lr": 1, "time": 0})
    assert event == StepEvent(1, 1, 2.0, 1.0, 812.5, 2.25, 0.0)
    assert all(isinstance(v, float) for v in (event.train_loss, event.lr, event.time))
    assert event_from_dict({**OLD_LINES[2], "val_loss": None, "val_acc": None}) == EpochEvent(1, 16, 0.9, 0.6,
                                                                                              time=1.5)
    # A field the format does not know (written by a newer version) is ignored, not fatal.
    assert event_from_dict({**OLD_LINES[1], "memory_mb": 512}) == STEP


def test_event_to_dict_and_back_is_the_identity_on_the_old_format():
    for line in OLD_LINES:
        event = event_from_dict(line)
        assert event is not None and event_to_dict(event) == line
    assert event_to_dict(ENDED)["status"] == "finished" and type(event_to_dict(ENDED)["status"]) is str
    with pytest.raises(TypeError, match="not a training event"):
        event_to_dict({"type": "step"})  # type: ignore[arg-type]


# ---- the status in config.json ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.FINISHED, Status.STOPPED, Status.DIVERGED, Status.FAILED])
def test_a_status_written_to_config_json_reads_back_as_a_status(tmp_path, status):
    run = new_run(tmp_path)
    if status.kept_weights:
        run.save_model(build_seeded(TINY, 0, 4), CLASSES, {"mean": [0.5] * 3, "std": [0.5] * 3, "image_size": 16})
    run.finish(status, f"ended {status}")
    assert json.loads((run.path / CONFIG_FILE).read_text())["status"] == status.value
    info = read_run(run.path)
    assert isinstance(info.status, Status) and info.status is status
    assert info.reason == f"ended {status}" and info.record()["status"] == status.value
    assert type(info.record()["status"]) is str  # a table gets plain text


def test_unknown_or_missing_status_text_makes_the_run_damaged_not_an_error(tmp_path):
    for name, value in (("odd", "exploded"), ("typed", 3), ("listed", ["finished"])):
        run = new_run(tmp_path, name)
        run.finish(Status.FAILED, "")
        config = json.loads((run.path / CONFIG_FILE).read_text())
        config["status"] = value
        (run.path / CONFIG_FILE).write_text(json.dumps(config))
    runs = {r.name: r for r in list_runs(tmp_path)}
    assert {r.status for r in runs.values()} == {Status.DAMAGED}
    assert "unknown status 'exploded'" in runs["odd"].reason


def test_a_run_folder_in_the_old_format_still_loads(tmp_path):
    """A folder written by hand the way the Trainer wrote it before events were typed: plain JSON text."""
    folder = tmp_path / "20240101-120000-resnet6-colours"
    folder.mkdir()
    model = build_seeded(TINY, 0, 4)
    save_checkpoint(folder / MODEL_FILE, model, classes=CLASSES,
                    preprocess={"mean": [0.3] * 3, "std": [0.3] * 3, "image_size": 16})
    config = {"version": 1, "name": folder.name, "created": "2024-01-01T12:00:00+0000", "status": "finished",
              "message": "finished 32 steps (2 epochs)", "pid": 1, "host": socket.gethostname(), "arch": "resnet6",
              "model": TINY.to_dict(), "train": fast().to_dict(), "dataset": {"kind": "colours"},
              "classes": CLASSES, "preprocess": {}, "final": {"steps": 32, "epochs": 1, "val_acc": 0.75,
                                                              "val_loss": 0.7}}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    (folder / METRICS_FILE).write_text("".join(json.dumps(line) + "\n" for line in OLD_LINES[:-1]))

    (info,) = list_runs(tmp_path)
    assert info.status is Status.FINISHED and info.has_model and info.val_acc == 0.75 and info.steps == 32
    assert load_metrics(folder) == ALL[:-1]
    assert metrics_csv(folder).splitlines()[2] == "step,1,1,1.375,0.05,812.5,2.25,,,,,,0.125"
    loaded, classes, _ = load_run_model(folder)
    assert classes == CLASSES and loaded.config == TINY
