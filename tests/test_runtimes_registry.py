"""Runtimes behind one registry: every file kind mlmkit runs has its runtime there, and describe, validate and
predict reach a model only through it, so that a new runtime is one module and one registry line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
import rasterio
from onnx import numpy_helper

from mlmkit.catalog.validate import validate_source
from mlmkit.errors import ModelRefused
from mlmkit.inference import PredictOptions, predict
from mlmkit.catalog.model_catalog import describe_model
from mlmkit.runtimes import registry
from mlmkit.runtimes.artifacts import ArtifactKind
from mlmkit.runtimes.base import ModelFileInfo, OpenOptions, TensorInfo, TensorSpec
from mlmkit.runtimes.info import read_model_file
from predict_helpers import conv_model, imagery_item, write_raster

WEIGHTS = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [-1.0, 0.0, 1.0]])


class NumpyConv:
    """A runner of its own: the 1x1 convolution of an ONNX file, computed with numpy, not onnxruntime."""

    def __init__(self, path: Path) -> None:
        tensors = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
        self.weights, self.bias = tensors["w"][:, :, 0, 0], tensors["b"]
        self.inputs = (TensorSpec("input", (None, 3, None, None), np.dtype(np.float32)),)
        self.outputs = (TensorSpec("output", (None, 3, None, None), np.dtype(np.float32)),)
        self.description = "numpy"

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.einsum("kc,bchw->bkhw", self.weights, feeds["input"]) + self.bias[None, :, None, None]]

    def close(self) -> None:
        pass


class NumpyRuntime:
    """A new runtime for ONNX files, as a module would define it; it records what it was asked."""

    framework = "numpy"
    kinds = (ArtifactKind.ONNX,)
    requires = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def installed(self) -> bool:
        return True

    def inspect(self, path: Path, kind: ArtifactKind, inputs: Sequence[TensorInfo] = (),
                allow_native_code: bool = False, load: bool = False) -> ModelFileInfo:
        self.calls.append(("inspect", load))
        return ModelFileInfo(kind, (TensorInfo("input", (-1, 3, -1, -1), "float32"),),
                             (TensorInfo("output", (-1, 3, -1, -1), "float32"),), 12, 48)

    def external_files(self, path: Path) -> tuple[str, ...]:
        return ()

    def with_input_shape(self, path: Path, info: ModelFileInfo, name: str, shape: Sequence[int]) -> ModelFileInfo:
        return info

    def cuda_available(self, what: str) -> bool:
        return False

    def open(self, path: Path, kind: ArtifactKind, options: OpenOptions) -> NumpyConv:
        self.calls.append(("open", options.device == "cpu"))
        return NumpyConv(path)


def test_every_kind_mlmkit_runs_has_its_runtime_and_pickles_have_none():
    for kind in ArtifactKind:
        if kind is ArtifactKind.PICKLE:
            with pytest.raises(ModelRefused, match="torch.save pickle files are run by no runtime"):
                registry.runtime_for(kind)
        else:
            assert kind in registry.runtime_for(kind).kinds
    assert list(registry.RUNTIMES)[0] is ArtifactKind.ONNX  # predict prefers what needs no torch
    assert registry.runtime_for(ArtifactKind.ONNX).requires is None
    assert registry.runtime_for(ArtifactKind.TORCHSCRIPT).requires == "torch"


def test_the_registry_imports_neither_onnx_nor_torch():
    script = ("import sys; import mlmkit.runtimes.registry, mlmkit.runtimes.info; "
              "print(sorted(m for m in ('onnx', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _classes(out: Path) -> np.ndarray:
    with rasterio.open(next(out.rglob("classes.tif"))) as src:
        return src.read(1)


def test_describe_validate_and_predict_reach_the_model_only_through_the_registry(tmp_path, monkeypatch, schema_dir):
    model = conv_model(tmp_path / "conv.onnx", WEIGHTS, np.array([0.5, 0.0, -0.5]))
    data = np.random.default_rng(3).uniform(0, 1, size=(3, 64, 64)).astype(np.float32)
    scene = imagery_item(tmp_path / "scene.json", {"bands": (str(write_raster(tmp_path / "b.tif", data)),
                                                              ["B1", "B2", "B3"])})
    spec = {"name": "conv", "architecture": "1x1 convolution", "tasks": ["semantic-segmentation"],
            "bands": ["B1", "B2", "B3"], "classes": [{"value": v, "name": f"c{v}", "description": f"c{v}"}
                                                      for v in range(3)]}
    expected = np.argmax(np.einsum("kc,chw->khw", WEIGHTS, data) + np.array([0.5, 0.0, -0.5])[:, None, None], 0)
    assert set(np.unique(expected)) == {0, 1, 2}  # a constant map would agree by chance
    runtime = NumpyRuntime()
    with monkeypatch.context() as patch:
        patch.setitem(registry.RUNTIMES, ArtifactKind.ONNX, runtime)  # the one registry line
        assert read_model_file(model, ArtifactKind.ONNX).total_parameters == 12
        catalog = describe_model(model, tmp_path / "catalog", spec, schema_dir=schema_dir)
        items = [json.loads(path.read_text()) for path in (tmp_path / "catalog").rglob("*.json")]
        assert [item["properties"]["mlm:framework"] for item in items if item.get("type") == "Feature"] == ["numpy"]
        assert validate_source(str(catalog)) == []
        assert ("inspect", True) in runtime.calls  # validate loads the model as a run would
        classes = _classes(predict(str(catalog), str(scene), tmp_path / "numpy", PredictOptions()).parent)
        assert ("open", True) in runtime.calls
    np.testing.assert_array_equal(classes, expected)
    # the ONNX runtime, registered as shipped, gives the same classes
    onnx_classes = _classes(predict(str(catalog), str(scene), tmp_path / "onnx", PredictOptions()).parent)
    np.testing.assert_array_equal(onnx_classes, expected)
