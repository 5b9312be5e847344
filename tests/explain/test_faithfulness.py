"""Faithfulness (deletion / insertion, Average Drop), reference maps, Grad-CAM layer by layer and the trust
table, on constructed cases with known answers and on the bundled trained Shapes ResNet-20."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from resnet_core import ResNetConfig, build_model, get_preset
from resnet_core.assets import bundled_model
from resnet_core.charts.trust import deletion_insertion_figure, layer_maps_figure, layer_scores_figure, trust_figure
from resnet_core.data import Preprocess, make_shapes, prepare_uint8
from resnet_core.explain import explain, normalize_map, predict
from resnet_core.explain.faithfulness import (
    auc,
    baseline_image,
    confidence_change,
    deletion_curve,
    faithfulness_scores,
    perturbed_scores,
    pixel_counts,
    reference_maps,
    removal_weights,
)
from resnet_core.explain.layers import block_layers, layer_scores
from resnet_core.explain.methods import AttributionError
from resnet_core.explain.references import sobel_map
from resnet_core.explain.trust_table import SENSITIVE_RHO, TrustRow, trust_table, trust_verdict
from resnet_core.recipes import CHECK_SEED
from resnet_core.train import load_run_model
from resnet_core.trust_cli import main as cli_main


@pytest.fixture(scope="module")
def shapes_model():
    """The bundled Shapes ResNet-20 (94% validation accuracy) and four held-out images with their masks."""
    info = bundled_model(residual=True)
    assert info is not None, "the bundled Shapes ResNet-20 is missing (python -m resnet_core.assets rebuilds it)"
    model, _, pre = load_run_model(info.path)
    pre = Preprocess.from_dict(pre, default_size=32)
    shapes = make_shapes(4, seed=CHECK_SEED, size=32)
    return model, prepare_uint8(shapes.images, pre), shapes.masks, shapes.labels, pre


class OnePixel(nn.Module):
    """A constructed classifier that reads one pixel: class 0 is certain while pixel (0, 0) is 1, and
    impossible once it is 0 (the mean baseline). Its only faithful map puts that pixel first."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = 20.0 * x[:, :, 0, 0].mean(dim=1) - 10.0
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


# --------------------------------------------------------------------------------------------
# The order of the pixels and the area under the curve
# --------------------------------------------------------------------------------------------


def test_removal_weights_without_ties_are_the_top_k_pixels():
    m = torch.tensor([[0.9, 0.1], [0.5, 0.3]])
    w = removal_weights(m, [0, 1, 2, 3, 4])
    expected = torch.tensor([[0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 1, 0], [1, 0, 1, 1], [1, 1, 1, 1]], dtype=torch.float32)
    assert torch.equal(w, expected)


def test_tied_pixels_are_removed_together_in_equal_shares():
    # A uniform map has no order: every pixel goes the same share of the way, whatever its position.
    assert torch.allclose(removal_weights(torch.ones(4, 4), [0, 4, 8, 16]),
                          torch.tensor([0.0, 0.25, 0.5, 1.0])[:, None].expand(4, 16))
    # Two tied blocks: 4 top pixels (value 2), 12 below (value 1). 2 pixels' worth: the top block half gone.
    m = torch.ones(4, 4)
    m[0] = 2.0
    w = removal_weights(m, [2, 4, 10]).view(3, 4, 4)
    assert torch.allclose(w[0, 0], torch.full((4,), 0.5)) and w[0, 1:].abs().sum() == 0
    assert torch.allclose(w[1, 0], torch.ones(4)) and w[1, 1:].abs().sum() == 0
    assert torch.allclose(w[2, 1:], torch.full((3, 4), 0.5))
    # The removed amount always equals k, ties or not.
    assert torch.allclose(removal_weights(torch.rand(8, 8).round(decimals=1), pixel_counts(64, 16)).sum(dim=1),
                          torch.tensor(pixel_counts(64, 16), dtype=torch.float32))


