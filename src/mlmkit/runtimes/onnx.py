"""ONNX models: their graphs read (`onnx_info`) and run in an onnxruntime session (`OnnxRunner`).

On a CUDA or TensorRT provider the session runs through IO binding: each input is copied into a device
buffer kept from call to call, outputs are allocated on the device and copied back once, and the reader's
batch buffers can be page-locked (`pinned`) so that those copies run at full bus speed. TensorRT engines are
cached under the model cache (`$XDG_CACHE_HOME/mlmkit/tensorrt`): one is built per tile shape, once.
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from mlmkit.errors import InvalidArgument, InvalidMetadata, ModelRefused
from mlmkit.stac.fetch import cache_root
from mlmkit.runtimes.artifacts import ArtifactKind
from mlmkit.runtimes.base import (ModelFileInfo, OpenOptions, TensorInfo, TensorSpec, numpy_dtype, refused_input,
                                  root_cause)
from mlmkit.runtimes.optimized import open_optimized

if TYPE_CHECKING:  # onnx itself is imported only where a graph is read: its import costs ~1 s (ml_dtypes)
    import onnx

_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(uint16)": np.uint16, "tensor(int16)": np.int16,
    "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider",
                 "MIGraphXExecutionProvider", "DmlExecutionProvider")
BOUND_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")  # run with IO binding on "cuda"
_CUDART = ("libcudart.so.12", "libcudart.so.11.0", "libcudart.so")
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
            raise InvalidArgument(f"execution provider(s) {', '.join(unknown)} are not available here; "
                               f"expected some of {', '.join(available)}")
        return list(requested)
    wanted = ("CUDAExecutionProvider",) if device.startswith("cuda") else ()
    return [name for name in available if name not in GPU_PROVIDERS or name in wanted]


def _with_options(providers: list[str]) -> list:
    """TensorRT with its engine cache (building an engine takes minutes; a cached one loads in seconds)."""
    engines = cache_root().parent / "tensorrt"
    return [(name, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(engines)})
            if name == "TensorrtExecutionProvider" else name for name in providers]


def _cudart() -> ctypes.CDLL | None:
    """The CUDA runtime library, where there is one (onnxruntime-gpu environments), for page-locking."""
    for name in (*_CUDART, ctypes.util.find_library("cudart")):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    return None


class _Binding:
    """IO binding on one device: inputs copied into device buffers reused while their shape stays the same
    (every full batch), outputs allocated by onnxruntime on the device and copied to host arrays once."""

    def __init__(self, session: ort.InferenceSession, device: str) -> None:
        self.session, self.device = session, device
        self._inputs: dict[str, tuple[ort.OrtValue, tuple, np.dtype]] = {}

    def _input(self, name: str, array: np.ndarray) -> ort.OrtValue:
        kept = self._inputs.get(name)
        if kept is None or kept[1:] != (array.shape, array.dtype):
            kept = (ort.OrtValue.ortvalue_from_shape_and_type(array.shape, array.dtype, self.device, 0),
                    array.shape, array.dtype)
            self._inputs[name] = kept
        kept[0].update_inplace(np.ascontiguousarray(array))
        return kept[0]

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_ortvalue_input(name, self._input(name, array))
        for name in outputs:
            binding.bind_output(name, self.device, 0)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()


def _spec(node) -> TensorSpec:
    shape = tuple(dim if isinstance(dim, int) and dim > 0 else None for dim in (node.shape or ()))
    return TensorSpec(node.name, shape, np.dtype(_ORT_TYPES.get(node.type, np.float32)))


class OnnxRunner:
    """An onnxruntime session; the file may be deleted once it is open."""

    def __init__(self, path: Path, threads: int | None, providers: list[str], href: str,
                 bind: str | None = None, cache: bool = False, checksum: str | None = None) -> None:
        """`bind`: the device to run with IO binding; default "cuda" on a CUDA or TensorRT provider, else none.
        `cache`: open a CPU session from onnxruntime's optimized graph kept in the model cache (optimized.py);
        `checksum`: the model file's verified file:checksum, its key there."""
        self.path, self._href, self._bind, self._threads = path, href, bind, threads
        if any(name in GPU_PROVIDERS for name in providers) and hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # CUDA/cuDNN from their PyPI wheels (the inference-gpu image), else the system's
        cached = open_optimized(path, checksum, providers, self._options) if cache else None
        if cached is not None:
            self._use(cached)
        else:
            self._open(str(path), self._options(), _with_options(providers))

    def _options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 4  # failures become one-line errors (and tile-size probes stay quiet)
        # idle workers must not spin: the reader thread needs those cores between model calls
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def _open(self, model: str | bytes, options: ort.SessionOptions, providers: list[str]) -> None:
        try:
            session = ort.InferenceSession(model, options, providers=providers)
        except _FAILURES as exc:
            raise ModelRefused(f"model {self._href} is not a loadable ONNX model: {exc}") from exc
        self._use(session)

    def _use(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.inputs = tuple(_spec(node) for node in self.session.get_inputs())
        self.outputs = tuple(_spec(node) for node in self.session.get_outputs())
        self._output_names = [spec.name for spec in self.outputs]
        self.description = f"onnxruntime providers {', '.join(self.session.get_providers())} (onnxruntime {ort.__version__})"
        first = self.session.get_providers()[0]
        device = self._bind or ("cuda" if first in BOUND_PROVIDERS else None)
        self._binding = _Binding(self.session, device) if device else None

    @property
    def on_device(self) -> bool:
        """Whether the model runs on a GPU (its first execution provider), where batches are copied to it."""
        return self.session.get_providers()[0] in GPU_PROVIDERS

    def graph(self) -> onnx.ModelProto | None:
        """The ONNX graph, while its file is still there (local and cached models; not --no-cache downloads)."""
        import onnx

        return onnx.load(str(self.path)) if self.path.is_file() else None

    def with_graph(self, model: bytes) -> OnnxRunner:
        """A runner with this one's session settings over a changed graph (e.g. with pre-processing folded in)."""
        runner = copy.copy(self)
        runner._open(model, self._options(), _with_options(self.session.get_providers()))
        return runner

    @contextmanager
    def pinned(self, arrays: Sequence[np.ndarray]) -> Iterator[None]:
        """Page-lock host arrays (the reader's batch buffers) while the model runs on a CUDA device."""
        cudart = _cudart() if self._binding is not None and self._binding.device == "cuda" else None
        registered = [array for array in arrays if cudart is not None and array.nbytes and
                      cudart.cudaHostRegister(ctypes.c_void_p(array.ctypes.data), ctypes.c_size_t(array.nbytes), 0)
                      == 0]
        try:
            yield
        finally:
            for array in registered:
                cudart.cudaHostUnregister(ctypes.c_void_p(array.ctypes.data))

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            if self._binding is not None:
                return self._binding.run(feeds, self._output_names)
            return self.session.run(self._output_names, feeds)
        except _RUN_FAILURES as exc:
            raise refused_input(feeds, str(exc).splitlines()[0]) from exc

    def close(self) -> None:
        self.session = None


class OnnxRuntime:
    """ONNX files, read with onnx (imported only then: ~1 s) and run with onnxruntime, a core dependency."""

    framework = "ONNX"
    kinds = (ArtifactKind.ONNX,)
    requires = None

    def installed(self) -> bool:
        return True

    def inspect(self, path: Path, kind: ArtifactKind, inputs: Sequence[TensorInfo] = (),
                allow_native_code: bool = False, load: bool = False) -> ModelFileInfo:
        """The graph's own tensors (an ONNX file records them all: `inputs` are not needed)."""
        from mlmkit.runtimes.onnx_info import read_graph

        if load:
            ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        graph = read_graph(path)
        return ModelFileInfo(kind, graph.inputs, graph.outputs, graph.total_parameters, graph.memory_size,
                             graph.onnx_ml)

    def external_files(self, path: Path) -> tuple[str, ...]:
        from mlmkit.runtimes.onnx_info import read_graph

        return read_graph(path).external_files

    def with_input_shape(self, path: Path, info: ModelFileInfo, name: str, shape: Sequence[int]) -> ModelFileInfo:
        """The dynamic dimensions of input `name` fixed to `shape` (the size the model was made for, e.g. a
        classifier's 48 x 192 crops), checked by running the model once on zeros of that shape."""
        tensor = next(t for t in info.inputs if t.name == name)
        shape = tuple(int(size) for size in shape)
        if len(shape) != len(tensor.shape) or any((fixed > 0 and size not in (fixed, -1)) or size == 0 or size < -1
                                                  for fixed, size in zip(tensor.shape, shape)):
            raise InvalidMetadata(f"input_shape {list(shape)} does not fit the ONNX input {name!r} "
                                  f"{list(tensor.shape)}; expected {len(tensor.shape)} sizes that keep its fixed ones "
                                  "(-1 for dynamic)")
        fixed = tuple(size if size > 0 else original for size, original in zip(shape, tensor.shape))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {t.name: np.zeros([max(size, 1) for size in (fixed if t.name == name else t.shape)],
                                  numpy_dtype(t.data_type)) for t in info.inputs}
        try:
            session.run(None, feeds)
        except Exception as exc:  # onnxruntime's own error says why the size does not fit
            raise InvalidMetadata(f"input_shape {list(shape)}: the model does not run on zeros of shape "
                                  f"{list(feeds[name].shape)}: {root_cause(exc)}; expected the size the model was "
                                  "made for") from exc
        inputs = tuple(replace(t, shape=fixed) if t.name == name else t for t in info.inputs)
        return replace(info, inputs=inputs)

    def cuda_available(self, what: str) -> bool:
        return cuda_available()

    def open(self, path: Path, kind: ArtifactKind, options: OpenOptions) -> OnnxRunner:
        return OnnxRunner(path, options.threads, providers_for(options.device, options.providers), options.href,
                          cache=options.cache, checksum=options.checksum)


RUNTIME = OnnxRuntime()
