"""Captions read off the numbers (analysis.readings), partial-run notes (analysis.partial), the recorded run
(analysis.recorded), the lesion study's refusal and its faster walk, and the overlay chart."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from resnet_core import build_model
from resnet_core.analysis import SweepPoint, SweepResult, cifar_config, depth_sweep, lesion_study, profile_pair
from resnet_core.analysis.lesion import LesionEntry, LesionResult, _accuracy, _Lesioned, lesion_refusal
from resnet_core.analysis.partial import (
    epoch_words,
    first_validation_step,
    too_early_note,
    validation_note,
    warming_up,
    warmup_end,
)
from resnet_core.analysis.readings import (
    blocks_reading,
    heatmap_reading,
    lesion_reading,
    number,
    profile_reading,
    shattering_reading,
    sweep_reading,
    times,
    training_reading,
)
from resnet_core.analysis.recorded import RecordedRun
from resnet_core.analysis.shattering import ShatteringSweep
from resnet_core.charts import plain_vs_residual_training_figure
from resnet_core.data import DatasetSpec
from resnet_core.recipes import DEGRADATION_DATA, DEGRADATION_TRAIN
from resnet_core.status import Status
from resnet_core.train import StepEvent
from resnet_core.train.events import EpochEvent, ValEvent
from resnet_core.train.schedule import RunPlan
from resnet_core.train.snapshot import TrainerSnapshot

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def curve(losses, vals=(), status=Status.FINISHED, val_every=10):
    return {"step": list(range(1, len(losses) + 1)), "train_loss": list(losses),
            "val_step": [val_every * (i + 1) for i in range(len(vals))], "val_acc": list(vals),
            "val_loss": [1.0] * len(vals), "status": status, "message": "", "progress": 1.0}


def four(plain20, plain56, res20, res56, **kw):
    return {"plain-20": curve(plain20, **kw), "ResNet-20": curve(res20, **kw),
            "plain-56": curve(plain56, **kw), "ResNet-56": curve(res56, **kw)}


# ---- numbers for a person ------------------------------------------------------------------------------


@pytest.mark.parametrize("value, text", [(13.2, "13×"), (1.63, "1.6×"), (5093.0, "5,090×"), (0.051, "0.051×"),
                                         (2.3e7, "2.3×10⁷×"), (float("inf"), "∞×")])
def test_ratios_read_like_a_person_says_them(value, text):
    assert times(value) == text
    assert number(value) == text[:-1]


# ---- section 1: profile ---------------------------------------------------------------------------------


def test_profile_and_block_readings_quote_the_measured_ratios():
    pair = profile_pair(cifar_config(20), seeds=(0,), batch_size=8, image_size=16)
    text = profile_reading(pair)
    assert times(pair.a.median_ratio) in text and times(pair.b.median_ratio) in text
    assert "ResNet-20" in text and "plain-20" in text
    # at depth 20 the plain net's ratio is about an order of magnitude, not "orders": the words follow it
    if pair.b.median_ratio < 30:
        assert "orders of magnitude" not in text
    blocks = blocks_reading(pair)
    growth = pair.b.blocks.mean[0] / pair.b.blocks.mean[-1]
    assert times(growth) in blocks and "per block" in blocks


def test_a_profile_of_two_residual_nets_claims_no_trend():
    pair = profile_pair(cifar_config(8), cifar_config(14), seeds=(0,), batch_size=4, image_size=16)
    text = profile_reading(pair)
    assert text.endswith(".") and "plain net" not in text


# ---- section 2: sweep -------------------------------------------------------------------------------------


def sweep_of(plain: dict[int, float], residual: dict[int, float], norm: str = "batch") -> SweepResult:
    result = SweepResult(tuple(sorted(plain)), (norm,), (0,), 8, 16)
    for res, table in ((False, plain), (True, residual)):
        for depth, ratio in table.items():
            result.points.append(SweepPoint(depth, res, norm, 0, ratio, ratio, 1.0, 2.3))
    return result


def test_sweep_reading_names_the_ratios_at_the_usual_depths_and_the_climb():
    text = sweep_reading(sweep_of({8: 3.1, 20: 13.2, 32: 80, 56: 5093, 110: 1.2e6},
                                  {8: 1.5, 20: 1.6, 32: 2, 56: 2.4, 110: 3.9}))
    assert "13× at 20; 5,090× at 56" in text and "3.1× at depth 8" in text
    assert "between 1.5× and 3.9×" in text and "climbs by about 6 orders of magnitude" in text


def test_sweep_reading_says_so_when_the_plain_ratio_does_not_climb():
    flat = sweep_reading(sweep_of({8: 3.0, 56: 4.0}, {8: 1.2, 56: 1.3}))
    assert "does not climb" in flat and "climbs by" not in flat
    no_bn = sweep_reading(sweep_of({8: 0.9, 56: 0.2}, {8: 1.1, 56: 2.0}, "none"), "none")
    assert no_bn.startswith("Without normalization") and "Neither climbs" in no_bn


def test_sweep_reading_of_a_real_sweep_quotes_its_medians():
    result = depth_sweep((8, 20), seeds=(0,), batch_size=8, image_size=16)
    plain = {d: m for d, m, _, _ in result.series(False)}
    text = sweep_reading(result)
    assert f"{times(plain[8])} at depth 8; {times(plain[20])} at 20" in text


# ---- section 3: training ---------------------------------------------------------------------------------


def test_training_reading_reports_degradation_and_its_cure_from_the_losses():
    text = training_reading(four([1.2] * 20, [2.3] * 20, [1.1] * 20, [1.0] * 20, vals=[0.5, 0.54]), 20)
    assert text.startswith("At the end (step 20)")
    assert "plain-56's training loss is 2.30, above plain-20's 1.20" in text and "(degradation)" in text
    assert "ResNet-56's is 1.00 against ResNet-20's 1.10" in text and "keeps up" in text
    assert "plain-20 54%" in text


def test_training_reading_does_not_claim_degradation_when_the_run_shows_none():
    text = training_reading(four([2.0] * 20, [1.0] * 20, [1.0] * 20, [1.8] * 20), 100)
    assert text.startswith("So far, at step 20 of 100,")
    assert "is not above plain-20's" in text and "no degradation yet" in text
    assert "have not closed the gap yet" in text
    partly = training_reading(four([1.14] * 20, [2.26] * 20, [1.03] * 20, [1.15] * 20), 20)
    assert ("ResNet-56's is 1.15 against ResNet-20's 1.03: with shortcuts the gap between the depths shrinks from "
            "1.12 to 0.12") in partly


def test_warm_up_and_first_validation_follow_the_recipe():
    plan = RunPlan.of(DEGRADATION_TRAIN, DEGRADATION_DATA.n_train)
    assert plan.steps_per_epoch == 93  # 3,000 images in batches of 32
    assert warmup_end(DEGRADATION_TRAIN, plan) == 93  # one epoch
    assert first_validation_step(DEGRADATION_TRAIN, plan) == 23  # a quarter of an epoch, four passes per epoch
    assert epoch_words(23, 93) == "a quarter of an epoch in" and epoch_words(93, 93) == "at the end of the first epoch"
    assert epoch_words(12, 46) == "a quarter of an epoch in" and epoch_words(23, 46) == "half an epoch in"
    assert first_validation_step(DEGRADATION_TRAIN.replace(val_per_epoch=1), plan) == 93


def test_nets_still_warming_up_are_named_until_the_warm_up_ends():
    curves = four([2.3] * 10, [2.3] * 30, [2.3] * 10, [4.9] * 10, status=Status.RUNNING)
    assert warming_up(curves, 23) == ["plain-20", "ResNet-20", "ResNet-56"]  # plain-56 is past step 23
    note = too_early_note(curves, 23, 46)
    assert note.startswith("Too early to read: plain-20, ResNet-20 and ResNet-56 are still")
    assert "until step 23 (half an epoch in)" in note
    stopped = four([2.3] * 40, [2.3] * 17, [2.3] * 40, [4.9] * 17, status=Status.STOPPED)
    assert too_early_note(stopped, 23, 46).startswith(  # a run stopped inside its warm-up stays unreadable
        "Too early to read: plain-56 and ResNet-56 stopped inside the learning-rate warm-up")
    assert too_early_note(four(*[[2.3] * 30] * 4, status=Status.STOPPED), 23, 46) == ""


def test_a_partial_run_is_read_where_every_net_has_got_to():
    curves = four([1.0] * 48, [2.3] * 17, [1.1] * 48, [5.2] * 17, status=Status.RUNNING)
    for c in (curves["plain-20"], curves["ResNet-20"]):
        c["train_loss"][:17] = [2.3] * 17  # the shallow nets' losses when the deep ones are at step 17
    text = training_reading(curves, 184)
    assert text.startswith("So far, at step 17 of 184 (the slowest net is there)")
    assert "plain-56's training loss (2.30) is not above plain-20's (2.30)" in text


def test_the_empty_validation_chart_says_when_its_points_come():
    curves = four([2.3] * 5, [2.3] * 5, [2.3] * 5, [2.3] * 5, status=Status.RUNNING)
    assert validation_note(curves, 12, 46) == ("Validation accuracy appears at step 12, a quarter of an epoch in "
                                               "(the runs are at step 5).")
    assert validation_note(four([2.3] * 12, [2.3] * 12, [2.3] * 12, [2.3] * 12, vals=[0.2]), 12, 46) == ""


def test_the_training_chart_draws_the_recorded_seeds_as_faint_bands_and_marks_the_warm_up():
    live = four([2.3] * 10, [2.3] * 10, [2.3] * 10, [4.9] * 10, status=Status.RUNNING)
    seeds = [four([1.2] * 40, [2.3] * 40, [1.1] * 40, [1.0 + 0.1 * k] * 40, vals=[0.5 + 0.1 * k]) for k in range(3)]
    recorded = {name: [s[name] for s in seeds] for name in seeds[0]}
    fig = plain_vs_residual_training_figure(live, "train_loss", recorded=recorded, warmup_step=23, too_early=True,
                                            smoothing=0)
    # each net: upper edge, lower edge filled up to it, mean; then the live curves; then one legend entry
    assert len(fig.data) == 4 * 3 + 4 + 1
    high, low, mean = fig.data[9:12]  # ResNet-56's band
    assert list(high.y) == [1.2] * 40 and list(low.y) == [1.0] * 40 and list(mean.y) == pytest.approx([1.1] * 40)
    assert low.fill == "tonexty" and mean.line.dash == "dot" and mean.opacity < 1
    assert [t.name for t in fig.data[12:16]] == [f"{n} (running)" for n in ("plain-20", "ResNet-20", "plain-56",
                                                                           "ResNet-56")]
    assert mean.line.color == fig.data[15].line.color  # the recorded band and the live curve of one net: one colour
    assert [t.name for t in fig.data if t.showlegend is not False and t.legendgroup == "recorded"] == [
        "recorded seeds (dotted mean, band min–max)"]
    assert fig.layout.shapes[0].x1 == 23 and "too early to read" in fig.layout.annotations[0].text
    alone = plain_vs_residual_training_figure({}, "val_acc", recorded=recorded, note="Validation accuracy appears "
                                              "at step 12, a quarter of an epoch in.")
    assert "step 12" in alone.layout.annotations[0].text
    named = [t.name for t in alone.data if t.showlegend is not False]
    assert named[3] == "ResNet-56 (recorded)" and alone.data[11].y[0] == pytest.approx(60)


def test_heatmap_reading_compares_the_first_and_last_blocks():
    snaps = {"plain-56": (("layer1.0", "layer3.8"), [1, 100], [[200.0, 12.0], [1.0, 1.0]]),
             "ResNet-56": (("layer1.0", "layer3.8"), [1, 100], [[3.0, 1.5], [1.0, 1.0]])}
    text = heatmap_reading(snaps)
    assert "At step 1 the first block's gradient is plain-56's 200×, ResNet-56's 3×" in text
    assert "at step 100, 12×, 1.5×" in text
    flipped = {"plain-56": snaps["ResNet-56"], "ResNet-56": snaps["plain-56"]}
    assert "do not spread wider" in heatmap_reading(flipped)


# ---- the recorded run ------------------------------------------------------------------------------------


class FakeProvenance:
    def __init__(self):
        self.seconds = 188.0
        self.recipe = {"depths": [20, 56], "train": DEGRADATION_TRAIN.to_dict(), "dataset": DEGRADATION_DATA.to_dict()}

    def summary(self) -> str:
        return "recorded on 2026-12-01 on cpu (2 cores), 188 s"


def snapshot(losses: list[float], val_acc: float) -> TrainerSnapshot:
    events = [StepEvent(i + 1, 1, loss, 0.1, 100.0, 1.0, float(i)) for i, loss in enumerate(losses)]
    events.insert(2, ValEvent(2, 0.5, 1.0, val_acc / 2, 2.0))
    events.append(EpochEvent(1, len(losses), losses[-1], 0.5, 1.0, val_acc, float(len(losses))))
    return TrainerSnapshot(events, Status.FINISHED, "", len(losses), len(losses), 1.0, 0.0)


def test_a_recorded_run_holds_every_seed_and_knows_its_recipe(tmp_path):
    labels = ["plain-20", "ResNet-20", "plain-56", "ResNet-56"]
    plan = RunPlan.of(DEGRADATION_TRAIN, DEGRADATION_DATA.n_train)
    n = 2 * plan.steps_per_epoch
    snaps = {label: [snapshot([2.0] * (n - plan.steps_per_epoch) + [1.0 + i + 0.1 * seed] * plan.steps_per_epoch,
                              0.5 + 0.01 * i + 0.1 * seed) for seed in range(3)] for i, label in enumerate(labels)}
    folders = {label: [tmp_path / label / f"seed{k}" for k in range(3)] for label in labels}
    run = RecordedRun.of(folders, snaps, FakeProvenance())
    assert list(run.runs) == labels and run.seeds == 3 and run.depths == (20, 56) and run.total_steps == n
    assert run.runs["plain-20"][1]["val_step"] == [2, n] and run.runs["plain-20"][0]["status"] == "recorded"
    # the final training loss is the mean over the last epoch's steps, per seed; results summarise the seeds
    losses, accs = run.finals()["ResNet-20"]
    assert losses == pytest.approx([2.0, 2.1, 2.2]) and accs == pytest.approx([0.51, 0.61, 0.71])
    assert run.results["ResNet-20"] == pytest.approx({"train_loss": 2.1, "train_loss_min": 2.0, "train_loss_max": 2.2,
                                                      "val_acc": 0.61, "val_acc_min": 0.51, "val_acc_max": 0.71})
    assert run.summary.startswith("recorded on 2026-12-01") and run.seconds == 188.0
    assert run.steps_per_epoch == plan.steps_per_epoch and run.warmup_step == warmup_end(DEGRADATION_TRAIN, plan)
    assert run.matches(DEGRADATION_DATA, DEGRADATION_TRAIN, (20, 56))
    assert run.matches(DEGRADATION_DATA, DEGRADATION_TRAIN.replace(seed=7), (20, 56))  # the band spans seeds
    assert not run.matches(DEGRADATION_DATA, DEGRADATION_TRAIN.replace(epochs=2), (20, 56))
    assert not run.matches(DEGRADATION_DATA, DEGRADATION_TRAIN, (8, 14))
    assert not run.matches(DatasetSpec(kind="shapes", n_train=256, n_val=64), DEGRADATION_TRAIN, (20, 56))
    json.dumps(run.recipe)  # plain JSON, as provenance.json holds it


# ---- section 4: lesion ------------------------------------------------------------------------------------


def test_a_lesion_study_of_nets_near_chance_is_refused_beforehand_with_the_reason():
    reason = lesion_refusal({"plain-56": 0.12, "ResNet-56": 0.532}, 10)
    assert reason.startswith("plain-56 (12.0%) is within 10 points of chance (10%)")
    assert "0 points lost" in reason
    both = lesion_refusal({"plain-56": 0.12, "ResNet-56": 0.14}, 10)
    assert both.startswith("plain-56 (12.0%) and ResNet-56 (14.0%) are within")
    assert lesion_refusal({"plain-20": 0.92, "ResNet-20": 0.941}, 10) is None
    assert "no validation accuracy yet" in lesion_refusal({"plain-20": None, "ResNet-20": 0.5}, 10)


def test_the_lesion_walk_matches_deleting_each_block_from_the_whole_net():
    x = torch.randn(24, 3, 16, 16)
    for residual in (True, False):
        model = build_model(cifar_config(14, residual)).eval()
        y = model(x).argmax(1)  # labels the intact net gets right, so deletions have something to lose
        result = lesion_study(model, x, y, batch_size=10)
        assert result.baseline == 1.0
        for (path, block), entry in zip(model.named_blocks(), result.entries):
            if entry.accuracy is None:
                continue
            stage, index = path.rsplit(".", 1)
            getattr(model, stage)[int(index)] = _Lesioned(block)
            expected = _accuracy(model, x, y, 10)
            getattr(model, stage)[int(index)] = block
            assert entry.accuracy == pytest.approx(expected), path


def _lesioned(label: str, intact: list[bool], deleted: dict[str, list[bool] | None]) -> LesionResult:
    """A lesion result with each image's answers: intact, and with each block deleted (None: cannot be)."""
    n = len(intact)
    entries = tuple(LesionEntry(path, None) if ok is None else LesionEntry(path, sum(ok) / n, correct=tuple(ok))
                    for path, ok in deleted.items())
    return LesionResult(label, sum(intact) / n, entries, 0.1, tuple(intact))


