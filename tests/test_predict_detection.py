"""Object detection end to end: both ONNX layouts, boxes compared one by one with the model run directly on
the same windows (onnxruntime) and merged by a plain global NMS written here, edges included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq
import pytest
import shapely
from PIL import Image
from rasterio.warp import transform as warp_transform

from click.testing import CliRunner

from mlmkit.cli import main
from mlmkit.errors import InvalidInput
from mlmkit.inference import PredictOptions, predict
from mlmkit.catalog.validate import validate_source
from predict_helpers import CRS, ORIGIN, boxes_model, imagery_item, mlm_item, mlm_output, write_raster, yolo_model

HEIGHT, WIDTH, TILE = 130, 150, 64
BANDS = ["B04", "B03", "B02"]
CLASSES = [{"value": 1, "name": "ship", "description": "vessel", "color_hint": "FF0000"},
           {"value": 2, "name": "platform", "description": "offshore platform", "color_hint": "00FF00"},
           {"value": 3, "name": "buoy", "description": "buoy", "color_hint": "0000FF"}]
DETECT = ["object-detection"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict:
    """Three noisy bands with bright squares of several sizes; the brightest band of a square is its class."""
    root = tmp_path_factory.mktemp("detect")
    rng = np.random.default_rng(4)
    image = rng.normal(100, 10, size=(3, HEIGHT, WIDTH)).astype(np.float32)
    for index in range(14):
        size = int(rng.integers(5, 14))
        y, x = int(rng.integers(0, HEIGHT - size)), int(rng.integers(0, WIDTH - size))
        image[:, y:y + size, x:x + size] += rng.uniform(300, 700, size=3)[:, None, None]
        image[index % 3, y:y + size, x:x + size] += 400
    image[:, -6:, -6:] = 1200  # a bright corner: the last row and column of tiles are shifted back over it
    write_raster(root / "image.tif", image)
    item = imagery_item(root / "item.json", {"image": ("./image.tif", BANDS)})
    return {"root": root, "item": item, "image": image}


def _starts(length: int, stride: int) -> list[int]:
    return list(range(0, length - TILE, stride)) + [length - TILE]


def _nms(rows: list[tuple], threshold: float) -> list[tuple]:
    """(label, score, x0, y0, x1, y1) rows: greedy, highest score first, same class only."""
    kept: list[tuple] = []
    for row in sorted(rows, key=lambda r: -r[1]):
        overlaps = False
        for other in kept:
            if other[0] != row[0]:
                continue
            w = max(0.0, min(row[4], other[4]) - max(row[2], other[2]))
            h = max(0.0, min(row[5], other[5]) - max(row[3], other[3]))
            union = (row[4] - row[2]) * (row[5] - row[3]) + (other[4] - other[2]) * (other[5] - other[3]) - w * h
            overlaps |= w * h / union > threshold
        if not overlaps:
            kept.append(row)
    return kept


def _yolo_tile(session, window: np.ndarray) -> list[tuple]:
    table = session.run(None, {"input": window[None]})[0][0]            # (4 + K, cells)
    rows = []
    for cx, cy, w, h, *scores in table.T.tolist():
        best = int(np.argmax(scores))
        rows.append((best + 1, np.float32(scores[best]), cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return rows


def _boxes_tile(session, window: np.ndarray) -> list[tuple]:
    boxes, labels, scores = session.run(None, {"image": window})
    return [(int(label), np.float32(score), *map(float, box)) for box, label, score in zip(boxes, labels, scores)]


def _reference(model: Path, image: np.ndarray, decode, overlap: int, score: float, iou: float) -> list[tuple]:
    """What the model finds when fed each tile directly, in image pixels, merged by global NMS."""
    session = ort.InferenceSession(str(model))
    rows = []
    for y in _starts(HEIGHT, TILE - overlap):
        for x in _starts(WIDTH, TILE - overlap):
            for label, value, x0, y0, x1, y1 in decode(session, image[:, y:y + TILE, x:x + TILE]):
                x0, x1 = np.clip([x0, x1], 0, TILE)
                y0, y1 = np.clip([y0, y1], 0, TILE)
                if value >= score and x1 > x0 and y1 > y0:
                    rows.append((label, float(value), x + x0, y + y0, x + x1, y + y1))
    return _nms(rows, iou)


def _to_crs(rows: list[tuple]) -> list[tuple]:
    return sorted((label, round(score, 5), ORIGIN[0] + 10 * x0, ORIGIN[1] - 10 * y1, ORIGIN[0] + 10 * x1,
                   ORIGIN[1] - 10 * y0) for label, score, x0, y0, x1, y1 in rows)


def _result(out: Path) -> tuple[dict, Path]:
    catalog = json.loads((out / "catalog.json").read_text())
    href = next(link["href"] for link in catalog["links"] if link["rel"] == "item")
    path = (out / href).resolve()
    return json.loads(path.read_text()), path.parent


def _written(path: Path) -> list[tuple]:
    table = pq.read_table(path)
    bounds = shapely.bounds(shapely.from_wkb(table.column("geometry").to_pylist()))
    return sorted((label, round(float(score), 5), *map(float, box)) for label, score, box in
                  zip(table.column("class").to_pylist(), table.column("score").to_pylist(), bounds))


def _yolo_item(root: Path) -> Path:
    model = yolo_model(root / "yolo.onnx", 3)
    inputs = [{"name": "input", "bands": BANDS, "input": {"shape": [-1, 3, TILE, TILE],
               "dim_order": ["batch", "bands", "height", "width"], "data_type": "float32"}}]
    outputs = [mlm_output("output", DETECT, [-1, 7, 64], ["batch", "cxcywh+class", "detection"], CLASSES)]
    return mlm_item(root / "yolo.json", model, inputs, outputs, band_names=BANDS)


def _boxes_item(root: Path) -> Path:
    model = boxes_model(root / "boxes.onnx", 3)
    inputs = [{"name": "image", "bands": BANDS, "input": {"shape": [3, TILE, TILE],
               "dim_order": ["bands", "height", "width"], "data_type": "float32"}}]
    outputs = [mlm_output("boxes", DETECT, [-1, 4], ["detection", "xyxy"], CLASSES),
               {**mlm_output("labels", DETECT, [-1], ["detection"], CLASSES),
                "result": {"shape": [-1], "dim_order": ["detection"], "data_type": "int64"}},
               mlm_output("scores", DETECT, [-1], ["detection"], CLASSES)]
    return mlm_item(root / "boxes.json", model, inputs, outputs, band_names=BANDS)


@pytest.mark.parametrize("layout,overlap,score,iou,in_item", [
    ("yolo", 16, 0.25, 0.5, False), ("yolo", 0, 0.4, 0.3, True), ("boxes", 24, 0.25, 0.5, False)])
def test_boxes_equal_the_model_run_directly(scene, tmp_path, layout, overlap, score, iou, in_item):
    """Thresholds as options, or (in_item) from the Item's mlm:hyperparameters as the MLM README shows them."""
    item = _yolo_item(tmp_path) if layout == "yolo" else _boxes_item(tmp_path)
    if in_item:
        document = json.loads(item.read_text())
        document["properties"]["mlm:hyperparameters"] = {"score_threshold": score, "iou_threshold": iou}
        item.write_text(json.dumps(document))
    decode = _yolo_tile if layout == "yolo" else _boxes_tile
    out = tmp_path / "out"
    thresholds = {} if in_item else {"score_threshold": score, "iou_threshold": iou}
    predict(str(item), str(scene["item"]), out, PredictOptions(overlap=overlap, batch_size=3, **thresholds))
    result, item_dir = _result(out)
    expected = _to_crs(_reference(Path(str(item).replace(".json", ".onnx")), scene["image"], decode, overlap,
                                  score, iou))
    actual = _written(item_dir / result["assets"]["detections"]["href"])
    assert len(expected) > 10 and {row[0] for row in expected} == {1, 2, 3}
    assert len(actual) == len(expected)
    np.testing.assert_allclose(np.array(actual), np.array(expected), rtol=0, atol=1e-6)
    # the bright bottom-right corner is found by the last, shifted-back row and column of tiles
    assert any(row[2] >= ORIGIN[0] + 10 * (WIDTH - 8) and row[3] <= ORIGIN[1] - 10 * (HEIGHT - 8) for row in actual)


