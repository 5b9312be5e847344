"""The command line trains the app's recipe: its defaults are the Train page's defaults."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from resnet_core.model import get_preset
from resnet_core.recipes import DEFAULT_PRESET, SHAPES_DATA, SHAPES_TRAIN
from resnet_core.train.cli import _parser, config_from_args, dataset_from_args

TRAIN_PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "2_Train.py")


def test_cli_without_flags_plans_exactly_the_train_pages_default_run(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(TRAIN_PAGE, default_timeout=60).run()
    assert not at.exception and not at.error
    page_arch, page_config, page_data = at.session_state["train_planned"]

    for argv in ([], ["--preset", "resnet20", "--dataset", "shapes"]):
        args = _parser().parse_args(argv)
        assert get_preset(args.preset) == page_arch
        assert config_from_args(args) == page_config
        assert dataset_from_args(args) == page_data
    # and that run is the recipe, written once in resnet_core.recipes
    assert (page_arch, page_config, page_data) == (get_preset(DEFAULT_PRESET), SHAPES_TRAIN, SHAPES_DATA)


def test_each_flag_overrides_one_value_of_the_recipe():
    args = _parser().parse_args(["--epochs", "3", "--lr", "0.05", "--no-nesterov", "--n-train", "2000"])
    assert config_from_args(args) == SHAPES_TRAIN.replace(epochs=3, lr=0.05, nesterov=False)
    assert dataset_from_args(args) == SHAPES_DATA.__class__(**{**SHAPES_DATA.to_dict(), "n_train": 2000})


def test_onecycle_from_the_command_line_drops_the_recipes_warm_up():
    # OneCycle warms up by itself; the recipe's warm-up would make the config invalid.
    config = config_from_args(_parser().parse_args(["--schedule", "onecycle"]))
    assert config.schedule == "onecycle" and config.warmup_epochs == 0
