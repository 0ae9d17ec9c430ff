"""The pieces of predict on their own: safe expressions, value scaling, tiling and blending."""

from __future__ import annotations

import datetime

import numpy as np
import pystac
import pytest

from mlmkit.errors import InvalidInput, InvalidMetadata, ModelRefused, NotRunnable
from mlmkit.mlm.spec import ValueScaling
from mlmkit.inference.bands import BandResolver
from mlmkit.inference.expressions import Expression, check_format
from mlmkit.inference.preprocess import scaling_step
from mlmkit.inference.tiler import Strip, TileLayout, blend_weights, edge_weights, starts

A = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
B = np.array([[4.0, 3.0], [2.0, 0.0]], dtype=np.float32)


@pytest.mark.parametrize("text,expected", [
    ("(B08 - B04) / (B08 + B04)", (A - B) / (A + B)),
    ("(/ (- B08 B04) (+ B08 B04))", (A - B) / (A + B)),          # rio-calc prefix form
    ("where(B08 > 2, B08, 0)", np.where(A > 2, A, 0)),
    ("np.sqrt(B08) * 2 ** 2", np.sqrt(A) * 4),
    ("logical_not(B04)", np.logical_not(B)),
    ("1 < B08 <= 3", (A > 1) & (A <= 3)),
    ("B08 if B04 else -B08", np.where(B, A, -A)),
])
def test_expressions_compute_like_numpy(text, expected):
    np.testing.assert_allclose(Expression(text)({"B08": A, "B04": B}), expected)


def test_expression_names_and_case_insensitive_lookup():
    expression = Expression("(A - b) / 2")
    assert expression.names == {"A", "b"}
    np.testing.assert_allclose(expression({"A": A, "B": B}), (A - B) / 2)


@pytest.mark.parametrize("text", [
    "__import__('os').system('id')", "A.__class__", "open('x')", "[A for A in B]", "lambda: 1", "A; B",
    "eval('1')", "np.load('x')", "'text'",
])
def test_unsafe_expressions_are_refused(text):
    with pytest.raises(InvalidMetadata):
        Expression(text)


def test_missing_names_are_reported():
    with pytest.raises(InvalidMetadata, match="B11"):
        Expression("B11 + 1")({"B04": B})


def test_python_format_needs_consent():
    with pytest.raises(ModelRefused, match="the allow_python_expressions argument trusts it"):
        check_format("python", "pkg.mod:fn", False, "input x")
    check_format("python", "pkg.mod:fn", True, "input x")
    with pytest.raises(InvalidMetadata, match="expected one of"):
        check_format("docker", "img:tag", True, "input x")


@pytest.mark.parametrize("scaling,expected", [
    (ValueScaling("min-max", minimum=1, maximum=5), (A - 1) / 4),
    (ValueScaling("z-score", mean=2, stddev=0.5), (A - 2) / 0.5),
    (ValueScaling("clip", minimum=2, maximum=3), np.clip(A, 2, 3)),
    (ValueScaling("clip-min", minimum=2.5), np.maximum(A, 2.5)),
    (ValueScaling("clip-max", maximum=2.5), np.minimum(A, 2.5)),
    (ValueScaling("offset", value=1.5), A - 1.5),
    (ValueScaling("scale", value=4), A / 4),
    (ValueScaling("processing", format="gdal-calc", expression="A * logical_or(A <= 1, A >= 4)"),
     A * ((A <= 1) | (A >= 4))),
])
def test_value_scaling_follows_the_mlm_table(scaling, expected):
    np.testing.assert_allclose(scaling_step(scaling)(A.copy()), expected)


def test_value_scaling_missing_parameter():
    with pytest.raises(InvalidMetadata, match="needs mean, stddev"):
        scaling_step(ValueScaling("z-score", mean=1))


@pytest.mark.parametrize("length,tile,stride", [(130, 64, 64), (130, 64, 48), (64, 64, 64), (1000, 256, 224)])
def test_tile_starts_cover_every_pixel_and_end_on_the_edge(length, tile, stride):
    origins = starts(length, tile, stride)
    covered = np.zeros(length, bool)
    for origin in origins:
        covered[origin:origin + tile] = True
    assert covered.all() and origins[-1] + tile == length and origins[0] == 0


