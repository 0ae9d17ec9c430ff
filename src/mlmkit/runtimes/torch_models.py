"""Load PyTorch model files mlmkit can run safely, and read what they declare about their tensors.

TorchScript (`torch.jit.save`) and ExportedProgram (`torch.export.save`) archives load without running
Python code from the file. An ExportedProgram records its input and output shapes (symbolic dimensions
become -1); TorchScript and AOTInductor packages record at most names and counts, so their shapes come from
the MLM Item and the outputs are found by running the model on zeros. AOTInductor packages are native
shared libraries, loaded only when the caller says their author is trusted. torch itself is imported only
here and only when such a file is read: the inference image does not need it for ONNX.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mlmkit.runtimes.artifacts import ArtifactKind
from mlmkit.errors import InvalidArgument, InvalidInput, ModelRefused, ModelRunError
from mlmkit.runtimes.base import TensorInfo, numpy_dtype, root_cause

_MLM_TYPES = {"complex64": "cfloat32", "complex128": "cfloat64", "bool": "other", "bfloat16": "other"}
PROBE_SIZES = ((1, 64), (2, 96))  # (first dimension, other dimensions) of the two probe runs


def import_torch(what: str) -> Any:
    """torch, or one line saying which extra provides it.

    Its OpenMP workers are told to sleep rather than spin when idle (unless the user says otherwise), as
    onnxruntime's are: the reader thread needs those cores between model calls.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError as exc:
        raise InvalidInput(f"{what} needs PyTorch, which is not installed; expected "
                           "`pip install 'mlmkit[train]'` (the train extra)") from exc
    return torch


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def cuda_available(what: str) -> bool:
    """Whether torch sees a CUDA device (torch imported for `what`)."""
    return bool(import_torch(what).cuda.is_available())


def data_type(dtype: Any) -> str:
    """A torch dtype as an MLM data_type."""
    name = str(dtype).removeprefix("torch.")
    return _MLM_TYPES.get(name, name)


@dataclass
class TorchModel:
    """A loaded PyTorch artifact: call it with tensors; what its file says about its tensors, if anything."""

    kind: ArtifactKind
    call: Callable[..., Any]
    device: str
    input_names: tuple[str, ...] | None = None      # None: the file does not name them
    signature: tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]] | None = None  # (inputs, outputs)
    parameters: tuple[int, int] | None = None       # (count, bytes)

    def __call__(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch  # loaded with the model

        tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in arrays]
        with torch.inference_mode():
            result = self.call(*tensors)
        flat = list(result.values()) if isinstance(result, dict) else \
            list(result) if isinstance(result, (list, tuple)) else [result]
        return [(t.float() if t.dtype == torch.bfloat16 else t).detach().cpu().numpy() for t in flat]


def _sizes(module_or_state: Any, tensors: Any) -> tuple[int, int]:
    count = sum(int(p.numel()) for p in module_or_state.parameters())
    size = sum(int(t.numel()) * t.element_size() for t in tensors)
    return count, size


def _tensor_info(name: str, value: Any) -> TensorInfo:
    shape = tuple(dim if isinstance(dim, int) else -1 for dim in value.shape)
    return TensorInfo(name=name, shape=shape, data_type=data_type(value.dtype))


def exported_signature(program: Any) -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    """User inputs and outputs of an ExportedProgram with their (symbolic -> -1) shapes and types."""
    signature = program.graph_signature
    nodes = {node.name: node for node in program.graph.nodes}
    inputs = tuple(_tensor_info(name, nodes[name].meta["val"]) for name in signature.user_inputs)
    outputs = tuple(_tensor_info(name, nodes[name].meta["val"]) for name in signature.user_outputs)
    return inputs, outputs


def _load_exported(torch: Any, path: Path, device: str) -> TorchModel:
    program = torch.export.load(str(path))
    parameters = _sizes(program, [*program.state_dict.values(), *program.constants.values()])
    signature = exported_signature(program)
    if device != "cpu":
        from torch.export.passes import move_to_device_pass
        program = move_to_device_pass(program, device)
    return TorchModel(ArtifactKind.EXPORTED_PROGRAM, program.module(), device,
                      tuple(t.name for t in signature[0]), signature, parameters)


def _load_scripted(torch: Any, path: Path, device: str) -> TorchModel:
    module = torch.jit.load(str(path), map_location=device).eval()
    names = tuple(argument.name for argument in module.forward.schema.arguments[1:])
    parameters = _sizes(module, module.state_dict().values())
    try:  # constants folded (batch norm into convolutions): the same results, faster
        module = torch.jit.optimize_for_inference(torch.jit.freeze(module))
    except RuntimeError:  # a module that cannot be frozen runs as it is
        pass
    return TorchModel(ArtifactKind.TORCHSCRIPT, module, device, names, None, parameters)


