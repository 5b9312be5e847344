"""The bundled demo assets: real trained models and a recorded run, each with its provenance, rebuilt by one command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from resnet_core import assets
from resnet_core.analysis import SideBySide
from resnet_core.analysis.bands import LEARNED, lesson
from resnet_core.analysis.readings import spread
from resnet_core.analysis.recorded import RecordedRun
from resnet_core.data import SHAPES_CLASSES, Preprocess, make_shapes, prepare_uint8
from resnet_core.recipes import CHECK_SEED, DEGRADATION_DATA, DEGRADATION_TRAIN, SHAPES_DATA, SHAPES_TRAIN
from resnet_core.status import Status
from resnet_core.train import TrainConfig, ValEvent, load_run_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("residual", [True, False])
def test_each_bundled_model_is_a_trained_shapes_net_with_its_provenance(residual):
    info = assets.bundled_model(residual)
    assert info is not None and info.status is Status.FINISHED and assets.is_bundled(info.path)
    model, classes, pre = load_run_model(info.path)
    assert classes == list(SHAPES_CLASSES)
    assert model.config.residual is residual and model.config.depth == 20
    # Its weights really are trained: held-out Shapes images (never trained on) are mostly classified right.
    check = make_shapes(200, seed=CHECK_SEED, size=pre["image_size"])
    x = prepare_uint8(check.images, Preprocess(mean=tuple(pre["mean"]), std=tuple(pre["std"]),
                                               image_size=pre["image_size"]))
    with torch.no_grad():
        accuracy = (model.eval()(x).argmax(1) == check.labels).float().mean().item()
    assert accuracy > 0.85
    made = assets.provenance(info.path)
    assert made is not None and made.command == "python -m resnet_core.assets"
    assert made.recipe["train"] == SHAPES_TRAIN.to_dict() and made.recipe["dataset"] == SHAPES_DATA.to_dict()
    assert made.recipe["train"]["seed"] == 0 and made.device and made.seconds > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", made.day)
    (result,) = made.results.values()
    assert result["val_acc"] == pytest.approx(info.val_acc, abs=1e-4)  # the provenance agrees with the run
    assert made.day in made.summary() and "python -m resnet_core.assets" in made.summary()


def test_bundled_models_are_a_few_megabytes():
    total = sum(f.stat().st_size for f in (ROOT / "assets" / "models").rglob("*") if f.is_file())
    assert total < 4 * 2**20


def test_the_recorded_degradation_run_holds_every_seed_with_its_provenance():
    folders = assets.recorded_degradation()
    pair = SideBySide(DEGRADATION_DATA, DEGRADATION_TRAIN)
    assert list(folders) == assets.degradation_labels() and sorted(folders) == sorted(pair.names)
    made = assets.provenance(ROOT / "assets" / assets.RECORDED_DEGRADATION)
    assert made is not None and made.recipe["train"] == DEGRADATION_TRAIN.to_dict()
    assert made.recipe["dataset"] == DEGRADATION_DATA.to_dict()
    seeds = made.recipe["seeds"]
    assert len(seeds) >= 3 and all([p.name for p in paths] == [f"seed{s}" for s in seeds] for paths in folders.values())
    snaps = {label: [assets.recorded_snapshot(p) for p in paths] for label, paths in folders.items()}
    for label, runs in snaps.items():
        for snap in runs:
            # Each ran to its end; plain-56 ends "did not learn" in this budget (see the xfail test below), and the
            # recording keeps that status as it was measured.
            assert snap.status in (Status.FINISHED, Status.DID_NOT_LEARN) and snap.steps
            assert snap.status is Status.FINISHED or label == "plain-56"
            assert any(isinstance(e, ValEvent) for e in snap.validations)  # validated inside epochs too
    run = RecordedRun.of(folders, snaps, made)
    # one computation, one value: the provenance holds what the page's cards show
    for label, result in run.results.items():
        assert made.results[label] == pytest.approx(result, abs=1e-4)
    # the lesson's orderings, in every seed: plain-56 stays above plain-20 from the end of the warm-up, ResNet-56
    # ends at or below ResNet-20; the other three nets learn (3x chance or more)
    for k in range(len(seeds)):
        read_as = lesson({label: run.runs[label][k] for label in run.runs}, run.steps_per_epoch, run.warmup_step)
        assert read_as.degraded and read_as.cured, seeds[k]
        assert all(run.runs[label][k]["val_acc"][-1] >= LEARNED / 10 for label in run.runs if label != "plain-56")


@pytest.mark.xfail(strict=True, reason="measured: under the lecture-sized budget (4 epochs of 3,000 Shapes images) "
                   "plain-56 ends near chance in every seed (10.6-18.0% validation accuracy; "
                   "benchmarks/bench_degradation_robustness.py); 3x the steps (12 epochs, seed 0) left it at 16.4%; "
                   "10x (40 epochs, seeds 0-2) it learns: 59.2%, 79.0%, 89.6%, the long recording (test below), "
                   "after sitting near chance for 7 to 16 epochs. "
                   "Strict: this test fails loudly the day a lecture-sized recording makes it hold.")
def test_every_recorded_net_learns_plain_56_included():
    run = assets.recorded_run()
    for k in range(len(run.runs["plain-56"])):
        assert lesson({label: run.runs[label][k] for label in run.runs}, run.steps_per_epoch, run.warmup_step).learned


def test_the_long_recording_has_every_net_learning_and_quotes_its_own_numbers():
    """The same recipe trained 10x as long over three seeds (assets/recorded/degradation_long): the lecture's run is
    its start, and there plain-56 learns and both orderings hold in every seed. Its provenance holds the numbers
    the page's expander quotes, computed as the page computes them."""
    folders = assets.recorded_degradation(long=True)
    assert set(folders) == {"plain-20", "ResNet-20", "plain-56", "ResNet-56"}
    made = assets.provenance(assets.degradation_root(long=True))
    run = assets.recorded_run(long=True)
    assert run.epochs == assets.LONG_EPOCHS and run.total_steps == run.steps_per_epoch * assets.LONG_EPOCHS
    assert made.recipe["seeds"] == list(assets.LONG_SEEDS) and run.seeds == len(assets.LONG_SEEDS) >= 3
    assert made.command == assets.LONG_COMMAND
    for k in range(run.seeds):  # in every seed: every net learns (3x chance), and both orderings hold
        assert lesson({label: run.runs[label][k] for label in run.runs}, run.steps_per_epoch, run.warmup_step).holds
    # one number, one value: provenance.json and the page read the same finals
    for label, result in run.results.items():
        assert made.results[label]["val_acc"] == pytest.approx(result["val_acc"], abs=1e-4)
        assert made.results[label]["train_loss"] == pytest.approx(result["train_loss"], abs=1e-4)
    # the recipe is the lecture's, only longer
    unseeded = {k: v for k, v in TrainConfig.from_dict(made.recipe["train"]).to_dict().items()
                if k not in ("seed", "epochs")}
    assert unseeded == {k: v for k, v in DEGRADATION_TRAIN.to_dict().items() if k not in ("seed", "epochs")}
    assert not any((p / "model.pt").exists() for paths in folders.values() for p in paths)  # metrics only


