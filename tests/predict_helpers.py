"""Builders for predict tests: tiny ONNX models with known maths, GeoTIFFs, imagery Items and MLM Items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import rasterio
from affine import Affine
from onnx import TensorProto, helper, numpy_helper

from mlmkit.stac.checksum import file_checksum

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


def _cell_boxes(size: int, cell: int, inset: float = 0.0) -> np.ndarray:
    """(cells, 4) x0, y0, x1, y1 of the cell grid of a size × size tile, row-major, shrunk by `inset`."""
    starts = np.arange(0, size, cell, dtype=np.float32)
    ys, xs = np.meshgrid(starts, starts, indexing="ij")
    return np.stack([xs.ravel() + inset, ys.ravel() + inset, xs.ravel() + cell - inset, ys.ravel() + cell - inset],
                    axis=1)


def yolo_model(path: Path, bands: int, size: int = 64, cell: int = 8, scale: float = 0.001) -> Path:
    """A YOLO-style detector [batch, 4 + bands, cells]: one box per cell of the tile, cx, cy at the cell centre
    and w = h = cell × (mean of band 0 over the cell) × scale; class k's score = mean of band k × scale."""
    cells = (size // cell) ** 2
    centres = _cell_boxes(size, cell)
    centre = np.stack([(centres[:, 0] + centres[:, 2]) / 2, (centres[:, 1] + centres[:, 3]) / 2])[None]  # (1, 2, cells)
    nodes = [
        helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[cell, cell], strides=[cell, cell]),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"]),            # (N, bands, cells)
        helper.make_node("Mul", ["flat", "scale"], ["scores"]),
        helper.make_node("Slice", ["scores", "zero", "one", "one"], ["first"]),     # (N, 1, cells)
        helper.make_node("Mul", ["first", "cell"], ["side"]),
        helper.make_node("Shape", ["input"], ["in_shape"]),
        helper.make_node("Slice", ["in_shape", "zero", "one"], ["batch"]),
        helper.make_node("Concat", ["batch", "two_cells"], ["centre_shape"], axis=0),
        helper.make_node("Expand", ["centre", "centre_shape"], ["centres"]),
        helper.make_node("Concat", ["centres", "side", "side", "scores"], ["output"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "yolo-cells",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", bands, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4 + bands, cells])],
        [numpy_helper.from_array(np.array([0, bands, cells], np.int64), "flat_shape"),
         numpy_helper.from_array(np.array(scale, np.float32), "scale"),
         numpy_helper.from_array(np.array([cell * scale], np.float32) / scale, "cell"),
         numpy_helper.from_array(np.array([0], np.int64), "zero"),
         numpy_helper.from_array(np.array([1], np.int64), "one"),
         numpy_helper.from_array(np.array([2, cells], np.int64), "two_cells"),
         numpy_helper.from_array(centre.astype(np.float32), "centre")],
    )
    return _save(graph, path)


def boxes_model(path: Path, bands: int, size: int = 64, cell: int = 8, threshold: float = 0.5,
                scale: float = 0.001) -> Path:
    """A torchvision-style detector on one [bands, H, W] image: boxes [N, 4] (cells inset by 1 px), labels [N]
    (1 + the band with the highest cell mean) and scores [N] (that mean × scale), for cells scoring > threshold."""
    boxes = _cell_boxes(size, cell, inset=1.0)
    nodes = [
        helper.make_node("Unsqueeze", ["image", "axis0"], ["batched"]),
        helper.make_node("AveragePool", ["batched"], ["pooled"], kernel_shape=[cell, cell], strides=[cell, cell]),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"]),            # (bands, cells)
        helper.make_node("Mul", ["flat", "scale"], ["class_scores"]),
        helper.make_node("ReduceMax", ["class_scores"], ["best"], axes=[0], keepdims=0),
        helper.make_node("ArgMax", ["class_scores"], ["index"], axis=0, keepdims=0),
        helper.make_node("Add", ["index", "one"], ["all_labels"]),
        helper.make_node("Greater", ["best", "threshold"], ["kept"]),
        helper.make_node("NonZero", ["kept"], ["where"]),
        helper.make_node("Reshape", ["where", "minus_one"], ["picked"]),
        helper.make_node("Gather", ["cell_boxes", "picked"], ["boxes"], axis=0),
        helper.make_node("Gather", ["all_labels", "picked"], ["labels"], axis=0),
        helper.make_node("Gather", ["best", "picked"], ["scores"], axis=0),
    ]
    graph = helper.make_graph(
        nodes, "boxes-cells",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [bands, size, size])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("labels", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N"])],
        [numpy_helper.from_array(np.array([0], np.int64), "axis0"),
         numpy_helper.from_array(np.array([bands, -1], np.int64), "flat_shape"),
         numpy_helper.from_array(np.array(scale, np.float32), "scale"),
         numpy_helper.from_array(np.array(1, np.int64), "one"),
         numpy_helper.from_array(np.array(threshold, np.float32), "threshold"),
         numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
         numpy_helper.from_array(boxes, "cell_boxes")],
    )
    return _save(graph, path)
