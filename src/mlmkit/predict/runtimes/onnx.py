"""ONNX models in an onnxruntime session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mlmkit.errors import InvalidInput, ModelRunError
from mlmkit.predict.runtimes import TensorSpec

_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(uint16)": np.uint16, "tensor(int16)": np.int16,
    "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider",
                 "MIGraphXExecutionProvider", "DmlExecutionProvider")
_FAILURES = (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidGraph,
             ort.capi.onnxruntime_pybind11_state.InvalidProtobuf, ort.capi.onnxruntime_pybind11_state.NoSuchFile)
_RUN_FAILURES = (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidArgument,
                 ort.capi.onnxruntime_pybind11_state.RuntimeException)


def cuda_available() -> bool:
    return "CUDAExecutionProvider" in ort.get_available_providers()


def providers_for(device: str, requested: tuple[str, ...] | None) -> list[str]:
    """The given providers (all must exist here), else those of the device: no GPU provider for "cpu"."""
    available = ort.get_available_providers()
    if requested:
        unknown = [name for name in requested if name not in available]
        if unknown:
            raise InvalidInput(f"execution provider(s) {', '.join(unknown)} are not available here; "
                               f"expected some of {', '.join(available)}")
        return list(requested)
    wanted = ("CUDAExecutionProvider",) if device.startswith("cuda") else ()
    return [name for name in available if name not in GPU_PROVIDERS or name in wanted]


def _spec(node) -> TensorSpec:
    shape = tuple(dim if isinstance(dim, int) and dim > 0 else None for dim in (node.shape or ()))
    return TensorSpec(node.name, shape, np.dtype(_ORT_TYPES.get(node.type, np.float32)))


class OnnxRunner:
    """An onnxruntime session; the file may be deleted once it is open."""

    def __init__(self, path: Path, threads: int | None, providers: list[str], href: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 4  # failures become one-line errors (and tile-size probes stay quiet)
        # idle workers must not spin: the reader thread needs those cores between model calls
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except _FAILURES as exc:
            raise InvalidInput(f"model {href} is not a loadable ONNX model: {exc}") from exc
        self.inputs = tuple(_spec(node) for node in self.session.get_inputs())
        self.outputs = tuple(_spec(node) for node in self.session.get_outputs())
        self._output_names = [spec.name for spec in self.outputs]
        self.description = f"onnxruntime providers {', '.join(self.session.get_providers())} (onnxruntime {ort.__version__})"

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self.session.run(self._output_names, feeds)
        except _RUN_FAILURES as exc:
            shapes = ", ".join(f"{name}{list(array.shape)}" for name, array in feeds.items())
            raise ModelRunError(f"the model refused its input ({shapes}): {str(exc).splitlines()[0]}") from exc

    def close(self) -> None:
        self.session = None
