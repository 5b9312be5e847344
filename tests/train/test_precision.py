"""The CPU fast path's choice: forced values kept, bf16 only where the CPU has it natively (a test forces the
fallback), a measured choice recorded in the run's config.json and first event."""

from __future__ import annotations

import torch

from resnet_core import build_model, get_preset
from resnet_core.data import DatasetSpec, load_dataset
from resnet_core.train import TrainConfig, precision, read_run
from resnet_core.train.precision import NO_BF16_ENV, choose_precision, cpu_bf16_supported
from resnet_core.train.trainer import create_trainer

TINY = get_preset("resnet20").replace(stage_blocks=(1, 1), stage_widths=(4, 8), stem_width=4)
CPU = torch.device("cpu")


def test_forced_values_are_kept_and_cuda_gets_both():
    model = build_model(TINY)
    assert choose_precision(model, CPU, 8, 16, bf16=True, channels_last=False).bf16 is True
    chosen = choose_precision(model, torch.device("cuda"), 8, 16)
    assert chosen.bf16 and chosen.channels_last


def test_without_native_bf16_a_cpu_never_trains_in_bf16_unless_asked(monkeypatch):
    monkeypatch.setenv(NO_BF16_ENV, "1")
    assert not cpu_bf16_supported()
    chosen = choose_precision(build_model(TINY), CPU, 8, 16)
    assert chosen.bf16 is False  # the layout may still be chosen by measurement
    assert "no native bf16" in chosen.why or "measured" in chosen.why


def test_the_run_records_which_precision_and_layout_ran(tmp_path, monkeypatch):
    monkeypatch.setenv(NO_BF16_ENV, "1")
    torch.manual_seed(0)
    data = load_dataset(DatasetSpec(kind="shapes", n_train=64, n_val=16, image_size=16))
    model = build_model(TINY.replace(num_classes=len(data.classes)))
    trainer = create_trainer(model, data, TrainConfig(epochs=1, batch_size=32, device="cpu", bf16=False),
                             runs_dir=tmp_path)
    trainer.start()
    trainer.join(120)
    precision = read_run(trainer.run.path).config["precision"]
    assert precision["bf16"] is False and isinstance(precision["channels_last"], bool) and precision["why"]
    first = trainer.snapshot().events[0]
    assert ("fp32" in first.message) and (("channels-last" in first.message) == precision["channels_last"])


def test_the_probe_leaves_a_hooked_model_alone():
    """A run recording block gradients has hooks (holding locks) on its model: the probe builds its own copy."""
    import threading

    model = build_model(TINY)
    lock = threading.Lock()
    model.layer1.register_forward_hook(lambda *args: lock.locked() and None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    choose_precision(model, CPU, 8, 16)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_step_too_short_to_time_apart_keeps_the_default_layout(monkeypatch):
    """A step shorter than SHORTEST_STEP_S (a tiny net: about a millisecond) is timing noise on a shared CPU,
    larger than any layout's gain there: the probe keeps fp32 NCHW and says why, so the same seed trains the same
    way every time. (The threshold is raised here so that a loaded test machine cannot stretch the step past it.)"""
    monkeypatch.setenv(NO_BF16_ENV, "1")
    monkeypatch.setattr(precision, "SHORTEST_STEP_S", 60.0)
    chosen = [choose_precision(build_model(TINY), CPU, 8, 16) for _ in range(5)]
    assert {(c.bf16, c.channels_last) for c in chosen} == {(False, False)}
    assert all("too short" in c.why and "no native bf16" in c.why for c in chosen)
