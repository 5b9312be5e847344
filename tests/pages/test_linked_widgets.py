"""Every page's linked widgets take their range and options from their `Linked` option, so what a link
may set and what the widget offers are written once and cannot drift apart."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from resnet_core import build_model
from resnet_core.data import SHAPES_CLASSES
from resnet_core.data.spec import LIMITS as DATA_LIMITS
from resnet_core.model import get_preset
from resnet_core.share import config_to_params
from resnet_core.train import Run
from resnet_core.train.config import LIMITS as TRAIN_LIMITS
from ui.share import LINKED_OPTIONS_KEY, PAGE_OPTIONS_KEY

ROOT = Path(__file__).resolve().parents[2]
TINY = get_preset("resnet20").replace(stage_blocks=(1, 1, 1))
WIDGET_TYPES = ("number_input", "slider", "select_slider", "selectbox", "multiselect", "radio", "checkbox",
                "toggle", "text_input")


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # nothing downloaded, nothing cached
    return tmp_path / "runs"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _shapes_run(runs_dir: Path) -> None:
    """A real, untrained Shapes run, so the Grad-CAM page draws every widget."""
    torch.manual_seed(0)
    preprocess = {"mean": [0.5] * 3, "std": [0.25] * 3, "image_size": 32}
    run = Run.create(runs_dir, TINY, {"epochs": 1}, {"kind": "shapes"}, list(SHAPES_CLASSES), preprocess, name="r")
    run.save_model(build_model(TINY), list(SHAPES_CLASSES), preprocess)
    run.finish("finished", "done", {"val_acc": 0.1})


def _render(page: str, state: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=300)
    at.session_state["model_config"] = TINY
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _check_widgets(at: AppTest) -> set[str]:
    """Compare each drawn linked widget with its option; return the keys that were drawn."""
    options = at.session_state[LINKED_OPTIONS_KEY]
    drawn = {w.key: w for kind in WIDGET_TYPES for w in at.get(kind) if getattr(w, "key", None) in options}
    for key, widget in drawn.items():
        option = options[key]
        if option.bounds is not None:
            assert (widget.min, widget.max) == tuple(option.bounds), key
        if option.choices is not None:
            shown = [str(widget.format_func(choice)) for choice in option.choices]
            assert list(widget.options) == shown, key
        if option.bounds is None and option.choices is None:
            assert widget.type in ("checkbox", "toggle", "text_input"), key
    return set(drawn)


# page, the session states that together draw every linked widget
PAGES = {
    "1_Build.py": [{}],
    "2_Train.py": [{"train_source": "build"}, {"train_source": "preset"}, {"train_source": "pretrained"}],
    "3_Plain_vs_Residual.py": [{}],
    "4_Grad-CAM.py": [{"gc_methods": ["gradcam", "integrated_gradients"]}, {"gc_source": "imagenet"}],
}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_linked_widget_offers_exactly_its_options_bounds_and_choices(page, runs_dir):
    if page == "4_Grad-CAM.py":
        _shapes_run(runs_dir)
    drawn: set[str] = set()
    for state in PAGES[page]:
        at = _render(page, state)
        drawn |= _check_widgets(at)
    assert drawn == set(at.session_state[LINKED_OPTIONS_KEY]), "every linked option has its widget drawn"


def test_train_page_ranges_are_the_engines_own():
    at = AppTest.from_file(str(ROOT / "pages" / "2_Train.py"), default_timeout=120).run()
    options = at.session_state[LINKED_OPTIONS_KEY]
    for key, field in [("train_epochs", "epochs"), ("train_batch", "batch_size"), ("train_lr", "lr"),
                       ("train_momentum", "momentum"), ("train_wd", "weight_decay"), ("train_seed", "seed"),
                       ("train_warmup", "warmup_epochs"), ("train_smoothing", "label_smoothing"),
                       ("train_padding", "crop_padding")]:
        assert options[key].bounds == TRAIN_LIMITS[field], key
    assert options["train_max_steps"].bounds == (0, TRAIN_LIMITS["max_steps"][1])  # 0: no limit
    for key, field in [("train_n_train", "n_train"), ("train_n_val", "n_val"), ("train_image_size", "image_size")]:
        assert options[key].bounds == DATA_LIMITS[field], key


BUILD = str(ROOT / "pages" / "1_Build.py")


def test_a_page_remembers_the_query_it_publishes_for_the_sidebar_links():
    """The sidebar's link to a page carries the model and that page's last published options (ui.share
    .page_query), so arriving by it writes nothing new to the URL: one browser-history entry per page."""
    at = AppTest.from_file(BUILD, default_timeout=60)
    at.query_params.update({"preset": "resnet56", "size": "64"})
    at.run()
    assert not at.exception and not at.warning
    assert at.session_state[PAGE_OPTIONS_KEY]["pages/1_Build.py"] == {"size": "64"}
    published = {k: at.query_params[k][0] if isinstance(at.query_params[k], list) else at.query_params[k]
                 for k in at.query_params}
    assert published == {**config_to_params(get_preset("resnet56")), "size": "64"}


def test_a_link_naming_the_current_model_keeps_it_exactly():
    """Our own links carry the model as %g text; arriving by one must not round the session's model."""
    cfg = get_preset("resnet20").replace(width_multiplier=1 / 3)
    at = AppTest.from_file(BUILD, default_timeout=60)
    at.session_state["model_config"] = cfg
    at.query_params.update({**config_to_params(cfg), "size": "48"})
    at.run()
    assert not at.exception and not at.warning
    assert at.session_state["model_config"] == cfg  # not width_multiplier=0.333333
    assert at.session_state["build_image_size"] == 48
