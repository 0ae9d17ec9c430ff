"""What an ONNX file declares about itself: tensor names, shapes, element types, parameter count.

`describe` fills an MLM Item from this and `validate` checks an Item against it, so both read
the graph the same way. Parameters are the numbers stored in initializers, in Constant nodes (where
Paddle2ONNX keeps every weight) and in ONNX-ML operators' attributes. ONNX-ML graphs (scikit-learn models exported with skl2onnx/onnxmltools) are
recognised; their ZipMap output (a sequence of {class: probability} maps) reads as the (batch, class)
table it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx.external_data_helper import uses_external_data

from mlmkit.errors import ModelRefused
from mlmkit.runtimes.base import TensorInfo

ML_DOMAIN = "ai.onnx.ml"

# ONNX element type -> MLM/raster `data_type`; anything else is "other".
_DATA_TYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64", onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.INT8: "int8", onnx.TensorProto.INT16: "int16", onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64", onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.UINT16: "uint16",
    onnx.TensorProto.UINT32: "uint32", onnx.TensorProto.UINT64: "uint64",
    onnx.TensorProto.COMPLEX64: "cfloat32", onnx.TensorProto.COMPLEX128: "cfloat64",
}


@dataclass(frozen=True)
class GraphInfo:
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    total_parameters: int
    memory_size: int
    opset: int | None
    external_files: tuple[str, ...] = ()  # weight files beside the .onnx, relative to it
    onnx_ml: bool = False                 # classical ML operators (ai.onnx.ml: trees, SVMs, ZipMap, ...)


def data_type_name(elem_type: int) -> str:
    return _DATA_TYPES.get(elem_type, "other")


def _zipmap_classes(graph: onnx.GraphProto) -> dict[str, int]:
    """Output name → class count of every ZipMap node."""
    counts = {}
    for node in graph.node:
        if node.op_type == "ZipMap" and node.domain == ML_DOMAIN:
            labels = [a for a in node.attribute if a.name in ("classlabels_int64s", "classlabels_strings")]
            counts[node.output[0]] = len(labels[0].ints or labels[0].strings) if labels else -1
    return counts


def _tensor(value: onnx.ValueInfoProto, zipmaps: dict[str, int] | None = None) -> TensorInfo:
    if value.type.HasField("sequence_type") and value.name in (zipmaps or {}):
        return TensorInfo(name=value.name, shape=(-1, zipmaps[value.name]), data_type="float32")
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


def _ml_attribute_size(node: onnx.NodeProto) -> tuple[int, int]:
    """Numbers an ONNX-ML operator stores in its attributes (a tree ensemble's nodes, an SVM's vectors)."""
    count = nbytes = 0
    for attribute in node.attribute:
        floats, ints = len(attribute.floats), len(attribute.ints)
        count += floats + ints
        nbytes += 4 * floats + 8 * ints
        if attribute.HasField("t"):
            size = _initializer_size(attribute.t)
            count, nbytes = count + size[0], nbytes + size[1]
    return count, nbytes


def _constant_size(node: onnx.NodeProto) -> tuple[int, int]:
    """Numbers a Constant node holds: Paddle2ONNX and some other exporters keep every weight in them."""
    count = nbytes = 0
    for attribute in node.attribute:
        if attribute.name == "value" and attribute.HasField("t"):
            size = _initializer_size(attribute.t)
            count, nbytes = count + size[0], nbytes + size[1]
        elif attribute.name in ("value_float", "value_int"):
            count, nbytes = count + 1, nbytes + (4 if attribute.name == "value_float" else 8)
        elif attribute.name in ("value_floats", "value_ints"):
            values = len(attribute.floats) + len(attribute.ints)
            count, nbytes = count + values, nbytes + values * (4 if attribute.name == "value_floats" else 8)
    return count, nbytes


def read_graph(path: str | Path) -> GraphInfo:
    """Read the graph's signature without loading external weight data."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a bad file
        raise ModelRefused(f"{path} is not a readable ONNX model: {exc}; expected an .onnx file") from exc
    graph = model.graph
    if not graph.node or not graph.output:  # an empty file parses as an empty ModelProto
        raise ModelRefused(f"{path} is not a readable ONNX model: it holds no graph; expected an .onnx file")
    weights = {init.name for init in graph.initializer}
    sizes = [_initializer_size(init) for init in graph.initializer]
    sizes += [_ml_attribute_size(node) for node in graph.node if node.domain == ML_DOMAIN]
    sizes += [_constant_size(node) for node in graph.node
              if node.op_type == "Constant" and node.domain in ("", "ai.onnx")]
    opset = next((op.version for op in model.opset_import if op.domain in ("", "ai.onnx")), None)
    external = {entry.value for init in graph.initializer if uses_external_data(init)
                for entry in init.external_data if entry.key == "location"}
    zipmaps = _zipmap_classes(graph)
    return GraphInfo(
        inputs=tuple(_tensor(v) for v in graph.input if v.name not in weights),
        outputs=tuple(_tensor(v, zipmaps) for v in graph.output),
        total_parameters=sum(count for count, _ in sizes),
        memory_size=sum(nbytes for _, nbytes in sizes),
        opset=opset,
        external_files=tuple(sorted(external)),
        onnx_ml=any(node.domain == ML_DOMAIN for node in graph.node),
    )
