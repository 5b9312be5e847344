"""The Plain vs Residual page, driven through Streamlit's AppTest with real (tiny) measurements."""

import json
import statistics
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from resnet_core import assets
from resnet_core.analysis import SideBySide
from resnet_core.analysis.partial import epoch_words, first_validation_step, warmup_end
from resnet_core.analysis.readings import (
    band_reading,
    blocks_reading,
    lesion_reading,
    profile_reading,
    shattering_reading,
    slow_start_reading,
    spread,
    sweep_reading,
    times,
)
from resnet_core.data import load_dataset
from resnet_core.model import get_preset
from resnet_core.recipes import DEGRADATION_DATA, DEGRADATION_DEPTHS, DEGRADATION_TRAIN
from resnet_core.status import Status
from resnet_core.train.events import EpochEvent, StatusEvent, StepEvent, ValEvent, event_to_dict
from resnet_core.train.schedule import RunPlan
from ui.captions import CAPTIONS, DEEP_PLAIN_SLOW, FINAL_LOSS_MEANS, FOUND, RECORDED_MISSING, caption

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "3_Plain_vs_Residual.py")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=120)


def _captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def _chart_keys(at) -> set[str]:
    return {c.key for c in at.get("plotly_chart")}


def _figure(at, key: str) -> dict:
    """The plotly figure a chart element sends to the browser."""
    return json.loads(next(c for c in at.get("plotly_chart") if c.key == key).proto.spec)


# ---- a recorded degradation run, as resnet_core.assets writes it ------------------------------------------

LABELS = ["plain-20", "ResNet-20", "plain-56", "ResNet-56"]
FINAL_LOSS = {"plain-20": 1.21, "ResNet-20": 1.1, "plain-56": 1.6, "ResNet-56": 1.05}
FINAL_ACC = {"plain-20": 0.536, "ResNet-20": 0.578, "plain-56": 0.30, "ResNet-56": 0.532}
NEAR_CHANCE = {**FINAL_ACC, "plain-56": 0.12}  # a plain-56 that has not started to learn
SEEDS = (0, 1, 2)
PLAN = RunPlan.of(DEGRADATION_TRAIN, DEGRADATION_DATA.n_train)
STEPS, PER_EPOCH = PLAN.total_steps, PLAN.steps_per_epoch
WARM = warmup_end(DEGRADATION_TRAIN, PLAN)


def loss_at(label: str, step: int, seed: int = 1) -> float:
    """Seed k ends 0.02 * (k - 1) off the net's FINAL_LOSS: seed 1 is the mean."""
    return 2.3 + (FINAL_LOSS[label] + 0.02 * (seed - 1) - 2.3) * step / STEPS


