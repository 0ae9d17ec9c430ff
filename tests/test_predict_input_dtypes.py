"""Models whose input tensor is float16 or float64: the bands are scaled in float32 as preprocess.py says, then
cast to the model's type, whichever path reads them (plain, or read as they are with the scaling folded into the
graph as on a device); GDAL cannot read into float16 and a float64 buffer must not change the arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from onnx import TensorProto, helper

from mlmkit.inference import PredictOptions, predict
from mlmkit.inference.folding import FoldedRunners
from mlmkit.runtimes.onnx import OnnxRunner
from predict_helpers import _save, imagery_item, mlm_input, mlm_item, mlm_output, write_raster

BANDS = ["B02", "B03", "B04"]
MEAN, STDDEV = 1000.3, 300.7
ONNX_TYPES = {np.float16: TensorProto.FLOAT16, np.float64: TensorProto.DOUBLE}


def _cast_model(root: Path, dtype) -> Path:
    """output = the model input as float32: what the model was fed, value for value."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["input"], ["output"], to=TensorProto.FLOAT)], "cast",
        [helper.make_tensor_value_info("input", ONNX_TYPES[dtype], ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])])
    model = _save(graph, root / "cast.onnx")
    scaling = [{"type": "z-score", "mean": MEAN, "stddev": STDDEV}]
    return mlm_item(root / "model.json", model, [mlm_input("input", BANDS, 3, scaling=scaling)],
                    [mlm_output("fed", ["regression"], [-1, 3, -1, -1], ["batch", "channel", "height", "width"])])


def _written(out: Path) -> np.ndarray:
    catalog = json.loads((out / "catalog.json").read_text())
    href = next(link["href"] for link in catalog["links"] if link["rel"] == "item")
    item_path = (out / href).resolve()
    item = json.loads(item_path.read_text())
    with rasterio.open(item_path.parent / item["assets"]["fed"]["href"]) as dataset:
        return dataset.read()


@pytest.mark.parametrize("dtype,folded", [(np.float16, False), (np.float16, True), (np.float64, False)])
def test_float16_and_float64_inputs_get_the_float32_scaling(tmp_path, monkeypatch, dtype, folded):
    data = np.random.default_rng(8).integers(1, 4000, size=(3, 70, 90)).astype(np.uint16)
    item = imagery_item(tmp_path / "item.json", {"bands": (str(write_raster(tmp_path / "scene.tif", data)), BANDS)})
    used = []
    if folded:  # as on a device: the buffer holds uint16, the graph scales and casts
        for_input = FoldedRunners.for_input
        monkeypatch.setattr(OnnxRunner, "on_device", property(lambda self: True))
        monkeypatch.setattr(FoldedRunners, "for_input",
                            lambda self, entry, source: used.append(for_input(self, entry, source)) or used[-1])
    predict(str(_cast_model(tmp_path, dtype)), str(item), tmp_path / "out", PredictOptions(tile_size=32))
    assert folded == any(runner is not None for runner in used)
    scaled = (data.astype(np.float32) - np.float32(MEAN)) / np.float32(STDDEV)
    assert np.array_equal(_written(tmp_path / "out"), scaled.astype(dtype).astype(np.float32))
