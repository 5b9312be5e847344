"""The Train page driven through Streamlit's AppTest with a tiny model and a few hundred Shapes images.

AppTest never fires a fragment's run_every, so the tests call at.run() repeatedly, as the
timer would, while a real worker process (python -m resnet_core.train) trains in the background
and the page follows its run folder.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from resnet_core import build_model
from resnet_core.data import IMAGENET_MEAN
from resnet_core.model import get_preset
from resnet_core.status import Status
from resnet_core.train import StepEvent, list_runs, load_metrics, load_run_model, weights_file_path

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "2_Train.py")
TINY = get_preset("resnet20").replace(stage_blocks=(1, 1), stage_widths=(4, 8), stem_width=4)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def tiny_page(epochs: int) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["model_config"] = TINY  # what the Build page would have stored
    at.run()
    at.number_input(key="train_n_train").set_value(200)
    at.number_input(key="train_n_val").set_value(50)
    at.number_input(key="train_image_size").set_value(16)
    at.number_input(key="train_epochs").set_value(epochs)
    at.number_input(key="train_batch").set_value(50)
    at.selectbox(key="train_device").set_value("cpu")
    return at.run()


def charts(at: AppTest) -> dict[str, dict]:
    """Each plotly chart's figure, by the chart title."""
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {f["layout"]["title"]["text"]: f for f in figures}


def the_run(runs_dir: Path):
    """The one run folder the page's worker writes (None before the worker made it)."""
    runs = list_runs(runs_dir)
    return runs[0] if runs else None


def training(at: AppTest) -> bool:
    """What the page shows: Start locked and Stop offered while its run waits or trains."""
    return at.button(key="train_start").disabled and not at.button(key="train_stop").disabled


def steps_logged(runs_dir: Path) -> int:
    run = the_run(runs_dir)
    return 0 if run is None else sum(1 for e in load_metrics(run.path) if isinstance(e, StepEvent))


