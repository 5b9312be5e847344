"""The Plain vs Residual page, driven through Streamlit's AppTest with real (tiny) measurements."""

import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from resnet_core.model import get_preset
from resnet_core.status import Status
from ui.captions import CAPTIONS

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "3_Plain_vs_Residual.py")


@pytest.fixture(autouse=True)
def one_thread():
    """As in test_gradients.py: one intra-op thread for tiny nets on a shared CPU, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=120)


def _captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def _chart_keys(at: AppTest) -> set[str]:
    return {c.key for c in at.get("plotly_chart")}


def test_page_renders_without_exceptions():
    at = _page().run()
    assert not at.exception and not at.error
    assert [h.value for h in at.header][:2] == ["1 · Gradient norms at initialization", "2 · Depth sweep"]
    assert not at.warning  # resnet20 has no zero-init
    # it opens teaching: the profile of the default model is measured without a click
    assert {"pvr_profile_convs", "pvr_profile_blocks"} <= _chart_keys(at)
    assert [b.label for b in at.button if b.key.startswith("demo_")] == ["Run demo", "Run demo"]


def test_measuring_the_profile_draws_both_charts_with_captions():
    at = _page().run()
    at.slider(key="pvr_seeds").set_value(2)
    at.select_slider(key="pvr_batch").set_value(8)
    at.select_slider(key="pvr_size").set_value(16)
    at.button(key="pvr_profile_run").click().run()
    assert not at.exception and not at.error
    pair = at.session_state["pvr_profile"]
    assert (pair.a.label, pair.b.label) == ("ResNet-20", "plain-20") and pair.seeds == (0, 1)
    labels = [m.label for m in at.metric]
    assert "ResNet-20: first / last conv gradient" in labels and "plain-20: first / last conv gradient" in labels
    assert {"pvr_profile_convs", "pvr_profile_blocks"} <= _chart_keys(at)
    assert CAPTIONS["profile"] in _captions(at) and CAPTIONS["blocks"] in _captions(at)


def test_zero_init_model_shows_the_warning_and_its_caption():
    at = _page()
    at.session_state["model_config"] = get_preset("resnet20").replace(zero_init_residual=True, stage_blocks=(1, 1, 1))
    at.run()
    assert any("exactly zero gradient" in w.value for w in at.warning)
    at.select_slider(key="pvr_batch").set_value(8)
    at.select_slider(key="pvr_size").set_value(16)
    at.slider(key="pvr_seeds").set_value(1)
    at.button(key="pvr_profile_run").click().run()
    assert not at.exception and not at.error
    assert CAPTIONS["zero_init"] in _captions(at)
    assert "∞" in next(m.value for m in at.metric if m.label.startswith("ResNet-8"))


def test_comparing_a_model_with_itself_is_an_error():
    at = _page().run()
    at.selectbox(key="pvr_against").set_value("preset").run()
    at.selectbox(key="pvr_other").set_value("resnet20").run()
    at.button(key="pvr_profile_run").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "nothing to compare" in at.error[0].value


def test_bad_depths_show_an_error_and_start_nothing():
    at = _page().run()
    at.text_input(key="pvr_sweep_extra").set_value("57")
    at.button(key="pvr_sweep_start").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "6n+2" in at.error[0].value and "56 or 62" in at.error[0].value
    assert "pvr_sweep_job" not in at.session_state
    at.text_input(key="pvr_sweep_extra").set_value("twenty")
    at.button(key="pvr_sweep_start").click().run()
    assert "not a whole number" in at.error[0].value
    at.text_input(key="pvr_sweep_extra").set_value("")
    at.multiselect(key="pvr_sweep_depths").set_value([])
    at.button(key="pvr_sweep_start").click().run()
    assert "at least one depth" in at.error[0].value
    # the same depth twice for side-by-side training
    at.selectbox(key="pvr_depth_a").set_value(20)
    at.selectbox(key="pvr_depth_b").set_value(20)
    at.number_input(key="pvr_n_train").set_value(256)
    at.button(key="pvr_train_start").click().run()
    assert "nothing to compare" in at.error[0].value and "pvr_pair" not in at.session_state


def test_sweep_runs_in_the_background_and_its_chart_appears():
    at = _page().run()
    at.multiselect(key="pvr_sweep_depths").set_value([8, 14])
    at.select_slider(key="pvr_sweep_size").set_value(16)
    at.toggle(key="pvr_sweep_nobn").set_value(True)
    at.button(key="pvr_sweep_start").click().run()
    assert not at.exception and not at.error
    job = at.session_state["pvr_sweep_job"]
    assert job.join(120)
    at.run()
    assert job.snapshot().status is Status.FINISHED
    assert {"pvr_sweep_chart", "pvr_sweep_chart_nobn"} <= _chart_keys(at)  # with BN and without
    assert CAPTIONS["sweep"] in _captions(at) and CAPTIONS["sweep_no_bn"] in _captions(at)


def test_stop_button_stops_a_running_sweep():
    at = _page().run()
    at.multiselect(key="pvr_sweep_depths").set_value([56, 110])
    at.number_input(key="pvr_sweep_seeds").set_value(5)
    at.toggle(key="pvr_sweep_nobn").set_value(True)  # 20 networks: far longer than the click below
    at.button(key="pvr_sweep_start").click().run()
    assert not at.button(key="pvr_sweep_stop").disabled
    at.button(key="pvr_sweep_stop").click().run()
    job = at.session_state["pvr_sweep_job"]
    assert job.join(120)
    at.run()
    snap = job.snapshot()
    assert snap.status is Status.STOPPED and snap.result.stopped and len(snap.result.points) < 20
    assert not at.exception and any("was stopped" in i.value for i in at.info)
    assert "pvr_sweep_chart" in _chart_keys(at)  # what was measured before Stop is still drawn


@pytest.mark.slow
def test_training_four_runs_then_lesion_study_then_shattering(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_RUNS_DIR", str(tmp_path / "runs"))
    at = _page().run()
    at.selectbox(key="pvr_depth_a").set_value(8)
    at.selectbox(key="pvr_depth_b").set_value(14)
    at.number_input(key="pvr_n_train").set_value(256)
    at.number_input(key="pvr_epochs").set_value(1)
    at.number_input(key="pvr_every").set_value(2)
    at.button(key="pvr_train_start").click().run()
    assert not at.exception and not at.error
    pair = at.session_state["pvr_pair"]
    assert pair.names == ["plain-8", "ResNet-8", "plain-14", "ResNet-14"]
    deadline = time.monotonic() + 180
    while pair.running:  # four worker processes train and write their run folders
        assert time.monotonic() < deadline, "the four runs did not finish in time"
        time.sleep(0.3)
    assert pair.view().status is Status.FINISHED, pair.view().error
    assert sorted(p.parent for p in (tmp_path / "runs").glob("*/model.pt")) == sorted(pair.run_dirs.values())
    at.run()  # the live fragment notices the end and reruns the page
    at.run()
    assert not at.exception and not at.error
    # loss, accuracy, two heatmaps (plain-14 and ResNet-14)
    assert {"pvr_train_loss", "pvr_train_acc", "pvr_heat_plain-14", "pvr_heat_ResNet-14"} <= _chart_keys(at)
    assert CAPTIONS["training"] in _captions(at) and CAPTIONS["heatmap"] in _captions(at)

    at.button(key="pvr_lesion_start").click().run()
    assert not at.exception and not at.error
    job = at.session_state["pvr_lesion_job"]
    assert job.join(120)
    at.run()
    results = job.snapshot().result
    assert [r.label for r in results] == ["plain-14", "ResNet-14"]
    assert [e.path for e in results[0].entries if e.accuracy is None] == ["layer2.0", "layer3.0"]
    assert CAPTIONS["lesion"] in _captions(at)
    # four steps on Shapes leave both nets near chance: the page says so instead of over-reading the bars
    assert any("close to chance" in w.value for w in at.warning)
    assert any(m.label.startswith("ResNet-14: mean accuracy lost") for m in at.metric)

    at.multiselect(key="pvr_shatter_depths").set_value([8])
    at.select_slider(key="pvr_shatter_points").set_value(16)
    at.button(key="pvr_shatter_start").click().run()
    shatter = at.session_state["pvr_shatter_job"]
    assert shatter.join(120)
    at.run()
    assert not at.exception and not at.error
    assert shatter.snapshot().status is Status.FINISHED
    assert CAPTIONS["shattering"] in _captions(at)


def test_a_shared_link_reproduces_the_comparison_setup():
    at = _page()
    at.query_params.update({"preset": "resnet32", "seeds": "2", "batch": "8", "px": "16", "depths": "8,20",
                            "no_bn": "1", "deep": "32", "seed": "7"})
    at.run()
    assert not at.exception and not at.warning and not at.error
    assert at.session_state["model_config"] == get_preset("resnet32")
    assert at.session_state["pvr_profile"].a.label == "ResNet-32"  # measured for the linked model on arrival
    assert at.multiselect(key="pvr_sweep_depths").value == [8, 20] and at.toggle(key="pvr_sweep_nobn").value
    assert at.selectbox(key="pvr_depth_b").value == 32 and at.number_input(key="pvr_seed").value == 7


def test_a_hostile_link_falls_back_with_notices():
    at = _page()
    at.query_params.update({"depths": "8,9999", "px": "1e9", "deep": "drop table", "against": "twin'--"})
    at.run()
    assert not at.exception and not at.error
    assert len(at.warning) == 4
    assert at.multiselect(key="pvr_sweep_depths").value == [8, 14, 20, 32, 44, 56, 110]


def test_the_normalization_demo_runs_the_sweep_with_and_without_bn():
    at = _page().run()
    at.multiselect(key="pvr_sweep_depths").set_value([8])  # the demo puts its own settings back
    at.button(key="demo_normalization").click().run()
    assert not at.exception and not at.error
    assert at.multiselect(key="pvr_sweep_depths").value == [8, 14, 20, 32, 44, 56, 110]
    assert at.toggle(key="pvr_sweep_nobn").value
    job = at.session_state["pvr_sweep_job"]
    job.stop()  # the whole sweep is the demo; its start and settings are what is tested here
    assert job.join(120)


def test_a_big_model_is_not_measured_on_arrival_but_says_how_long_it_takes():
    at = _page()
    at.session_state["model_config"] = get_preset("resnet152")
    at.run()
    assert not at.exception and not at.error
    assert at.session_state["pvr_profile"] is None and "pvr_profile_convs" not in _chart_keys(at)
    assert any("Press **Measure gradient profile**" in i.value and "it takes" in i.value for i in at.info)


def test_a_link_to_a_demo_points_at_its_panel():
    at = _page()
    at.query_params.update({"demo": "degradation"})
    at.run()
    assert not at.exception and not at.warning
    assert any("You followed a link to this demo" in c.value for c in at.caption)
    assert at.button(key="demo_degradation").disabled is False
