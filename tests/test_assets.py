"""The bundled demo assets: real trained models and a recorded run, each with its provenance, rebuilt by one command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from resnet_core import assets
from resnet_core.analysis import SideBySide
from resnet_core.data import SHAPES_CLASSES, Preprocess, make_shapes, prepare_uint8
from resnet_core.recipes import CHECK_SEED, DEGRADATION_DATA, DEGRADATION_TRAIN, SHAPES_DATA, SHAPES_TRAIN
from resnet_core.status import Status
from resnet_core.train import ValEvent, load_run_model

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


def test_the_recorded_degradation_run_holds_the_lesson_with_its_provenance():
    folders = assets.recorded_degradation()
    pair = SideBySide(DEGRADATION_DATA, DEGRADATION_TRAIN)
    assert list(folders) == assets.degradation_labels() and sorted(folders) == sorted(pair.names)
    made = assets.provenance(ROOT / "assets" / assets.RECORDED_DEGRADATION)
    assert made is not None and made.recipe["train"] == DEGRADATION_TRAIN.to_dict()
    assert made.recipe["dataset"] == DEGRADATION_DATA.to_dict()
    final = {}
    for label, folder in folders.items():
        snap = assets.recorded_snapshot(folder)
        assert snap.status.kept_weights and snap.steps and not (folder / "model.pt").exists()
        assert any(isinstance(e, ValEvent) for e in snap.validations)  # validated inside epochs too
        final[label] = snap.validated_epochs[-1]
        assert made.results[label]["val_acc"] == pytest.approx(final[label].val_acc, abs=1e-4)
    # What the demo shows: the deep plain net fits its training set worse than the shallow one (here so much worse
    # that its run ended "did not learn"), while the deep residual net keeps up.
    assert final["plain-56"].train_loss > final["plain-20"].train_loss
    assert final["ResNet-56"].train_loss < final["plain-56"].train_loss


def test_demo_times_are_recorded_in_one_file_that_the_readme_quotes():
    times = assets.demo_times()
    assert times and all(times[k] > 0 for k in ("degradation", "normalization", "gradcam", "gradcam_model"))
    degradation = assets.provenance(ROOT / "assets" / assets.RECORDED_DEGRADATION)
    assert times["degradation"] == degradation.seconds
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key in ("degradation", "normalization", "gradcam", "gradcam_model"):
        assert assets.format_recorded(times[key]) in readme, key


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
