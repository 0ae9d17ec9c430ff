"""ONNX export with dynamic batch (and H/W for fully convolutional models), checked against torch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from mlmkit.errors import MlmkitError

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 17
MAX_ABS_DIFF = 1e-3


def export_onnx(model: nn.Module, path: Path, example: torch.Tensor, dynamic_hw: bool) -> None:
    """Write the model (eval mode, on CPU) to `path`."""
    model = model.cpu().eval()
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_hw else {0: "batch"}
    torch.onnx.export(model, (example.cpu(),), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes}, opset_version=OPSET,
                      dynamo=False)


@torch.no_grad()
def compare_onnx(model: nn.Module, path: Path, batches: Sequence[torch.Tensor]) -> float:
    """Largest |torch - onnxruntime| over the batches; raises above MAX_ABS_DIFF."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model = model.cpu().eval()
    worst = 0.0
    for batch in batches:
        expected = model(batch.cpu()).numpy()
        actual = session.run([OUTPUT_NAME], {INPUT_NAME: batch.cpu().numpy()})[0]
        if actual.shape != expected.shape:
            raise MlmkitError(f"ONNX output shape {actual.shape} differs from torch {expected.shape}")
        worst = max(worst, float(np.max(np.abs(actual - expected))))
    if worst > MAX_ABS_DIFF:
        raise MlmkitError(f"ONNX and torch outputs differ by up to {worst:.2e}; expected at most {MAX_ABS_DIFF:.0e}")
    return worst
