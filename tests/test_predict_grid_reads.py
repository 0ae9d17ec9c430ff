"""Within one predict call each imagery asset's grid is read once: stacking the Items of a time-series model by
grid and then running each stack does not open the assets again for their grid (remote assets cost requests);
a second call reads them afresh (no cache outlives a call)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from mlmkit.inference import PredictOptions, predict
from mlmkit.inference import reader as reader_module
from predict_helpers import _save, imagery_item, mlm_item, mlm_output, write_raster

DATES = ["2024-05-01", "2024-06-01", "2024-07-01"]


def _sum_over_time(root):
    """output[n, 0] = input[n, 0, 0] + input[n, 1, 0]: two dates of one band."""
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["input", "time"], ["output"], keepdims=0)], "sum-over-time",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 2, 1, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [numpy_helper.from_array(np.array([1], np.int64), "time")])
    model = _save(graph, root / "time.onnx")
    dims = ["batch", "time", "bands", "height", "width"]
    inputs = [{"name": "input", "bands": ["B04"], "input": {"shape": [-1, 2, 1, -1, -1], "dim_order": dims,
                                                            "data_type": "float32"}}]
    outputs = [mlm_output("sum", ["regression"], [-1, 1, -1, -1], ["batch", "channel", "height", "width"])]
    return mlm_item(root / "model.json", model, inputs, outputs, band_names=["B04"])


def _catalog(root):
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    for index, date in enumerate(DATES):
        image = write_raster(root / f"b04-{date}.tif", np.full((1, 40, 50), index + 1, np.uint16))
        path = imagery_item(root / f"item-{date}.json", {"b04": (str(image), ["B04"])}, item_id=f"scene-{date}")
        document = json.loads(path.read_text())
        document["properties"]["datetime"] = f"{date}T10:00:00Z"
        path.write_text(json.dumps(document))
        links.append({"rel": "item", "href": f"./item-{date}.json", "type": "application/geo+json"})
    catalog = root / "catalog.json"
    catalog.write_text(json.dumps({"type": "Catalog", "stac_version": "1.0.0", "id": "c", "description": "d",
                                   "links": links}))
    return catalog


def test_each_asset_grid_is_read_once_per_call(tmp_path, monkeypatch):
    model, catalog = _sum_over_time(tmp_path), _catalog(tmp_path)
    opened = Counter()
    real_open = reader_module.open_raster
    monkeypatch.setattr(reader_module, "open_raster", lambda href: opened.update([href.rsplit("/", 1)[-1]]) or real_open(href))
    for call in (1, 2):
        predict(str(model), str(catalog), tmp_path / f"out-{call}", PredictOptions(tile_size=32))
        # stacks (May, June) and (June, July): once for the grid, then once by the reader of each stack it is in
        assert opened == {f"b04-{DATES[0]}.tif": 2 * call, f"b04-{DATES[1]}.tif": 3 * call,
                          f"b04-{DATES[2]}.tif": 2 * call}
