"""Pretrained weights from the torch hub cache, fine-tuning heads, and bare state_dicts.

The network is closed here, so the weights file is a real torchvision state_dict saved under the
exact name torchvision uses in a temporary TORCH_HOME; loading then goes through torch.hub's
real cache path, as it does after a download.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from resnet_core import build_model, get_preset
from resnet_core.model import (
    CheckpointError,
    infer_config_from_state_dict,
    load_model_file,
    load_state_dict_report,
    save_checkpoint,
)
from resnet_core.train import (
    WeightsUnavailableError,
    available_weights,
    finetune_model,
    is_cached,
    load_pretrained,
    prepare_finetune,
    weights_file_path,
)


@pytest.fixture()
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    # Any download goes to a proxy that refuses connections: offline even where a network exists.
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "torch"


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    # Non-trivial BN statistics, so eval-mode outputs depend on them being loaded.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.state_dict()


def test_weights_names_and_cache_path_follow_torchvision(torch_home: Path) -> None:
    assert available_weights("resnet50") == ["IMAGENET1K_V1", "IMAGENET1K_V2"]
    assert available_weights("resnet18") == ["IMAGENET1K_V1"]
    assert available_weights("resnet20") == [] and available_weights("plain18") == []
    path = weights_file_path("resnet18", "DEFAULT")
    assert path == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert weights_file_path("resnet50", "IMAGENET1K_V2").name == "resnet50-11ad3fa6.pth"
    assert not is_cached("resnet18", "IMAGENET1K_V1")


def test_pretrained_loads_strictly_and_matches_torchvision(torch_home: Path, resnet18_state: dict) -> None:
    path = weights_file_path("resnet18", "IMAGENET1K_V1")
    path.parent.mkdir(parents=True)
    torch.save(resnet18_state, path)
    assert is_cached("resnet18", "DEFAULT")
    messages: list[str] = []
    pretrained = load_pretrained("resnet18", "DEFAULT", progress=lambda f, m: messages.append(m))
    assert pretrained.weights_name == "IMAGENET1K_V1"
    assert len(pretrained.categories) == 1000 and pretrained.categories[0] == "tench"
    assert not pretrained.model.training
    assert pretrained.preprocess == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                     "image_size": 224, "resize": 256}
    reference = torchvision.models.resnet18()
    reference.load_state_dict(torch.load(path, weights_only=True))
    reference.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(pretrained.model(x), reference(x), atol=1e-5)
    # The transforms are torchvision's own for these weights.
    image = torch.randint(0, 256, (3, 300, 260), dtype=torch.uint8)
    assert pretrained.transforms(image).shape == (3, 224, 224)
    assert any("loading" in m for m in messages)


def test_offline_without_cache_names_the_file_and_folder(torch_home: Path) -> None:
    with pytest.raises(WeightsUnavailableError) as info:
        load_pretrained("resnet50", "IMAGENET1K_V2")
    message = str(info.value)
    assert "resnet50-11ad3fa6.pth" in message
    assert str(torch_home / "hub" / "checkpoints") in message
    assert "https://download.pytorch.org/models/resnet50-11ad3fa6.pth" in message
    folder = torch_home / "hub" / "checkpoints"
    assert not folder.exists() or not any(folder.iterdir()), "no partial download is left behind"
    with pytest.raises(WeightsUnavailableError):
        finetune_model("resnet18", 5)


def test_unknown_weights_and_architectures_are_explained(torch_home: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT"):
        load_pretrained("resnet50", "IMAGENET22K")
    with pytest.raises(WeightsUnavailableError, match="no ImageNet weights exist for 'resnet20'"):
        load_pretrained("resnet20")


def test_damaged_cache_file_is_reported(torch_home: Path) -> None:
    path = weights_file_path("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a download")
    with pytest.raises(WeightsUnavailableError, match="damaged"):
        load_pretrained("resnet18")


def test_finetune_replaces_the_head_and_can_freeze_the_backbone(torch_home: Path, resnet18_state: dict) -> None:
    path = weights_file_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(resnet18_state, path)
    model = finetune_model("resnet18", 7, freeze_backbone=True)
    assert model.training and model.fc.out_features == 7 and model.config.num_classes == 7
    assert torch.equal(model.conv1.weight, resnet18_state["conv1.weight"]), "the backbone keeps its weights"
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert model.conv1.weight.grad is None and model.fc.weight.grad is not None
    # Unfrozen: every parameter trains.
    open_model = prepare_finetune(build_model(get_preset("resnet20")), 3)
    assert all(p.requires_grad for p in open_model.parameters())
    assert open_model(torch.randn(1, 3, 32, 32)).shape == (1, 3)


# --------------------------------------------------------------------------------------------
# Bare state_dicts
# --------------------------------------------------------------------------------------------


def _meta_state(module_factory) -> dict[str, torch.Tensor]:
    """A state_dict's names and shapes without allocating (or initialising) the weights."""
    with torch.device("meta"):
        return module_factory().state_dict()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "resnet152"])
