"""Static int8 quantization of an ONNX graph in the QDQ format, calibrated on real inputs, with onnxruntime's tools.

The graph is pre-processed as onnxruntime recommends (shape inference, batch norm folded into the convolutions),
then `quantize_static` inserts QuantizeLinear/DequantizeLinear pairs whose scales come from the ranges the
calibration inputs reach (MinMax by default); onnxruntime fuses the pairs around Conv, MatMul, Add, Mul, ... into
int8 kernels (VNNI / AMX on x86). Weights are int8 per output channel, activations uint8.

Float16 graphs (ukis-csmask's EfficientNet-B4 U-Net is float16 inside, with float32 Resize nodes between casts):
`quantize_static` writes float16 scales that DequantizeLinear rejects, and fails on a float16 Resize, so float16
parts are first widened to float32 (weights, constants, casts to float16), keeping the graph's own inputs and
outputs as they are. On CPUs without float16 kernels onnxruntime already runs those nodes in float32 between
casts it inserts, so the widened graph computes what the float model computes there.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mlmkit.errors import InvalidArgument, InvalidInput, ModelRefused

ML_DOMAIN = "ai.onnx.ml"


CALIBRATIONS = ("percentile", "minmax")
PERCENTILE = 99.999


@dataclass(frozen=True)
class Int8Settings:
    """How the graph is quantized.

    Calibration "percentile" sets each activation's range to the 0.001th-99.999th percentiles of its values over
    the calibration inputs, "minmax" to their extremes: measured on ukis-csmask's U-Net (bench/README.md), a few
    extreme values make MinMax steps coarse (98.0 % class agreement with the float model on held-out tiles)
    where percentile keeps 99.4-99.8 %, at the same int8 speed; percentile takes longer to calibrate (a
    histogram per tensor, built batch by batch).
    """

    calibration: str = "percentile"
    per_channel: bool = True          # one weight scale per output channel (else one per weight tensor)
    keep_float: tuple[str, ...] = ()  # operator types left in float (e.g. Sigmoid), where int8 loses too much


def _widen_tensor(tensor: TensorProto) -> None:
    if tensor.data_type == TensorProto.FLOAT16:
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name))


def _widen_graph(graph: onnx.GraphProto) -> None:
    """Float16 weights, constants, casts and value types of `graph` (and its subgraphs) as float32."""
    for tensor in graph.initializer:
        _widen_tensor(tensor)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                _widen_tensor(attribute.t)
            elif attribute.type == onnx.AttributeProto.TENSORS:
                for tensor in attribute.tensors:
                    _widen_tensor(tensor)
            elif attribute.type == onnx.AttributeProto.GRAPH:
                _widen_graph(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    _widen_graph(subgraph)
            elif node.op_type in ("Cast", "CastLike") and attribute.name == "to" and attribute.i == TensorProto.FLOAT16:
                attribute.i = TensorProto.FLOAT
    for value in [*graph.value_info, *graph.input, *graph.output]:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT


def check_calibration(name: str) -> None:
    if name not in CALIBRATIONS:
        raise InvalidArgument(f"calibration {name!r} is unknown; expected one of {', '.join(CALIBRATIONS)}")


def is_float16(model: onnx.ModelProto) -> bool:
    """Whether any weight of the graph is float16 (or any cast produces float16)."""
    return any(init.data_type == TensorProto.FLOAT16 for init in model.graph.initializer) or any(
        node.op_type == "Cast" and any(a.name == "to" and a.i == TensorProto.FLOAT16 for a in node.attribute)
        for node in model.graph.node)


def widen_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` computing in float32 where it computed in float16; graph inputs and outputs keep their
    types (a float16 input is cast to float32 on entry, a float16 output back to float16 on exit)."""
    wide = onnx.ModelProto()
    wide.CopyFrom(model)
    graph = wide.graph
    edges = {value.name for value in [*graph.input, *graph.output]
             if value.type.tensor_type.elem_type == TensorProto.FLOAT16}
    _widen_graph(graph)
    entry, exit_ = [], []
    for value in graph.input:
        if value.name in edges:
            inside = f"{value.name}__mlmkit_float32"
            for node in graph.node:
                node.input[:] = [inside if name == value.name else name for name in node.input]
            entry.append(helper.make_node("Cast", [value.name], [inside], to=TensorProto.FLOAT))
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    for value in graph.output:
        if value.name in edges:
            inside = f"{value.name}__mlmkit_float32"
            for node in graph.node:
                node.output[:] = [inside if name == value.name else name for name in node.output]
            exit_.append(helper.make_node("Cast", [inside], [value.name], to=TensorProto.FLOAT16))
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    nodes = [*entry, *graph.node, *exit_]
    del graph.node[:]
    graph.node.extend(nodes)
    return wide


class _Feeds:
    """onnxruntime's CalibrationDataReader over a list of input dicts, read a range at a time (quantize_static's
    strided calibration: one batch's intermediate tensors in memory at once, the histograms merged)."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self._all = feeds
        self._feeds: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def __len__(self) -> int:
        return len(self._all)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._feeds = iter(self._all[start_index:end_index])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _preprocess(model: onnx.ModelProto, target: Path) -> None:
    """onnxruntime's recommended pre-processing; without symbolic shape inference where a graph defeats it."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(model, str(target))
    except Exception:  # noqa: BLE001 - symbolic shape inference gives up on some graphs; ONNX's own still runs
        quant_pre_process(model, str(target), skip_symbolic_shape=True)


def quantize_onnx(source: Path, calibration: Sequence[dict[str, np.ndarray]], target: Path,
                  settings: Int8Settings = Int8Settings()) -> None:
    """Write to `target` the int8 QDQ form of the ONNX model at `source`, calibrated on `calibration` (input dicts
    as the model takes them, e.g. the batches predict feeds it)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    check_calibration(settings.calibration)
    if not calibration:
        raise InvalidInput("no calibration inputs: the imagery gave no tile with data; expected imagery the model "
                           "can run on")
    model = onnx.load(str(source))
    if any(node.domain == ML_DOMAIN for node in model.graph.node):
        raise ModelRefused(f"model {source.name} is a classical ONNX-ML model (trees, SVMs); expected a neural "
                           "network graph to quantize")
    if any(node.op_type in ("QuantizeLinear", "QLinearConv", "DynamicQuantizeLinear") for node in model.graph.node):
        raise ModelRefused(f"model {source.name} is quantized already; expected a float model")
    if is_float16(model):
        model = widen_float16(model)
    with tempfile.TemporaryDirectory(prefix="mlmkit-int8-") as work:
        prepared = Path(work) / "prepared.onnx"
        _preprocess(model, prepared)
        kept = set(settings.keep_float)
        quantized = sorted({node.op_type for node in onnx.load(str(prepared)).graph.node} - kept) if kept else None
        with contextlib.redirect_stdout(io.StringIO()):  # onnxruntime prints its calibration steps
            quantize_static(str(prepared), str(target), _Feeds(calibration), quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=quantized, per_channel=settings.per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.Percentile if settings.calibration == "percentile"
                            else CalibrationMethod.MinMax,
                            extra_options={"CalibStridedMinMax": 1, "CalibPercentile": PERCENTILE,
                                           "CalibTensorRangeSymmetric": False})
