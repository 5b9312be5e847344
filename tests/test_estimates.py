"""The lecture demos' recipes and time estimates (their accuracy is measured in benchmarks/bench_demos.py)."""

import math

import pytest

from resnet_core import get_preset
from resnet_core.analysis import SWEEP_DEPTHS, cifar_config
from resnet_core.estimates import (
    estimate_seconds,
    format_duration,
    lesion_seconds,
    macs_per_image,
    relative_cost,
    run_seconds,
    seconds_per_image,
    shattering_seconds,
    side_by_side_seconds,
    sweep_seconds,
    trainer_seconds_per_image,
    training_seconds,
    worker_start_seconds,
)
from resnet_core.recipes import (
    DEGRADATION_DATA,
    DEGRADATION_DEPTHS,
    DEGRADATION_TRAIN,
    SHAPES_DATA,
    SHAPES_TRAIN,
    SWEEP_BATCH,
)
from ui.demos import DEMOS


def test_the_shapes_recipe_is_the_train_page_default_and_valid():
    assert SHAPES_DATA.kind == "shapes" and SHAPES_DATA.image_size == 32
    assert SHAPES_TRAIN.optimizer == "sgd" and SHAPES_TRAIN.warmup_epochs > 0  # deep nets need the warm-up
    assert DEGRADATION_TRAIN.optimizer == "sgd" and DEGRADATION_DATA.n_train < SHAPES_DATA.n_train


def test_every_demo_names_a_page_that_exists_and_what_to_look_for():
    from tests.e2e.browser import ROOT

    assert set(DEMOS) == {"degradation", "normalization", "gradcam", "landscape"}
    for demo in DEMOS.values():
        assert (ROOT / demo.page).is_file()
        assert demo.does and demo.look_for


def test_the_device_measurement_is_a_plausible_time_per_image():
    per_image = seconds_per_image("cpu")
    assert 1e-6 < per_image < 1.0 and math.isfinite(per_image)
    assert seconds_per_image("cpu") == per_image  # measured once per process


def test_estimates_grow_with_the_work():
    assert estimate_seconds("degradation") > estimate_seconds("normalization") > 0
    assert estimate_seconds("gradcam", model_ready=False) > estimate_seconds("gradcam", model_ready=True) > 0
    with pytest.raises(KeyError, match="unknown demo"):
        estimate_seconds("nope")


def test_cost_follows_depth_and_macs():
    assert relative_cost(20) == 1.0 and relative_cost(56) == pytest.approx(3.0)
    # The analytic depth rule agrees with MACs counted from a real forward pass.
    measured = macs_per_image(get_preset("resnet56"), 32) / macs_per_image(get_preset("resnet20"), 32)
    assert measured == pytest.approx(relative_cost(56), rel=0.05)
    # A run is its worker's start (Python, torch, the data) plus its training, which scales with MACs.
    start = worker_start_seconds()
    small = run_seconds(get_preset("resnet20"), 32, 1000, 100, SHAPES_TRAIN) - start
    assert run_seconds(get_preset("resnet56"), 32, 1000, 100, SHAPES_TRAIN) - start == pytest.approx(measured * small)
    one_step = run_seconds(get_preset("resnet20"), 32, 1000, 100, SHAPES_TRAIN.replace(max_steps=1)) - start
    assert 0 < one_step < small / 10


@pytest.mark.parametrize("seconds, text", [(0.2, "under a second"), (4.4, "about 4\u00a0s"),
                                           (150, "about 2\u00a0min"), (2 * 3600, "about 2.0\u00a0h")])
def test_durations_read_like_a_person_says_them(seconds, text):
    # the number and its unit are held together by a no-break space: a narrow column never splits "2 / min"
    assert format_duration(seconds) == text


def test_training_estimates_time_the_trainer_itself():
    # The Trainer's per-step work (augmentation, normalisation, gradient norm, events) is part of what a
    # person waits for, so training runs are estimated from a probe that runs the real Trainer.
    per_image = trainer_seconds_per_image("cpu")
    assert 1e-6 < per_image < 1.0 and math.isfinite(per_image)
    assert trainer_seconds_per_image("cpu") == per_image  # measured once per process


def test_every_analysis_says_its_time_from_its_own_work():
    # the demos' estimates are these functions at the demos' settings
    assert estimate_seconds("degradation") == side_by_side_seconds(DEGRADATION_DATA, DEGRADATION_TRAIN,
                                                                   DEGRADATION_DEPTHS)
    assert estimate_seconds("normalization") == sweep_seconds(SWEEP_DEPTHS, ("batch", "none"), 1, SWEEP_BATCH, 32)
    # twice the networks, twice the time; a quarter of the pixels, a quarter of the time
    one = sweep_seconds((20, 56), ("batch",), 1, 32, 32)
    assert sweep_seconds((20, 56), ("batch", "none"), 1, 32, 32) == pytest.approx(2 * one)
    assert sweep_seconds((20, 56), ("batch",), 1, 32, 16) == pytest.approx(one / 4)
    assert shattering_seconds((8, 56), 1, 128) == pytest.approx(2 * shattering_seconds((8, 56), 1, 64))
    # a lesion study walks each net's blocks once: about 2 + (N - 1) / 2 forward passes of N blocks
    shallow = lesion_seconds([cifar_config(20, r) for r in (False, True)], 500)
    deep = lesion_seconds([cifar_config(56, r) for r in (False, True)], 500)
    assert deep / shallow == pytest.approx((2 + 26 / 2) * 3 / (2 + 8 / 2), rel=0.05)
    assert lesion_seconds([cifar_config(20)], 1000) == pytest.approx(2 * lesion_seconds([cifar_config(20)], 500))


def test_validations_within_an_epoch_are_part_of_a_training_estimate():
    once = training_seconds(3000, 500, DEGRADATION_TRAIN.replace(val_per_epoch=1), 1.0, 1e-3)
    four_times = training_seconds(3000, 500, DEGRADATION_TRAIN, 1.0, 1e-3)
    assert DEGRADATION_TRAIN.val_per_epoch == 4
    assert four_times - once == pytest.approx(500 * DEGRADATION_TRAIN.epochs * 3 / 3 * 1e-3)
