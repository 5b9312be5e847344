"""The loss landscape (Li et al. 2018) on real, tiny networks: directions, surfaces checked point by point against a
direct evaluation, the readings, the figures, the recorded 56-layer pair."""

from __future__ import annotations

import copy
import time

import pytest
import torch
import torch.nn.functional as F

from resnet_core.analysis import cifar_config
from resnet_core.analysis.landscape import (
    LIVE_SPEC,
    LandscapeError,
    LandscapeSpec,
    directions,
    filter_normalized_direction,
    held_out,
    landscape,
    landscape_job,
    load_landscapes,
    save_landscapes,
)
from resnet_core.analysis.landscape_reading import (
    doubling_radius,
    figures,
    landscape_reading,
    surface_curvature,
)
from resnet_core.charts.landscape import landscape_contour_figure, landscape_lines_figure, landscape_surface_figure
from resnet_core.estimates import landscape_seconds
from resnet_core.model.model import build_seeded
from resnet_core.status import Status

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = LandscapeSpec(steps_1d=5, steps_2d=5, span=0.5, n_images=12, directions=2, seed=3, batch_size=5)


def _net(residual: bool = True, seed: int = 0):
    model = build_seeded(cifar_config(8, residual=residual), seed)
    # Running statistics away from their defaults, so that a test sees whether eval mode uses them.
    # Drawn from the net's own seed: from the global generator they depended on which tests ran before (an
    # untrained net then scored 3 of 12 images right now and then, and "near chance" failed).
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return model


def _batch(n: int = 12):
    g = torch.Generator().manual_seed(7)
    return torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)


def _direct_loss(model, d1, d2, a, b, x, y) -> float:
    """The loss at θ + a·d1 + b·d2, computed by hand on a copy: new weights through load_state_dict, eval mode."""
    twin = copy.deepcopy(model)
    names = [n for n, _ in model.named_parameters()]
    state = twin.state_dict()
    for name, p, u, v in zip(names, model.parameters(), d1, d2):
        state[name] = p.detach() + a * u + b * v
    twin.load_state_dict(state)
    twin.eval()
    with torch.no_grad():
        return float(F.cross_entropy(twin(x), y))


def test_directions_are_filter_normalized_and_skip_batchnorm_and_biases():
    model = _net()
    first = directions(model, seed=5, count=2)
    again = directions(model, seed=5, count=2)
    assert all(torch.equal(u, v) for d, e in zip(first, again) for u, v in zip(d, e))  # seeded
    assert not torch.equal(first[0][0], first[1][0])  # two different directions
    for (name, p), d in zip(model.named_parameters(), first[0]):
        assert d.shape == p.shape
        if p.dim() <= 1:  # BatchNorm gamma/beta and the fc bias
            assert torch.count_nonzero(d) == 0, name
        else:  # every filter (output channel, fc row) has the norm of the weights' filter
            torch.testing.assert_close(d.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))
    assert any(p.dim() <= 1 for p in model.parameters()) and any(p.dim() == 4 for p in model.parameters())
    generator = torch.Generator().manual_seed(1)
    assert len(filter_normalized_direction(model, generator)) == len(list(model.parameters()))


def test_surface_and_slices_match_a_direct_evaluation_at_grid_points():
    model, (x, y) = _net(), _batch()
    model.train()  # the landscape uses eval mode and gives the model back in train mode
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = landscape(model, x, y, SPEC)
    assert result.complete and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # weights and buffers restored
    dirs = directions(model, SPEC.seed, SPEC.directions + 1)
    d1, d2 = dirs[0], dirs[-1]
    zero = [torch.zeros_like(p) for p in model.parameters()]
    for i, j in ((0, 0), (4, 4), (1, 3), (3, 2), (2, 2), (0, 4)):
        a, b = result.alphas_2d[i], result.alphas_2d[j]
        assert result.surface[j][i] == pytest.approx(_direct_loss(model, d1, d2, a, b, x, y), rel=1e-5)
    for k in range(SPEC.directions):
        for i in (0, 1, 4):
            a = result.alphas_1d[i]
            assert result.lines[k][i] == pytest.approx(_direct_loss(model, dirs[k], zero, a, 0.0, x, y), rel=1e-5)
    # The first slice is the surface's row through β = 0, and the centre is the trained net's loss.
    assert result.lines[0] == pytest.approx(result.surface[2], rel=1e-6)
    assert result.center_loss == pytest.approx(_direct_loss(model, zero, zero, 0, 0, x, y), rel=1e-6)
    assert result.lines[1] != pytest.approx(result.lines[0])