def aoti_device(path: Path) -> str:
    """The device an AOTInductor package was compiled for, from its metadata (read without loading code)."""
    return "cuda" if b'"AOTI_DEVICE_KEY": "cuda"' in _aoti_metadata(path) else "cpu"


def _aoti_metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return b"".join(archive.read(name) for name in archive.namelist()
                        if "/data/aotinductor/" in name and name.endswith("_metadata.json"))


def _load_aoti(torch: Any, path: Path, device: str) -> TorchModel:
    compiled_for = aoti_device(path)
    if compiled_for != device.split(":")[0]:
        raise InvalidArgument(f"{path.name} is an AOTInductor package compiled for {compiled_for}; "
                              f"it cannot run on {device} (expected device {compiled_for!r})")
    index = int(device.split(":")[1]) if ":" in device else -1
    compiled = torch._inductor.aoti_load_package(str(path), device_index=index)
    return TorchModel(ArtifactKind.AOTI_PACKAGE, compiled, device)


_LOADERS = {ArtifactKind.EXPORTED_PROGRAM: _load_exported, ArtifactKind.TORCHSCRIPT: _load_scripted,
            ArtifactKind.AOTI_PACKAGE: _load_aoti}


def load_torch_model(path: str | Path, kind: ArtifactKind, device: str = "cpu", threads: int | None = None,
                     allow_native_code: bool = False) -> TorchModel:
    """Load a TorchScript, ExportedProgram or (trusted) AOTInductor file onto `device`."""
    path = Path(path)
    if kind not in _LOADERS:
        raise ModelRefused(f"{path.name} is {kind.value}, not a PyTorch file mlmkit loads")
    if kind.native_code and not allow_native_code:
        raise ModelRefused(f"{path.name} is an AOTInductor package: compiled native code that runs with your "
                           "privileges; expected allow_native_code if you trust its author (or the ExportedProgram "
                           "or ONNX file of the same model)")
    torch = import_torch(f"the {kind.value} model {path.name}")
    if threads:
        torch.set_num_threads(threads)
    try:
        return _LOADERS[kind](torch, path, device)
    except InvalidInput:  # mlmkit's own refusals (a device the package was not compiled for)
        raise
    except Exception as exc:  # torch raises RuntimeError, ValueError, KeyError, ... for a bad archive
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelRefused(f"{path.name} does not load as {kind.value}: {first}") from exc


def _probe_shape(shape: Sequence[int], run: int) -> tuple[int, ...]:
    first, other = PROBE_SIZES[run]
    return tuple(dim if dim > 0 else (first if axis == 0 else other) for axis, dim in enumerate(shape))


def _probe_hint(cause: str) -> str:
    """What to check, by what the model said."""
    if "missing value for argument" in cause or "positional argument" in cause:
        return "expected one declared input per argument of the model's forward() (input_shape describes one)"
    if "invalid for input of size" in cause or "size mismatch" in cause or "must match the size" in cause:
        return ("expected an input_shape the model takes; a traced model keeps the batch and sizes it was traced "
                "with (declare them instead of -1)")
    return "expected the declared input shape to fit it"


def probe_outputs(model: TorchModel, inputs: Sequence[TensorInfo]) -> tuple[TensorInfo, ...]:
    """Output shapes and types found by two runs on zeros: dimensions that follow the dynamic inputs are -1."""
    runs = []
    for run in range(len(PROBE_SIZES)):
        arrays = [np.zeros(_probe_shape(t.shape, run), numpy_dtype(t.data_type)) for t in inputs]
        try:
            runs.append(model(arrays))
        except Exception as exc:  # the model's own error says why these shapes do not fit
            shapes = ", ".join(str(list(a.shape)) for a in arrays)
            cause = root_cause(exc)
            raise ModelRunError(f"the {model.kind.value} model fails on zeros shaped {shapes}: {cause}; "
                               f"{_probe_hint(cause)}") from exc
    first, second = runs
    if [a.ndim for a in first] != [a.ndim for a in second]:
        raise ModelRunError(f"the {model.kind.value} model returns outputs of varying rank; expected fixed ranks")
    return tuple(
        TensorInfo(name=f"output{index}" if len(first) > 1 else "output",
                   shape=tuple(a if a == b else -1 for a, b in zip(one.shape, two.shape)),
                   data_type=data_type(one.dtype))
        for index, (one, two) in enumerate(zip(first, second))
    )
