import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from resnet_core import build_model, get_preset
from resnet_core.model import export_onnx


@pytest.mark.slow
def test_onnx_export_runs_in_onnxruntime_with_the_same_outputs(tmp_path):
    cfg = get_preset("resnet20").replace(stage_blocks=(1, 1, 1))
    model = build_model(cfg)
    model.train()
    data = export_onnx(model, (3, 32, 32), tmp_path / "model.onnx")
    assert model.training, "export must restore train mode"
    assert (tmp_path / "model.onnx").read_bytes() == data
    onnx.checker.check_model(onnx.load_from_string(data))
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, 32, 32)  # a batch of 3 through a graph exported with batch 1: the axis is dynamic
    (logits,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
