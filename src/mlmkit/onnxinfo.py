"""What an ONNX file declares about itself: tensor names, shapes, element types, parameter count.

`describe` fills an MLM Item from this and `validate` checks an Item against it, so both read
the graph the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx.external_data_helper import uses_external_data

from mlmkit.errors import InvalidInput
from mlmkit.mlm import is_onnx_asset  # noqa: F401  (runtime and semantic checks import it from here)

# ONNX element type -> MLM/raster `data_type`; anything else is "other".
_DATA_TYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64", onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.INT8: "int8", onnx.TensorProto.INT16: "int16", onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64", onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.UINT16: "uint16",
    onnx.TensorProto.UINT32: "uint32", onnx.TensorProto.UINT64: "uint64",
    onnx.TensorProto.COMPLEX64: "cfloat32", onnx.TensorProto.COMPLEX128: "cfloat64",
}


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output; dynamic or symbolic dimensions are -1."""

    name: str
    shape: tuple[int, ...]
    data_type: str


@dataclass(frozen=True)
class GraphInfo:
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    total_parameters: int
    memory_size: int
    opset: int | None
    external_files: tuple[str, ...] = ()  # weight files beside the .onnx, relative to it


def data_type_name(elem_type: int) -> str:
    return _DATA_TYPES.get(elem_type, "other")


def _tensor(value: onnx.ValueInfoProto) -> TensorInfo:
    tensor_type = value.type.tensor_type
    shape = tuple(dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else -1
                  for dim in tensor_type.shape.dim)
    return TensorInfo(name=value.name, shape=shape, data_type=data_type_name(tensor_type.elem_type))


def _initializer_size(tensor: onnx.TensorProto) -> tuple[int, int]:
    count = int(np.prod(tensor.dims, dtype=np.int64)) if tensor.dims else 1
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, TypeError, ValueError):
        itemsize = 0
    return count, count * itemsize


def read_graph(path: str | Path) -> GraphInfo:
    """Read the graph's signature without loading external weight data."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a bad file
        raise InvalidInput(f"{path} is not a readable ONNX model: {exc}; expected an .onnx file") from exc
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    sizes = [_initializer_size(init) for init in graph.initializer]
    opset = next((op.version for op in model.opset_import if op.domain in ("", "ai.onnx")), None)
    external = {entry.value for init in graph.initializer if uses_external_data(init)
                for entry in init.external_data if entry.key == "location"}
    return GraphInfo(
        inputs=tuple(_tensor(v) for v in graph.input if v.name not in weights),
        outputs=tuple(_tensor(v) for v in graph.output),
        total_parameters=sum(count for count, _ in sizes),
        memory_size=sum(nbytes for _, nbytes in sizes),
        opset=opset,
        external_files=tuple(sorted(external)),
    )
