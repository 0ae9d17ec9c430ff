"""What every predict process pays before its first tile: no onnx import on the CPU path, and onnxruntime's
optimized graph kept beside the model cache, giving the outputs a freshly optimized session gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from mlmkit.cli import main
from mlmkit.runtimes import optimized
from mlmkit.runtimes.onnx import OnnxRunner
from predict_helpers import conv_model, imagery_item, mlm_input, mlm_item, mlm_output, write_raster

CPU = ["CPUExecutionProvider"]


@pytest.fixture(autouse=True)
def _cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def wide_net(path: Path) -> Path:
    """4 -> 256 (3x3) -> ReLU -> 256 (3x3) -> ReLU -> 3 (1x1): 2.4 MB of weights, over the cache's 1 MB floor."""
    rng = np.random.default_rng(0)
    shapes = [(256, 4, 3, 3), (256, 256, 3, 3), (3, 256, 1, 1)]
    weights = [numpy_helper.from_array((rng.normal(size=s) * 0.05).astype(np.float32), f"w{i}")
               for i, s in enumerate(shapes)]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w0"], ["c0"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c0"], ["r0"]),
         helper.make_node("Conv", ["r0", "w1"], ["c1"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c1"], ["r1"]),
         helper.make_node("Conv", ["r1", "w2"], ["output"])], "wide",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def opened(monkeypatch) -> list[tuple[str, int]]:
    """(model, graph optimization level) of every onnxruntime session opened."""
    calls: list[tuple[str, int]] = []
    real = ort.InferenceSession

    def spy(model, options=None, *args, **kwargs):
        calls.append((model if isinstance(model, str) else "<bytes>", options.graph_optimization_level))
        return real(model, options, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    return calls


def _direct(model: Path, batch: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model), options, providers=CPU).run(None, {"input": batch})[0]


def test_the_optimized_graph_is_saved_once_and_gives_the_same_outputs(tmp_path, opened):
    model = wide_net(tmp_path / "wide.onnx")
    batch = np.random.default_rng(1).normal(size=(2, 4, 32, 32)).astype(np.float32)
    first = OnnxRunner(model, 2, CPU, str(model), cache=True)
    entries = optimized.cached_graphs()
    assert len(entries) == 1 and entries[0].parent == tmp_path / "cache" / "mlmkit" / "onnxruntime"
    second = OnnxRunner(model, 2, CPU, str(model), cache=True)
    assert opened[-1] == (str(entries[0]), ort.GraphOptimizationLevel.ORT_DISABLE_ALL)  # no optimization again
    expected = _direct(model, batch)
    np.testing.assert_array_equal(first.run({"input": batch})[0], expected)
    np.testing.assert_array_equal(second.run({"input": batch})[0], expected)


def test_a_damaged_entry_is_rebuilt(tmp_path):
    model = wide_net(tmp_path / "wide.onnx")
    OnnxRunner(model, 1, CPU, str(model), cache=True)
    entry = optimized.cached_graphs()[0]
    entry.write_bytes(b"not a graph")
    batch = np.ones((1, 4, 16, 16), np.float32)
    runner = OnnxRunner(model, 1, CPU, str(model), cache=True)
    np.testing.assert_array_equal(runner.run({"input": batch})[0], _direct(model, batch))
    assert entry.stat().st_size > 2_000_000


def test_another_cpu_or_onnxruntime_gets_its_own_entry(tmp_path, monkeypatch):
    model = wide_net(tmp_path / "wide.onnx")
    OnnxRunner(model, 1, CPU, str(model), cache=True)
    monkeypatch.setattr(optimized, "_cpu_identity", lambda: "vendor_id: other\nflags: sse2")
    OnnxRunner(model, 1, CPU, str(model), cache=True)
    monkeypatch.setattr(ort, "__version__", "0.0.1")
    OnnxRunner(model, 1, CPU, str(model), cache=True)
    assert len(optimized.cached_graphs()) == 3


def test_small_models_and_no_cache_runs_keep_nothing(tmp_path):
    small = conv_model(tmp_path / "small.onnx", np.eye(3, 4), np.zeros(3))
    OnnxRunner(small, 1, CPU, str(small), cache=True)
    model = wide_net(tmp_path / "wide.onnx")
    OnnxRunner(model, 1, CPU, str(model), cache=False)
    assert optimized.cached_graphs() == []


def test_the_cache_command_lists_and_clears_optimized_graphs(tmp_path):
    model = wide_net(tmp_path / "wide.onnx")
    OnnxRunner(model, 1, CPU, str(model), cache=True)
    listed = CliRunner().invoke(main, ["cache"])
    assert f"{optimized.optimized_root()}: 1 optimized graph(s)" in listed.output
    CliRunner().invoke(main, ["cache", "--clear"])
    assert optimized.cached_graphs() == [] and not optimized.optimized_root().exists()


def _scene_and_model(tmp_path: Path) -> tuple[Path, Path]:
    data = np.random.default_rng(2).integers(0, 3000, size=(4, 64, 96)).astype(np.uint16)
    scene = imagery_item(tmp_path / "scene.json", {"bands": (str(write_raster(tmp_path / "bands.tif", data)),
                                                              ["B1", "B2", "B3", "B4"])})
    model = mlm_item(tmp_path / "model.json", wide_net(tmp_path / "wide.onnx"),
                     [mlm_input("input", ["B1", "B2", "B3", "B4"], 4, -1,
                                [{"type": "z-score", "mean": 1500.0, "stddev": 900.0}])],
                     [mlm_output("output", ["semantic-segmentation"], [-1, 3, -1, -1],
                                 ["batch", "class", "height", "width"],
                                 [{"value": v, "name": f"c{v}", "description": f"c{v}"} for v in range(3)])],
                     band_names=["B1", "B2", "B3", "B4"])
    return scene, model


def test_a_cpu_predict_process_never_imports_onnx(tmp_path):
    """onnx's import (its ml_dtypes extension) costs ~1 s, and onnxruntime runs ONNX files without it."""
    scene, model = _scene_and_model(tmp_path)
    out = tmp_path / "out"
    script = (f"import sys; from pathlib import Path; from mlmkit.inference import predict, PredictOptions; "
              f"predict({str(model)!r}, {str(scene)!r}, Path({str(out)!r}), PredictOptions(tile_size=64)); "
              "print('onnx' in sys.modules, 'ml_dtypes' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
    assert (tmp_path / "out" / "catalog.json").is_file()