def test_auc_of_the_perfect_and_the_worst_ordering_on_a_constructed_model():
    model, x = OnePixel(), torch.ones(3, 4, 4)
    best, worst = torch.zeros(4, 4), torch.ones(4, 4)
    best[0, 0], worst[0, 0] = 1.0, 0.0
    worst[1:, :] += torch.arange(12, dtype=torch.float32).view(3, 4)  # no ties elsewhere: a strict worst order
    results = faithfulness_scores(model, x, {"best": best, "worst": worst}, target=0, baseline="mean", steps=16)
    step = 1 / 16  # one pixel per step, so the pixel goes at the first step (best) or the last (worst)
    assert results["best"].deletion.auc == pytest.approx(step / 2, abs=1e-3)
    assert results["worst"].deletion.auc == pytest.approx(1 - step / 2, abs=1e-3)
    assert results["best"].insertion.auc == pytest.approx(1 - step / 2, abs=1e-3)
    assert results["worst"].insertion.auc == pytest.approx(step / 2, abs=1e-3)
    assert results["best"].score == pytest.approx(1 - step, abs=2e-3)
    assert results["worst"].score == pytest.approx(-(1 - step), abs=2e-3)
    # The curves start at the image and end at the baseline (deletion), the other way round for insertion.
    d, i = results["best"].deletion.scores, results["best"].insertion.scores
    assert d[0] > 0.99 and d[-1] < 0.01 and i[0] < 0.01 and i[-1] > 0.99
    # Any pixel counts, e.g. another implementation's: the same points where the counts are the same.
    assert torch.allclose(perturbed_scores(model, x, best, [0, 1, 16], target=0), d[[0, 1, 16]].double())
    assert torch.allclose(perturbed_scores(model, x, worst, [15, 16], target=0, mode="insertion"), torch.tensor(
        [0.0, 1.0], dtype=torch.float64), atol=1e-3)
    assert auc([0.0, 0.5, 1.0], [1.0, 1.0, 0.0]) == pytest.approx(0.75)


def test_bad_inputs_get_clear_errors():
    model, x = OnePixel(), torch.ones(3, 4, 4)
    with pytest.raises(AttributionError, match="baseline"):
        baseline_image(x, "noise")
    with pytest.raises(AttributionError, match="at least one step"):
        pixel_counts(16, 0)
    with pytest.raises(AttributionError, match="H x W"):
        faithfulness_scores(model, x, {"m": torch.ones(2, 3, 4, 4)})
    with pytest.raises(AttributionError, match="out of range"):
        faithfulness_scores(model, x, {"m": torch.ones(4, 4)}, target=5)


# --------------------------------------------------------------------------------------------
# On a trained model
# --------------------------------------------------------------------------------------------


def test_deleting_in_gradcams_order_drops_the_confidence_faster_than_a_random_order(shapes_model):
    model, x, _, labels, _ = shapes_model
    gradcam, random = [], []
    for i in range(x.shape[0]):
        maps = {"gradcam": explain(model, x[i], "gradcam", target=int(labels[i])),
                "random": reference_maps(x[i], seed=i)["random"]}
        r = faithfulness_scores(model, x[i], maps, target=int(labels[i]))
        gradcam.append(r["gradcam"])
        random.append(r["random"])
    mean = lambda rs, key: sum(getattr(r, key).auc for r in rs) / len(rs)
    # Noisy random deletion wrecks a 32 px image fast too, but Grad-CAM's order is faster on every image.
    assert all(g.deletion.auc < r.deletion.auc for g, r in zip(gradcam, random))
    assert mean(gradcam, "deletion") < 0.7 * mean(random, "deletion")
    assert mean(gradcam, "insertion") > mean(random, "insertion") + 0.3
    # The trained model is confident on the images and near chance (10 classes) on the mean baseline.
    assert all(r.probability > 0.5 for r in gradcam)
    assert all(r.deletion.scores[-1] < 0.35 for r in gradcam)


def test_a_uniform_map_fades_the_whole_image_whatever_its_scale(shapes_model):
    model, x, _, labels, _ = shapes_model
    target = int(labels[0])
    curve = deletion_curve(model, x[0], torch.ones(32, 32), target=target, steps=4)
    same = deletion_curve(model, x[0], torch.full((32, 32), 7.0), target=target, steps=4)
    assert torch.equal(curve.scores, same.scores)
    fades = torch.stack([(1 - f) * x[0] for f in (0.0, 0.25, 0.5, 0.75, 1.0)])  # towards the mean (zeros)
    assert torch.allclose(curve.scores.float(), predict(model, fades)[:, target], atol=1e-5)


def test_average_drop_and_increase_follow_torch_cams_definition(shapes_model):
    model, x, _, labels, _ = shapes_model
    maps = torch.stack([explain(model, x[i], "gradcam", target=int(labels[i])) for i in range(x.shape[0])])
    out = confidence_change(model, x, maps, labels.tolist())
    assert ((out["average_drop"] >= 0) & (out["average_drop"] <= 100)).all()
    assert set(out["increase_in_confidence"].tolist()) <= {0.0, 100.0}
    masked = x * torch.stack([normalize_map(m) for m in maps])[:, None]
    p = predict(model, x)[torch.arange(4), labels].double()
    q = predict(model, masked)[torch.arange(4), labels].double()
    assert torch.allclose(out["average_drop"], 100 * (p - q).clamp_min(0) / p, atol=1e-4)
    assert torch.equal(out["increase_in_confidence"], 100.0 * (q > p).double())
    # The per-image figure in faithfulness_scores is the same number.
    one = faithfulness_scores(model, x[0], {"gradcam": maps[0]}, target=int(labels[0]))["gradcam"]
    assert one.average_drop == pytest.approx(float(out["average_drop"][0]), abs=1e-4)


