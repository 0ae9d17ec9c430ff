"""The rules of `mlmkit.matching` one by one, on Items written here (metadata only: no file exists or is read)."""

from __future__ import annotations

import pystac
import pytest

from mlmkit.matching import match
from mlmkit.matching.footprints import relation

MLM = "https://stac-extensions.github.io/mlm/v1.5.2/schema.json"
SQUARE = [[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]]]


def _model(bands: list, band_info: list | None = None, **properties) -> pystac.Item:
    data = {"type": "Feature", "stac_version": "1.0.0", "stac_extensions": [MLM], "id": "model",
            "geometry": {"type": "Polygon", "coordinates": SQUARE}, "bbox": [0, 0, 10, 10],
            "properties": {"datetime": "2024-01-01T00:00:00Z", "mlm:name": "m", "mlm:framework": "onnx",
                           "mlm:input": [{"name": "x", "bands": bands, "input": {
                               "shape": [-1, len(bands) or 1, 64, 64], "dim_order": ["batch", "bands", "height", "width"],
                               "data_type": "float32"}}],
                           "mlm:output": [{"name": "y", "tasks": ["segmentation"], "result": {
                               "shape": [-1, 1, 64, 64], "dim_order": ["batch", "channel", "height", "width"],
                               "data_type": "float32"}}],
                           **({"eo:bands": band_info} if band_info else {}), **properties},
            "assets": {"model": {"href": "/nowhere/m.onnx", "roles": ["mlm:model"]}}, "links": []}
    return pystac.Item.from_dict(data, migrate=False)


def _scene(assets: dict, geometry: list = SQUARE, **properties) -> pystac.Item:
    xs = [x for x, _ in geometry[0]]
    ys = [y for _, y in geometry[0]]
    data = {"type": "Feature", "stac_version": "1.0.0", "stac_extensions": [], "id": "scene",
            "geometry": {"type": "Polygon", "coordinates": geometry}, "bbox": [min(xs), min(ys), max(xs), max(ys)],
            "properties": {"datetime": "2024-06-01T00:00:00Z", **properties},
            "assets": {key: {"href": f"/nowhere/{key}.tif", "type": "image/tiff; application=geotiff", "roles": ["data"],
                             **fields} for key, fields in assets.items()}, "links": []}
    return pystac.Item.from_dict(data, migrate=False)


def _one(model: pystac.Item, scene: pystac.Item):
    (pair,) = match(model, scene)
    return pair


def test_value_range_in_other_units_is_refused_naming_the_statistics():
    model = _model(["B04"], [{"name": "B04", "statistics": {"minimum": 0.0, "maximum": 1.0}}])
    reflectance = _scene({"B04": {"raster:bands": [{"statistics": {"minimum": 0.0, "maximum": 0.9}}]}})
    digital = _scene({"B04": {"raster:bands": [{"statistics": {"minimum": 1.0, "maximum": 10000.0}}]}})
    assert _one(model, reflectance).runnable
    assert _one(model, digital).problems == [
        "value range: model band 'B04' was trained on values 0..1 (statistics) but item 'scene' holds 1..10000 in B04 "
        "(statistics); expected values in the same units"]


def test_data_type_difference_is_a_warning():
    model = _model(["B04"], [{"name": "B04", "data_type": "uint16"}])
    pair = _one(model, _scene({"B04": {"raster:bands": [{"data_type": "float32"}]}}))
    assert pair.runnable and pair.warnings[0].startswith("value range: model band 'B04' was trained on uint16 values")


@pytest.mark.parametrize("gsd, verdict", [(10, "fine"), (25, "warned"), (80, "warned"), (90, "refused")])
def test_resolution_limits(gsd, verdict):
    pair = _one(_model(["B04"], gsd=10), _scene({"B04": {"gsd": gsd}}))
    assert pair.runnable == (verdict != "refused")
    if verdict == "refused":
        assert pair.problems[0] == ("resolution: B04 of item 'scene' has 90 m pixels (gsd) and the model takes 10 m "
                                    "(gsd): 9x upsampling; expected at most 8x")
    assert bool(pair.warnings) == (verdict == "warned")


def test_an_absent_field_the_model_needs_is_a_warning_and_a_model_without_requirement_is_not_checked():
    pair = _one(_model(["B04"], gsd=10, **{"processing:level": "L2A"}), _scene({"B04": {}}))
    assert pair.runnable and pair.warnings == [
        "processing level: item 'scene' states no processing:level; the model's L2A was not checked",
        "resolution: item 'scene' states no gsd for B04 (gsd, raster:bands spatial_resolution); the model's 10 m was "
        "not checked"]
    quiet = _one(_model(["B04"]), _scene({"B04": {}}))
    assert quiet.warnings == [] and quiet.plan["not_checked"] == [
        "temporal: the model states no start_datetime/end_datetime range",
        "processing level: the model states no processing:level", "resolution: the model states no gsd"]


def test_outside_the_model_datetime_range_is_warned():
    model = _model(["B04"], datetime=None, start_datetime="2015-01-01T00:00:00Z", end_datetime="2019-12-31T00:00:00Z")
    pair = _one(model, _scene({"B04": {}}))
    assert pair.runnable and pair.warnings == [
        "temporal: item 'scene' (2024-06-01, datetime) is outside the model's range 2015-01-01/2019-12-31 "
        "(start_datetime/end_datetime)"]


def test_footprint_partly_outside_is_warned_and_polygons_not_boxes_decide():
    edge = [[[8.0, 8.0], [12.0, 8.0], [12.0, 12.0], [8.0, 12.0], [8.0, 8.0]]]
    assert _one(_model(["B04"]), _scene({"B04": {}}, edge)).warnings == [
        "spatial: item 'scene' lies partly outside the model's geometry (geometry)"]
    triangle = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [0, 10], [0, 0]]]}
    corner = {"type": "Polygon", "coordinates": [[[8, 8], [9, 8], [9, 9], [8, 9], [8, 8]]]}
    assert relation(triangle, None, corner, None) == "outside"  # inside the triangle's bbox, not the triangle
    assert relation(triangle, None, {"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [1, 2], [1, 1]]]}, None) == "inside"


def test_derived_bands_bind_the_bands_their_expression_reads():
    ndvi = {"name": "ndvi", "format": "rio-calc", "expression": "(/ (- B08 B04) (+ B08 B04))"}
    pair = _one(_model(["B04", ndvi]), _scene({"red": {"eo:bands": [{"name": "B04"}]}}))
    assert pair.problems[0].startswith("bands: input 'x' needs band 'B08'")
    hostile = {"name": "bad", "format": "gdal-calc", "expression": "B04.__class__"}
    assert _one(_model([hostile]), _scene({"B04": {}})).problems == [
        "bands: input 'x' band 'bad' has an expression that is not band arithmetic (mlm:input[].bands[].expression); "
        "expected gdal-calc/rio-calc arithmetic over band names"]


def test_band_less_input_takes_the_asset_named_like_it():
    model = _model([])
    model.properties["mlm:input"][0]["name"] = "dem"
    assert _one(model, _scene({"dem": {}})).plan["bands"][0]["asset"] == "dem"
    assert _one(model, _scene({"B04": {}})).problems[0].startswith(
        "bands: input 'dem' names no bands, so an imagery asset with key 'dem' is needed")
