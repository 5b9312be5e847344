import pytest

from resnet_core import build_model, get_preset, summarize
from resnet_core.model import conv_output_size


@pytest.mark.parametrize("name, gmacs", [("resnet18", 1.814), ("resnet50", 4.089)])
def test_macs_match_torchvision_published_figures(name, gmacs):
    summary = summarize(build_model(get_preset(name)), (3, 224, 224))
    assert summary.total_macs / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_rows_follow_a_real_forward_pass():
    model = build_model(get_preset("resnet20"))
    summary = summarize(model, (3, 32, 32))
    assert summary.total_params == 269_722
    assert sum(r.params for r in summary.rows) == summary.total_params
    first, last = summary.rows[0], summary.rows[-1]
    assert (first.path, first.output_shape) == ("conv1", (16, 32, 32))
    assert (last.path, last.output_shape) == ("fc", (10,))
    assert summary.output_shape == (10,)
    shapes = {r.path: r.output_shape for r in summary.rows}
    assert shapes["layer2.0.conv1"] == (32, 16, 16) and shapes["layer3.0.conv1"] == (64, 8, 8)
    assert model.training, "summarize must restore train mode"


def test_blocks_report_shortcut_kind_and_resolution():
    residual = summarize(build_model(get_preset("resnet18")), (3, 224, 224))
    kinds = [b.shortcut for b in residual.blocks]
    assert kinds == ["identity", "identity"] + ["projection", "identity"] * 3
    assert residual.blocks[2].in_shape == (64, 56, 56) and residual.blocks[2].out_shape == (128, 28, 28)
    plain = summarize(build_model(get_preset("plain20")), (3, 32, 32))
    assert {b.shortcut for b in plain.blocks} == {"none"}
    cifar = summarize(build_model(get_preset("resnet20")), (3, 32, 32))
    assert [b.shortcut for b in cifar.blocks].count("zero-pad") == 2


def test_activation_memory_scales_with_batch():
    summary = summarize(build_model(get_preset("resnet20")), (3, 32, 32))
    assert summary.activation_bytes(128) == 128 * summary.activation_bytes(1)
    assert summary.activation_bytes(1) == 4 * summary.activation_elements > 0


def test_conv_output_size_formula():
    assert conv_output_size(224, 7, 2, 3) == 112
    assert conv_output_size(32, 3, 1, 1) == 32
    assert conv_output_size(32, 3, 2, 1) == 16


def test_command_line_summary_prints_totals(capsys):
    from resnet_core.__main__ import main

    assert main(["summary", "resnet20", "--layers"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 269,722" in out and "layer3.2.conv2" in out
    assert main(["summary", "resnet21"]) == 2
    assert "resnet21" in capsys.readouterr().err
