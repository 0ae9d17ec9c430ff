"""Builders for predict tests: tiny ONNX models with known maths, GeoTIFFs, imagery Items and MLM Items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import rasterio
from affine import Affine
from onnx import TensorProto, helper, numpy_helper

from mlmkit.checksum import file_checksum

CRS = "EPSG:32631"
ORIGIN = (500000.0, 5000000.0)
MLM_URL = "https://stac-extensions.github.io/mlm/v1.5.2/schema.json"
EO_URL = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
RASTER_URL = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="mlmkit-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _dims(channels: int, size: int | None, batch: int | None = None) -> list:
    return [batch or "N", channels, size or "H", size or "W"]


def conv_model(path: Path, weights: np.ndarray, bias: np.ndarray, size: int | None = None,
               name_in: str = "input", name_out: str = "output", batch: int | None = None) -> Path:
    """output[k] = sum_c weights[k, c] * input[c] + bias[k], per pixel (a 1×1 convolution)."""
    classes, channels = weights.shape
    graph = helper.make_graph(
        [helper.make_node("Conv", [name_in, "w", "b"], [name_out])],
        "conv1x1",
        [helper.make_tensor_value_info(name_in, TensorProto.FLOAT, _dims(channels, size, batch))],
        [helper.make_tensor_value_info(name_out, TensorProto.FLOAT, _dims(classes, size, batch))],
        [numpy_helper.from_array(weights.astype(np.float32).reshape(classes, channels, 1, 1), "w"),
         numpy_helper.from_array(bias.astype(np.float32), "b")],
    )
    return _save(graph, path)


def scene_model(path: Path, weights: np.ndarray, size: int = 64) -> Path:
    """scores[k] = sum_c weights[k, c] * mean(input[c]) over the tile: GlobalAveragePool + Gemm."""
    classes, channels = weights.shape
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("Gemm", ["flat", "w"], ["output"], transB=1)],
        "scene",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(weights.astype(np.float32), "w")],
    )
    return _save(graph, path)


def two_input_model(path: Path, weights: np.ndarray, second: str = "ndvi") -> Path:
    """output = 1×1 conv over concat(rgb[3], <second>[1])."""
    classes = weights.shape[0]
    graph = helper.make_graph(
        [helper.make_node("Concat", ["rgb", second], ["stack"], axis=1),
         helper.make_node("Conv", ["stack", "w"], ["output"])],
        "two-input",
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["N", 3, "H", "W"]),
         helper.make_tensor_value_info(second, TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", classes, "H", "W"])],
        [numpy_helper.from_array(weights.astype(np.float32).reshape(classes, 4, 1, 1), "w")],
    )
    return _save(graph, path)


def write_raster(path: Path, data: np.ndarray, resolution: float = 10.0, nodata: float | None = None,
                 crs: str | None = CRS, origin: tuple[float, float] = ORIGIN) -> Path:
    """A GeoTIFF of (bands, h, w) data, north-up at `origin` (no CRS/transform when crs is None)."""
    data = data if data.ndim == 3 else data[None]
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=data.dtype.name, nodata=nodata)
    if crs is not None:
        profile.update(crs=crs, transform=Affine(resolution, 0, origin[0], 0, -resolution, origin[1]))
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data)
    return path


def imagery_item(path: Path, assets: dict[str, tuple[str, list[str]]], item_id: str = "scene",
                 nodata: float | None = None) -> Path:
    """A STAC Item whose assets are `key -> (href, [band names])` described with eo:bands and raster:bands."""
    assets_json = {}
    for key, (href, names) in assets.items():
        entry = {"href": href, "type": "image/tiff; application=geotiff", "roles": ["data"],
                 "eo:bands": [{"name": name} for name in names]}
        if nodata is not None:
            entry["raster:bands"] = [{"nodata": nodata, "data_type": "uint16"} for _ in names]
        assets_json[key] = entry
    item = {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": [EO_URL, RASTER_URL], "id": item_id,
        "geometry": {"type": "Polygon", "coordinates": [[[3, 45], [3.1, 45], [3.1, 45.1], [3, 45.1], [3, 45]]]},
        "bbox": [3, 45, 3.1, 45.1], "properties": {"datetime": "2024-06-01T10:30:00Z"}, "assets": assets_json,
        "links": [],
    }
    path.write_text(json.dumps(item, indent=1))
    return path


def mlm_input(name: str, bands: list, channels: int, size: int = -1, scaling: list | None = None,
              pre: dict | None = None) -> dict:
    entry = {"name": name, "bands": bands,
             "input": {"shape": [-1, channels, size, size], "dim_order": ["batch", "bands", "height", "width"],
                       "data_type": "float32"}}
    if scaling is not None:
        entry["value_scaling"] = scaling
    if pre is not None:
        entry["pre_processing_function"] = pre
    return entry


def mlm_output(name: str, tasks: list[str], shape: list[int], dim_order: list[str], classes: list[dict] | None = None,
               post: dict | None = None) -> dict:
    entry = {"name": name, "tasks": tasks, "result": {"shape": shape, "dim_order": dim_order, "data_type": "float32"}}
    if classes is not None:
        entry["classification:classes"] = classes
    if post is not None:
        entry["post_processing_function"] = post
    return entry


def mlm_item(path: Path, model: Path, inputs: list[dict], outputs: list[dict], checksum: str | None = "auto",
             artifact_type: str = "onnx", band_names: list[str] | None = None) -> Path:
    """An MLM v1.5.2 Item for `model` (relative href), with a sha2-256 file:checksum unless told otherwise."""
    asset = {"href": f"./{model.name}", "type": "application/octet-stream; framework=onnx", "roles": ["mlm:model"],
             "mlm:artifact_type": artifact_type}
    if checksum:
        asset["file:checksum"] = file_checksum(model) if checksum == "auto" else checksum
    if band_names:
        asset["eo:bands"] = [{"name": name} for name in band_names]
    tasks = sorted({task for output in outputs for task in output["tasks"]})
    item = {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": [MLM_URL, EO_URL], "id": "test-model",
        "geometry": {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]},
        "bbox": [-180, -90, 180, 90],
        "properties": {"datetime": "2024-01-01T00:00:00Z", "mlm:name": "Test model", "mlm:architecture": "conv",
                       "mlm:tasks": tasks, "mlm:framework": "onnx", "mlm:input": inputs, "mlm:output": outputs},
        "assets": {"model": asset}, "links": [],
    }
    path.write_text(json.dumps(item, indent=1))
    return path
