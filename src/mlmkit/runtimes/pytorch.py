"""TorchScript, ExportedProgram and AOTInductor models, on CPU or CUDA, behind the runtime interface.

An ExportedProgram states its tensors; TorchScript and AOTInductor files do not, so their shapes and data
types are the MLM Item's (inputs named as the TorchScript `forward` names them, when the counts agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlmkit.errors import ModelRunError
from mlmkit.mlm.spec import ModelSpec
from mlmkit.runtimes.onnx_info import TensorInfo
from mlmkit.runtimes.base import TensorSpec
from mlmkit.runtimes.torch_models import TorchModel, numpy_dtype, root_cause


def _spec(tensor: TensorInfo, name: str | None = None) -> TensorSpec:
    return TensorSpec(name or tensor.name, tuple(dim if dim > 0 else None for dim in tensor.shape),
                      numpy_dtype(tensor.data_type))


def _declared(entries: Sequence, names: tuple[str, ...] | None) -> tuple[TensorSpec, ...]:
    tensors = [TensorInfo(entry.name, entry.shape, entry.data_type) for entry in entries]
    if names is None or len(names) != len(tensors):
        names = tuple(tensor.name for tensor in tensors)
    return tuple(_spec(tensor, name) for tensor, name in zip(tensors, names))


class TorchRunner:
    """A loaded PyTorch model; inputs are passed positionally in the order of `inputs`."""

    def __init__(self, model: TorchModel, spec: ModelSpec) -> None:
        self.model = model
        self.description = f"PyTorch {model.kind.value} on {model.device}"
        if model.signature is not None:
            inputs, outputs = model.signature
            self.inputs = tuple(_spec(tensor) for tensor in inputs)
            self.outputs = tuple(_spec(tensor) for tensor in outputs)
        else:
            self.inputs = _declared(spec.inputs, model.input_names)
            self.outputs = _declared(spec.outputs, None)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self.model([feeds[tensor.name] for tensor in self.inputs])
        except Exception as exc:  # torch raises RuntimeError, AssertionError, ... (TorchScript: its cause last)
            shapes = ", ".join(f"{name}{list(array.shape)}" for name, array in feeds.items())
            raise ModelRunError(f"the model refused its input ({shapes}): {root_cause(exc)}") from exc

    def close(self) -> None:
        self.model = None
