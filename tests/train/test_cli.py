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


def test_one_run_plan_serves_the_trainer_the_schedule_preview_and_the_estimate():
    import torch

    from resnet_core.data import DataBundle, ImageSet
    from resnet_core.model import build_seeded
    from resnet_core.train import RunPlan, Trainer, schedule_preview

    config = SHAPES_TRAIN.replace(epochs=3, batch_size=64, max_steps=10)
    images = ImageSet(torch.zeros(150, 3, 8, 8, dtype=torch.uint8), torch.arange(150) % 2)
    data = DataBundle(images, images, ["a", "b"], (0.5,) * 3, (0.25,) * 3, {"kind": "test"})
    trainer = Trainer(build_seeded(get_preset("resnet20"), 0, 2), data, config)
    plan = RunPlan.of(config, 150)
    assert (plan.batch_size, plan.steps_per_epoch, plan.total_steps, plan.epochs) == (64, 2, 6, 3)
    assert (trainer.batch_size, trainer.steps_per_epoch, trainer.total_steps, trainer.epochs) == (64, 2, 6, 3)
    assert len(schedule_preview(config, 150)) == plan.total_steps
    capped = RunPlan.of(config.replace(epochs=100), 150)
    assert capped.total_steps == 10 and capped.epochs == 5 and capped.images_trained == 640


def test_choices_that_do_not_apply_are_dropped_not_refused():
    # The page's form and the command line share this: Nesterov only with SGD momentum, no warm-up under one-cycle.
    assert SHAPES_TRAIN.with_choices(optimizer="adam", lr=2e-3).nesterov is False
    assert SHAPES_TRAIN.with_choices(momentum=0.0).nesterov is False
    assert SHAPES_TRAIN.with_choices(nesterov=True).nesterov is True
    assert SHAPES_TRAIN.with_choices(schedule="onecycle", warmup_epochs=2.0).warmup_epochs == 0.0
    assert SHAPES_TRAIN.with_choices() == SHAPES_TRAIN
