"""The Trainer, its run folders and its command line, on tiny real models and data (CPU)."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from resnet_core import charts
from resnet_core.data import DataBundle, ImageSet, augment_batch
from resnet_core.model import build_seeded, get_preset
from resnet_core.status import Status
from resnet_core.train import (
    METRICS_FILE,
    MODEL_FILE,
    EpochEvent,
    Run,
    RunError,
    StatusEvent,
    StepEvent,
    TrainConfig,
    TrainConfigError,
    Trainer,
    TrainerBusyError,
    TrainerError,
    ValEvent,
    create_trainer,
    global_grad_norm,
    list_runs,
    load_metrics,
    load_run_model,
    lr_at,
    lr_schedule,
    metrics_csv,
)

ROOT = Path(__file__).resolve().parents[2]
# One block per stage, widths 4 and 8, CIFAR stem: a few thousand parameters.
TINY = get_preset("resnet20").replace(stage_blocks=(1, 1), stage_widths=(4, 8), stem_width=4, num_classes=4)
CLASSES = ["red", "green", "blue", "grey"]


def colour_set(n: int, seed: int, size: int = 16) -> ImageSet:
    """Noisy images whose class is the colour channel that is bright (class 3: none is)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    images = (torch.rand(n, 3, size, size, generator=g) * 60).to(torch.uint8)
    for c in range(3):
        images[labels == c, c] += 150
    return ImageSet(images, labels)


def bundle(n_train: int = 512, n_val: int = 64) -> DataBundle:
    return DataBundle(colour_set(n_train, 0), colour_set(n_val, 1), list(CLASSES), (0.3, 0.3, 0.3),
                      (0.3, 0.3, 0.3), {"kind": "colours", "n_train": n_train, "n_val": n_val})


def tiny_trainer(config: TrainConfig, data: DataBundle | None = None, seed: int = 0, **kw) -> Trainer:
    return Trainer(build_seeded(TINY, seed, 4), data or bundle(), config, **kw)


def finished(trainer: Trainer, timeout: float = 120) -> Trainer:
    trainer.start()
    assert trainer.join(timeout), "training did not end in time"
    return trainer


def fast(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 32, "lr": 0.05, "device": "cpu", **kw})


def losses(trainer: Trainer) -> list[float]:
    return [e.train_loss for e in trainer.snapshot().steps]


