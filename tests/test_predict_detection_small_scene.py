"""Object detection on a scene smaller than the model's fixed tile: the window is padded (reflect or zeros) or
resized to the tile, so the model's boxes are mapped back to the window: boxes found in the padding are
dropped or clipped, boxes on a resized tile are scaled back. Compared with the model run directly (onnxruntime)
on the tile built here with numpy / PIL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from mlmkit.inference import PredictOptions, predict
from predict_helpers import ORIGIN, imagery_item, mlm_item, mlm_output, write_raster, yolo_model
from test_predict_detection import BANDS, CLASSES, DETECT, TILE, _nms, _result, _to_crs, _written, _yolo_tile

HEIGHT, WIDTH = 50, 40
SCORE, IOU = 0.25, 0.5


def _scene(root: Path) -> np.ndarray:
    """Noise with bright squares, two of them on the bottom and right edges (mirrored into reflect padding)."""
    rng = np.random.default_rng(11)
    image = rng.normal(100, 10, size=(3, HEIGHT, WIDTH)).astype(np.float32)
    for band, (y, x, size) in enumerate([(4, 6, 9), (HEIGHT - 7, 12, 7), (20, WIDTH - 6, 6), (30, 22, 10)]):
        image[:, y:y + size, x:x + size] += 600
        image[band % 3, y:y + size, x:x + size] += 500
    write_raster(root / "image.tif", image)
    imagery_item(root / "item.json", {"image": ("./image.tif", BANDS)})
    return image


def _model_item(root: Path, resize_type: str | None) -> Path:
    model = yolo_model(root / "yolo.onnx", 3)
    entry = {"name": "input", "bands": BANDS, "input": {"shape": [-1, 3, TILE, TILE],
             "dim_order": ["batch", "bands", "height", "width"], "data_type": "float32"}}
    if resize_type is not None:
        entry["resize_type"] = resize_type
    outputs = [mlm_output("output", DETECT, [-1, 7, 64], ["batch", "cxcywh+class", "detection"], CLASSES)]
    return mlm_item(root / "yolo.json", model, [entry], outputs, band_names=BANDS)


def _tile(image: np.ndarray, resize_type: str | None) -> np.ndarray:
    if resize_type == "interpolation-linear":
        return np.stack([np.asarray(Image.fromarray(band, mode="F").resize((TILE, TILE), Image.Resampling.BILINEAR))
                         for band in image])
    mode = "constant" if resize_type == "pad" else "reflect"
    return np.pad(image, ((0, 0), (0, TILE - HEIGHT), (0, TILE - WIDTH)), mode=mode)


def _expected(model: Path, image: np.ndarray, resize_type: str | None) -> list[tuple]:
    """The model's boxes on the tile, back in scene pixels (scaled where resized), clipped to the scene."""
    scale = (WIDTH / TILE, HEIGHT / TILE) if resize_type == "interpolation-linear" else (1.0, 1.0)
    rows = []
    for label, value, x0, y0, x1, y1 in _yolo_tile(ort.InferenceSession(str(model)), _tile(image, resize_type)):
        x0, x1 = np.clip([x0 * scale[0], x1 * scale[0]], 0, WIDTH)
        y0, y1 = np.clip([y0 * scale[1], y1 * scale[1]], 0, HEIGHT)
        if value >= SCORE and x1 > x0 and y1 > y0:
            rows.append((label, float(value), x0, y0, x1, y1))
    return _nms(rows, IOU)


@pytest.mark.parametrize("resize_type", [None, "pad", "interpolation-linear"])
def test_boxes_of_a_scene_smaller_than_the_tile_stay_in_the_scene(tmp_path, resize_type):
    image = _scene(tmp_path)
    item = _model_item(tmp_path, resize_type)
    out = tmp_path / "out"
    predict(str(item), str(tmp_path / "item.json"), out, PredictOptions(score_threshold=SCORE, iou_threshold=IOU))
    result, item_dir = _result(out)
    actual = _written(item_dir / result["assets"]["detections"]["href"])
    expected = _to_crs(_expected(tmp_path / "yolo.onnx", image, resize_type))
    assert len(expected) >= 4
    assert len(actual) == len(expected)
    np.testing.assert_allclose(np.array(actual), np.array(expected), rtol=0, atol=1e-6)
    left, top = ORIGIN
    right, bottom = left + 10 * WIDTH, top - 10 * HEIGHT
    assert all(left <= x0 < x1 <= right and bottom <= y0 < y1 <= top for _, _, x0, y0, x1, y1 in actual)