def test_lesion_reading_quotes_the_losses_with_their_intervals_and_ranks_only_beyond_the_noise():
    n = 40
    right = [True] * n
    plain = _lesioned("plain-20", right, {"layer1.0": [i < 8 for i in range(n)], "layer2.0": None,
                                          "layer3.2": [i < 4 for i in range(n)]})
    res = _lesioned("ResNet-20", right, {"layer1.0": [i >= 2 for i in range(n)],
                                         "layer2.0": [i >= 14 for i in range(n)], "layer3.2": right})
    text = lesion_reading([plain, res])
    # plain-20 loses 85 points on average (80 and 90); per image 1, 0.5 or 0: the interval comes from that spread.
    assert plain.mean_drop == pytest.approx(0.85) and plain.drop_interval.text(1, 100) in text
    assert "mean ± 95% interval over 40 validation images" in text
    assert "plain-20 85.0 ± " in text and "(intact 100.0%; at worst 90.0, deleting layer3.2)" in text
    assert "ResNet-20 13.3 ± " in text and "deleting layer2.0" in text
    assert "the residual net loses less per deletion, beyond the noise (difference 71.7 ± " in text
    assert "plain-20's 1 shape-changing blocks cannot be skipped" in text
    # ResNet-20 loses 13 points per deleted block, its interval above Veit et al.'s "hardly" (5): said plainly.
    assert "Beside Veit et al. 2016 (below): this run disagrees. ResNet-20 loses 13.3 ± " in text
    near = LesionResult("plain-56", 0.12, (LesionEntry("layer1.0", 0.12),), 0.1)
    assert "plain-56 was near chance" in lesion_reading([near, res])
    # Near-equal losses: the same answers but two images: no ranking.
    close = _lesioned("ResNet-20", right, {"layer1.0": [i < 8 or i in (20, 21) for i in range(n)], "layer2.0": None,
                                           "layer3.2": [i < 4 for i in range(n)]})
    said = lesion_reading([plain, close])
    assert "is within the noise, so this run does not rank them" in said and "loses less" not in said
    # A residual net that hardly notices a deletion agrees with the paper.
    robust = _lesioned("ResNet-20", right, {"layer1.0": [i != 0 for i in range(n)], "layer3.2": right})
    assert "this run agrees, ResNet-20 loses 1.2 ± " in lesion_reading([plain, robust])


