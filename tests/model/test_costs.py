"""Cost guards from the config alone, hostile checkpoints refused before anything is inflated or built."""

import io
import textwrap
import time
import zipfile

import pytest
import torch

from resnet_core.model import (
    PRESETS,
    CheckpointError,
    ConfigError,
    ResNetConfig,
    build_model,
    check_cost,
    count_parameters,
    estimate_macs,
    estimate_params,
    fitted_model,
    get_preset,
    load_checkpoint,
    save_checkpoint,
    summarize,
)
from resnet_core.share import config_from_params
from tests.memory import run_measured

PEAK_RSS_BOUND = 1.5 * 2**30
LINK_BIG_STEM = {"preset": "resnet18", "stem_width": "8192", "in_channels": "1024", "num_classes": "100000",
                 "size": "1024"}
LINK_DEEP = {"stage_blocks": "1000-1000-1000-1000", "stage_widths": "64-64-64-64", "size": "1024"}


def peak_rss_of(script: str) -> tuple[int, str]:
    """(peak RSS in bytes, stdout) of `script` run in a fresh python (earlier tests' children do not count)."""
    peak_mb, out = run_measured(textwrap.dedent(script))
    return int(peak_mb * 2**20), out


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_estimate_is_the_built_count_with_stem_and_head(name):
    with torch.device("meta"):
        model = build_model(PRESETS[name])
    assert estimate_params(PRESETS[name]) == count_parameters(model)


def test_parameter_estimate_counts_the_stem_and_the_head():
    base = get_preset("resnet18")
    wide_stem = base.replace(stem_width=512, in_channels=64)
    assert estimate_params(wide_stem) - estimate_params(base) > 64 * 512 * 49  # the 7x7 stem conv
    assert estimate_params(base.replace(num_classes=2000)) - estimate_params(base) == 512 * 1000 + 1000


@pytest.mark.parametrize("name, size, gmacs", [("resnet18", 224, 1.814), ("resnet34", 224, 3.664),
                                               ("resnet50", 224, 4.089), ("resnet20", 32, 0.04055),
                                               ("resnet50-d", 160, None), ("preact-resnet20", 40, None)])
def test_macs_estimate_matches_the_measured_forward_pass(name, size, gmacs):
    cfg = PRESETS[name]
    measured = summarize(build_model(cfg), (3, size, size)).total_macs
    assert estimate_macs(cfg, size) == measured
    if gmacs is not None:
        assert estimate_macs(cfg, size) / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_costly_models_are_refused_with_the_estimate_the_limit_and_what_to_change(monkeypatch):
    with pytest.raises(ConfigError, match=r"478\.7M parameters .* 100M allowed .* narrower stem"):
        get_preset("resnet18").replace(stem_width=8192, in_channels=1024, num_classes=100_000)
    with pytest.raises(ConfigError, match=r"compute: at 1024x1024 px .* GMACs per image, more than the 50 GMACs"):
        check_cost(get_preset("resnet152"), 1024)
    with pytest.raises(ConfigError, match=r"memory: at 1024x1024 px one feature map"):
        check_cost(get_preset("resnet20").replace(stem_width=64, in_channels=1, stage_blocks=(1, 1, 1),
                                                  stage_widths=(4, 4, 4)), 1024)
    check_cost(get_preset("resnet152"), 224)
    monkeypatch.setenv("RESNET_EXPLORER_MAX_GMACS", "1000")  # a big GPU box
    check_cost(get_preset("resnet152"), 1024)
    monkeypatch.setenv("RESNET_EXPLORER_MAX_PARAMS", "1e6")
    with pytest.raises(ConfigError, match="RESNET_EXPLORER_MAX_PARAMS"):
        get_preset("resnet110").replace(num_classes=11)


@pytest.mark.parametrize("params", [LINK_BIG_STEM, LINK_DEEP])
def test_hostile_links_are_refused_from_the_settings_alone(params):
    start = time.perf_counter()
    cfg, notices = config_from_params(params, get_preset("resnet20"))
    assert time.perf_counter() - start < 1.0
    assert cfg in (get_preset("resnet18"), get_preset("resnet20"))
    assert "parameters" in notices[0] and "100M allowed" in notices[0]


@pytest.mark.slow
def test_hostile_links_stay_small_in_memory():
    peak, out = peak_rss_of(f"""
        import time
        from resnet_core import get_preset
        from resnet_core.share import config_from_params
        start = time.perf_counter()
        for params in ({LINK_BIG_STEM!r}, {LINK_DEEP!r}):
            cfg, notices = config_from_params(params, get_preset("resnet20"))
            assert notices, params
        print(time.perf_counter() - start)
    """)
    assert peak < PEAK_RSS_BOUND and float(out) < 1.0