def test_bad_input_gets_a_message():
    with pytest.raises(LandscapeError, match="odd"):
        LandscapeSpec(steps_2d=12)
    with pytest.raises(LandscapeError, match="steps_2d"):
        LandscapeSpec(steps_2d=101)
    with pytest.raises(LandscapeError, match="span"):
        LandscapeSpec(span=0)
    x, y = _batch(4)
    with pytest.raises(LandscapeError, match="12 held-out images"):
        landscape(_net(), x, y, SPEC)
    with pytest.raises(LandscapeError, match="mean and std"):
        held_out(4, {}, seed=1)


def test_doubling_radius_and_curvature_on_known_shapes():
    xs = [i / 10 - 1 for i in range(21)]
    assert doubling_radius(xs, [1 + 4 * x * x for x in xs]) == pytest.approx(0.5)  # 1 + 4a² = 2 at |a| = 0.5
    assert doubling_radius(xs, [1 + 0.5 * x * x for x in xs]) is None  # never doubles within ±1
    assert doubling_radius(xs, [1 + 4 * (x - 0.2) ** 2 for x in xs]) == pytest.approx(0.5, abs=0.02)  # from the low
    bowl = [[x * x + y * y for x in xs] for y in xs]
    saddle = [[x * x - y * y for x in xs] for y in xs]
    assert surface_curvature(xs, bowl).convex_share == 1.0 and surface_curvature(xs, bowl).ratio == 0.0
    assert surface_curvature(xs, saddle).convex_share == 0.0
    assert surface_curvature(xs, saddle).ratio == pytest.approx(1.0)
    half = [[x * x + (y * y if x < 0 else -y * y) for x in xs] for y in xs]  # convex left, saddle right
    assert 0.3 < surface_curvature(xs, half).convex_share < 0.7


def test_reading_compares_only_beyond_the_spread(tmp_path):
    x, y = _batch()
    pair = [landscape(_net(residual=False), x, y, SPEC), landscape(_net(residual=True), x, y, SPEC)]
    text = landscape_reading(pair)
    for f in map(figures, pair):
        assert f.label in text and f"{100 * f.convex_share:.0f}%" in text
        assert f"{f.center_loss:.3f}" in text
    # Untrained nets: the caption says their landscape is not a trained minimum's.
    assert pair[0].classes == 10 and all(r.center_acc < 0.2 for r in pair)
    assert text.count("is near chance at its trained weights") == 2
    assert "not compared here" in text and "wider" not in text and "Li et al. found" not in text
    # Saved and read back exactly as the figures quote them.
    save_landscapes(pair, tmp_path / "l.json")
    assert landscape_reading(load_landscapes(tmp_path / "l.json")) == text
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(LandscapeError, match="bad.json"):
        load_landscapes(tmp_path / "bad.json")


def test_figures_share_one_colour_scale():
    x, y = _batch()
    pair = [landscape(_net(residual=False), x, y, SPEC), landscape(_net(residual=True), x, y, SPEC)]
    contour = landscape_contour_figure(pair)
    assert [t.coloraxis for t in contour.data if t.type == "contour"] == ["coloraxis", "coloraxis"]
    assert contour.layout.coloraxis.cmax > contour.layout.coloraxis.cmin
    assert {(t.contours.start, t.contours.size) for t in contour.data if t.type == "contour"}.__len__() == 1
    surface = landscape_surface_figure(pair)
    assert [t.coloraxis for t in surface.data] == ["coloraxis", "coloraxis"]
    lines = landscape_lines_figure(pair)
    assert len([t for t in lines.data if t.type == "scatter"]) == 2 * SPEC.directions


def test_job_runs_both_nets_in_the_background_and_can_stop():
    x, y = _batch()
    job = landscape_job([_net(residual=False), _net(residual=True)], x, y, SPEC).start()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status is Status.FINISHED and [r.label for r in snap.result] == ["plain-8", "ResNet-8"]
    assert snap.done == snap.total == 2 * SPEC.evaluations
    big = LandscapeSpec(steps_1d=51, steps_2d=51, span=0.5, n_images=12, directions=1)
    job = landscape_job([_net()], x, y, big).start()
    time.sleep(0.2)
    job.stop()
    assert job.join(30) and job.snapshot().status is Status.STOPPED


def test_the_estimate_scales_with_the_work():
    cfgs = [cifar_config(20, residual=False), cifar_config(20)]
    small = landscape_seconds(cfgs, LandscapeSpec(steps_1d=5, steps_2d=5, n_images=8, directions=1))
    assert 0 < small < landscape_seconds(cfgs, LandscapeSpec(steps_1d=5, steps_2d=9, n_images=8, directions=1))
    assert landscape_seconds(()) == landscape_seconds(cfgs, LIVE_SPEC)  # the live pair by default


