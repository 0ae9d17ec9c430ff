"""What a model file declares about itself, whatever its format: one view for `describe` and `validate`.

ONNX graphs and ExportedPrograms record names, shapes and types. TorchScript records input names only
and AOTInductor packages nothing readable, so for those the input shapes must be declared (by the user
of `describe`, or by the MLM Item under `validate`) and outputs are found by running the model on zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mlmkit.runtimes.artifacts import ArtifactKind, file_kind, refuse_pickle
from mlmkit.errors import InvalidInput, InvalidMetadata
from mlmkit.runtimes.onnx_info import TensorInfo, read_graph
from mlmkit.runtimes.torch_models import load_torch_model, numpy_dtype, probe_outputs, root_cause


@dataclass(frozen=True)
class ModelFileInfo:
    """Inputs and outputs (dynamic dimensions -1) and size of one model file."""

    kind: ArtifactKind
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    total_parameters: int | None
    memory_size: int | None
    onnx_ml: bool = False                 # an ONNX graph of classical ML operators (trees, SVMs, ZipMap)


def _onnx_info(path: Path) -> ModelFileInfo:
    graph = read_graph(path)
    return ModelFileInfo(ArtifactKind.ONNX, graph.inputs, graph.outputs, graph.total_parameters, graph.memory_size,
                         graph.onnx_ml)


def _named(declared: Sequence[TensorInfo], names: tuple[str, ...] | None) -> tuple[TensorInfo, ...]:
    if names is None or len(names) != len(declared):
        return tuple(declared)
    return tuple(TensorInfo(name, tensor.shape, tensor.data_type) for name, tensor in zip(names, declared))


def read_model_file(path: str | Path, declared: ArtifactKind | None = None,
                    inputs: Sequence[TensorInfo] | None = None, allow_native_code: bool = False) -> ModelFileInfo:
    """The tensors of a local model file; `inputs` stand in where the file does not record its input shapes."""
    path = Path(path)
    kind = file_kind(path, declared)
    refuse_pickle(kind, path.name)
    if kind is ArtifactKind.ONNX:
        return _onnx_info(path)
    model = load_torch_model(path, kind, allow_native_code=allow_native_code)
    count, size = model.parameters or (None, None)
    if model.signature is not None:
        return ModelFileInfo(kind, *model.signature, count, size)
    if not inputs:
        raise InvalidInput(f"{path.name} is {kind.value}, which does not record its input shapes; expected them "
                           "declared (describe: input_shape and input_data_type, e.g. [-1, 4, -1, -1] and float32)")
    return ModelFileInfo(kind, _named(inputs, model.input_names), probe_outputs(model, inputs), count, size)


def fix_onnx_input(path: str | Path, info: ModelFileInfo, name: str, shape: Sequence[int]) -> ModelFileInfo:
    """`info` with the dynamic dimensions of ONNX input `name` fixed to `shape` (the size the model was made
    for, e.g. a classifier's 48 x 192 crops), checked by running the model once on zeros of that shape."""
    tensor = next(t for t in info.inputs if t.name == name)
    shape = tuple(int(size) for size in shape)
    if len(shape) != len(tensor.shape) or any((fixed > 0 and size not in (fixed, -1)) or size == 0 or size < -1
                                              for fixed, size in zip(tensor.shape, shape)):
        raise InvalidMetadata(f"input_shape {list(shape)} does not fit the ONNX input {name!r} {list(tensor.shape)}; "
                              f"expected {len(tensor.shape)} sizes that keep its fixed ones (-1 for dynamic)")
    fixed = tuple(size if size > 0 else original for size, original in zip(shape, tensor.shape))
    import onnxruntime  # heavy: only when a describe fixes an input size

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {t.name: np.zeros([max(size, 1) for size in (fixed if t.name == name else t.shape)],
                              numpy_dtype(t.data_type)) for t in info.inputs}
    try:
        session.run(None, feeds)
    except Exception as exc:  # onnxruntime's own error says why the size does not fit
        raise InvalidMetadata(f"input_shape {list(shape)}: the model does not run on zeros of shape "
                              f"{list(feeds[name].shape)}: {root_cause(exc)}; expected the size the model was made "
                              "for") from exc
    inputs = tuple(replace(t, shape=fixed) if t.name == name else t for t in info.inputs)
    return replace(info, inputs=inputs)
