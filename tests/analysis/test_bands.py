"""Several seeds as a band (analysis.bands), the one "final training loss", the orderings the degradation demo is
judged by, and the verdict that is stated only beyond the seeds' spread (analysis.readings.band_reading)."""

from __future__ import annotations

import math

import pytest

from resnet_core.analysis.bands import (
    band,
    epochs_to_reach,
    final_loss,
    lesson,
    separated,
    smoothed,
    stays_above,
    window_means,
)
from resnet_core.analysis.readings import band_reading, slow_start_reading, spread, training_reading


def curve(losses, start=1):
    return {"step": list(range(start, start + len(losses))), "train_loss": list(losses), "val_step": [],
            "val_acc": [], "val_loss": [], "status": "finished", "message": "", "progress": 1.0}


def test_a_band_is_the_mean_min_and_max_over_the_runs_at_each_shared_step():
    b = band([([1, 2, 3], [1.0, 2.0, 3.0]), ([1, 2, 3], [3.0, 4.0, 5.0]), ([2, 3, 4], [0.5, 6.0, 9.0])])
    assert b.step == [2, 3] and b.runs == 3  # step 1 and 4 are not in every run
    assert b.mean == pytest.approx([6.5 / 3, 14 / 3]) and b.low == [0.5, 3.0] and b.high == [4.0, 6.0]
    nan = band([([1, 2], [math.nan, 1.0]), ([1, 2], [math.nan, 3.0])])
    assert nan.step == [2] and nan.mean == [2.0]  # a step where every run diverged is dropped
    assert band([]) is None and band([([1], [1.0]), ([2], [1.0])]) is None


def test_the_final_training_loss_is_the_mean_over_the_last_epochs_steps():
    c = curve([9.0] * 10 + [2.0, 4.0, math.nan, 6.0])  # 14 steps; an epoch is 4 steps
    assert final_loss(c, 4) == pytest.approx((9.0 + 2.0 + 4.0 + 6.0) / 4)  # the NaN step is skipped
    assert final_loss(c, 4, upto=11) == pytest.approx((9.0 * 3 + 2.0) / 4)
    assert final_loss(curve([]), 4) is None


def test_an_ordering_holds_only_if_it_holds_in_every_window_after_the_warm_up():
    above = curve([2.3] * 10 + [2.0] * 30)
    below = curve([3.0] * 10 + [1.5] * 30)  # above it in the warm-up only
    assert stays_above(above, below, start=10, window=5)
    assert not stays_above(above, below, start=0, window=5)  # the warm-up counts when asked to
    crossing = curve([3.0] * 10 + [1.5] * 20 + [2.5] * 10)
    assert not stays_above(above, crossing, start=10, window=5)
    assert window_means(curve([1.0, 3.0, 5.0, 7.0, 9.0]), start=0, window=2) == [(2, 2.0), (4, 6.0), (5, 9.0)]


def test_the_lesson_of_one_seed_needs_every_net_learning_and_both_orderings():
    def net(losses, acc):
        return {**curve(losses), "val_step": [len(losses)], "val_acc": [acc]}

    four = {"plain-20": net([2.3] * 8 + [1.0] * 32, 0.8), "plain-56": net([2.3] * 8 + [1.5] * 32, 0.5),
            "ResNet-20": net([2.3] * 8 + [0.8] * 32, 0.85), "ResNet-56": net([2.3] * 8 + [0.7] * 32, 0.9)}
    read = lesson(four, steps_per_epoch=8, warmup_step=8)
    assert (read.degraded, read.cured, read.learned, read.holds) == (True, True, True, True)
    near_chance = {**four, "plain-56": net([2.3] * 40, 0.12)}  # above plain-20, but it learned nothing
    read = lesson(near_chance, 8, 8)
    assert read.degraded and read.cured and not read.learned and not read.holds
    worse_cure = {**four, "ResNet-56": net([2.3] * 8 + [0.9] * 32, 0.9)}
    assert lesson(worse_cure, 8, 8).cured is False and not lesson(worse_cure, 8, 8).holds
    only_plain = {k: v for k, v in four.items() if k.startswith("plain")}
    assert lesson(only_plain, 8, 8).cured is None and lesson(only_plain, 8, 8).holds  # nothing to judge it by


