"""The trained model as ONNX (opset 17) and as a PyTorch ExportedProgram (.pt2), both with dynamic batch
(and H/W for fully convolutional models), each checked against torch on real batches after a round trip
through its file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from mlmkit.errors import ModelRunError

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


def export_program(model: nn.Module, path: Path, example: torch.Tensor, dynamic_hw: bool) -> None:
    """Write the model (eval mode, on CPU) as an ExportedProgram; H/W constraints (e.g. multiples of 8 for a
    U-Net) are derived by torch.export. The archive keeps its example input, so it gets zeros, not training pixels."""
    model = model.cpu().eval()
    dims: dict[int, object] = {0: torch.export.Dim("batch", min=1)}
    if dynamic_hw:
        dims.update({2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO})
    program = torch.export.export(model, (torch.zeros_like(example.cpu()),), dynamic_shapes=(dims,))
    torch.export.save(program, str(path))


@torch.no_grad()
def _compare(model: nn.Module, batches: Sequence[torch.Tensor], run: Callable[[torch.Tensor], np.ndarray],
             label: str) -> float:
    model = model.cpu().eval()
    worst = 0.0
    for batch in batches:
        expected = model(batch.cpu()).numpy()
        actual = run(batch.cpu())
        if actual.shape != expected.shape:
            raise ModelRunError(f"{label} output shape {actual.shape} differs from torch {expected.shape}")
        worst = max(worst, float(np.max(np.abs(actual - expected))))
    if worst > MAX_ABS_DIFF:
        raise ModelRunError(f"{label} and torch outputs differ by up to {worst:.2e}; expected at most {MAX_ABS_DIFF:.0e}")
    return worst


def compare_onnx(model: nn.Module, path: Path, batches: Sequence[torch.Tensor]) -> float:
    """Largest |torch - onnxruntime| over the batches; raises above MAX_ABS_DIFF."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _compare(model, batches, lambda batch: session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})[0], "ONNX")


def compare_program(model: nn.Module, path: Path, batches: Sequence[torch.Tensor]) -> float:
    """Largest |torch - the saved ExportedProgram| over the batches; raises above MAX_ABS_DIFF."""
    module = torch.export.load(str(path)).module()
    return _compare(model, batches, lambda batch: module(batch).numpy(), "ExportedProgram")
