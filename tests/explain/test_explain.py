"""Attributions on real (tiny) ResNets: shapes, signs, safety, and the two trust checks."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from resnet_core import ResNetConfig, build_model
from resnet_core.explain import (
    METHODS,
    AttributionError,
    colorize,
    energy_inside,
    explain,
    explain_batch,
    localization_scores,
    normalize_map,
    overlay,
    png_bytes,
    pointing_game,
    predict,
    randomization_check,
    rank,
    spearman,
    target_layers,
    topk,
)

TINY = ResNetConfig(block="basic", stage_blocks=(1, 1), stage_widths=(8, 16), stem="cifar", stem_width=8,
                    shortcut="B", num_classes=2)
SIZE = 20
OBJECT = 5


def _tiny_model(seed: int = 0, **changes) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(TINY.replace(**changes))


def make_patches(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A task with a known answer: the class is the colour of a 5x5 square (red or green) at a random
    place on grey noise, next to a blue distractor square. Only the square's pixels decide the class,
    so a faithful map must point at it. Returns normalised images, labels and the squares' masks."""
    g = torch.Generator().manual_seed(seed)
    x = 0.5 + 0.08 * torch.randn(n, 3, SIZE, SIZE, generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    masks = torch.zeros(n, SIZE, SIZE, dtype=torch.bool)
    colours = torch.tensor([[0.95, 0.15, 0.15], [0.15, 0.85, 0.15]])
    for i in range(n):
        dy, dx = torch.randint(0, SIZE - 4, (2,), generator=g).tolist()
        x[i, :, dy:dy + 4, dx:dx + 4] = torch.tensor([0.2, 0.2, 0.9])[:, None, None]
        cy, cx = torch.randint(0, SIZE - OBJECT, (2,), generator=g).tolist()
        x[i, :, cy:cy + OBJECT, cx:cx + OBJECT] = colours[labels[i]][:, None, None]
        masks[i, cy:cy + OBJECT, cx:cx + OBJECT] = True
    return (x - 0.5) / 0.25, labels, masks


@pytest.fixture(scope="module")
def trained():
    """A tiny ResNet trained on the patch task until it is right on held-out images."""
    x, y, _ = make_patches(640, seed=0)
    model = _tiny_model(seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(perm), 32):
            idx = perm[i:i + 32]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    xv, yv, mv = make_patches(48, seed=100)
    accuracy = float((predict(model, xv).argmax(1) == yv).float().mean())
    assert accuracy >= 0.95, f"the tiny model did not learn the patch task (accuracy {accuracy:.2f})"
    return model, xv, yv, mv


def _hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._backward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_one_nonnegative_input_sized_map_per_image(method):
    model = _tiny_model()
    x, _, _ = make_patches(3, seed=1)
    result = explain_batch(model, x, method, targets=[0, 1, 0])
    assert result.maps.shape == (3, SIZE, SIZE)
    assert result.maps.dtype == torch.float32 and torch.isfinite(result.maps).all()
    assert (result.maps >= 0).all()
    assert result.targets == [0, 1, 0]
    if method != "gradcam":  # a ReLU'd Grad-CAM of an untrained net may legitimately be all zero
        assert (result.maps.flatten(1).amax(1) > 0).all()
    single = explain(model, x[1], method, target=1)
    assert single.shape == (SIZE, SIZE)


def test_explain_accepts_3d_and_4d_input_and_predicts_the_target_by_default():
    model = _tiny_model()
    x, _, _ = make_patches(1, seed=2)
    predicted = int(predict(model, x)[0].argmax())
    by_default = explain_batch(model, x, "gradcam")
    assert by_default.targets == [predicted]
    assert torch.allclose(by_default.maps[0], explain(model, x[0], "gradcam", target=predicted))
    assert torch.allclose(explain(model, x, "saliency"), explain(model, x[0], "saliency", target=predicted))


def test_batch_gradcam_equals_one_image_at_a_time():
    model = _tiny_model()
    x, _, _ = make_patches(4, seed=3)
    batch = explain_batch(model, x, "gradcam", targets=[1, 0, 1, 1]).maps
    for i, t in enumerate([1, 0, 1, 1]):
        assert torch.allclose(batch[i], explain(model, x[i], "gradcam", target=t), atol=1e-6)


def test_model_state_is_restored_and_gradients_work_under_no_grad():
    model = _tiny_model()
    model.train()
    model.layer1.eval()  # a mixed state (e.g. frozen BN) must come back exactly as it was
    modes = {name: m.training for name, m in model.named_modules()}
    x, _, _ = make_patches(2, seed=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for method in METHODS:
            explain_batch(model, x, method)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert _hook_count(model) == 0
    # eval mode during the explanation: BN running statistics were not updated
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_explaining_works_inside_inference_mode():
    model = _tiny_model()
    with torch.inference_mode():
        x, _, _ = make_patches(2, seed=11)  # an inference tensor, as a no-grad app would hand over
        maps = explain_batch(model, x, "gradcam", targets=[0, 1]).maps
        saliency = explain(model, x[0], "saliency", target=0)
    assert maps.shape == (2, SIZE, SIZE) and torch.isfinite(maps).all()
    assert saliency.shape == (SIZE, SIZE) and saliency.max() > 0


def test_hooks_are_removed_even_when_the_forward_pass_fails():
    model = _tiny_model()

    def explode(module, inputs, output):
        raise RuntimeError("boom")

    own = model.layer1.register_forward_hook(explode)
    x, _, _ = make_patches(1, seed=5)
    for method in ("gradcam", "guided_gradcam", "saliency"):
        with pytest.raises(RuntimeError, match="boom"):
            explain(model, x, method)
        assert _hook_count(model) == 1  # only the test's own hook is left
    own.remove()
    assert _hook_count(model) == 0
    assert model.training  # restored after the failure too


def test_guided_gradcam_works_on_our_separate_relus():
    model = _tiny_model()
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(relus) == len({id(m) for m in relus}) and all(not m.inplace for m in relus)
    x, _, _ = make_patches(2, seed=6)
    guided = explain_batch(model, x, "guided_gradcam", targets=[0, 1]).maps
    assert torch.isfinite(guided).all() and (guided > 0).any()
    assert _hook_count(model) == 0


def test_target_layers_offer_stages_blocks_and_convs_with_the_last_stage_first():
    model = _tiny_model()
    layers = target_layers(model)
    assert layers[0] == model.stage_names[-1] == "layer2"
    for name in ("layer1", "layer1.0", "layer2.0.conv2", "layer1.0.conv1", "conv1"):
        assert name in layers
    x, _, _ = make_patches(1, seed=7)
    for name in ("layer1", "layer2.0.conv1", "conv1"):
        assert explain(model, x, "gradcam", target=0, layer=name).shape == (SIZE, SIZE)
    with pytest.raises(AttributionError, match="'layer9' is not in this model; choose one of: layer2"):
        explain(model, x, "gradcam", layer="layer9")


def test_bad_requests_get_clear_errors():
    model = _tiny_model()
    x, _, _ = make_patches(2, seed=8)
    with pytest.raises(AttributionError, match="unknown method 'lime'"):
        explain(model, x[0], "lime")
    with pytest.raises(AttributionError, match="target class 5 is out of range: the model has 2 classes"):
        explain(model, x[0], "gradcam", target=5)
    with pytest.raises(AttributionError, match="2 images but 1 targets"):
        explain_batch(model, x, "gradcam", targets=[0])
    with pytest.raises(AttributionError, match="takes 3-channel images"):
        explain(model, torch.zeros(1, 1, SIZE, SIZE), "gradcam")
    with pytest.raises(AttributionError, match="float"):
        explain(model, torch.zeros(3, SIZE, SIZE, dtype=torch.uint8), "gradcam")
    with pytest.raises(AttributionError, match="unknown option"):
        explain(model, x[0], "integrated_gradients", steps=3)


def test_integrated_gradients_options_and_smoothgrad():
    model = _tiny_model()
    x, _, _ = make_patches(2, seed=9)
    plain = explain_batch(model, x, "integrated_gradients", targets=[0, 1], n_steps=8, internal_batch_size=4).maps
    smooth = explain_batch(model, x, "integrated_gradients", targets=[0, 1], n_steps=8,
                           smoothgrad_samples=3, smoothgrad_std=0.2).maps
    assert plain.shape == smooth.shape == (2, SIZE, SIZE)
    assert not torch.allclose(plain, smooth)


def test_occlusion_marks_the_occluded_evidence():
    """A linear 'model' whose logit is the sum of one patch: occlusion must light up exactly there."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 1, bias=False), torch.nn.Flatten(),
                                torch.nn.Linear(SIZE * SIZE, 1))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[2].weight.zero_()
        model[2].weight.view(SIZE, SIZE)[8:12, 8:12] = 1.0
        model[2].bias.zero_()
    x = torch.ones(1, 3, SIZE, SIZE)
    m = explain(model, x, "occlusion", target=0, window=4, stride=4)
    assert m[8:12, 8:12].min() > 0 and m.sum() == pytest.approx(m[8:12, 8:12].sum())


def test_normalize_map_handles_flat_and_zero_maps():
    zero = normalize_map(torch.zeros(5, 5))
    assert torch.equal(zero, torch.zeros(5, 5))
    assert torch.equal(normalize_map(torch.full((4, 4), 3.0)), torch.zeros(4, 4))
    m = normalize_map(torch.tensor([[1.0, 3.0], [2.0, float("nan")]]))
    assert m.min() == 0 and m.max() == 1 and torch.isfinite(m).all()
    batch = normalize_map(torch.stack([torch.arange(4.0).view(2, 2), 10 * torch.arange(4.0).view(2, 2)]))
    assert torch.allclose(batch[0], batch[1])  # each map scaled by its own range


def test_overlay_blends_at_the_image_size_and_downloads_as_png():
    image = Image.new("RGB", (40, 30), (10, 20, 30))
    cam = torch.zeros(7, 7)
    cam[3, 3] = 1.0
    for colormap in ("jet", "viridis", "inferno", "turbo"):
        out = overlay(image, cam, alpha=0.5, colormap=colormap)
        assert out.size == (40, 30) and out.mode == "RGB"
    # alpha 0 is the photo; an all-zero map blends the colour map's lowest colour everywhere
    assert list(overlay(image, cam, alpha=0.0).getdata()) == list(image.getdata())
    flat = overlay(image, torch.zeros(7, 7), alpha=1.0, colormap="viridis")
    assert set(flat.getdata()) == {tuple(int(c) for c in colorize(torch.zeros(1, 1), "viridis")[0, 0])}
    data = png_bytes(out)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(io.BytesIO(data)).size == (40, 30)
    with pytest.raises(AttributionError, match="unknown colour map"):
        overlay(image, cam, colormap="rainbow")


def test_predict_and_topk():
    model = _tiny_model()
    x, _, _ = make_patches(3, seed=10)
    probs = predict(model, x)
    assert probs.shape == (3, 2) and torch.allclose(probs.sum(1), torch.ones(3))
    rows = topk(probs[0], ["red", "green"], k=5)
    assert [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["probability"] >= rows[1]["probability"]
    assert {r["label"] for r in rows} == {"red", "green"}
    assert predict(model, x[0]).shape == (2,)


def test_pointing_game_and_energy_have_known_answers():
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[:, :2, :2] = True  # a quarter of the image
    maps = torch.zeros(3, 4, 4)
    maps[0, 0, 0] = 1.0                 # peak inside
    maps[1, 3, 3] = 1.0                 # peak outside
    maps[2] = 1.0                       # uniform: every pixel ties
    assert pointing_game(maps, masks).tolist() == [1.0, 0.0, 0.25]
    maps[0, 3, 3] = 3.0                 # a bigger peak outside, 1/4 of the energy inside
    assert energy_inside(maps, masks).tolist() == pytest.approx([0.25, 0.0, 0.25])
    assert energy_inside(torch.zeros(1, 4, 4), masks[:1]).tolist() == [0.25]  # no energy: chance


def test_ranks_average_ties_and_spearman_is_rank_based():
    assert rank(torch.tensor([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]
    a = torch.rand(6, 6, generator=torch.Generator().manual_seed(0))
    assert spearman(a, a.exp()) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, torch.zeros(6, 6)) == 0.0


def test_trained_gradcam_points_at_the_object_far_above_chance(trained):
    model, xv, yv, mv = trained
    rows = {r["method"]: r for r in localization_scores(model, xv, mv, methods=("gradcam", "saliency"),
                                                        targets=yv.tolist())}
    chance = rows["uniform"]["mask_fraction"]
    assert rows["uniform"]["pointing_game"] == pytest.approx(chance)
    assert rows["uniform"]["energy_inside"] == pytest.approx(chance)
    assert rows["random"]["energy_inside"] == pytest.approx(chance, abs=0.02)
    gradcam = rows["gradcam"]
    assert gradcam["n"] == len(yv)
    assert gradcam["pointing_game"] >= 0.8 and gradcam["pointing_game"] > 4 * chance
    assert gradcam["pointing_game"] > rows["random"]["pointing_game"] + 0.5
    assert gradcam["energy_inside"] > 2 * chance and gradcam["energy_inside"] > rows["random"]["energy_inside"] + 0.1


def test_untrained_model_does_not_localise_like_the_trained_one(trained):
    model, xv, yv, mv = trained
    fresh = _tiny_model(seed=3)
    trained_pg = localization_scores(model, xv, mv, targets=yv.tolist())[0]["pointing_game"]
    fresh_pg = localization_scores(fresh, xv, mv, targets=yv.tolist())[0]["pointing_game"]
    assert trained_pg > fresh_pg + 0.3


def test_gradcam_decorrelates_under_cascading_randomization(trained):
    model, xv, yv, _ = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    finals, lowest = [], []
    for i in range(3):
        result = randomization_check(model, xv[i], ("gradcam", "saliency"), target=int(yv[i]))
        assert result.steps == ["original", "fc", "layer2.0", "layer1.0", "stem"]
        corr = result.correlations["gradcam"]
        assert corr[0] == 1.0 and len(corr) == len(result.steps)
        assert all(-1.0 <= c <= 1.0 for c in corr)
        assert len(result.maps["gradcam"]) == len(result.steps)
        finals.append(corr[-1])
        lowest.append(min(corr[1:]))
        assert len(result.rows()) == 2 * len(result.steps)
    assert sum(finals) / 3 < 0.5, finals
    assert max(lowest) < 0.5, lowest
    # the check works on a copy: the trained model is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_figures_for_the_page_show_the_numbers_given():
    from resnet_core.charts import localization_figure, probability_figure, randomization_figure

    rows = topk(torch.tensor([0.1, 0.6, 0.3]), ["a", "b", "c"], k=3)
    bars = probability_figure(rows).data[0]
    assert list(bars.y) == ["a ", "c ", "b "] and list(bars.x) == pytest.approx([10.0, 30.0, 60.0])  # best on top
    table = [{"method": "gradcam", "label": "Grad-CAM", "pointing_game": 0.9, "energy_inside": 0.5,
              "mask_fraction": 0.1, "n": 8}]
    loc = localization_figure(table)
    assert [list(t.y) for t in loc.data] == [[90.0], [50.0]]
    assert any(shape.y0 == pytest.approx(10.0) for shape in loc.layout.shapes)  # the chance line
    rand = randomization_figure(["original", "fc", "stem"], {"gradcam": [1.0, 0.4, 0.1]}, {"gradcam": "Grad-CAM"})
    assert rand.data[0].name == "Grad-CAM" and list(rand.data[0].y) == [1.0, 0.4, 0.1]


def test_an_attribution_method_is_one_registry_entry_and_an_unknown_one_fails_loudly():
    """A sixth method is one register_method call: explain_batch, the cost estimates and the charts' colours follow;
    an unknown name is an AttributionError everywhere (never silently another method)."""
    import torch

    from resnet_core import build_model, get_preset
    from resnet_core.charts.explain import map_color
    from resnet_core.explain import AttributionError, explain_batch
    from resnet_core.explain.costs import method_passes
    from resnet_core.explain.registry import _METHODS, Method, get_method, method_names, register_method

    def constant(model, x, targets, layer, opts):
        return torch.ones(x.shape[0], *x.shape[-2:]), [0] * x.shape[0], None

    register_method(Method("constant", "Constant map", False, lambda h, w, o: 0.5, constant, "#000000"))
    try:
        model = build_model(get_preset("resnet20").replace(stage_blocks=(1, 1, 1))).eval()
        result = explain_batch(model, torch.rand(2, 3, 32, 32), "constant")
        assert result.maps.shape == (2, 32, 32) and float(result.maps.min()) == 1.0
        assert method_passes("constant", 32, 32) == 0.5 and "constant" in method_names()
        assert get_method("constant").label == "Constant map" and map_color("constant") == "#000000"
    finally:
        _METHODS.pop("constant")
    for call in (lambda: explain_batch(model, torch.rand(1, 3, 32, 32), "sixth"),
                 lambda: method_passes("sixth", 32, 32), lambda: get_method("sixth")):
        with pytest.raises(AttributionError, match="unknown method 'sixth'"):
            call()


def test_a_reference_map_is_one_registry_entry_and_every_check_scores_it():
    """A fourth reference map (here: a centred blob, which knows the image's frame but not its content) is one
    register_reference call: the localization check scores it beside the methods when it is at chance, the trust
    table adds it as a reference row (never "faithful"), and the charts give it its colour."""
    from resnet_core import build_model, get_preset
    from resnet_core.charts.explain import map_color
    from resnet_core.explain import AttributionError, localization_scores, trust_table
    from resnet_core.explain.references import _REFERENCES, Reference, reference_batch, register_reference

    def centre(images, gen, mean, std):
        h, w = images.shape[-2:]
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        return (-(xs ** 2 + ys ** 2)).exp().expand(images.shape[0], h, w).clone()

    register_reference(Reference("centre", "Centre blob", "a centred blob", centre, "#123456", at_chance=True))
    try:
        model = build_model(get_preset("resnet20").replace(stage_blocks=(1, 1, 1))).eval()
        x, masks = torch.rand(3, 3, 32, 32), torch.zeros(3, 32, 32, dtype=torch.bool)
        masks[:, 12:20, 12:20] = True
        rows = localization_scores(model, x, masks, ["gradcam"])
        assert [(r["method"], r["reference"]) for r in rows] == [
            ("gradcam", False), ("random", True), ("uniform", True), ("centre", True)]
        assert rows[-1]["pointing_game"] == 1.0  # its peak is the centre, where this mask is
        table = trust_table(model, x[0], target=0, methods=["gradcam"], steps=4, randomize=False)
        row = next(r for r in table.rows if r.method == "centre")
        assert row.reference and row.label == "Centre blob" and not row.faithful
        assert map_color("centre") == "#123456"
    finally:
        _REFERENCES.pop("centre")
    with pytest.raises(AttributionError, match="unknown reference map 'centre'"):
        reference_batch("centre", torch.rand(1, 3, 8, 8))