def test_layout_windows_of_images_smaller_than_a_tile_and_bad_overlap():
    layout = TileLayout(40, 100, 64, 64)
    assert (layout.window_h, layout.window_w, layout.rows, layout.cols) == (40, 64, [0], [0, 36])
    with pytest.raises(InvalidInput, match="overlap"):
        TileLayout(100, 100, 64, 64, overlap=64)


@pytest.mark.parametrize("mode", ["smooth", "crop"])
def test_blending_a_constant_gives_the_constant_everywhere(mode):
    """Strips blend overlapping tiles; every pixel (edges included) gets weight > 0."""
    height, width, tile, overlap = 150, 170, 64, 24
    layout = TileLayout(height, width, tile, tile, overlap)
    base = blend_weights(tile, tile, overlap, mode)
    strip = Strip(1, tile, width, blend=True)
    result = np.full((height, width), np.nan)
    rows, cols = layout.rows, layout.cols
    for r, y in enumerate(rows):
        for c, x in enumerate(cols):
            weights = edge_weights(base, overlap, r == 0, r == len(rows) - 1, c == 0, c == len(cols) - 1)
            strip.add(y, x, np.full((1, tile, tile), 7.0, np.float32), weights)
        until = rows[r + 1] if r + 1 < len(rows) else height
        top = strip.top
        values, covered = strip.flush(until)
        assert covered.all()
        result[top:until] = values[0]
    np.testing.assert_allclose(result, 7.0, rtol=1e-6)


def _item(assets: dict) -> pystac.Item:
    item = pystac.Item("x", None, None, datetime.datetime(2024, 1, 1), {})
    for key, fields in assets.items():
        item.add_asset(key, pystac.Asset(f"/data/{key}.tif", media_type="image/tiff; application=geotiff",
                                         roles=["data"], extra_fields=fields))
    return item


def test_band_resolver_matches_every_way_a_stac_item_names_bands():
    item = _item({
        "visual": {"eo:bands": [{"name": "B04", "common_name": "red"}, {"name": "B03", "common_name": "green"}]},
        "nir": {"bands": [{"name": "nir08", "eo:common_name": "nir"}]},           # STAC 1.1 bands
        "swir": {"raster:bands": [{"name": "B11", "nodata": 0}]},                 # raster:bands name
        "B12": {},                                                                # asset key only
    })
    resolver = BandResolver(item, {"B08": {"common_name": "nir"}})
    found = {name: resolver.resolve(name, "input x") for name in ("B04", "green", "B08", "b11", "B12")}
    assert [(ref.asset, ref.index) for ref in found.values()] == [
        ("visual", 1), ("visual", 2), ("nir", 1), ("swir", 1), ("B12", 1)]
    assert found["b11"].nodata == 0 and found["B08"].href == "/data/nir.tif"
    with pytest.raises(NotRunnable, match=r"band 'B01'.*visual\[1\]=B04/red.*B12"):
        resolver.resolve("B01", "input x")


@pytest.mark.parametrize("dims,rank,axes", [
    (["batch", "bands", "height", "width"], 4, (0, 2, 3, 4)),
    (["batch", "height", "width", "channel"], 4, (0, 3, 4, 2)),
    (["batch", "time", "bands", "y", "x"], 5, (0, 1, 2, 3, 4)),
    (["bands", "height", "width"], 3, (2, 3, 4)),          # one image, no batch axis (torchvision detectors)
    (["batch", "bands"], 2, (0, 2)),                       # pixel rows
    (["batch", "features"], 2, (0, 2)),                    # one unknown name stands for the channels
    (["b", "c", "h", "w"], 4, (0, 2, 3, 4)),               # unknown names: the layout by rank
])
def test_input_layouts_from_dim_order(dims, rank, axes):
    from mlmkit.mlm.shapes import input_axes

    assert input_axes("x", dims, rank) == axes


def test_input_layout_with_height_but_no_width():
    from mlmkit.mlm.shapes import input_axes

    with pytest.raises(InvalidInput, match="one of height/width without the other"):
        input_axes("x", ["batch", "bands", "height"], 3)


def _output(name: str, dims: list[str], data_type: str = "float32"):
    from mlmkit.mlm.spec import ModelOutput

    return ModelOutput(name, tuple(-1 for _ in dims), tuple(dims), data_type, tasks=("object-detection",))