def test_the_recorded_pair_is_small_has_provenance_and_reads():
    from resnet_core.assets import ASSETS_DIR
    from resnet_core.landscape_assets import RECORDED_LANDSCAPE, matches_recipe, recorded_landscape

    folder = ASSETS_DIR / RECORDED_LANDSCAPE
    if not folder.is_dir():
        pytest.skip("the recorded landscape is not built in this checkout")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 1.5e6
    recorded = recorded_landscape()
    assert recorded is not None
    results, prov = recorded
    assert [r.label for r in results] == ["plain-56", "ResNet-56"] and all(r.complete for r in results)
    assert prov.seconds > 0 and prov.torch and "seed" in prov.recipe["train"]
    # Trained with the degradation demo's recipe as it is now (else: rebuild with --only landscape).
    assert matches_recipe(prov)
    for r in results:  # the provenance's figures are the surfaces' own
        f = figures(r)
        assert prov.results[r.label]["convex_share"] == pytest.approx(f.convex_share, abs=1e-4)
    assert "plain-56" in landscape_reading(results)


@pytest.mark.slow
def test_the_view_opens_on_the_recorded_pair_and_computes_the_live_pair_next_to_its_button(monkeypatch):
    from streamlit.testing.v1 import AppTest

    import ui.plain_vs_residual.landscape as view
    from resnet_core.assets import bundled_model
    from resnet_core.landscape_assets import recorded_landscape

    if bundled_model(True) is None or bundled_model(False) is None:
        pytest.skip("the bundled Shapes models are not in this checkout")
    monkeypatch.setattr(view, "LIVE_SPEC", LandscapeSpec(steps_1d=5, steps_2d=5, n_images=16, directions=2))

    def script():
        from ui.plain_vs_residual.landscape import landscape_section

        landscape_section()

    at = AppTest.from_function(script, default_timeout=120).run()
    assert not at.exception and not at.error
    captions = [c.value for c in at.caption]
    assert any("a 5 × 5 surface each, on 16 held-out images: about" in c for c in captions)  # said before the click
    charts = lambda: {c.key for c in at.get("plotly_chart")}  # noqa: E731
    recorded = recorded_landscape()
    if recorded is not None:  # the recorded pair is drawn at once, with its caption read off its surfaces
        assert {"pvr_landscape_rec_1d", "pvr_landscape_rec_2d", "pvr_landscape_rec_3d"} <= charts()
        assert any(landscape_reading(recorded[0]) in c for c in captions)
    assert "pvr_landscape_live_2d" not in charts()
    at.button(key="pvr_landscape_start").click().run()
    job = at.session_state["pvr_landscape_job"]
    assert job.join(120)
    at.run()
    results = job.snapshot().result
    assert [r.label for r in results] == ["plain-20", "ResNet-20"] and all(r.complete for r in results)
    assert {"pvr_landscape_live_1d", "pvr_landscape_live_2d", "pvr_landscape_live_3d"} <= charts()
    assert any(landscape_reading(results) in c.value for c in at.caption)
    metrics = {m.label: m.value for m in at.metric}
    for r in results:
        f = figures(r)
        assert metrics[f"{r.label}: loss doubles at distance"] == (
            "beyond the slice" if f.radius is None else f"{f.radius:.2f}")


def test_the_page_has_the_section_and_a_link_from_home_points_at_it():
    from streamlit.testing.v1 import AppTest

    from tests.e2e.browser import ROOT

    at = AppTest.from_file(str(ROOT / "pages" / "3_Plain_vs_Residual.py"), default_timeout=120)
    at.query_params.update({"demo": "landscape"})
    at.run()
    assert not at.exception and not at.error
    assert "6 · The loss landscape" in [h.value for h in at.header]
    assert any("#loss-landscape" in i.value for i in at.info)
    assert any(c.value.startswith("The bundled plain-20 and ResNet-20") and " on this " in c.value
               for c in at.caption)


def test_home_says_when_the_landscape_demo_answers():
    from resnet_core.assets import demo_times
    from resnet_core.landscape_assets import recorded_landscape
    from ui.demos import DEMOS, recorded_times_text, timing_text

    assert DEMOS["landscape"].page == "pages/3_Plain_vs_Residual.py"
    text = timing_text("landscape", model_ready=False)
    recorded = recorded_landscape()
    if recorded is None:
        assert text.startswith("about") and " on this " in text
        return
    assert text.startswith("the recorded 56-layer pair at once; the live 20-layer pair, about") and " on this " in text
    if demo_times():
        assert recorded_times_text("landscape") == (f"Recorded on {recorded[1].device}, {recorded[1].day}: both "
                                                    f"56-layer landscapes took {recorded[1].seconds:.0f}\u00a0s.")