def test_a_real_lesion_study_records_each_images_answers():
    torch.manual_seed(0)
    x = torch.randn(24, 3, 16, 16)
    model = build_model(cifar_config(14, True)).eval()
    result = lesion_study(model, x, model(x).argmax(1), batch_size=10)
    assert result.intact == (True,) * 24 and all(len(e.correct) == 24 for e in result.entries)
    assert statistics.fmean(result.image_drops) == pytest.approx(result.mean_drop)
    assert result.drop_interval.low <= result.mean_drop <= result.drop_interval.high


# ---- section 5: shattering ------------------------------------------------------------------------------


def test_shattering_reading_quotes_the_correlations_and_says_when_they_do_not_fall():
    sweep = ShatteringSweep((8, 56), (0,), 32, 16)
    sweep.points += [(8, False, 0, 0.93), (8, True, 0, 0.95), (56, False, 0, 0.12), (56, True, 0, 0.61)]
    text = shattering_reading(sweep)
    assert "0.93 in plain-8 and 0.12 in plain-56, 0.61 in ResNet-56" in text and text.endswith("56.")
    flat = ShatteringSweep((8, 56), (0,), 32, 16)
    flat.points += [(8, False, 0, 0.9), (56, False, 0, 0.88), (56, True, 0, 0.9)]
    assert "does not fall" in shattering_reading(flat)
