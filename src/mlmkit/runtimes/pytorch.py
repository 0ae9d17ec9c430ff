"""TorchScript, ExportedProgram and AOTInductor models, on CPU or CUDA, behind the runtime interface.

An ExportedProgram states its tensors; TorchScript and AOTInductor files do not, so their input shapes and
data types are declared (by the MLM Item, or by the user of `describe`; inputs named as the TorchScript
`forward` names them, when the counts agree) and their outputs are found by running the model on zeros.
torch is imported only when such a file is read (`torch_models`): the inference image does not need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlmkit.errors import InvalidMetadata
from mlmkit.runtimes.artifacts import ArtifactKind
from mlmkit.runtimes.base import (ModelFileInfo, OpenOptions, TensorInfo, TensorSpec, numpy_dtype, refused_input,
                                  root_cause)
from mlmkit.runtimes.torch_models import TorchModel, cuda_available, load_torch_model, probe_outputs, torch_installed


def _spec(tensor: TensorInfo) -> TensorSpec:
    return TensorSpec(tensor.name, tuple(dim if dim > 0 else None for dim in tensor.shape),
                      numpy_dtype(tensor.data_type))


def _named(declared: Sequence[TensorInfo], names: tuple[str, ...] | None) -> tuple[TensorInfo, ...]:
    """The declared tensors under the names the model gives its arguments, where the counts agree."""
    if names is None or len(names) != len(declared):
        return tuple(declared)
    return tuple(TensorInfo(name, tensor.shape, tensor.data_type) for name, tensor in zip(names, declared))


class TorchRunner:
    """A loaded PyTorch model; inputs are passed positionally in the order of `inputs`."""

    def __init__(self, model: TorchModel, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]) -> None:
        """`inputs`, `outputs`: the declared tensors, used where the file records none."""
        self.model = model
        self.description = f"PyTorch {model.kind.value} on {model.device}"
        if model.signature is not None:
            inputs, outputs = model.signature
        else:
            inputs = _named(inputs, model.input_names)
        self.inputs = tuple(_spec(tensor) for tensor in inputs)
        self.outputs = tuple(_spec(tensor) for tensor in outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self.model([feeds[tensor.name] for tensor in self.inputs])
        except Exception as exc:  # torch raises RuntimeError, AssertionError, ... (TorchScript: its cause last)
            raise refused_input(feeds, root_cause(exc)) from exc

    def close(self) -> None:
        self.model = None


class TorchRuntime:
    """PyTorch files mlmkit loads without unpickling: TorchScript, ExportedProgram, (trusted) AOTInductor."""

    framework = "PyTorch"
    kinds = (ArtifactKind.PT2, ArtifactKind.EXPORTED_PROGRAM, ArtifactKind.TORCHSCRIPT, ArtifactKind.AOTI_PACKAGE)
    requires = "torch"

    def installed(self) -> bool:
        return torch_installed()

    def inspect(self, path: Path, kind: ArtifactKind, inputs: Sequence[TensorInfo] = (),
                allow_native_code: bool = False, load: bool = False) -> ModelFileInfo:
        """Loads the model (always: even the ExportedProgram's tensors are read by loading it)."""
        model = load_torch_model(path, kind, allow_native_code=allow_native_code)
        count, size = model.parameters or (None, None)
        if model.signature is not None:
            return ModelFileInfo(kind, *model.signature, count, size)
        if not inputs:
            raise InvalidMetadata(f"{path.name} is {kind.value}, which does not record its input shapes; expected "
                                  "them declared (describe: input_shape and input_data_type, e.g. [-1, 4, -1, -1] "
                                  "and float32)")
        return ModelFileInfo(kind, _named(inputs, model.input_names), probe_outputs(model, inputs), count, size)

    def external_files(self, path: Path) -> tuple[str, ...]:
        return ()  # an archive holds its weights

    def with_input_shape(self, path: Path, info: ModelFileInfo, name: str, shape: Sequence[int]) -> ModelFileInfo:
        """As it is: a declared shape was run by `inspect` already, and a recorded one is the model's own."""
        return info

    def cuda_available(self, what: str) -> bool:
        return cuda_available(what)

    def open(self, path: Path, kind: ArtifactKind, options: OpenOptions) -> TorchRunner:
        model = load_torch_model(path, kind, options.device, options.threads, options.allow_native_code)
        return TorchRunner(model, options.inputs, options.outputs)


RUNTIME = TorchRuntime()
