"""Plain vs residual measurements (resnet_core.analysis) on real, tiny networks."""

from __future__ import annotations

import itertools
import math
import re
import statistics
import threading
import time

import pytest
import torch

from resnet_core import build_model, get_preset
from resnet_core.analysis import (
    SWEEP_DEPTHS,
    BlockGradRecorder,
    GradientError,
    SideBySide,
    check_depth,
    check_pair,
    cifar_config,
    depth_sweep,
    gradient_norms,
    gradient_shattering,
    lesion_study,
    profile_pair,
    random_batch,
    shattering_sweep,
    sweep_job,
    twin_configs,
)
from resnet_core.analysis.readings import lesion_reading, shattering_reading, sweep_reading, times
from resnet_core.charts import (
    autocorrelation_figure,
    depth_sweep_figure,
    grad_heatmap_figure,
    gradient_profile_figure,
    lesion_figure,
    plain_vs_residual_training_figure,
    shattering_figure,
)
from resnet_core.data import DataBundle, DatasetSpec, ImageSet, channel_stats, load_dataset, normalize
from resnet_core.jobs.training_queue import TrainingQueue
from resnet_core.model import build_seeded
from resnet_core.status import Status
from resnet_core.train import StepEvent, TrainConfig, Trainer, load_metrics
from ui.captions import CAPTIONS, FOUND, LOOK, caption

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def gratings(n: int, size: int, seed: int) -> ImageSet:
    """Four classes of oriented stripes (0, 45, 90, 135 degrees) with random frequency, phase, tint and noise.

    Learnable in a few dozen steps, so a trained pair fits in a fast test.
    """
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    angle = labels.float() * math.pi / 4 + (torch.rand(n, generator=gen) - 0.5) * 0.3
    freq = 0.6 + torch.rand(n, generator=gen) * 0.6
    phase = torch.rand(n, generator=gen) * 2 * math.pi
    c = torch.arange(size).float()
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    proj = xx * torch.cos(angle)[:, None, None] + yy * torch.sin(angle)[:, None, None]
    wave = torch.sin(freq[:, None, None] * proj + phase[:, None, None])
    tint = torch.rand(n, 3, 1, 1, generator=gen) * 0.5 + 0.25
    img = 0.5 + 0.35 * wave[:, None] * tint / tint.mean(1, keepdim=True)
    img = img + 0.15 * torch.randn(n, 3, size, size, generator=gen)
    return ImageSet((img.clamp(0, 1) * 255).to(torch.uint8), labels)


def gratings_bundle(n_train: int = 1024, n_val: int = 256, size: int = 16) -> DataBundle:
    train, val = gratings(n_train, size, 1), gratings(n_val, size, 2)
    mean, std = channel_stats(train.images)
    return DataBundle(train, val, ["0deg", "45deg", "90deg", "135deg"], mean, std, {"kind": "gratings"})


# ---- gradient profile --------------------------------------------------------------------------