def test_result_item_geoparquet_geojson_quicklook(scene, tmp_path):
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["predict", "-m", str(_yolo_item(tmp_path)), "-i", str(scene["item"]), "-o", str(out),
                                    "--overlap", "16", "--score-threshold", "0.25", "--iou-threshold", "0.5"])
    assert run.exit_code == 0, run.output
    result, item_dir = _result(out)
    assets = result["assets"]
    parquet = assets["detections"]
    assert parquet["type"] == "application/vnd.apache.parquet" and "data" in parquet["roles"]
    assert [c["name"] for c in parquet["classification:classes"]] == ["ship", "platform", "buoy"]
    metadata = pq.read_schema(item_dir / parquet["href"]).metadata
    geo = json.loads(metadata[b"geo"])
    column = geo["columns"]["geometry"]
    assert geo["version"] == "1.1.0" and column["encoding"] == "WKB" and column["geometry_types"] == ["Polygon"]
    assert column["crs"]["id"] == {"authority": "EPSG", "code": 32631}
    table = pq.read_table(item_dir / parquet["href"])
    assert set(table.column("class_name").to_pylist()) == {"ship", "platform", "buoy"}
    assert shapely.from_wkb(table.column("geometry")[0].as_py()).is_valid

    features = json.loads((item_dir / assets["detections-geojson"]["href"]).read_text())["features"]
    assert len(features) == table.num_rows
    first = features[0]
    lon, lat = warp_transform(CRS, "EPSG:4326", [table.column("bbox")[0]["xmin"].as_py()],
                              [table.column("bbox")[0]["ymin"].as_py()])
    assert first["geometry"]["coordinates"][0][0] == pytest.approx([lon[0], lat[0]], abs=1e-6)
    assert first["properties"]["class_name"] == table.column("class_name")[0].as_py()

    look = np.asarray(Image.open(item_dir / assets["quicklook"]["href"]).convert("RGB"))
    assert look.shape[0] > HEIGHT and look.shape[1] >= WIDTH  # the picture under its title
    picture = look[-HEIGHT:, :WIDTH]
    assert ((picture == (255, 0, 0)).all(axis=2)).any()  # ship outlines in the class colour
    assert ((look[:-HEIGHT] < 64).all(axis=2)).any()  # dark title text above it
    derived = {(item_dir / link["href"]).resolve() for link in result["links"] if link["rel"] == "derived_from"}
    assert Path(scene["item"]).resolve() in derived  # relative: the input and the output move together
    assert validate_source(out / "catalog.json") == []


def test_detection_output_without_boxes_is_refused(scene, tmp_path):
    model = yolo_model(tmp_path / "m.onnx", 3)
    inputs = [{"name": "input", "bands": BANDS, "input": {"shape": [-1, 3, TILE, TILE],
               "dim_order": ["batch", "bands", "height", "width"], "data_type": "float32"}}]
    outputs = [mlm_output("scores", DETECT, [-1, 7], ["batch", "score"], CLASSES)]
    item = mlm_item(tmp_path / "model.json", model, inputs, outputs, band_names=BANDS)
    with pytest.raises(InvalidInput, match="hold no boxes") as info:
        predict(str(item), str(scene["item"]), tmp_path / "out", PredictOptions())
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out" / "catalog.json").exists()
    warnings = [p for p in validate_source(item, warnings=True) if p.warning]
    assert warnings and "hold no boxes" in warnings[0].message