def wait_for_step(trainer: Trainer, step: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while trainer.step < step:
        assert trainer.is_running, f"training ended early: {trainer.status} {trainer.message}"
        assert time.monotonic() < deadline, "training did not reach the step in time"
        time.sleep(0.01)


# ---- training ------------------------------------------------------------------------------


def test_loss_goes_down_and_validation_accuracy_rises():
    trainer = finished(tiny_trainer(fast(epochs=3)))
    snap = trainer.snapshot()
    assert snap.status is Status.FINISHED, snap.message
    curve = losses(trainer)
    assert len(curve) == trainer.total_steps == 3 * (512 // 32)
    assert sum(curve[-5:]) / 5 < 0.5 * sum(curve[:5]) / 5
    assert [e.epoch for e in snap.epochs] == [1, 2, 3]
    assert all(isinstance(e, EpochEvent) for e in snap.epochs) and snap.epochs == snap.validated_epochs
    assert snap.epochs[-1].val_acc >= 0.9 and 0 <= snap.epochs[-1].train_acc <= 1
    assert snap.progress == 1.0
    step = snap.steps[0]
    assert isinstance(step, StepEvent) and (step.step, step.epoch) == (1, 1)
    assert step.samples_per_s > 0 and step.grad_norm > 0 and step.lr >= 0
    first, last = snap.events[0], snap.events[-1]
    assert isinstance(first, StatusEvent) and first.status is Status.RUNNING and first.device == "cpu"
    assert (first.total_steps, first.steps_per_epoch, first.batch_size) == (trainer.total_steps, 512 // 32, 32)
    assert isinstance(last, StatusEvent) and last.status is Status.FINISHED and last.message == snap.message


def test_a_short_run_validates_several_times_per_epoch_and_logs_it(tmp_path):
    config = fast(epochs=2, val_per_epoch=4)
    run = Run.create(tmp_path, TINY, config.to_dict(), {"kind": "colours"}, CLASSES, {}, name="midway")
    trainer = finished(tiny_trainer(config, run=run))
    snap = trainer.snapshot()
    assert snap.status is Status.FINISHED, snap.message
    passes = snap.validations
    # 16 steps per epoch: passes after steps 4, 8, 12 inside each epoch, and at each epoch's end.
    assert [e.step for e in passes] == [4, 8, 12, 16, 20, 24, 28, 32]
    assert [e.epoch for e in passes if isinstance(e, ValEvent)] == [0.25, 0.5, 0.75, 1.25, 1.5, 1.75]
    assert all(0 <= e.val_acc <= 1 and e.val_loss > 0 for e in passes)
    assert [e.epoch for e in snap.epochs] == [1, 2]  # epoch ends (and their checkpoints) as before
    logged = [e for e in load_metrics(run.path) if isinstance(e, ValEvent)]
    assert logged == [e for e in passes if isinstance(e, ValEvent)]


def test_same_seed_gives_the_same_losses_and_another_seed_does_not():
    a = finished(tiny_trainer(fast(epochs=1, seed=3)))
    b = finished(tiny_trainer(fast(epochs=1, seed=3)))
    c = finished(tiny_trainer(fast(epochs=1, seed=4)))
    assert losses(a) == losses(b)
    assert losses(a) != losses(c)


def test_stop_takes_effect_within_one_step_and_keeps_a_usable_run(tmp_path):
    model = build_seeded(TINY, 0, 4)
    trainer = create_trainer(model, bundle(), fast(epochs=500), runs_dir=tmp_path)
    trainer.start()
    wait_for_step(trainer, 3)
    fraction, eta = trainer.progress
    assert 0 < fraction < 0.5 and eta > 0
    trainer.stop()
    at_stop = trainer.step
    assert trainer.join(30)
    snap = trainer.snapshot()
    assert snap.status is Status.STOPPED
    assert at_stop <= snap.step <= at_stop + 1
    assert f"stopped at step {snap.step}" in snap.message
    info = list_runs(tmp_path)[0]
    assert info.status is Status.STOPPED and info.has_model


def test_huge_learning_rate_diverges_with_the_step_named():
    # The largest learning rate and weight decay TrainConfig accepts: each step scales the weights by
    # 1 - lr * wd = -9, so they overflow within a few dozen steps (BatchNorm alone keeps lr 10 stable).
    trainer = finished(tiny_trainer(fast(lr=10.0, weight_decay=1.0)))
    snap = trainer.snapshot()
    assert snap.status is Status.DIVERGED
    logged = losses(trainer)
    assert all(math.isfinite(x) for x in logged)
    assert re.match(rf"diverged at step {len(logged) + 1}: the training loss became (NaN|infinite)", snap.message)
    assert "lower the learning rate" in snap.message
    assert snap.events[-1] == StatusEvent(Status.DIVERGED, snap.message, step=len(logged),
                                          time=snap.events[-1].time)


def test_an_error_inside_training_fails_the_run_without_raising():
    # One-channel images into a three-channel network: the first convolution raises.
    grey = ImageSet(torch.zeros(64, 1, 16, 16, dtype=torch.uint8), torch.arange(64) % 4)
    data = DataBundle(grey, grey, list(CLASSES), (0.5,), (0.5,), {"kind": "grey"})
    trainer = finished(tiny_trainer(fast(), data=data))
    assert trainer.status is Status.FAILED
    assert trainer.message.startswith("training failed: RuntimeError")
    assert "channels" in trainer.message


def test_second_start_is_refused_while_running_and_after_the_end():
    trainer = tiny_trainer(fast(epochs=500))
    trainer.start()
    with pytest.raises(TrainerBusyError, match="still running"):
        trainer.start()
    trainer.stop()
    assert trainer.join(30)
    with pytest.raises(TrainerBusyError, match="already run"):
        trainer.start()


def test_model_and_dataset_class_counts_must_agree():
    with pytest.raises(TrainerError, match="10 outputs but the dataset has 4 classes"):
        Trainer(build_seeded(TINY, 0, 10), bundle(), fast())


def test_max_steps_caps_training_and_still_validates():
    trainer = finished(tiny_trainer(fast(epochs=10, max_steps=5)))
    snap = trainer.snapshot()
    assert snap.status is Status.FINISHED and snap.step == 5 and trainer.total_steps == 5
    assert snap.epochs[-1].step == 5 and snap.epochs[-1].val_acc is not None


# ---- config and helpers ---------------------------------------------------------------------


@pytest.mark.parametrize("field, value, words", [
    ("lr", 0.0, "number in [1e-06, 10]"), ("lr", float("nan"), "number in [1e-06, 10]"),
    ("optimizer", "rmsprop", "'sgd', 'adam', 'adamw'"), ("schedule", "linear", "'onecycle'"),
    ("milestones", (0.75, 0.5), "increasing fractions"), ("epochs", 0, "from 1"),
    ("batch_size", True, "whole number"), ("label_smoothing", 1.0, "[0, 0.99]"), ("device", "tpu", "'mps'"),
])
def test_bad_train_config_names_the_field_and_what_is_allowed(field, value, words):
    with pytest.raises(TrainConfigError) as err:
        TrainConfig(**{field: value})
    assert str(err.value).startswith(f"{field}: ") and words in str(err.value)


def test_train_config_json_round_trip_and_unknown_fields():
    cfg = TrainConfig.paper_cifar(epochs=3)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(TrainConfigError, match="unknown field"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(TrainConfigError, match="warms up by itself"):
        TrainConfig(schedule="onecycle", warmup_epochs=1)


def _torch_schedule(scheduler_factory, total: int, lr: float) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = scheduler_factory(opt)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_schedules_match_torch_and_have_the_expected_shapes():
    total, lr = 200, 0.1
    ours = lambda **kw: lr_schedule(TrainConfig(lr=lr, **kw), total, 20)
    assert ours(schedule="constant") == [lr] * total
    step = ours(schedule="step", milestones=(0.5, 0.75))
    assert step == pytest.approx(_torch_schedule(
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [100, 150], 0.1), total, lr))
    assert step[99] == lr and step[100] == pytest.approx(lr / 10) and step[150] == pytest.approx(lr / 100)
    assert ours(schedule="cosine") == pytest.approx(_torch_schedule(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, total), total, lr), abs=1e-9)
    assert ours(schedule="onecycle") == pytest.approx(_torch_schedule(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, lr, total_steps=total), total, lr), rel=1e-6)
    warm = ours(schedule="cosine", warmup_epochs=1)  # 20 steps of linear warm-up
    assert warm[:20] == pytest.approx([lr * (i + 1) / 20 for i in range(20)])
    assert warm[20] == pytest.approx(lr) and all(a >= b for a, b in itertools.pairwise(warm[20:]))
    assert lr_at(TrainConfig(lr=lr, schedule="cosine"), total - 1, total, 20) < 1e-4


def test_augment_batch_crops_a_shifted_window_of_the_padded_image_and_flips():
    images = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    out = augment_batch(images, 2, False, torch.Generator().manual_seed(0))
    padded = F.pad(images, (2, 2, 2, 2))
    for i in range(16):
        windows = [padded[i, :, y:y + 8, x:x + 8] for y in range(5) for x in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    flipped = augment_batch(images, 0, True, torch.Generator().manual_seed(0))
    same = [torch.equal(flipped[i], images[i]) for i in range(16)]
    mirrored = [torch.equal(flipped[i], images[i].flip(2)) for i in range(16)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(mirrored) and not all(mirrored)
    # plain N x C x H x W, as it came: a batch with channels-last strides would turn every convolution fed from it
    # channels-last, a layout nobody chose
    assert out.is_contiguous() and flipped.is_contiguous()


def test_global_grad_norm_equals_torch_total_norm():
    model = build_seeded(TINY, 0, 4)
    F.cross_entropy(model(torch.randn(8, 3, 16, 16)), torch.arange(8) % 4).backward()
    params = list(model.parameters())
    expected = torch.nn.utils.get_total_norm([p.grad for p in params])
    assert torch.allclose(global_grad_norm(params), expected)


# ---- run folders --------------------------------------------------------------------------


def test_saved_run_loads_and_gives_identical_outputs(tmp_path):
    data = bundle()
    # fp32 in the default layout, pinned: with the layout chosen by timing (channels-last on some loads) the live
    # model's convolutions take another algorithm than the loaded one's, equal only to ~1e-7.
    recipe = fast(bf16=False, channels_last=False)
    trainer = create_trainer(build_seeded(TINY, 0, 4), data, recipe, runs_dir=tmp_path)
    finished(trainer)
    assert trainer.status is Status.FINISHED
    run_dir = trainer.run.path
    assert {p.name for p in run_dir.iterdir()} == {"config.json", METRICS_FILE, MODEL_FILE}
    config = json.loads((run_dir / "config.json").read_text())
    assert config["status"] == "finished" and config["classes"] == CLASSES
    assert config["train"] == recipe.to_dict() and config["model"]["num_classes"] == 4
    assert re.fullmatch(r"\d{8}-\d{6}-resnet6-colours", run_dir.name)

    model, classes, preprocess = load_run_model(run_dir)
    assert classes == CLASSES and preprocess["mean"] == [0.3, 0.3, 0.3] and preprocess["image_size"] == 16
    x = torch.randn(8, 3, 16, 16)
    trained = trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), trained(x))

    # Every event, typed, reads back equal, the closing status event included (written before the file closes).
    assert load_metrics(run_dir) == trainer.snapshot().events
    info = list_runs(tmp_path)[0]
    assert info.status is Status.FINISHED and info.val_acc == trainer.snapshot().epochs[-1].val_acc


def test_damaged_run_folders_are_listed_as_damaged_and_metrics_survive_a_cut(tmp_path):
    good = Run.create(tmp_path, TINY, fast().to_dict(), {"kind": "colours"}, CLASSES, {}, name="good")
    good.log(StepEvent(step=1, epoch=1, train_loss=1.5, lr=0.05, samples_per_s=100.0, grad_norm=2.0, time=0.1))
    good.log(StepEvent(step=2, epoch=1, train_loss=1.2, lr=0.05, samples_per_s=100.0, grad_norm=2.0, time=0.2))
    good.finish(Status.DIVERGED, "diverged at step 3")
    with open(good.path / METRICS_FILE, "a") as f:
        f.write('{"type": "step", "st')  # a writer cut off mid-line
    (tmp_path / "bad-json").mkdir()
    (tmp_path / "bad-json" / "config.json").write_text("{not json")
    (tmp_path / "empty").mkdir()
    no_model = Run.create(tmp_path, TINY, fast().to_dict(), {"kind": "colours"}, CLASSES, {}, name="no-model")
    no_model.finish(Status.FINISHED, "done")

    runs = {r.name: r for r in list_runs(tmp_path)}
    assert runs["good"].status is Status.DIVERGED and not runs["good"].has_model
    assert runs["bad-json"].status is Status.DAMAGED and "not valid JSON" in runs["bad-json"].reason
    assert runs["empty"].status is Status.DAMAGED and "config.json is missing" in runs["empty"].reason
    assert runs["no-model"].status is Status.DAMAGED and "model.pt is missing" in runs["no-model"].reason

    assert [e.step for e in load_metrics(good.path)] == [1, 2]
    assert metrics_csv(good.path).splitlines()[1] == "step,1,1,1.5,0.05,100.0,2.0,,,,,,0.1"
    with pytest.raises(RunError, match="saved no model"):
        load_run_model(good.path)


def test_a_run_left_running_by_a_dead_process_is_listed_as_interrupted(tmp_path):
    run = Run.create(tmp_path, TINY, fast().to_dict(), {"kind": "colours"}, CLASSES, {}, name="orphan")
    config = json.loads((run.path / "config.json").read_text())
    config["pid"] = 2**22 + 12345  # above any pid in use here
    (run.path / "config.json").write_text(json.dumps(config))
    assert list_runs(tmp_path)[0].status is Status.INTERRUPTED


# ---- charts -------------------------------------------------------------------------------


def test_ema_is_debiased_and_skips_non_finite_values():
    assert charts.ema([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])
    smooth = charts.ema([1.0, 3.0, float("nan"), 3.0], 0.5)
    assert smooth[0] == 1.0 and smooth[1] == pytest.approx((0.25 + 1.5) / 0.75)
    assert math.isnan(smooth[2]) and smooth[3] == pytest.approx((0.125 + 0.75 + 1.5) / 0.875)


def test_training_figures_draw_the_events():
    trainer = finished(tiny_trainer(fast()))
    events = trainer.snapshot().events
    fig = charts.training_loss_figure(events, smoothing=0.6, log_y=True)
    raw, smooth, val = fig.data
    assert list(raw.y) == losses(trainer) and list(smooth.y) == charts.ema(losses(trainer), 0.6)
    assert len(val.x) == 2 and fig.layout.yaxis.type == "log" and fig.layout.uirevision
    acc = charts.epoch_metrics_figure(events).data[0]
    assert list(acc.y) == [100 * e.val_acc for e in trainer.snapshot().epochs]
    overlay = charts.runs_overlay_figure({"a": events, "b": events[:10]}, "train_loss", smoothing=0)
    assert [t.name for t in overlay.data] == ["a", "b"] and len(overlay.data[1].x) < len(overlay.data[0].x)


# ---- command line -------------------------------------------------------------------------


def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "resnet_core.train", *args], cwd=tmp_path, env=env,
                          check=False, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_trains_end_to_end_and_prints_the_final_accuracy(tmp_path):
    model_json = tmp_path / "tiny.json"
    model_json.write_text(TINY.to_json())
    runs = tmp_path / "runs"
    result = _cli("--model-config", str(model_json), "--dataset", "shapes", "--n-train", "200", "--n-val", "50",
                  "--image-size", "16", "--epochs", "2", "--batch-size", "50", "--runs-dir", str(runs),
                  "--no-progress", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"final validation accuracy: (\d+\.\d\d)%", last)
    assert match, result.stdout
    (info,) = list_runs(runs)
    assert info.status is Status.FINISHED and info.steps == 8 and info.dataset == "shapes"
    assert float(match.group(1)) == pytest.approx(100 * info.val_acc, abs=0.006)
    model, classes, _ = load_run_model(info.path)
    assert len(classes) == 10 and model.config.num_classes == 10


@pytest.mark.parametrize("args, words", [
    (["--epochs", "0"], "epochs: 0"), (["--optimizer", "rmsprop"], "invalid choice"),
    (["--preset", "resnet7"], "preset: 'resnet7' is unknown"),
])
def test_cli_bad_arguments_exit_with_a_message_and_no_traceback(tmp_path, args, words):
    result = _cli(*args, "--n-train", "20", "--n-val", "10", "--runs-dir", str(tmp_path / "runs"), tmp_path=tmp_path)
    assert result.returncode == 2
    assert words in result.stderr and "Traceback" not in result.stderr


def test_schedule_preview_covers_the_run_and_respects_max_steps():
    from resnet_core.train import schedule_preview

    config = TrainConfig(epochs=2, batch_size=10, lr=0.1, schedule="cosine", warmup_epochs=0.5)
    lrs = schedule_preview(config, n_train=100)
    assert len(lrs) == 20 and max(lrs) == pytest.approx(0.1, rel=0.05) and lrs[0] < lrs[5] and lrs[-1] < 0.01
    assert len(schedule_preview(config.replace(max_steps=7), n_train=100)) == 7
    assert len(schedule_preview(config, n_train=10**9, max_points=50)) == 50