def test_the_readme_quotes_the_degradation_recordings_as_the_page_reads_them():
    """One number, one value: the README's degradation figures are the recordings' finals, written by the formatter
    the page's cards and captions use (readings.spread), for the lecture's recording and the long one."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for long in (False, True):
        run = assets.recorded_run(long=long)
        for label, (losses, accs) in run.finals().items():
            quoted = (f"{label} {spread(losses)} / {spread(accs, percent=True)}" if long else
                      f"{label} {spread(losses)}")
            assert quoted in readme, quoted


def test_the_recorded_56_layer_pair_keeps_its_first_seeds_weights_in_half_precision():
    folders = assets.recorded_degradation()
    for label, paths in folders.items():
        kept = [p for p in paths if (p / "model.pt").exists()]
        if label.endswith("-56"):
            assert kept == paths[:1]
            model, classes, _ = load_run_model(paths[0])
            assert model.config.depth == 56 and model.config.residual is label.startswith("ResNet")
            raw = torch.load(paths[0] / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
            assert {v.dtype for v in raw.values() if v.is_floating_point()} == {torch.float16}
        else:
            assert not kept
    total = sum(f.stat().st_size for f in (ROOT / "assets" / assets.RECORDED_DEGRADATION).rglob("*") if f.is_file())
    assert total < 6 * 2**20


def test_demo_times_are_recorded_in_one_file_that_the_readme_quotes():
    times = assets.demo_times()
    assert times and all(times[k] > 0 for k in ("degradation", "normalization", "gradcam", "gradcam_model"))
    degradation = assets.provenance(ROOT / "assets" / assets.RECORDED_DEGRADATION)
    assert times["degradation"] == degradation.seconds
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key in ("degradation", "normalization", "gradcam", "gradcam_model"):
        # the page holds number and unit together with a no-break space; the README has a plain one
        assert assets.format_recorded(times[key]).replace("\u00a0", " ") in readme, key


def test_missing_or_damaged_assets_read_as_absent(tmp_path):
    assert assets.bundled_model(True, tmp_path) is None
    assert assets.recorded_degradation(tmp_path) == {}
    assert assets.demo_times(tmp_path) == {}
    (tmp_path / "recorded").mkdir()
    (tmp_path / assets.DEMO_TIMES_FILE).write_text(json.dumps({"degradation": "slow"}))
    assert assets.demo_times(tmp_path) == {}
    assert assets.provenance(tmp_path) is None


@pytest.mark.slow
def test_the_one_command_rebuilds_a_bundled_model_to_the_same_accuracy(tmp_path):
    assets.build_models(tmp_path, which=(False,))  # what `python -m resnet_core.assets` runs for plain-20
    rebuilt, bundled = assets.bundled_model(False, tmp_path), assets.bundled_model(False)
    assert rebuilt is not None and rebuilt.config["train"] == bundled.config["train"]
    assert rebuilt.val_acc == pytest.approx(bundled.val_acc, abs=0.03)
    assert assets.provenance(rebuilt.path).recipe == assets.provenance(bundled.path).recipe