def test_detection_layouts():
    from mlmkit.mlm.shapes import DetectionLayout, detection_layout

    assert detection_layout([_output("output0", ["batch", "cxcywh+class", "detection"])]) == DetectionLayout(yolo=0)
    separate = [_output("dets", ["detection", "xyxy"]), _output("class", ["detection"], "int64"),
                _output("conf", ["detection"])]
    assert detection_layout(separate) == DetectionLayout(boxes=0, labels=1, scores=2)
    assert detection_layout([_output("boxes", ["batch", "detection", "xyxy"])]) == DetectionLayout(boxes=0)
    with pytest.raises(InvalidInput, match="hold no boxes"):
        detection_layout([_output("scores", ["batch", "score"])])


def _greedy(boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray, threshold: float) -> list[tuple]:
    """Plain global NMS, for reference."""
    kept = []
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        b = boxes[i]
        if all(labels[k] != labels[i] or
               max(0, min(b[2], boxes[k][2]) - max(b[0], boxes[k][0])) *
               max(0, min(b[3], boxes[k][3]) - max(b[1], boxes[k][1])) /
               ((b[2] - b[0]) * (b[3] - b[1]) + (boxes[k][2] - boxes[k][0]) * (boxes[k][3] - boxes[k][1]) -
                max(0, min(b[2], boxes[k][2]) - max(b[0], boxes[k][0])) *
                max(0, min(b[3], boxes[k][3]) - max(b[1], boxes[k][1]))) <= threshold for k in kept):
            kept.append(i)
    return [(int(labels[i]), round(float(scores[i]), 6), *map(float, boxes[i])) for i in kept]


def test_streamed_nms_equals_global_nms(tmp_path):
    """Chains of overlapping boxes across tile rows: closing groups strip by strip changes nothing."""
    import pyarrow.parquet as pq
    from affine import Affine
    from rasterio.crs import CRS

    from mlmkit.mlm.spec import ModelClass
    from mlmkit.inference.outputs.boxes import DetectionSink, Detections
    from mlmkit.inference.reader import Grid
    from mlmkit.inference.outputs import SinkContext

    layout = TileLayout(100, 100, 32, 32, overlap=12)
    plan = type("Plan", (), {"key": "detections", "iou_threshold": 0.3,
                             "classes": (ModelClass(1, "a"), ModelClass(2, "b"))})()
    grid = Grid(CRS.from_epsg(32631), Affine(1, 0, 0, 0, -1, 100), 100, 100)
    sink = DetectionSink(plan, SinkContext(grid, layout, tmp_path, False, "smooth"))
    rng = np.random.default_rng(8)
    corner = rng.uniform(0, 92, size=(60, 2))
    objects = np.hstack([corner, corner + rng.uniform(4, 8, size=(60, 2))])  # image pixels; tiles see them jittered
    kinds = rng.integers(1, 3, 60)
    everything = []
    for row, col, y, x in layout:
        inside = (objects[:, 0] >= x) & (objects[:, 2] <= x + 32) & (objects[:, 1] >= y) & (objects[:, 3] <= y + 32)
        boxes = np.clip(objects[inside] - (x, y, x, y) + rng.uniform(-1.5, 1.5, size=(inside.sum(), 4)), 0, 32)
        labels, scores = kinds[inside], rng.uniform(0.1, 1, inside.sum()).astype(np.float32)
        sink.add(row, col, y, x, Detections(boxes, labels, scores), None)
        everything.append((boxes + (x, y, x, y), labels, scores))
        if col == len(layout.cols) - 1:
            sink.end_row(row)
    sink.close()
    boxes, labels, scores = (np.concatenate(parts) for parts in zip(*everything))
    expected = _greedy(boxes, labels, scores, 0.3)
    table = pq.read_table(tmp_path / "detections.parquet")
    bbox = table.column("bbox").to_pylist()
    actual = sorted((c, round(s, 6), b["xmin"], 100 - b["ymax"], b["xmax"], 100 - b["ymin"])
                    for c, s, b in zip(table.column("class").to_pylist(), table.column("score").to_pylist(), bbox))
    assert len(expected) < len(boxes) * 0.8
    np.testing.assert_allclose(np.array(actual), np.array(sorted(expected)), rtol=0, atol=1e-9)