def test_sobel_reference_map_finds_edges_and_reference_maps_have_the_image_shape():
    step = torch.zeros(3, 8, 10)
    step[:, :, 5:] = 1.0  # a vertical edge between columns 4 and 5
    edges = sobel_map(step)
    assert edges.shape == (8, 10)
    assert torch.allclose(edges[:, 4:6], torch.full((8, 2), 2.0))  # (1 + 2 + 1) / 2 on both sides of the step
    assert edges[:, :4].abs().sum() == 0 and edges[:, 6:].abs().sum() == 0
    assert sobel_map(torch.full((3, 8, 10), 0.3)).abs().max() < 1e-6
    # Given the normalisation, the edges are those of the picture: (x - 0.5) / 0.25 has the same edges x 4.
    assert torch.allclose(sobel_map((step - 0.5) / 0.25, mean=[0.5] * 3, std=[0.25] * 3), edges, atol=1e-5)
    refs = reference_maps(torch.randn(3, 12, 16), seed=3)
    assert set(refs) == {"random", "uniform", "sobel"}
    assert all(m.shape == (12, 16) for m in refs.values())
    assert torch.equal(refs["random"], reference_maps(torch.randn(3, 12, 16), seed=3)["random"])


# --------------------------------------------------------------------------------------------
# Which layer
# --------------------------------------------------------------------------------------------


def test_per_layer_resolutions_are_32_16_8_for_a_cifar_resnet20_at_32px():
    torch.manual_seed(0)
    model = build_model(get_preset("resnet20")).eval()
    x = torch.randn(3, 32, 32)
    report = layer_scores(model, x, block="layer2.1", steps=8)
    assert [(r.layer, r.resolution) for r in report.rows] == [
        ("layer1", (32, 32)), ("layer2", (16, 16)), ("layer3", (8, 8)),
        ("layer2.1", (16, 16)), ("layer2.1.bn2", (16, 16))]
    assert [r.kind for r in report.rows] == ["stage", "stage", "stage", "after_add", "branch"]
    assert all(r.map.shape == (32, 32) for r in report.rows)
    assert report.best is None  # one image names no best layer
    # A stage's last block is the stage's own output: the same map, not scored twice.
    last = layer_scores(model, x, block="layer3.2", steps=4)
    assert last.row("layer3.2").same_as == "layer3"
    assert torch.equal(last.row("layer3.2").map, last.row("layer3").map)


def test_block_layers_find_the_residual_branch_in_post_and_pre_activation_and_plain_blocks():
    x = torch.randn(3, 32, 32)
    preact = build_model(get_preset("resnet20").replace(preact=True)).eval()
    assert block_layers(preact, "layer2.0", x) == [("layer2.0", "after_add"), ("layer2.0.conv2", "branch")]
    plain = build_model(get_preset("plain20")).eval()
    assert block_layers(plain, "layer2.0", x) == [("layer2.0", "block")]
    bottleneck = build_model(ResNetConfig(block="bottleneck", stage_blocks=(1, 1), stage_widths=(8, 16), stem="cifar",
                                          stem_width=8, num_classes=3)).eval()
    assert block_layers(bottleneck, "layer1.0", x)[1] == ("layer1.0.bn3", "branch")
    with pytest.raises(AttributionError, match="not a block"):
        block_layers(plain, "layer2", x)


def test_layer_view_on_the_trained_model_scores_and_names_its_best_layer(shapes_model):
    model, x, masks, labels, _ = shapes_model
    report = layer_scores(model, x[0], target=int(labels[0]), mask=masks[0])
    # One image names no best layer; its sentence gives each layer's number and says why.
    assert report.best is None and report.sentence.startswith("On this one image Grad-CAM's insertion − deletion")
    assert "one image cannot decide it" in report.sentence
    assert all(f"{r.label} {r.faithfulness.score:.2f}" in report.sentence for r in report.rows)
    assert all(0 <= r.pointing_game <= 1 and 0 <= r.energy_inside <= 1 for r in report.rows)
    fig = layer_scores_figure(report.records())
    assert len(fig.data) == 3 and list(fig.data[0].x) == [r.label for r in report.rows]
    assert len(layer_maps_figure([r.label for r in report.rows], [r.map for r in report.rows]).data) == 3


# --------------------------------------------------------------------------------------------
# The trust table
# --------------------------------------------------------------------------------------------


