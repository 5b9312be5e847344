import json

import pytest

from resnet_core import ConfigError, ResNetConfig, get_preset, list_presets
from resnet_core.model import config_to_python


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"stage_blocks": ()}, "stage_blocks"),
        ({"stage_blocks": (2, 0, 2, 2)}, "stage_blocks[1]"),
        ({"stage_widths": (64, -1, 256, 512)}, "stage_widths[1]"),
        ({"stage_widths": (64, 128)}, "stage_widths"),
        ({"block": "wide"}, "block"),
        ({"stem": "huge"}, "stem"),
        ({"shortcut": "D"}, "shortcut"),
        ({"norm": "layer"}, "norm"),
        ({"num_classes": 0}, "num_classes"),
        ({"width_multiplier": 0}, "width_multiplier"),
        ({"stage_blocks": (2, 2.5, 2, 2)}, "stage_blocks[1]"),
        ({"norm": "none", "zero_init_residual": True}, "zero_init_residual"),
        ({"residual": False, "zero_init_residual": True}, "zero_init_residual"),
    ],
)
def test_bad_config_names_field_value_and_choices(changes, field):
    with pytest.raises(ConfigError) as err:
        ResNetConfig(**changes)
    message = str(err.value)
    assert message.startswith(field + ":"), message
    bad_value = next(iter(changes.values())) if len(changes) == 1 else True
    if field in ("block", "stem", "shortcut", "norm"):
        assert repr(bad_value) in message and "choose one of" in message


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="resnet50"):
        get_preset("resnet51")


def test_presets_cover_the_paper_families():
    names = set(list_presets())
    for depth in (18, 34, 50, 101, 152, 20, 32, 44, 56, 110, 1202):
        assert f"resnet{depth}" in names
    for depth in (18, 34, 50, 101, 152, 20, 32, 44, 56, 110):
        assert f"plain{depth}" in names
        assert get_preset(f"plain{depth}").residual is False
    assert {"preact-resnet18", "preact-resnet110", "preact-resnet164"} <= names


def test_config_json_round_trip_and_unknown_field():
    cfg = get_preset("resnet56").replace(preact=True, width_multiplier=2.0)
    assert ResNetConfig.from_json(cfg.to_json()) == cfg
    data = json.loads(cfg.to_json())
    data["depth"] = 3
    with pytest.raises(ConfigError, match="unknown field"):
        ResNetConfig.from_dict(data)
    with pytest.raises(ConfigError, match="not valid JSON"):
        ResNetConfig.from_json("{nope")


def test_python_snippet_rebuilds_the_same_config():
    cfg = get_preset("resnet110").replace(shortcut="B", zero_init_residual=True)
    namespace: dict = {}
    exec(config_to_python(cfg), namespace)
    assert namespace["config"] == cfg
    assert namespace["model"].config == cfg


def test_cifar_depth_follows_6n_plus_2():
    assert get_preset("resnet56").depth == 56
    assert get_preset("resnet50").depth == 50


def test_a_model_deeper_than_resnet1202_is_refused_by_its_layer_count():
    """Building costs time per layer (1000-1000-1000 from a link took 20-38 s per page): the deepest published
    ResNet is the limit, and it is still accepted."""
    from resnet_core.model.config import MAX_DEPTH

    assert get_preset("resnet1202").depth == MAX_DEPTH == 1202
    with pytest.raises(ConfigError, match="depth: this model would have 6,002 layers, more than the 1,202 allowed"):
        get_preset("resnet20").replace(stage_blocks=(1000, 1000, 1000))
    with pytest.raises(ConfigError, match="8,002 layers"):  # narrow stages: tiny in parameters, slow to build
        get_preset("resnet18").replace(stage_blocks=(1000,) * 4, stage_widths=(8,) * 4)
    assert get_preset("resnet20").replace(stage_blocks=(200, 200, 200)).depth == 1202  # = ResNet-1202


@pytest.mark.parametrize("text", ["[" * 100_000, '{"stage_blocks": ' + "[" * 40 + "]" * 40 + "}",
                                  '{"a": ' * 5000 + "1" + "}" * 5000])
def test_a_deeply_nested_config_file_is_a_config_error_not_a_recursion_error(text):
    with pytest.raises(ConfigError, match=r"nested too deeply \(more than 32 levels\)"):
        ResNetConfig.from_json(text)


def test_a_deeply_nested_model_config_file_is_refused_by_the_command_line(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    out = subprocess.run([sys.executable, "-m", "resnet_core.train", "--model-config", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "config: not read: it is nested too deeply (more than 32 levels)" in out.stderr
