import pytest
import torch
import torchvision

from resnet_core import build_model, count_parameters, get_preset
from resnet_core.model import PadShortcut

TORCHVISION_PARAMS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
}
CIFAR_PARAMS = {
    "resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586,
    "resnet56": 853_018, "resnet110": 1_727_962, "resnet1202": 19_421_274,
}


@pytest.mark.parametrize("name", TORCHVISION_PARAMS)
def test_imagenet_presets_equal_torchvision(name):
    ours = build_model(get_preset(name))
    reference = getattr(torchvision.models, name)()
    assert count_parameters(ours) == TORCHVISION_PARAMS[name] == count_parameters(reference)
    # Same names and shapes, so ImageNet weights load strictly ...
    ours.load_state_dict(reference.state_dict(), strict=True)
    # ... and the same weights give the same function.
    ours.eval(), reference.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", CIFAR_PARAMS)
def test_cifar_presets_match_the_paper_and_plain_twins_match(name):
    cfg = get_preset(name)
    assert count_parameters(build_model(cfg)) == CIFAR_PARAMS[name]
    if name != "resnet1202":
        assert count_parameters(build_model(get_preset("plain" + name[6:]))) == CIFAR_PARAMS[name]


def test_option_a_shortcut_is_parameter_free_zero_padding():
    model = build_model(get_preset("resnet20"))
    shortcut = model.layer2[0].downsample
    assert isinstance(shortcut, PadShortcut)
    x = torch.randn(1, 16, 8, 8)
    y = shortcut(x)
    assert y.shape == (1, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0


def test_plain_twin_really_skips_the_addition():
    cfg = get_preset("resnet20")
    residual, plain = build_model(cfg), build_model(cfg.plain_twin())
    plain.load_state_dict(residual.state_dict())
    block_r, block_p = residual.layer1[0].eval(), plain.layer1[0].eval()
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        branch = block_p.bn2(block_p.conv2(block_p.relu1(block_p.bn1(block_p.conv1(x)))))
        torch.testing.assert_close(block_p(x), torch.relu(branch))
        torch.testing.assert_close(block_r(x), torch.relu(branch + x))


def test_zero_init_makes_every_block_start_as_identity_map_of_its_input():
    cfg = get_preset("resnet20").replace(zero_init_residual=True)
    model = build_model(cfg).eval()
    block = model.layer1[1]
    x = torch.relu(torch.randn(2, 16, 8, 8))
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize(
    "changes",
    [
        {"block": "bottleneck", "stride_placement": "v1"},
        {"stem": "deep", "avg_down": True},
        {"shortcut": "C"},
        {"shortcut": "A", "block": "bottleneck"},
        {"preact": True},
        {"preact": True, "block": "bottleneck", "shortcut": "C"},
        {"norm": "none"},
        {"width_multiplier": 0.5},
        {"stage_blocks": (1, 1), "stage_widths": (8, 16), "in_channels": 1, "num_classes": 3},
        {"stage_blocks": (1, 1, 1, 1, 1), "stage_widths": (8, 8, 16, 16, 32)},
    ],
)
def test_every_option_builds_and_runs_forward_and_backward(changes):
    cfg = get_preset("resnet18").replace(stage_widths=(8, 16, 32, 64), stem_width=8, num_classes=5)
    cfg = cfg.replace(**changes)
    model = build_model(cfg)
    x = torch.randn(2, cfg.in_channels, 64, 64)
    out = model(x)
    assert out.shape == (2, cfg.num_classes)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_v1_and_v1_5_put_the_stride_in_different_convs():
    v15 = build_model(get_preset("resnet50"))
    v1 = build_model(get_preset("resnet50").replace(stride_placement="v1"))
    assert v15.layer2[0].conv2.stride == (2, 2) and v15.layer2[0].conv1.stride == (1, 1)
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)


def test_relus_are_separate_and_not_inplace():
    model = build_model(get_preset("resnet50"))
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(relus) == len({id(m) for m in relus}) > 16 * 3
    assert not any(m.inplace for m in relus)


def test_forward_features_and_head_compose_to_forward():
    model = build_model(get_preset("resnet20")).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 64, 8, 8)
        torch.testing.assert_close(model.forward_head(feats), model(x))
