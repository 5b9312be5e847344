"""Verdicts only beyond the noise: the trust table's and "which layer"'s sentences name a method or a layer only
when several images from the model's dataset separate it beyond the 95% interval; one image, near-equal scores or
an image the model was not trained on get the numbers and no verdict."""

from __future__ import annotations

import pytest
import torch

from resnet_core import ResNetConfig, build_model
from resnet_core.assets import bundled_model
from resnet_core.data import Preprocess, make_shapes, prepare_uint8
from resnet_core.explain.faithfulness import Curve, Faithfulness
from resnet_core.explain.layers import LayerScore, layer_reports, layer_scores
from resnet_core.explain.trust_table import trust_table, trust_tables
from resnet_core.explain.verdicts import layer_verdict, trust_verdict
from resnet_core.recipes import CHECK_SEED
from resnet_core.train import load_run_model

TINY = ResNetConfig(block="basic", stage_blocks=(1, 1), stage_widths=(8, 16), stem="cifar", stem_width=8,
                    shortcut="B", num_classes=3)
CLAIMS = ("is both faithful", "is the most faithful", "scores best", "more faithful than")


@pytest.fixture(scope="module")
def shapes():
    info = bundled_model(residual=True)
    assert info is not None, "the bundled Shapes ResNet-20 is missing (python -m resnet_core.assets rebuilds it)"
    model, _, pre = load_run_model(info.path)
    pre = Preprocess.from_dict(pre, default_size=32)
    data = make_shapes(8, seed=CHECK_SEED, size=32)
    return model, prepare_uint8(data.images, pre), list(data.masks), data.labels.tolist(), pre


def test_an_image_the_model_was_not_trained_on_gets_numbers_and_no_verdict():
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    photo = torch.randn(3, 32, 32)  # no image of the model's three classes: a "photo" through it
    table = trust_table(model, photo, methods=("gradcam",), own_data=False)
    assert table.verdict is None and table.sentence.startswith("No verdict: this image is not from the model's")
    assert not any(claim in table.sentence for claim in CLAIMS)
    report = layer_scores(model, photo, own_data=False)
    assert report.best is None and report.sentence.startswith("No verdict: this image is not from the model's")
    assert not any(claim in report.sentence for claim in CLAIMS)
    # Several such images decide nothing either.
    rows = [trust_table(model, torch.randn(3, 32, 32), methods=("gradcam",), randomize=False).rows for _ in range(3)]
    assert trust_verdict(rows, own_data=False).verdict is None


def _layer(name: str, score: float) -> LayerScore:
    fractions = torch.linspace(0, 1, 3, dtype=torch.float64)
    deletion = Curve("deletion", fractions, torch.full((3,), 0.2, dtype=torch.float64), 0.2)
    insertion = Curve("insertion", fractions, torch.full((3,), 0.2 + score, dtype=torch.float64), 0.2 + score)
    f = Faithfulness(name, name, deletion, insertion, 0.0, 0.0, 0.9, 0.9, 0, "mean")
    return LayerScore(name, "stage", f"{name} (8×8)", (8, 8), torch.zeros(8, 8), f)


def test_near_equal_layers_name_no_best_layer_and_a_clear_difference_does():
    near = [[_layer("layer2", 0.40 + d), _layer("layer3", 0.41 - d)] for d in (-0.02, 0.01, 0.03, -0.01, 0.0)]
    said = layer_verdict(near)
    assert said.best is None and "these images do not decide which layer is most faithful" in said.sentence
    assert not any(claim in said.sentence for claim in CLAIMS)
    clear = [[_layer("layer2", 0.20 + d), _layer("layer3", 0.45 + d)] for d in (-0.02, 0.01, 0.03, -0.01, 0.0)]
    said = layer_verdict(clear)
    assert said.best == "layer3" and said.sentence.startswith("Over these 5 images (mean ± 95% interval), layer3 (8×8)"
                                                               " is the most faithful layer")
    assert "0.45 ± 0.02" in said.sentence  # mean and interval of 0.43, 0.46, 0.48, 0.44, 0.45
    assert layer_verdict(clear[:1]).best is None  # one image: no verdict


def test_a_method_level_with_a_reference_map_is_not_called_faithful(shapes):
    model, x, masks, labels, pre = shapes
    tables = trust_tables(model, x[:4], labels[:4], masks[:4], methods=("gradcam",), mean=pre.mean, std=pre.std)
    rows = [t.rows for t in tables]
    # Give the uniform map Grad-CAM's own scores, image by image, give or take 0.01: a near-equal pair.
    for i, image in enumerate(rows):
        gradcam, uniform = image[0], next(r for r in image if r.method == "uniform")
        uniform.faithfulness = gradcam.faithfulness + (0.01 if i % 2 else -0.01)
    said = trust_verdict(rows)
    assert said.verdict is None and said.standing("gradcam").faithful is None
    assert "no method is shown to be both faithful" in said.sentence


def test_several_held_out_images_decide_on_the_trained_model(shapes):
    model, x, masks, labels, pre = shapes
    tables = trust_tables(model, x, labels, masks, methods=("gradcam", "guided_gradcam"), mean=pre.mean, std=pre.std)
    said = trust_verdict([t.rows for t in tables])
    assert said.n == 8 and said.verdict in ("gradcam", "guided_gradcam")
    top = said.standing(said.verdict)
    assert top.faithful and top.sensitive
    assert f"insertion − deletion area {top.faithfulness.text()} beats" in said.sentence
    # The batched tables are each image's own table (the cascade and the maps batched, the numbers the same).
    alone = trust_table(model, x[2], labels[2], masks[2], ("gradcam", "guided_gradcam"), granularity="stage",
                        mean=pre.mean, std=pre.std)
    for a, b in zip(alone.rows, tables[2].rows):
        assert a.faithfulness == pytest.approx(b.faithfulness, abs=1e-4)
        assert (a.randomization_rho is None) == (b.randomization_rho is None)
        if a.randomization_rho is not None:
            assert a.randomization_rho == pytest.approx(b.randomization_rho, abs=1e-4)
    reports = layer_reports(model, x, labels, masks, block="layer3.0")
    one = layer_scores(model, x[2], labels[2], masks[2], block="layer3.0")  # batched maps, the same numbers
    assert [r.faithfulness.score for r in one.rows] == pytest.approx([r.faithfulness.score for r in reports[2].rows],
                                                                     abs=1e-4)
    layers = layer_verdict([r.rows for r in reports])
    assert layers.best == "layer3" and "is the most faithful layer" in layers.sentence
