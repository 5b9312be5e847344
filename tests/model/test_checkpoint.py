import pytest
import torch

from resnet_core import build_model, get_preset
from resnet_core.model import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip_keeps_weights_config_classes_and_preprocessing(tmp_path):
    model = build_model(get_preset("resnet20").replace(stage_blocks=(1, 1, 1), num_classes=3))
    path = save_checkpoint(tmp_path / "run" / "model.pt", model, ["a", "b", "c"], {"mean": [0.5] * 3, "std": [0.2] * 3})
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"], "no temporary file left behind"
    ck = load_checkpoint(path)
    assert ck.config == model.config and ck.classes == ["a", "b", "c"] and ck.preprocess["mean"] == [0.5] * 3
    clone = build_model(ck.config)
    clone.load_state_dict(ck.state_dict)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(clone.eval()(x), model.eval()(x))


def test_bare_state_dict_loads_without_config(tmp_path):
    model = build_model(get_preset("resnet20"))
    torch.save(model.state_dict(), tmp_path / "weights.pth")
    ck = load_checkpoint((tmp_path / "weights.pth").read_bytes())
    assert ck.config is None and set(ck.state_dict) == set(model.state_dict())


class Payload:  # an arbitrary object: unpickling it would run code of the file's choosing
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"hello, this is text", "not a PyTorch checkpoint"),
        (b"PK\x03\x04broken zip", "not a readable PyTorch checkpoint"),
    ],
)
def test_bad_files_get_a_clear_message(data, words):
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(data)


def test_pickled_objects_are_refused_not_executed(tmp_path, capsys):
    torch.save({"state_dict": {"w": torch.zeros(1)}, "evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not plain weights"):
        load_checkpoint(tmp_path / "evil.pt")
    assert "pwned" not in capsys.readouterr().out


def test_non_tensor_entries_are_refused(tmp_path):
    torch.save({"w": [1, 2, 3]}, tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a state_dict"):
        load_checkpoint(tmp_path / "list.pt")