def test_profile_lists_convs_and_blocks_input_to_output_and_leaves_the_model_untouched():
    model = build_model(get_preset("resnet20"))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = random_batch(8, 16, 10)
    prof = gradient_norms(model, x, y)

    blocks = [f"layer{s}.{i}" for s in (1, 2, 3) for i in range(3)]
    convs = ["conv1"] + [f"{b}.conv{k}" for b in blocks for k in (1, 2)]
    assert list(prof.conv_paths) == convs
    assert list(prof.block_paths) == blocks == [p for p, _ in model.named_blocks()]
    assert len(prof.conv_norms) == 19 and len(prof.block_norms) == 9
    assert all(math.isfinite(v) and v > 0 for v in prof.conv_norms + prof.block_norms)
    assert prof.first_conv == "conv1" and prof.last_conv == "layer3.2.conv2"
    assert prof.first_last_ratio == pytest.approx(prof.conv_norms[0] / prof.conv_norms[-1])
    assert prof.warnings == ()
    # mode, BatchNorm statistics and .grad exactly as before
    assert not model.training and not any(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_profile_matches_an_ordinary_backward_pass():
    model = build_model(cifar_config(8, residual=False))
    x, y = random_batch(8, 16, 10, seed=3)
    prof = gradient_norms(model, x, y)
    model.train()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    assert prof.conv_norms[0] == pytest.approx(float(model.conv1.weight.grad.norm()), rel=1e-4)
    assert prof.conv_norms[-1] == pytest.approx(float(model.layer3[0].conv2.weight.grad.norm()), rel=1e-4)


def test_projection_shortcuts_are_ordered_after_their_block_and_are_not_the_last_conv():
    cfg = get_preset("resnet20").replace(shortcut="B", stage_blocks=(1, 1, 1))
    prof = gradient_norms(build_model(cfg), *random_batch(4, 16, 10))
    assert list(prof.conv_paths) == ["conv1", "layer1.0.conv1", "layer1.0.conv2",
                                     "layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample.0",
                                     "layer3.0.conv1", "layer3.0.conv2", "layer3.0.downsample.0"]
    assert [p for p, s in zip(prof.conv_paths, prof.on_shortcut) if s] == ["layer2.0.downsample.0",
                                                                          "layer3.0.downsample.0"]
    assert prof.last_conv == "layer3.0.conv2"


def test_zero_init_gives_branch_convs_exactly_zero_gradient_at_step_zero():
    cfg = get_preset("resnet20").replace(zero_init_residual=True, shortcut="B")
    model = build_model(cfg)
    x, y = random_batch(16, 16, 10, seed=1)
    prof = gradient_norms(model, x, y)
    branch = [n for p, n in zip(prof.conv_paths, prof.conv_norms) if p.startswith("layer") and ".downsample" not in p]
    assert len(branch) == 18 and all(n == 0.0 for n in branch)  # exactly, not approximately
    assert prof.conv_norms[0] > 0  # the stem learns through the shortcuts
    assert all(n > 0 for p, n in zip(prof.conv_paths, prof.conv_norms) if ".downsample" in p)
    assert prof.first_last_ratio == math.inf
    assert len(prof.warnings) == 1 and "exactly zero gradient" in prof.warnings[0]
    # The gammas do get a gradient: after one SGD step the branches wake up.
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    assert float(model.layer1[0].bn2.weight.grad.norm()) > 0
    opt.step()
    after = gradient_norms(model, x, y)
    assert all(n > 0 for p, n in zip(after.conv_paths, after.conv_norms) if p.startswith("layer"))
    # The plain twin has no zero-init (it would zero the whole net) and no warning.
    assert gradient_norms(build_model(cfg.plain_twin()), x, y).warnings == ()


def test_profile_pair_bands_use_the_same_seed_and_batch_for_both_twins():
    pair = profile_pair(get_preset("resnet20"), seeds=(0, 1, 2), batch_size=8, image_size=16)
    assert (pair.a.label, pair.b.label) == ("ResNet-20", "plain-20")
    for side in (pair.a, pair.b):
        assert len(side.profiles) == 3 and len(side.convs.mean) == 19
        for lo, mean, hi in zip(side.convs.low, side.convs.mean, side.convs.high):
            assert lo <= mean <= hi
        assert side.convs.low != side.convs.high  # three different seeds, three different nets
    # Seed 0 of each side is that seed's network on that seed's random batch: the same batch for both.
    x, y = random_batch(8, 16, 10, seed=0)
    for side, cfg in ((pair.a, get_preset("resnet20")), (pair.b, get_preset("plain20"))):
        torch.manual_seed(0)
        again = gradient_norms(build_model(cfg), x, y)
        assert again.conv_norms == pytest.approx(side.profiles[0].conv_norms, rel=1e-5)
    # plain user config: compared with its residual twin, residual first
    pair2 = profile_pair(get_preset("plain20"), seeds=(0,), batch_size=4, image_size=16)
    assert (pair2.a.label, pair2.b.label) == ("ResNet-20", "plain-20")


# ---- depth sweep ----------------------------------------------------------------------------------


def test_depth_sweep_plain_ratio_explodes_with_depth_while_the_residual_one_stays_small():
    result = depth_sweep(SWEEP_DEPTHS, seeds=(0, 1, 2), batch_size=16, image_size=16)
    plain = {d: m for d, m, _, _ in result.series(residual=False)}
    res = {d: m for d, m, _, _ in result.series(residual=True)}
    assert list(plain) == list(SWEEP_DEPTHS) == list(res)
    depths = list(SWEEP_DEPTHS)
    assert all(plain[a] < plain[b] for a, b in itertools.pairwise(depths)), plain  # monotonic (medians)
    assert plain[56] > 100 * res[56], (plain[56], res[56])
    assert plain[20] > 5 and plain[110] > 1e5  # ~10^1 at depth 20, ~10^6-10^7 at 110
    assert all(1 <= r < 100 for r in res.values()), res  # residual: within 10^0-10^2
    assert len(result.points) == 2 * 3 * len(SWEEP_DEPTHS) and not result.stopped
    text = sweep_reading(result)  # the caption quotes these medians and reads the climb off them
    assert f"{times(plain[8])} at depth 8; {times(plain[20])} at 20; {times(plain[56])} at 56" in text
    assert "climbs by about" in text and "does not climb" not in text


def test_without_normalization_the_plain_explosion_disappears():
    result = depth_sweep((8, 56), norms=("batch", "none"), seeds=(0, 1), batch_size=8, image_size=16)
    with_bn = {d: m for d, m, _, _ in result.series(residual=False, norm="batch")}
    plain = {d: m for d, m, _, _ in result.series(residual=False, norm="none")}
    res = {d: m for d, m, _, _ in result.series(residual=True, norm="none")}
    assert plain[56] < 0.01 * with_bn[56], (plain, with_bn)  # the explosion comes with BatchNorm
    assert all(0.01 < r < 100 for r in [*plain.values(), *res.values()]), (plain, res)
    assert "Neither climbs by orders of magnitude" in sweep_reading(result, "none")
    assert "climbs by about" in sweep_reading(result, "batch")
    fig = depth_sweep_figure(result, norm="none")
    assert fig.layout.yaxis.type == "log" and len(fig.data) == 2
    assert "without normalization" in fig.layout.title.text


def test_depth_sweep_reports_progress_and_stops_when_asked():
    stop = threading.Event()
    calls: list[tuple[int, int]] = []

    def progress(done, total, message, partial):
        calls.append((done, total))
        assert len(partial.points) == done and message
        if done == 3:
            stop.set()

    result = depth_sweep((8, 14, 20), seeds=(0,), batch_size=4, image_size=16, progress=progress, stop=stop)
    assert calls == [(1, 6), (2, 6), (3, 6)]
    assert result.stopped and len(result.points) == 3


def test_sweep_job_runs_in_the_background_and_can_be_stopped():
    job = sweep_job((8, 14), batch_size=4, image_size=16).start()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status is Status.FINISHED and snap.done == snap.total == 4 and snap.error is None
    assert len(snap.result.points) == 4
    stopped = sweep_job((8, 14, 20, 32), batch_size=4, image_size=16)
    stopped.stop()  # before it starts: the first check ends it
    stopped.start()
    assert stopped.join(60)
    assert stopped.snapshot().status is Status.STOPPED and stopped.snapshot().result.stopped


# ---- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth, words", [
    (57, "6n+2"), (21, "nearest are 20 or 26"), (2, "smallest"), (7, "smallest"), (1000, "maximum"),
    ("20", "whole number"), (True, "whole number"), (20.0, "whole number"),
])
def test_impossible_depths_are_refused_with_a_reason(depth, words):
    with pytest.raises(GradientError, match=re.escape(words)):
        check_depth(depth)
    with pytest.raises(GradientError):
        depth_sweep((8, depth))