def _row(method: str, faithfulness: float, rho: float | None, reference: bool = False, best_reference: float = 0.1):
    return TrustRow(method=method, label=method.title(), reference=reference, pointing_game=None, energy_inside=None,
                    deletion_auc=0.2, insertion_auc=0.2 + faithfulness, faithfulness=faithfulness, average_drop=50.0,
                    increase_in_confidence=0.0, randomization_rho=rho, randomization_final=rho,
                    faithful=not reference and faithfulness > best_reference,
                    sensitive=None if rho is None else rho < SENSITIVE_RHO)


def _images(spec: dict[str, tuple[float, float | None]], n: int = 6, jitter: float = 0.02):
    """n images' rows: each map's (faithfulness, ρ) plus a small image-to-image wobble, references unmarked."""
    wobble = [jitter * ((i * 7) % 5 - 2) / 2 for i in range(n)]
    return [[_row(name, f + w, None if rho is None else rho + w, reference=name in ("sobel", "random"))
             for name, (f, rho) in spec.items()] for w in wobble]


def test_the_verdict_names_the_method_the_numbers_support_over_several_images():
    spec = {"alpha": (0.5, 0.1), "beta": (0.7, 0.9), "gamma": (0.3, 0.2), "delta": (0.05, 0.0),
            "sobel": (0.1, None), "random": (0.0, None)}
    said = trust_verdict(_images(spec))
    assert said.verdict == "alpha"  # beta is more faithful but insensitive; gamma is less faithful than alpha
    assert said.sentence.startswith("Over these 6 images (mean ± 95% interval), Alpha is both faithful and sensitive")
    assert "Gamma passes both too" in said.sentence and "less faithful beyond the noise" in said.sentence
    assert "Beta is faithful (0.70 ± " in said.sentence and "Delta (0.05 ± " in said.sentence
    assert said.standing("delta").faithful is False and said.standing("beta").sensitive is False
    spec.update(alpha=(0.5, 0.8), gamma=(0.3, 0.7))
    said = trust_verdict(_images(spec))
    assert said.verdict is None and "no method is shown to be both faithful" in said.sentence


def _check_table(table, masks) -> None:
    for r in table.rows:
        assert 0 <= r.deletion_auc <= 1 and 0 <= r.insertion_auc <= 1 and 0 <= r.average_drop <= 100
        assert (r.randomization_rho is None) == r.reference
    uniform = table.row("uniform")
    assert uniform.pointing_game == pytest.approx(float(masks[0].float().mean()))  # ties split: chance
    assert uniform.faithfulness == pytest.approx(0.0, abs=1e-9)  # one fade, read both ways
    # One image decides nothing: its numbers, and that it cannot decide.
    assert table.verdict is None and "one image cannot decide it" in table.sentence
    assert all(f"{r.label} {r.faithfulness:.2f}" in table.sentence for r in table.rows if not r.reference)
    assert table.seconds["total"] >= table.seconds["faithfulness"] > 0


def test_trust_table_on_the_trained_model(shapes_model):
    # Three of the five methods: Integrated Gradients and Occlusion make the randomization cascade 3x longer.
    model, x, masks, labels, pre = shapes_model
    methods = ("gradcam", "guided_gradcam", "saliency")
    table = trust_table(model, x[0], target=int(labels[0]), mask=masks[0], methods=methods, mean=pre.mean, std=pre.std)
    assert [r.method for r in table.rows] == [*methods, "random", "uniform", "sobel"]
    assert table.randomization_steps == ["original", "fc", "layer3", "layer2", "layer1", "stem"]
    _check_table(table, masks)
    assert table.row("gradcam").faithful and table.row("gradcam").pointing_game == 1.0
    records = [f.record() for f in table.faithfulness_results.values()]
    assert len(deletion_insertion_figure(records, "the dataset mean").data) == 2 * len(records)
    assert len(trust_figure(table.records()).data) == len(table.rows)


@pytest.mark.slow
def test_full_trust_table_with_every_method(shapes_model):
    model, x, masks, labels, pre = shapes_model
    table = trust_table(model, x[1], target=int(labels[1]), mask=masks[1:2], mean=pre.mean, std=pre.std)
    assert [r.method for r in table.rows] == ["gradcam", "guided_gradcam", "integrated_gradients", "saliency",
                                              "occlusion", "random", "uniform", "sobel"]
    _check_table(table, masks[1:2])


def test_command_line_prints_the_numbers_as_json(capsys):
    assert cli_main(["--run", "bundled", "--image", "1", "--json", "--no-randomize", "--steps", "10"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["baseline"]["name"] == "mean" and "dataset mean" in data["baseline"]["text"]
    assert [r["method"] for r in data["trust_table"]["rows"]][-3:] == ["random", "uniform", "sobel"]
    assert [r["resolution"] for r in data["layers"]["rows"]] == ["32×32", "16×16", "8×8"]
    assert len(data["curves"]["gradcam"]["deletion"]) == 11
    assert cli_main(["--run", "/no/such/run"]) == 2
    assert "error:" in capsys.readouterr().err