def run_until(at: AppTest, done, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the page did not reach the expected state in time"
        time.sleep(0.3)
        at.run()
        assert not at.exception, at.exception


def test_start_shows_live_charts_then_the_finished_run_in_the_history(runs_dir):
    at = tiny_page(epochs=2)
    assert not at.exception and not at.error
    assert "Learning-rate schedule (preview)" in charts(at)
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert training(at)

    run_until(at, lambda: "Training loss" in charts(at) and charts(at)["Training loss"]["data"][0].get("y"))
    loss = charts(at)["Training loss"]
    assert loss["layout"]["uirevision"] == "train-loss"
    if '"type": "epoch"' not in (the_run(runs_dir).path / "metrics.jsonl").read_text():
        # Before epoch 1 ends the per-epoch chart would be empty axes: the page says what comes instead.
        assert any("appear here when epoch 1 ends (step 4)" in i.value for i in at.info)

    run_until(at, lambda: not training(at))
    at.run()
    assert "Per epoch" in charts(at)
    assert the_run(runs_dir).status is Status.FINISHED
    assert any("finished 8 steps" in s.value for s in at.success)
    assert {"Learning rate", "Throughput"} <= set(charts(at))  # drawn once the run is over
    assert len(charts(at)["Training loss"]["data"][0]["y"]) == 8
    assert not at.button(key="train_start").disabled
    (run,) = list_runs(runs_dir)
    assert run.status is Status.FINISHED and run.has_model
    assert at.dataframe[0].value["run"].tolist() == [run.name]
    overlay = charts(at)["Runs compared: training loss"]
    assert [t["name"] for t in overlay["data"]] == [run.name]
    assert not at.exception and not at.error


def test_stop_ends_the_run_and_the_page_says_so(runs_dir):
    at = tiny_page(epochs=1000)
    at.button(key="train_start").click().run()
    run_until(at, lambda: steps_logged(runs_dir) >= 2)
    at.button(key="train_stop").click().run()
    stop_pressed = steps_logged(runs_dir)
    run_until(at, lambda: not training(at), timeout=30)
    at.run()
    run = the_run(runs_dir)
    assert run.status is Status.STOPPED and run.has_model  # the weights trained so far are kept
    assert run.steps <= stop_pressed + 2  # stopped within a step or two of the click (CPU: one step is ms)
    assert any("stopped at step" in i.value for i in at.info)
    assert not at.exception and not at.error


def test_bad_choices_are_explained_not_raised(runs_dir):
    at = tiny_page(epochs=1)
    at.selectbox(key="train_dataset").set_value("imagefolder").run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert "choose a folder" in at.error[0].value
    at.text_input(key="train_folder").set_value(str(runs_dir / "no-such-folder")).run()
    at.button(key="train_start").click().run()
    assert not at.exception and len(at.error) == 1 and "Could not start training" in at.error[0].value
    assert "no folder or .zip file" in at.error[0].value
    assert "train_job" not in at.session_state


def test_damaged_runs_are_marked_in_the_history(runs_dir):
    (runs_dir / "broken").mkdir(parents=True)
    (runs_dir / "broken" / "config.json").write_text("{oops")
    at = tiny_page(epochs=1)
    assert not at.exception
    table = at.dataframe[0].value
    assert table["status"].tolist() == ["damaged"]
    assert any("broken" in w.value and "not valid JSON" in w.value for w in at.warning)


def _finished_run(runs_dir: Path, name: str, seed: int, lr: float, offset: float) -> None:
    """A finished run folder with a real (tiny, untrained) model and a loss curve, as a trainer writes them."""
    from resnet_core.train import Run, StepEvent, TrainConfig

    train = TrainConfig(epochs=1, batch_size=50, lr=lr, seed=seed).to_dict()
    run = Run.create(runs_dir, TINY, train, {"kind": "shapes", "n_train": 200, "seed": 0}, ["a", "b"],
                     {"mean": [0.5] * 3, "std": [0.25] * 3, "image_size": 16}, name=name)
    for step in range(1, 21):
        run.log(StepEvent(step=step, epoch=1, train_loss=2.0 - 0.05 * step + offset, lr=lr, samples_per_s=100.0,
                          grad_norm=1.0, time=0.1 * step))
    run.save_model(build_model(TINY.replace(num_classes=2)), ["a", "b"], {"mean": [0.5] * 3, "std": [0.25] * 3,
                                                                          "image_size": 16})
    run.finish(Status.FINISHED, "done", {"val_acc": 0.5})


def test_runs_of_one_recipe_with_other_seeds_are_compared_as_a_band(runs_dir):
    """Two seeds of one recipe are drawn as their mean with the min-max band; a run of another recipe as a line."""
    _finished_run(runs_dir, "a-seed0", 0, 0.1, 0.0)
    _finished_run(runs_dir, "a-seed1", 1, 0.1, 0.2)
    _finished_run(runs_dir, "b-other-lr", 0, 0.01, 0.5)
    at = tiny_page(epochs=1)
    at.multiselect(key="train_overlay_runs").set_value(["a-seed0", "a-seed1", "b-other-lr"]).run()
    assert not at.exception
    traces = charts(at)["Runs compared: training loss"]["data"]
    filled = [t for t in traces if t.get("fill") == "tonexty"]
    assert len(filled) == 1, "one band: the two seeds of the same recipe"
    names = [t.get("name") for t in traces if t.get("name")]
    assert any(n.startswith("a-seed0 and 1 more") for n in names) and "b-other-lr" in names
    band_low, band_high = filled[0]["y"], traces[traces.index(filled[0]) - 1]["y"]
    assert all(lo <= hi for lo, hi in zip(band_low, band_high))
    assert any("a-seed0, a-seed1 (the same recipe, 2 seeds)" in c.value for c in at.caption)
    at.toggle(key="train_overlay_band").set_value(False).run()
    assert not any(t.get("fill") for t in charts(at)["Runs compared: training loss"]["data"])


def _online() -> bool:
    try:
        socket.getaddrinfo("download.pytorch.org", 443)
    except OSError:
        return False
    return True


def test_fine_tune_from_cached_imagenet_weights_trains_only_the_new_head(runs_dir, tmp_path, monkeypatch):
    # A real resnet18 state_dict in torchvision's format, where torch hub caches the download.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = weights_file_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    pretrained = build_model(get_preset("resnet18"))
    torch.save(pretrained.state_dict(), path)

    at = tiny_page(epochs=1)
    at.radio(key="train_source").set_value("pretrained").run()
    at.checkbox(key="train_freeze").check().run()
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error and not at.warning, [w.value for w in at.warning]
    run_until(at, lambda: not training(at))
    assert the_run(runs_dir).status is Status.FINISHED, the_run(runs_dir).reason

    (run,) = list_runs(runs_dir)
    model, classes, preprocess = load_run_model(run.path)
    assert len(classes) == 10 and model.fc.out_features == 10
    assert preprocess["mean"] == list(IMAGENET_MEAN)
    trained = model.state_dict()
    start = pretrained.state_dict()
    frozen = [k for k in start if not k.startswith("fc.") and "running_" not in k and "num_batches" not in k]
    assert all(torch.equal(trained[k], start[k]) for k in frozen)


def test_fine_tune_without_cached_weights_offline_is_a_warning(runs_dir, tmp_path, monkeypatch):
    if _online():
        pytest.skip("this machine can reach download.pytorch.org, so the weights would download")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    at = tiny_page(epochs=1)
    at.radio(key="train_source").set_value("pretrained").run()
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error
    assert "not cached and could not be downloaded" in at.warning[0].value
    assert "train_job" not in at.session_state


def test_a_shared_link_sets_model_data_and_hyper_parameters(runs_dir):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params.update({"preset": "resnet56", "source": "preset", "train_preset": "plain20", "n": "1500",
                            "epochs": "7", "opt": "adamw", "lr": "0.003", "seed": "42", "flip": "0"})
    at.run()
    assert not at.exception and not at.warning and not at.error
    assert at.session_state["model_config"] == get_preset("resnet56")
    assert at.radio(key="train_source").value == "preset" and at.selectbox(key="train_preset").value == "plain20"
    assert at.number_input(key="train_n_train").value == 1500 and at.number_input(key="train_epochs").value == 7
    assert at.selectbox(key="train_optimizer").value == "adamw" and at.number_input(key="train_lr").value == 0.003
    assert at.number_input(key="train_seed").value == 42 and at.checkbox(key="train_flip").value is False
    # and the page writes its setup back into the URL, defaults left out
    assert at.query_params["epochs"] == "7" and "batch" not in at.query_params


def test_a_hostile_link_keeps_the_defaults_with_notices(runs_dir):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params.update({"source": "<img onerror=alert(1)>", "epochs": "-1", "lr": "inf", "opt": "lbfgs",
                            "n": "9" * 300})
    at.run()
    assert not at.exception and not at.error
    assert len(at.warning) == 5
    assert at.radio(key="train_source").value == "build" and at.number_input(key="train_epochs").value == 4
    assert at.number_input(key="train_lr").value == 0.1


@pytest.mark.slow
def test_a_run_started_in_a_terminal_is_followed_live_and_stopped_from_the_page(runs_dir, tmp_path):
    model_json = tmp_path / "tiny.json"
    model_json.write_text(TINY.to_json())
    cli = subprocess.Popen(
        [sys.executable, "-m", "resnet_core.train", "--model-config", str(model_json), "--n-train", "200",
         "--n-val", "50", "--image-size", "16", "--batch-size", "50", "--epochs", "1000", "--device", "cpu",
         "--runs-dir", str(runs_dir), "--name", "from-terminal", "--no-progress"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while steps_logged(runs_dir) < 1:
            assert time.monotonic() < deadline and cli.poll() is None, "the terminal run did not start training"
            time.sleep(0.2)
        at = tiny_page(epochs=1)
        assert at.selectbox(key="train_attach_pick").options == ["from-terminal"]
        at.button(key="train_attach").click().run()
        assert training(at)  # following a live run locks the form and offers Stop
        run_until(at, lambda: "Training loss" in charts(at) and len(charts(at)["Training loss"]["data"][0]["y"]) > 2)
        at.button(key="train_stop").click().run()
        assert cli.wait(30) == 0
        run_until(at, lambda: not training(at), timeout=30)
        at.run()
        assert the_run(runs_dir).status is Status.STOPPED and the_run(runs_dir).has_model
        assert any("stopped at step" in i.value for i in at.info)
    finally:
        if cli.poll() is None:
            cli.kill()


@pytest.mark.slow
def test_a_reopened_tab_re_attaches_to_its_run_through_the_link(runs_dir):
    at = tiny_page(epochs=1000)
    at.button(key="train_start").click().run()
    run_until(at, lambda: steps_logged(runs_dir) >= 1, timeout=90)
    name = the_run(runs_dir).name
    assert at.query_params["run"] == name  # the URL names the run the page follows

    # The tab is closed (its session gone) and reopened from the same URL: the run went on and is followed again.
    reopened = AppTest.from_file(PAGE, default_timeout=120)
    reopened.session_state["model_config"] = TINY
    reopened.query_params["run"] = name
    reopened.run()
    assert not reopened.exception and training(reopened)
    run_until(reopened, lambda: "Training loss" in charts(reopened))
    reopened.button(key="train_stop").click().run()
    run_until(reopened, lambda: not training(reopened), timeout=60)
    assert the_run(runs_dir).status is Status.STOPPED and the_run(runs_dir).has_model

    # A link naming no run here, or a path out of the runs folder, follows nothing and breaks nothing.
    for bad in ("no-such-run", "../" + name, "/etc", ".queue"):
        other = AppTest.from_file(PAGE, default_timeout=120)
        other.query_params["run"] = bad
        other.run()
        assert not other.exception and not training(other), bad
        assert any("Press **Start**" in i.value for i in other.info), bad