def test_nothing_to_compare_is_an_error():
    cfg = get_preset("resnet20")
    with pytest.raises(GradientError, match="nothing to compare"):
        check_pair(cfg, cfg)
    with pytest.raises(GradientError, match="nothing to compare"):
        profile_pair(cfg, cfg)
    with pytest.raises(GradientError, match="nothing to compare"):
        SideBySide(DatasetSpec(), TrainConfig(epochs=1, device="cpu"), depths=(20, 20))
    assert twin_configs(cfg) == (cfg, cfg.plain_twin())


def test_bad_batches_are_refused():
    model = build_model(get_preset("resnet20"))
    x, y = random_batch(4, 16, 10)
    with pytest.raises(GradientError, match="one label per image"):
        gradient_norms(model, x, y[:3])
    with pytest.raises(GradientError, match="0..9"):
        gradient_norms(model, x, y + 10)
    with pytest.raises(GradientError, match="float N x C x H x W"):
        gradient_norms(model, x[0], y)
    with pytest.raises(GradientError, match="at least 2"):
        random_batch(1, 16, 10)
    with pytest.raises(GradientError, match="ResNet built by resnet_core"):
        gradient_norms(torch.nn.Linear(3, 3), x, y)


# ---- training side by side and the gradient heatmap ---------------------------------------------------