def write_recorded(root: Path) -> dict[str, list[Path]]:
    """The demo's four nets over three seeds, recorded with the demo's recipe (its steps, epochs, validations),
    and the provenance next to them; returns label -> seed folders, as assets.recorded_degradation does."""
    folders = {}
    per = DEGRADATION_TRAIN.val_per_epoch
    val_steps = {round(k * PER_EPOCH / per) for k in range(1, per)}
    for label in LABELS:
        for seed in SEEDS:
            folder = root / label.lower().replace("-", "") / f"seed{seed}"
            folder.mkdir(parents=True)
            acc = lambda step, label=label, seed=seed: (FINAL_ACC[label] + 0.01 * (seed - 1)) * step / STEPS
            events = [StatusEvent(Status.RUNNING, "training", 0, 0.0, "cpu", STEPS, PER_EPOCH, 64)]
            for step in range(1, STEPS + 1):
                loss = loss_at(label, step, seed)
                events.append(StepEvent(step, (step - 1) // PER_EPOCH + 1, loss, 0.1, 300.0, 1.0, step * 0.5))
                if step % PER_EPOCH in val_steps:
                    events.append(ValEvent(step, step / PER_EPOCH, 1.5, acc(step), step * 0.5))
                if step % PER_EPOCH == 0:
                    events.append(EpochEvent(step // PER_EPOCH, step, loss, 0.5, 1.5, acc(step), step * 0.5))
            events.append(StatusEvent(Status.FINISHED, "finished", STEPS, 92.0))
            (folder / "metrics.jsonl").write_text("\n".join(json.dumps(event_to_dict(e)) for e in events) + "\n")
            folders.setdefault(label, []).append(folder)
    recipe = {"depths": list(DEGRADATION_DEPTHS), "seeds": list(SEEDS), "train": DEGRADATION_TRAIN.to_dict(),
              "dataset": DEGRADATION_DATA.to_dict()}
    (root / "provenance.json").write_text(json.dumps({
        "command": "python -m resnet_core.assets", "device": "cpu (2 cores, x86_64)", "date": "2026-12-01T23:00:00",
        "seconds": 188.0, "torch": "2.14", "recipe": recipe,
        "results": {label: {"val_acc": FINAL_ACC[label], "train_loss": FINAL_LOSS[label]} for label in LABELS}}))
    return folders


def bundle_recorded(monkeypatch, root: Path) -> None:
    """The page reads `root` as the bundled lecture recording, and finds no long one."""
    monkeypatch.setattr(assets, "degradation_root",
                        lambda assets_dir=None, long=False: root / "absent" if long else root)


@pytest.fixture
def recorded(tmp_path, monkeypatch) -> dict[str, list[Path]]:
    folders = write_recorded(tmp_path / "recorded" / "degradation")
    bundle_recorded(monkeypatch, tmp_path / "recorded" / "degradation")
    return folders


def idle_pair(curves: dict) -> SideBySide:
    """The demo's four nets as a session holds them, their folders' curves replaced by `curves` (no workers)."""
    pair = SideBySide(DEGRADATION_DATA, DEGRADATION_TRAIN, depths=DEGRADATION_DEPTHS, record_every=5)
    pair.curves = lambda: curves
    return pair


def curves_at(step: int, status: Status, acc: dict[str, float] | None = None) -> dict:
    return {label: {"step": list(range(1, step + 1)), "train_loss": [2.3] * step,
                    "val_step": [12] if acc else [], "val_acc": [acc[label]] if acc else [], "val_loss": [],
                    "status": status, "message": "", "progress": step / STEPS} for label in LABELS}


def test_page_renders_without_exceptions():
    at = _page().run()
    assert not at.exception and not at.error
    assert [h.value for h in at.header][:2] == ["1 · Gradient norms at initialization", "2 · Depth sweep"]
    assert not at.warning  # resnet20 has no zero-init
    # it opens teaching: the profile of the default model is measured without a click
    assert {"pvr_profile_convs", "pvr_profile_blocks"} <= _chart_keys(at)
    assert [b.label for b in at.button if b.key.startswith("demo_")] == ["Run it live", "Run demo"]
    # every action over a few seconds says its time before the click
    for what in ("networks, one batch each: about", "Four worker processes at once: about",
                 "networks at initialization: ", "validation images: about"):
        assert any(what in c for c in _captions(at)), what


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
    # the captions quote the ratios the chart shows
    assert caption("profile", profile_reading(pair)) in _captions(at)
    assert caption("blocks", blocks_reading(pair)) in _captions(at)
    profile = next(c for c in _captions(at) if c.startswith("Each line is the gradient norm"))
    assert f"plain-20's {times(pair.b.median_ratio)}" in profile


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
    result = job.snapshot().result
    plain = {d: m for d, m, _, _ in result.series(False)}
    assert caption("sweep", sweep_reading(result)) in _captions(at)
    assert caption("sweep_no_bn", sweep_reading(result, "none")) in _captions(at)
    assert any(f"{times(plain[8])} at depth 8; {times(plain[14])} at 14" in c for c in _captions(at))


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
    # loss, accuracy, two heatmaps (plain-14 and ResNet-14), drawn in section 3 that started them
    assert {"pvr_train_loss", "pvr_train_acc", "pvr_heat_plain-14", "pvr_heat_ResNet-14"} <= _chart_keys(at)
    assert not {"pvr_train_loss"} & {c.key for c in at.get_by_key("demo_panel_degradation").get("plotly_chart")}
    training = [c for c in _captions(at) if FOUND["training"] in c and "**Recorded**" not in c]
    assert len(training) == 1 and f"At the end (step {pair.plan.total_steps})" in training[0]
    assert any(FOUND["heatmap"] in c and "At step 1 the first block's gradient is" in c for c in _captions(at))

    # four steps on Shapes leave both nets near chance: the page says so before running the lesion study
    at.radio(key="pvr_lesion_source").set_value("trained").run()
    assert not at.exception and not at.error
    assert any("within 10 points of chance" in w.value and "bundled pair" in w.value for w in at.warning)
    assert "pvr_lesion_start" not in {b.key for b in at.button}
    job = pair.lesion_job(14, load_dataset(pair.data))
    assert job.start().join(120)
    results = job.snapshot().result
    assert [r.label for r in results] == ["plain-14", "ResNet-14"]
    assert [e.path for e in results[0].entries if e.accuracy is None] == ["layer2.0", "layer3.0"]

    at.multiselect(key="pvr_shatter_depths").set_value([8])
    at.select_slider(key="pvr_shatter_points").set_value(16)
    at.button(key="pvr_shatter_start").click().run()
    shatter = at.session_state["pvr_shatter_job"]
    assert shatter.join(120)
    at.run()
    assert not at.exception and not at.error
    assert shatter.snapshot().status is Status.FINISHED
    assert caption("shattering", shattering_reading(shatter.snapshot().result)) in _captions(at)


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
    # its charts are drawn under the demo that started it; section 2 says where they are
    assert at.session_state["pvr_sweep_where"] == "demo"
    assert any("its charts are under the demo at the top" in c for c in _captions(at))
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


# ---- the degradation demo: recorded at once, live beside it -----------------------------------------------


def test_the_degradation_demo_answers_at_once_with_the_recorded_run(recorded):
    start = time.perf_counter()
    at = _page().run()
    assert not at.exception and not at.error
    panel = at.get_by_key("demo_panel_degradation")
    assert {c.key for c in panel.get("plotly_chart")} == {"pvr_rec_loss", "pvr_rec_acc"}
    loss = _figure(at, "pvr_rec_loss")
    named = [t["name"] for t in loss["data"] if t.get("showlegend") is not False]
    assert named == [f"{label} (recorded)" for label in LABELS]
    assert [t.get("fill") for t in loss["data"][:3]] == [None, "tonexty", None]  # each net's band, then its mean
    assert [m.value for m in panel.metric] == [f"{100 * FINAL_ACC[label]:.1f}%" for label in LABELS]  # seed mean
    words = [c.value for c in panel.caption]
    told = next(c for c in words if "**Recorded**" in c).replace("\u00a0", " ")  # "188 s" holds together
    assert "3 seeds per net" in told and "recorded on 2026-12-01 on cpu (2 cores, x86\\_64), 188 s" in told
    # the final training loss is the mean over the last epoch's steps, over the seeds; the verdict is stated
    # because the seed ranges do not overlap
    final = {label: [statistics.fmean(loss_at(label, s, seed) for s in range(STEPS - PER_EPOCH + 1, STEPS + 1))
                     for seed in SEEDS] for label in LABELS}
    said = spread(final["plain-56"])
    assert f"plain-56's final training loss, {said}, is above plain-20's, {spread(final['plain-20'])}" in told
    assert "(degradation)" in told and "in every seed" in told
    assert "plain-56 30.0% (29.0–31.0% over 3 seeds)" in told  # its validation accuracy
    # one series, one value: each card quotes the numbers the caption quotes
    cards = [c for c in words if c.startswith("final training loss ")]
    assert len(cards) == 4 and all(spread(final[label]) in card for label, card in zip(LABELS, cards))
    assert all(card.split("final training loss ")[1].split(";")[0] in told for card in cards)
    assert not panel.button[0].disabled and panel.button[0].label == "Run it live"
    assert any("its recorded run is below, at once; **Run it live** takes about" in m.value for m in panel.markdown)
    assert time.perf_counter() - start < 120  # on a loaded 2-core CPU; about 10 s when idle


def test_the_recorded_verdict_is_withheld_when_the_seed_bands_overlap(tmp_path, monkeypatch):
    monkeypatch.setitem(FINAL_LOSS, "plain-56", FINAL_LOSS["plain-20"] + 0.01)  # inside plain-20's seed range
    write_recorded(tmp_path / "recorded" / "degradation")
    bundle_recorded(monkeypatch, tmp_path / "recorded" / "degradation")
    at = _page().run()
    told = next(c.value for c in at.get_by_key("demo_panel_degradation").caption if "**Recorded**" in c.value)
    assert "overlap over the seeds: these seeds cannot order them" in told and "(degradation)" not in told


def test_without_the_recorded_assets_the_panel_says_so_and_offers_the_live_run(tmp_path, monkeypatch):
    bundle_recorded(monkeypatch, tmp_path / "absent")
    at = _page().run()
    assert not at.exception and not at.error
    panel = at.get_by_key("demo_panel_degradation")
    assert [i.value for i in panel.info] == [RECORDED_MISSING]
    assert not panel.get("plotly_chart") and not at.button(key="demo_degradation").disabled


@pytest.mark.skipif(not assets.recorded_degradation(), reason="the recorded degradation run is not in this checkout")
def test_the_bundled_recording_is_shown_with_its_provenance():
    folders = assets.recorded_degradation()
    prov = assets.provenance(next(iter(folders.values()))[0].parents[1])
    at = _page().run()
    panel = at.get_by_key("demo_panel_degradation")
    assert {"pvr_rec_loss", "pvr_rec_acc"} <= {c.key for c in panel.get("plotly_chart")}
    # the provenance's numbers are the page's: written from the same computation
    assert [m.value for m in panel.metric] == [f"{100 * prov.results[label]['val_acc']:.1f}%" for label in folders]
    assert any("**Recorded**" in c.value and prov.day in c.value for c in panel.caption)


def test_a_live_run_from_the_demo_is_drawn_in_its_panel_against_the_recorded_one(recorded):
    at = _page()
    at.session_state["pvr_pair"] = idle_pair(curves_at(5, Status.RUNNING))
    at.session_state["pvr_pair_where"] = "demo"
    at.run()
    assert not at.exception and not at.error
    panel = at.get_by_key("demo_panel_degradation")
    keys = {c.key for c in panel.get("plotly_chart")}
    assert {"pvr_train_loss", "pvr_train_acc"} <= keys and "pvr_rec_loss" not in keys  # one view, not two
    loss = _figure(at, "pvr_train_loss")
    names = [t.get("name") for t in loss["data"]]
    assert names[12] == "plain-20 (running)" and loss["data"][11]["opacity"] < 1  # the recorded bands behind
    assert [t["line"]["dash"] for t in loss["data"][2:12:3]] == ["dot"] * 4
    # still in the warm-up: the chart and a note say it is too early to read
    assert loss["layout"]["shapes"][0]["x1"] == WARM
    assert "too early to read" in loss["layout"]["annotations"][0]["text"]
    early = next(i.value for i in panel.info if i.value.startswith("Too early to read"))
    assert "plain-20, ResNet-20, plain-56 and ResNet-56 are still" in early and f"until step {WARM}" in early
    # the live accuracy chart has no point yet: it says when the first comes
    acc = _figure(at, "pvr_train_acc")
    note = acc["layout"]["annotations"][0]["text"].replace("<br>", " ")
    first = first_validation_step(DEGRADATION_TRAIN, PLAN)
    assert note.startswith(f"Validation accuracy appears at step {first}, {epoch_words(first, PER_EPOCH)}")
    assert any("appear once step 1 is recorded" in c for c in _captions(at))  # the heatmaps, not yet written
    # section 3 points at the panel instead of drawing the run a second time
    assert any("started by the lecture demo at the top" in i.value for i in at.info)


def test_past_the_warm_up_the_live_caption_reads_the_numbers(recorded):
    at = _page()
    at.session_state["pvr_pair"] = idle_pair(curves_at(WARM + 10, Status.RUNNING, FINAL_ACC))
    at.session_state["pvr_pair_where"] = "section"
    at.run()
    assert not at.exception and not at.error
    assert not any(i.value.startswith("Too early") for i in at.info)
    assert any(f"So far, at step {WARM + 10} of {STEPS}," in c and FOUND["training"] in c for c in _captions(at))
    assert "pvr_train_loss" not in {c.key for c in at.get_by_key("demo_panel_degradation").get("plotly_chart")}


def test_a_deep_plain_net_left_near_chance_is_shown_as_the_lesson_not_as_an_error(recorded):
    curves = curves_at(STEPS, Status.FINISHED, FINAL_ACC)
    curves["plain-56"].update(status=Status.DID_NOT_LEARN, message="did not learn: ... train for more epochs")
    at = _page()
    at.session_state["pvr_pair"] = idle_pair(curves)
    at.session_state["pvr_pair_where"] = "demo"
    at.run()
    assert not at.exception and not at.error  # no red "did not learn / train longer" box
    assert DEEP_PLAIN_SLOW.format(name="plain-56") in _captions(at)
    # the final caption reads this run against the recorded seeds' spread, with the numbers named
    told = next(c for c in _captions(at) if c.startswith("Faint bands"))
    assert "3 seeds" in told and FINAL_LOSS_MEANS in told and "At the end (step" in told


# ---- the lesion study ----------------------------------------------------------------------------------------


def test_a_lesion_study_of_nets_near_chance_is_refused_before_it_runs():
    at = _page()
    at.session_state["pvr_pair"] = idle_pair(curves_at(STEPS, Status.FINISHED, NEAR_CHANCE))
    at.run()
    at.radio(key="pvr_lesion_source").set_value("trained").run()
    assert not at.exception and not at.error
    # plain-56 ended at 12%: depth 20 is offered first, and can run
    assert at.selectbox(key="pvr_lesion_depth").value == 20 and not at.warning
    assert "pvr_lesion_start" in {b.key for b in at.button}
    at.selectbox(key="pvr_lesion_depth").set_value(56).run()
    [warning] = at.warning
    assert warning.value.startswith("Not run: plain-56 (12.0%) is within 10 points of chance (10%)")
    assert "study depth 20" in warning.value and "pvr_lesion_start" not in {b.key for b in at.button}


@pytest.mark.slow
@pytest.mark.skipif(assets.bundled_model(True) is None or assets.bundled_model(False) is None,
                    reason="the bundled Shapes models are not in this checkout")
def test_the_lesion_study_runs_at_once_on_the_bundled_trained_pair():
    at = _page().run()
    assert any(m.value.startswith("**Study:** The bundled trained pair") for m in at.markdown)  # the one pair here
    told = next(c for c in _captions(at) if c.startswith(":material/history: **Recorded:**"))
    plain_acc = assets.provenance(assets.bundled_model(False).path).results["plain-20"]["val_acc"]
    assert f"plain-20 ({100 * plain_acc:.1f}% validation accuracy)" in told
    assert any("from each net and measures accuracy on 500 validation images: about" in c for c in _captions(at))
    at.button(key="pvr_lesion_start").click().run()
    assert not at.exception and not at.error
    job = at.session_state["pvr_lesion_job"]
    assert job.join(300)
    at.run()
    results = job.snapshot().result
    assert [r.label for r in results] == ["plain-20", "ResNet-20"] and results[1].baseline > 0.85
    assert not any(r.near_chance for r in results) and not at.warning
    metrics = {m.label: m.value for m in at.metric}
    for res in results:
        lost = f"{res.drop_interval.text(1, 100)} points"
        assert metrics[f"{res.label}: mean accuracy lost per deleted block"] == lost
    assert caption("lesion", lesion_reading(results)) in _captions(at)
    assert "pvr_lesion_chart" in _chart_keys(at)


@pytest.mark.slow
def test_run_it_live_trains_in_the_demo_panel(tmp_path, monkeypatch, recorded):
    monkeypatch.setenv("RESNET_EXPLORER_RUNS_DIR", str(tmp_path / "runs"))
    at = _page().run()
    at.button(key="demo_degradation").click().run()
    assert not at.exception and not at.error
    pair = at.session_state["pvr_pair"]
    try:
        assert at.session_state["pvr_pair_where"] == "demo" and pair.depths == DEGRADATION_DEPTHS
        panel = at.get_by_key("demo_panel_degradation")
        assert panel.button[0].disabled  # one live run at a time
        shown = [p.proto.text for p in panel.get("progress")] + [i.value for i in panel.info]
        assert any(text.startswith(("plain-20:", "Waiting for a free training slot")) for text in shown), shown
    finally:
        pair.stop()
    deadline = time.monotonic() + 120
    while pair.running:
        assert time.monotonic() < deadline
        time.sleep(0.3)


def test_the_long_recording_is_shown_as_the_run_the_lecture_starts_and_quotes_its_own_numbers():
    """Under the recorded run: the same recipe trained 40 epochs, where plain-56 learns, over its seeds; every
    number it quotes is its recording's final (the formatter the cards use), and its verdict is band_reading's:
    an ordering only where the seeds' ranges do not overlap."""

    def script():
        from ui.plain_vs_residual.degradation import longer_view

        longer_view()

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception
    run = assets.recorded_run(long=True)
    seeds = f"{run.seeds} seed{'s' if run.seeds != 1 else ''}"
    assert at.expander[0].label == f"The same recipe, 40 epochs instead of 4: recorded, {seeds}"
    said = " ".join(m.value for m in at.markdown)
    assert "The lecture's run is the first 4 epochs of this recipe" in said
    assert slow_start_reading(run.runs, run.steps_per_epoch, 4) in said  # how long plain-56 sat near chance
    for label, (losses, accs) in run.finals().items():
        quoted = f"final training loss {spread(losses)}, validation accuracy {spread(accs, percent=True)}"
        assert f"**{label}**: {quoted}" in said
    told = next(c.value for c in at.caption if "**Recorded**" in c.value)
    assert caption("training", band_reading(run.finals())) in told
    if run.seeds == 1:
        assert "one seed has no spread to judge the gap by" in told  # no ordering from one seed
    assert {c.key for c in at.get("plotly_chart")} == {"pvr_long_loss"}
