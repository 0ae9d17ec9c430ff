"""The model behind an MLM Item's `mlm:model` asset, as an onnxruntime session.

The artifact is fetched (local path or http(s)), its `file:checksum` verified before anything runs,
and only ONNX is accepted: other artifact types get an error naming what is supported.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mlmkit.checksum import verify_checksum
from mlmkit.errors import InvalidInput
from mlmkit.mlm import ModelAsset
from mlmkit.onnxinfo import is_onnx_asset
from mlmkit.stacio import download, is_url

_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(uint16)": np.uint16, "tensor(int16)": np.int16,
    "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}
SUPPORTED = "ONNX (mlm:artifact_type 'onnx', media type 'application/octet-stream; framework=onnx' or a .onnx file)"


@dataclass(frozen=True)
class TensorSpec:
    """A graph input/output as onnxruntime reports it; dynamic dimensions are None."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype


def fetch(href: str, workdir: Path) -> Path:
    """A local path for the model file, downloading http(s) hrefs into `workdir`."""
    if not is_url(href):
        path = Path(href)
        if not path.is_file():
            raise InvalidInput(f"model file {href} does not exist; expected the mlm:model asset's href to be readable")
        return path
    return download(href, workdir / (Path(href.split("?")[0]).name or "model.onnx"), "model")


def _providers(requested: tuple[str, ...] | None) -> list[str]:
    available = ort.get_available_providers()
    if not requested:
        return available
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise InvalidInput(f"execution provider(s) {', '.join(unknown)} are not available here; "
                           f"expected some of {', '.join(available)}")
    return list(requested)


def _spec(node) -> TensorSpec:
    shape = tuple(dim if isinstance(dim, int) and dim > 0 else None for dim in (node.shape or ()))
    return TensorSpec(node.name, shape, np.dtype(_ORT_TYPES.get(node.type, np.float32)))


class ModelRunner:
    """An onnxruntime session for the MLM model asset, checked before the first tile."""

    def __init__(self, asset: ModelAsset, threads: int | None = None, providers: tuple[str, ...] | None = None) -> None:
        if not is_onnx_asset(asset.href.split("?")[0], asset.media_type, asset.artifact_type):
            raise InvalidInput(f"model asset {asset.key!r} is {asset.artifact_type or asset.media_type or 'of unknown type'} "
                               f"({asset.href}); mlmkit predict runs {SUPPORTED}")
        self._tmp = tempfile.TemporaryDirectory(prefix="mlmkit-model-")
        path = fetch(asset.href, Path(self._tmp.name))
        if asset.file_checksum:
            verify_checksum(path, asset.file_checksum)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle workers must not spin: the reader thread needs those cores between model calls
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=_providers(providers))
        except (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidGraph,
                ort.capi.onnxruntime_pybind11_state.InvalidProtobuf) as exc:
            raise InvalidInput(f"model {asset.href} is not a loadable ONNX model: {exc}") from exc
        self.inputs = tuple(_spec(node) for node in self.session.get_inputs())
        self.outputs = tuple(_spec(node) for node in self.session.get_outputs())
        self._output_names = [spec.name for spec in self.outputs]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self.session.run(self._output_names, feeds)
        except (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidArgument,
                ort.capi.onnxruntime_pybind11_state.RuntimeException) as exc:
            shapes = ", ".join(f"{name}{list(array.shape)}" for name, array in feeds.items())
            raise InvalidInput(f"the model refused its input ({shapes}): {str(exc).splitlines()[0]}") from exc

    def close(self) -> None:
        self._tmp.cleanup()