def test_block_recorder_records_the_true_block_output_gradients_on_its_steps():
    model = build_model(cifar_config(8, residual=True, num_classes=4))
    x, y = random_batch(8, 16, 4, seed=5)
    expected = gradient_norms(model, x, y).block_norms  # measured before the first step
    recorder = BlockGradRecorder(model, every=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    for _ in range(7):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        with torch.no_grad():  # a validation pass must not count as a step
            model.eval()
            model(x)
            model.train()
    paths, steps, matrix = recorder.snapshot()
    assert paths == ("layer1.0", "layer2.0", "layer3.0")
    assert steps == [1, 3, 6]
    assert [row[0] for row in matrix] == pytest.approx(list(expected), rel=1e-4)
    recorder.remove()
    assert not model._forward_pre_hooks and not any(b._forward_hooks for _, b in model.named_blocks())


def wait_until_done(pair: SideBySide, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while pair.running:
        assert time.monotonic() < deadline, "the twins did not finish in time"
        time.sleep(0.2)


@pytest.mark.slow
def test_side_by_side_trains_four_worker_processes_from_the_same_start_and_records_heatmaps(tmp_path):
    spec = DatasetSpec(kind="shapes", n_train=256, n_val=64, image_size=16)
    config = TrainConfig(epochs=1, batch_size=32, lr=0.05, device="cpu", seed=0, max_steps=6,
                         augment_crop=False, augment_flip=False)
    queue = TrainingQueue(tmp_path, slots=1)
    try:
        pair = SideBySide(spec, config, depths=(8, 14), record_every=5)
        names = pair.names
        assert names == ["plain-8", "ResNet-8", "plain-14", "ResNet-14"]
        # the worker builds each net with build_seeded(cfg, seed): each plain net starts from its twin's weights
        for plain, res in ((names[0], names[1]), (names[2], names[3])):
            sp = build_seeded(pair.configs[plain], config.seed, 10).state_dict()
            sr = build_seeded(pair.configs[res], config.seed, 10).state_dict()
            assert sp.keys() == sr.keys() and all(torch.equal(sp[k], sr[k]) for k in sp)
        pair.submit(queue, estimate_s=20)
        assert len(queue.jobs()) == 1  # four processes, one job: they share the device's one slot
        wait_until_done(pair)
        assert pair.view().status is Status.FINISHED, pair.view().error
        curves = pair.curves()
        assert list(curves) == names
        for name in names:
            c = curves[name]
            assert c["status"] is Status.FINISHED and c["step"] == [1, 2, 3, 4, 5, 6]
            assert len(c["train_loss"]) == 6 and len(c["val_acc"]) == 1 and c["val_step"] == [6]
            assert c["train_loss"] == [e.train_loss for e in load_metrics(pair.run_dirs[name])
                                       if isinstance(e, StepEvent)]
        snaps, zrange = pair.heatmaps(14)
        paths, steps, matrix = snaps["plain-14"]
        assert len(paths) == 6 and steps == [1, 5] and all(len(row) == 2 for row in matrix)
        assert zrange is not None and zrange[0] <= math.log10(matrix[0][0]) <= zrange[1]
        for metric in ("train_loss", "val_acc"):
            assert len(plain_vs_residual_training_figure(curves, metric).data) == 4
        fig = grad_heatmap_figure(paths, steps, matrix)
        assert fig.data[0].z[0][0] == pytest.approx(math.log10(matrix[0][0]))
        lesion = pair.lesion_job(8, load_dataset(spec), n_images=32).start()
        assert lesion.join(60) and lesion.snapshot().status is Status.FINISHED
        assert [r.label for r in lesion.snapshot().result] == ["plain-8", "ResNet-8"]
    finally:
        queue.close()


@pytest.mark.slow
def test_side_by_side_stop_stops_every_worker_and_keeps_their_weights(tmp_path):
    spec = DatasetSpec(kind="shapes", n_train=256, n_val=32, image_size=16)
    config = TrainConfig(epochs=50, batch_size=32, device="cpu", augment_crop=False, augment_flip=False)
    queue = TrainingQueue(tmp_path, slots=1)
    try:
        pair = SideBySide(spec, config, depths=(8, 14)).submit(queue, estimate_s=60)
        pair.stop()
        wait_until_done(pair, timeout=90)
        assert pair.view().status is Status.STOPPED
        assert {c["status"] for c in pair.curves().values()} == {Status.STOPPED}
    finally:
        queue.close()


# ---- lesion study ---------------------------------------------------------------------------------------


def test_lesion_marks_shape_changing_plain_blocks_not_applicable_and_restores_the_model():
    for residual in (True, False):
        model = build_model(cifar_config(20, residual))
        blocks = [b for _, b in model.named_blocks()]
        x, y = random_batch(16, 16, 10)
        result = lesion_study(model, x, y)
        assert [e.path for e in result.entries] == [p for p, _ in model.named_blocks()]
        na = [e.path for e in result.entries if e.accuracy is None]
        assert na == ([] if residual else ["layer2.0", "layer3.0"])
        assert [b for _, b in model.named_blocks()] == blocks  # every block back in place
        assert result.chance == pytest.approx(0.1)


@pytest.mark.slow
def test_lesion_residual_net_survives_single_deletions_far_better_than_plain():
    data = gratings_bundle(1024, 256)
    config = TrainConfig(epochs=3, batch_size=64, lr=0.05, device="cpu", seed=0, augment_crop=False,
                         augment_flip=False)
    x, y = normalize(data.val.images, data.mean, data.std), data.val.labels
    results = {}
    for residual in (True, False):
        model = build_seeded(cifar_config(20, residual), 0, 4)
        trainer = Trainer(model, data, config).start()
        assert trainer.join(120) and trainer.status is Status.FINISHED
        results[residual] = lesion_study(model, x, y)
    res, plain = results[True], results[False]
    assert res.baseline > 0.85 and plain.baseline > 0.6  # both learned the task
    assert res.mean_drop < 0.5 * plain.mean_drop, (res.rows(), plain.rows())
    text = lesion_reading([plain, res])
    assert f"{res.drop_interval.text(1, 100)} points on average" in text and "the residual net loses" in text
    # most single deletions leave the residual net within a few points of its accuracy
    assert statistics.median(res.baseline - a for _, a in res.rows()) < 0.05
    fig = lesion_figure([res, plain])
    assert len(fig.data) == 2 and list(fig.data[1].text).count("n/a") == 2


# ---- shattering --------------------------------------------------------------------------------------------


def test_shattering_residual_gradients_stay_correlated_while_plain_ones_decorrelate():
    sweep = shattering_sweep((8, 32), seeds=(0,), n_points=32, image_size=16)
    plain = {d: c for d, c, _, _ in sweep.series(residual=False)}
    res = {d: c for d, c, _, _ in sweep.series(residual=True)}
    assert res[32] > plain[32] + 0.3, (plain, res)
    assert plain[32] < plain[8]  # deeper plain nets shatter more
    assert plain[32] < 0.2  # close to white noise
    assert f"{plain[8]:.2f} in plain-8 and {plain[32]:.2f} in plain-32, {res[32]:.2f} in ResNet-32" in (
        shattering_reading(sweep))
    profiles = sweep.deepest_profiles()
    assert [p.label for p in profiles] == ["plain-32", "ResNet-32"]
    assert len(autocorrelation_figure(profiles).data) == 2
    assert len(shattering_figure(sweep).data) == 2


def test_shattering_checks_its_inputs_and_restores_the_model():
    model = build_model(cifar_config(8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    prof = gradient_shattering(model, x[0], x[1], n_points=8, max_lag=3)
    assert len(prof.neighbour) == 7 and prof.lags == (1, 2, 3)
    assert all(-1.0001 <= c <= 1.0001 for c in prof.neighbour)
    assert not model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(GradientError, match="same C x H x W"):
        gradient_shattering(model, x[0], x[1, :, :8])
    with pytest.raises(GradientError, match=">= 4"):
        gradient_shattering(model, x[0], x[1], n_points=2)


# ---- captions and figures ---------------------------------------------------------------------------------


def test_every_chart_has_a_two_sentence_caption_without_the_common_misstatements():
    for key in ("profile", "blocks", "sweep", "sweep_no_bn", "training", "heatmap", "lesion", "shattering",
                "zero_init"):
        text = CAPTIONS[key]
        sentences = [s for s in text.replace("et al.", "et al").split(". ") if s.strip()]
        assert len(sentences) == 2, (key, sentences)
        assert "look" in sentences[0].lower(), key  # first sentence: what to look for
        lowered = text.lower()
        assert "solve vanishing" not in lowered and "solves vanishing" not in lowered
        assert "reduce the parameter" not in lowered and "fewer parameters" not in lowered
    assert "Yang et al. 2019" in CAPTIONS["sweep"] and "He et al. 2015" in CAPTIONS["profile"]
    assert "Veit et al. 2016" in CAPTIONS["lesion"] and "Balduzzi et al. 2017" in CAPTIONS["shattering"]
    # What to look at never claims the trend: the size and the direction come from the chart's numbers.
    for key in ("profile", "blocks", "sweep", "sweep_no_bn", "training", "heatmap", "lesion", "shattering"):
        assert not any(claim in LOOK[key] for claim in ("orders of magnitude", "barely", "stays above", "explod"))
    reading = "Measured here: plain-20's first-conv gradient is 13× its last conv's, ResNet-20's 1.6×."
    assert caption("profile", reading) == f"{LOOK['profile']} {reading} {FOUND['profile']}"
    assert caption("profile") == CAPTIONS["profile"]


def test_profile_figure_draws_bands_on_a_log_axis():
    pair = profile_pair(get_preset("resnet20").replace(shortcut="B"), seeds=(0, 1), batch_size=4, image_size=16)
    fig = gradient_profile_figure(pair, "convs")
    assert fig.layout.yaxis.type == "log"
    means = [t for t in fig.data if t.name and "mean" in t.name]
    assert [t.name.split(" (")[0] for t in means] == ["ResNet-20", "plain-20"]
    assert len(means[0].y) == 19  # main-path convs; the two projections are separate markers
    assert any(t.name == "ResNet-20: shortcut projections" for t in fig.data)
    blocks = gradient_profile_figure(pair, "blocks")
    assert len(next(t for t in blocks.data if t.name and "mean" in t.name).y) == 9