def _checkpoint_bytes(payload) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def test_a_config_claiming_a_huge_model_is_refused_before_building():
    claim = get_preset("resnet20").to_dict() | {"stage_blocks": [1], "stage_widths": [5240]}
    data = _checkpoint_bytes({"state_dict": {"fc.weight": torch.zeros(10, 64)}, "config": claim})
    with pytest.raises(CheckpointError, match=r"config is not valid: model size: .*M parameters"):
        load_checkpoint(data)


def test_weights_that_do_not_fit_build_nothing():
    cfg = get_preset("resnet56")
    model, report = fitted_model(cfg, build_model(get_preset("resnet20")).state_dict())
    assert model is None and report.missing


@pytest.mark.parametrize("preprocess, words", [
    ({"mean": "abc"}, "preprocess mean must be a list of 1 or 3 numbers"),
    ([1, 2, 3], "preprocess must be a dict"),
    ({"image_size": -5}, "image_size must be a whole number of pixels from 16 to 1024; found -5"),
    ({"image_size": 4000}, "found 4000"),
    ({"std": [0.2, 0.0, 0.2]}, "preprocess std"),
    ({"image_size": 32, "resize": "big"}, "preprocess resize"),
    ({"colour": 1}, "unknown field"),
])
def test_bad_preprocess_gets_a_message_not_a_traceback(tmp_path, preprocess, words):
    model = build_model(get_preset("resnet20"))
    path = save_checkpoint(tmp_path / "m.pt", model, preprocess=preprocess)
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(path)


def test_classes_must_be_names(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", build_model(get_preset("resnet20")), classes=[1, 2])
    with pytest.raises(CheckpointError, match="classes must be a list of names"):
        load_checkpoint(path)


def write_inflating_checkpoint(path, mib: int):
    """A real torch.save file whose tensor record is re-packed as `mib` MiB of deflated zeros (streamed in 16 MiB
    chunks, so writing it stays small in memory). ZipInfo defaults to stored: deflate is set on that record only."""
    good = _checkpoint_bytes({"state_dict": {"w": torch.zeros(4)}})
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            if "/data/" in info.filename and not info.filename.endswith(".pkl"):
                big = zipfile.ZipInfo(info.filename)
                big.compress_type = zipfile.ZIP_DEFLATED
                with out.open(big, "w", force_zip64=True) as f:
                    chunk = bytes(1 << 24)
                    for _ in range(mib // 16):
                        f.write(chunk)
            else:
                out.writestr(info, src.read(info.filename))
    return path


def test_a_storage_record_that_inflates_is_refused_before_loading(tmp_path):
    path = write_inflating_checkpoint(tmp_path / "bomb.pt", mib=256)
    assert path.stat().st_size < 2 * 2**20
    with pytest.raises(CheckpointError, match=r"declare 256\.0 MiB once unpacked .* not compressed"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="declare"):
        load_checkpoint(path.read_bytes())


@pytest.mark.slow
def test_a_gigabyte_bomb_is_refused_in_little_memory(tmp_path):
    path = write_inflating_checkpoint(tmp_path / "bomb.pt", mib=1024)  # a few MB on disk
    peak, out = peak_rss_of(f"""
        import time
        from resnet_core.model import CheckpointError, load_checkpoint
        start = time.perf_counter()
        try:
            load_checkpoint({str(path)!r})
        except CheckpointError as exc:
            print(time.perf_counter() - start, "|", exc)
    """)
    seconds, message = out.split("|", 1)
    assert "declare 1,024.0 MiB once unpacked" in message
    assert peak < PEAK_RSS_BOUND and float(seconds) < 5


def test_legacy_pickle_format_is_refused_with_how_to_fix():
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy format .* save it again"):
        load_checkpoint(buffer.getvalue())


def test_a_saved_checkpoint_still_loads(tmp_path):
    model = build_model(get_preset("resnet20"))
    path = save_checkpoint(tmp_path / "ok.pt", model, classes=[str(i) for i in range(10)],
                           preprocess={"mean": [0.5] * 3, "std": [0.25] * 3, "image_size": 32, "resize": 36})
    ckpt = load_checkpoint(path)
    assert ckpt.config == model.config and ckpt.preprocess["resize"] == 36
    assert isinstance(ResNetConfig.from_dict(ckpt.config.to_dict()), ResNetConfig)