def test_how_long_the_deep_plain_net_sat_near_chance_is_read_per_seed():
    def seed(val_steps, accs):
        return {**curve([2.3] * 10), "val_step": val_steps, "val_acc": accs}

    slow = [seed([10, 20, 30, 40], [0.1, 0.1, 0.25, 0.6]), seed([10, 20, 30, 40], [0.1, 0.3, 0.5, 0.7])]
    assert epochs_to_reach(slow, 10, 0.2) == [3.0, 2.0] and epochs_to_reach(slow, 10, 0.9) == [None, None]
    runs = {"plain-20": [seed([10], [0.5])] * 2, "plain-56": slow}
    said = slow_start_reading(runs, 10, short_epochs=1)
    assert said.startswith("plain-56's validation accuracy first passed 20% (twice chance) after 2 and 3 epochs")
    assert "varies with the seed" in said and "every seed waited longer than the lecture's 1 epochs" in said
    assert "lecture" not in slow_start_reading(runs, 10, short_epochs=2)  # one seed passed it within 2 epochs
    never = {"plain-56": [seed([10, 20], [0.1, 0.12])] * 3}
    assert slow_start_reading(never, 10) == ("plain-56's validation accuracy never passed 20% (twice chance) in its "
                                             "seeds")
    assert slow_start_reading({"ResNet-20": slow}, 10) == ""


def test_smoothing_is_a_trailing_mean_and_separation_needs_disjoint_ranges():
    assert smoothed([1, 2, 3], [1.0, 3.0, 5.0], 2) == ([1, 2, 3], [1.0, 2.0, 4.0])
    assert separated([2.0, 2.1], [1.0, 1.9]) == 1 and separated([1.0], [1.5, 2.0]) == -1
    assert separated([1.0, 2.0], [1.5, 2.5]) == 0 and separated([], [1.0]) == 0


def test_the_recorded_verdict_is_withheld_where_the_seed_ranges_overlap():
    apart = {"plain-20": ([1.10, 1.15, 1.20], [0.6, 0.62, 0.64]), "ResNet-20": ([1.00, 1.05, 1.10], [0.7] * 3),
             "plain-56": ([1.60, 1.70, 1.80], [0.4, 0.42, 0.45]), "ResNet-56": ([0.90, 0.92, 0.95], [0.72] * 3)}
    text = band_reading(apart)
    assert ("plain-56's final training loss, 1.70 (1.60–1.80 over 3 seeds), is above plain-20's, 1.15 (1.10–1.20 "
            "over 3 seeds), in every seed" in text) and "(degradation)" in text
    assert "ResNet-56's, 0.92 (0.90–0.95 over 3 seeds), is below ResNet-20's" in text and "fits better" in text
    overlap = {**apart, "plain-56": ([1.05, 1.30, 1.60], [0.5] * 3), "ResNet-56": ([1.02, 1.06, 1.12], [0.7] * 3)}
    text = band_reading(overlap)
    assert "overlap over the seeds: these seeds cannot order them" in text and "degradation" not in text
    assert "costs nothing the seeds can tell apart" in text and "fits better" not in text
    stuck = band_reading({**apart, "plain-56": ([2.2, 2.25, 2.28], [0.11, 0.12, 0.14])})
    assert "is still near chance in validation accuracy" in stuck and "(degradation)" not in stuck
    one = band_reading({label: ([losses[0]], [accs[0]]) for label, (losses, accs) in apart.items()})
    assert "one seed has no spread to judge the gap by, so it cannot order them" in one
    assert "degradation" not in one and "fits better" not in one


def test_one_live_run_is_ordered_only_beyond_the_recorded_seed_spread():
    curves = {"plain-20": curve([1.2] * 20), "ResNet-20": curve([1.0] * 20), "plain-56": curve([1.25] * 20),
              "ResNet-56": curve([0.9] * 20)}
    spreads = {"plain-20": [1.1, 1.3], "ResNet-20": [0.95, 1.05], "plain-56": [1.2, 1.4], "ResNet-56": [0.85, 1.0]}
    text = training_reading(curves, 20, 5, spreads)
    assert "plain-56's training loss is 1.25 against plain-20's 1.20: a gap within the spread" in text
    assert "degradation" not in text and "every net ended inside the recorded seeds' range" in text
    wide = training_reading({**curves, "plain-56": curve([1.9] * 20)}, 20, 5, spreads)
    assert "plain-56's training loss is 1.90, above plain-20's 1.20" in wide
    assert "plain-56 ended outside the recorded seeds' range" in wide


def test_cards_and_captions_write_a_value_over_seeds_the_same_way():
    assert spread([1.2, 1.26, 1.23]) == "1.23 (1.20–1.26 over 3 seeds)"
    assert spread([0.5, 0.574], percent=True) == "53.7% (50.0–57.4% over 2 seeds)"
    assert spread([0.5]) == "0.50" and spread([]) == "?"