def test_infer_config_of_torchvision_state_dicts(arch: str) -> None:
    state = _meta_state(getattr(torchvision.models, arch))
    assert infer_config_from_state_dict(state) == get_preset(arch)


@pytest.mark.parametrize("name", ["resnet20", "resnet110", "preact-resnet20", "preact-resnet164", "resnet50-d"])
def test_infer_config_of_our_presets(name: str) -> None:
    assert infer_config_from_state_dict(_meta_state(lambda: build_model(get_preset(name)))) == get_preset(name)


@pytest.mark.parametrize("changes", [
    {"shortcut": "C"}, {"norm": "none"}, {"stage_blocks": (1, 2), "stage_widths": (8, 24), "num_classes": 4},
    {"in_channels": 1, "stem_width": 8}, {"stem": "deep", "stem_width": 32},
])
def test_infer_config_of_custom_configs(changes: dict) -> None:
    cfg = get_preset("resnet20").replace(**changes)
    assert infer_config_from_state_dict(_meta_state(lambda: build_model(cfg))) == cfg


def test_infer_config_refuses_what_is_not_a_resnet() -> None:
    with pytest.raises(CheckpointError, match="no 'conv1.weight'"):
        infer_config_from_state_dict({"encoder.weight": torch.zeros(3, 3)})
    with pytest.raises(CheckpointError, match="5x5 kernel"):
        infer_config_from_state_dict({"conv1.weight": torch.zeros(16, 3, 5, 5)})
    state = build_model(get_preset("resnet20")).state_dict()
    state["layer2.0.conv2.weight"] = torch.zeros(32, 32, 1, 1)
    with pytest.raises(CheckpointError, match="layer2.0.conv2.weight expects"):
        infer_config_from_state_dict(state)


def test_load_report_lists_missing_unexpected_and_wrong_shapes() -> None:
    model = build_model(get_preset("resnet20"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: torch.randn_like(v.float()).to(v.dtype)
             for k, v in build_model(get_preset("resnet20")).state_dict().items()}
    del state["layer1.0.bn1.weight"]
    state["layer9.0.conv1.weight"] = torch.zeros(1)
    state["fc.weight"] = torch.zeros(100, 64)
    report = load_state_dict_report(model, state)
    assert not report.ok
    assert report.missing == ["layer1.0.bn1.weight"]
    assert report.unexpected == ["layer9.0.conv1.weight"]
    assert report.wrong_shape == [("fc.weight", (10, 64), (100, 64))]
    assert "fc.weight expects (10, 64), the file has (100, 64)" in report.summary()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "nothing loaded"

    good = build_model(get_preset("resnet20")).state_dict()
    good.pop("bn1.num_batches_tracked")  # files from before BN counted batches
    report = load_state_dict_report(model, good)
    assert report.ok and torch.equal(model.conv1.weight, good["conv1.weight"])


def test_model_file_from_our_checkpoint_or_a_bare_state_dict(tmp_path: Path) -> None:
    cfg = get_preset("resnet20").replace(num_classes=4)
    trained = build_model(cfg)
    save_checkpoint(tmp_path / "ours.pt", trained, classes=list("abcd"))
    model, ckpt = load_model_file(tmp_path / "ours.pt")
    assert model.config == cfg and ckpt.classes == list("abcd") and not model.training
    torch.save(trained.state_dict(), tmp_path / "bare.pth")
    model, ckpt = load_model_file(tmp_path / "bare.pth")
    assert model.config == cfg and ckpt.config == cfg
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), trained.eval()(x))
    assert os.path.getsize(tmp_path / "bare.pth") > 0
