"""Fold an input's affine value_scaling, and the cast from the imagery's data type, into the ONNX graph.

Where the bands are read straight into the batch buffer (direct.py) and the value_scaling is affine
(z-score, min-max, offset, scale, or none), the buffer can hold the imagery's own data type and the model
does the rest: Cast → Sub → Div in front of its first node. The arithmetic is preprocess.py's, step by step
(float32 subtract, then float32 divide, by the same float32 constants), so the model sees bit-identical values.

Measured on CPU (bench/README.md), onnxruntime does not fuse these nodes into the first convolution: they
cost about what numpy's in-place scaling costs, and the second session costs start-up time and memory (~200
MiB for a U-Net). So the fold is used where the model runs on a GPU (CUDA, TensorRT, ...): there it halves
the bytes copied to the device for 16-bit imagery, and the scaling runs on the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlmkit.mlm.spec import ValueScaling
from mlmkit.inference.binding import BoundInput
from mlmkit.runtimes.base import ModelRunner
from mlmkit.runtimes.onnx import OnnxRunner

if TYPE_CHECKING:  # onnx is imported only when a graph is folded: its import costs ~1 s (ml_dtypes)
    import onnx

# ONNX TensorProto.DataType codes, fixed by the ONNX standard (onnx.proto), so the CPU path never imports onnx
_ONNX_TYPES = {np.dtype(np.uint8): 2, np.dtype(np.int8): 3, np.dtype(np.uint16): 4, np.dtype(np.int16): 5,
               np.dtype(np.uint32): 12, np.dtype(np.int32): 6, np.dtype(np.float32): 1, np.dtype(np.float64): 11,
               np.dtype(np.float16): 10}
# value_scaling type -> (offset, divisor) of (x - offset) / divisor, in preprocess.py's float32 arithmetic
_AFFINE = {
    "z-score": lambda s: (float(s.mean), float(s.stddev)),
    "min-max": lambda s: (float(s.minimum), float(s.maximum) - float(s.minimum)),
    "offset": lambda s: (float(s.value), 1.0),
    "scale": lambda s: (0.0, float(s.value)),
}
_MAX_PROTO_BYTES = 2**31 - 1  # a protobuf larger than this cannot be serialised for onnxruntime


@dataclass(frozen=True)
class AffineScaling:
    """Per-channel (x - offset) / divisor in float32; None arrays mean no scaling at all (a cast only)."""

    offsets: np.ndarray | None
    divisors: np.ndarray | None


def _affine(entries: tuple[ValueScaling, ...], channels: int) -> AffineScaling | None:
    if not entries:
        return AffineScaling(None, None)
    if len(entries) not in (1, channels):
        return None
    pairs = []
    for entry in entries:
        affine = _AFFINE.get(entry.type or "")
        if affine is None:
            return None
        try:
            offset, divisor = affine(entry)
        except TypeError:  # a missing field: the plain path reports it
            return None
        pairs.append((np.float32(offset), np.float32(divisor)))
    pairs = pairs * channels if len(pairs) == 1 else pairs
    return AffineScaling(np.array([p[0] for p in pairs], np.float32), np.array([p[1] for p in pairs], np.float32))


def affine_scaling(entry: BoundInput) -> AffineScaling | None:
    """A direct input's value_scaling as per-channel (x - offset) / divisor, or None where it is not affine."""
    if entry.plan.dtype not in _ONNX_TYPES:
        return None
    return _affine(entry.plan.model_input.value_scaling, entry.channels)


def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Point every use of tensor `old` (subgraphs included, which may use outer names) at `new`."""
    from onnx import AttributeProto

    for node in graph.node:
        for position, name in enumerate(node.input):
            if name == old:
                node.input[position] = new
        for attribute in node.attribute:
            for subgraph in [attribute.g, *attribute.graphs] if attribute.type in (
                    AttributeProto.GRAPH, AttributeProto.GRAPHS) else []:
                _rename_uses(subgraph, old, new)


def fold_scaling(model: onnx.ModelProto, input_name: str, source: np.dtype, scaling: AffineScaling,
                 model_dtype: np.dtype) -> onnx.ModelProto | None:
    """A copy of `model` whose input `input_name` takes `source` values and scales them as the MLM Item says.

    None where the graph cannot take it (the input is also a graph output, or the result is too large).
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    original = next((value for value in graph.input if value.name == input_name), None)
    if original is None or any(output.name == input_name for output in graph.output) or source not in _ONNX_TYPES:
        return None
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    graph = folded.graph
    scaled = f"{input_name}__mlmkit_scaled"
    _rename_uses(graph, input_name, scaled)
    nodes, current = [], input_name
    steps = [("Cast", [], {"to": onnx.TensorProto.FLOAT})]
    if scaling.offsets is not None:
        steps += [("Sub", [scaling.offsets], {}), ("Div", [scaling.divisors], {})]
    if model_dtype != np.float32:
        steps.append(("Cast", [], {"to": _ONNX_TYPES[np.dtype(model_dtype)]}))
    for index, (op, constants, attributes) in enumerate(steps):
        names = []
        for constant in constants:
            names.append(f"{input_name}__mlmkit_c{index}")
            graph.initializer.append(numpy_helper.from_array(constant.reshape(-1, 1, 1), names[-1]))
        target = scaled if index == len(steps) - 1 else f"{input_name}__mlmkit_t{index}"
        nodes.append(helper.make_node(op, [current, *names], [target], name=f"mlmkit_{op.lower()}_{index}",
                                      **attributes))
        current = target
    own = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + own)  # before the model's own nodes, which stay in topological order after them
    for value in graph.input:
        if value.name == input_name:
            value.type.tensor_type.elem_type = _ONNX_TYPES[np.dtype(source)]
    if folded.ByteSize() > _MAX_PROTO_BYTES:
        return None
    return folded


class FoldedRunners:
    """Runners with the scaling folded in, one per imagery data type, built on first use and kept for the run.

    Only for ONNX models run on a device (see the module docstring), unless `enabled` says otherwise (tests);
    elsewhere every request is None and the plain graph runs.
    """

    def __init__(self, runner: ModelRunner, enabled: bool | None = None) -> None:
        self.runner = runner
        onnx_runner = isinstance(runner, OnnxRunner)
        self.enabled = onnx_runner and (runner.on_device if enabled is None else enabled)
        self._runners: dict[tuple, ModelRunner | None] = {}

    def for_input(self, entry: BoundInput, source: np.dtype) -> ModelRunner | None:
        """The runner taking a direct input's bands as read, or None where the buffer must hold model values."""
        scaling = affine_scaling(entry) if self.enabled else None
        if scaling is None:
            return None
        key = (entry.name, np.dtype(source).str, None if scaling.offsets is None else
               (scaling.offsets.tobytes(), scaling.divisors.tobytes()))
        if key not in self._runners:  # the graph is loaded only for this: weights held once more only briefly
            graph = self.runner.graph()
            folded = None if graph is None else fold_scaling(graph, entry.name, np.dtype(source), scaling,
                                                             entry.plan.dtype)
            self._runners[key] = None if folded is None else self.runner.with_graph(folded.SerializeToString())
        return self._runners[key]
