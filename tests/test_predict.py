"""predict end to end on synthetic rasters whose every output pixel is known in advance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from mlmkit.cli import main
from mlmkit.inference import PredictOptions, predict
from mlmkit.catalog.validate import validate_source
from http_helpers import static_server
from predict_helpers import (conv_model, imagery_item, mlm_input, mlm_item, mlm_output, scene_model,
                             two_input_model, write_raster)

HEIGHT, WIDTH = 130, 150  # not multiples of the 64 px tiles: edge tiles are shifted back
WEIGHTS = np.array([[1.0, -1.0, 0.5, 0.0], [-0.5, 1.0, 0.0, 1.0], [0.2, 0.2, 0.2, -1.0]])
BIAS = np.array([0.1, -0.2, 0.0])
MEANS, STDS = np.array([100.0, 120.0, 90.0, 200.0]), np.array([30.0, 20.0, 40.0, 50.0])
CLASSES = [{"value": 1, "name": "water", "color_hint": "0000FF"}, {"value": 2, "name": "crop", "color_hint": "00FF00"},
           {"value": 5, "name": "urban", "color_hint": "FF0000"}]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict:
    """Three 10 m bands in one asset, B08 at 20 m in another; a 12×10 px nodata hole."""
    root = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(7)
    visual = rng.integers(1, 400, size=(3, HEIGHT, WIDTH)).astype(np.uint16)
    nir20 = rng.integers(1, 400, size=(HEIGHT // 2, WIDTH // 2)).astype(np.uint16)
    visual[:, 40:50, 60:72] = 0
    write_raster(root / "visual.tif", visual, nodata=0)
    write_raster(root / "b08.tif", nir20, resolution=20.0, nodata=0)
    item = imagery_item(root / "item.json", {"visual": ("./visual.tif", ["B04", "B03", "B02"]),
                                             "nir": ("./b08.tif", ["B08"])})
    nir10 = np.repeat(np.repeat(nir20, 2, axis=0), 2, axis=1)
    bands = np.concatenate([visual, nir10[None]]).astype(np.float64)  # B04, B03, B02, B08 on the 10 m grid
    return {"root": root, "item": item, "bands": bands, "valid": (bands != 0).all(axis=0)}


def _seg_model(root: Path, size: int | None = None, **mlm) -> Path:
    model = conv_model(root / "seg.onnx", WEIGHTS, BIAS, size=size)
    scaling = [{"type": "z-score", "mean": m, "stddev": s} for m, s in zip(MEANS, STDS)]
    inputs = [mlm_input("input", ["B04", "B03", "B02", "B08"], 4, size or -1, scaling=scaling)]
    outputs = [mlm_output("landcover", ["semantic-segmentation"], [-1, 3, -1, -1],
                          ["batch", "class", "height", "width"], CLASSES)]
    return mlm_item(root / "model.json", model, inputs, outputs, band_names=["B04", "B03", "B02", "B08"], **mlm)


def _expected_scores(bands: np.ndarray) -> np.ndarray:
    scaled = (bands - MEANS[:, None, None]) / STDS[:, None, None]
    return np.einsum("kc,chw->khw", WEIGHTS, scaled) + BIAS[:, None, None]


def _result(out: Path) -> tuple[dict, Path]:
    catalog = json.loads((out / "catalog.json").read_text())
    link = next(link for link in catalog["links"] if link["rel"] == "item")
    item_path = (out / link["href"]).resolve()
    return json.loads(item_path.read_text()), item_path.parent


def _assert_classes(actual: np.ndarray, scores: np.ndarray, values: list[int], valid: np.ndarray) -> None:
    """Every pixel equals the argmax class, except near-ties float32 may break either way; 255 where masked."""
    ordered = np.sort(scores, axis=0)
    clear = (ordered[-1] - ordered[-2]) > 1e-4
    expected = np.asarray(values)[scores.argmax(axis=0)]
    np.testing.assert_array_equal(actual[valid & clear], expected[valid & clear])
    assert (actual[~valid] == 255).all()
    assert clear.mean() > 0.99


def _read(path: Path) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.profile


@pytest.mark.parametrize("overlap,blend", [(0, "smooth"), (16, "smooth"), (20, "crop")])
def test_segmentation_every_pixel(scene, tmp_path, overlap, blend):
    model = _seg_model(tmp_path, size=None)
    out = tmp_path / "out"
    options = PredictOptions(tile_size=64, overlap=overlap, blend=blend, batch_size=3, probabilities=True,
                             resampling="nearest")
    assert predict(str(model), str(scene["item"]), out, options) == out / "catalog.json"

    item, item_dir = _result(out)
    classes, profile = _read(item_dir / item["assets"]["classes"]["href"])
    scores = _expected_scores(scene["bands"])
    assert classes.shape == (1, HEIGHT, WIDTH)
    _assert_classes(classes[0], scores, [1, 2, 5], scene["valid"])
    assert profile["nodata"] == 255 and profile["dtype"] == "uint8"

    probabilities, _ = _read(item_dir / item["assets"]["scores"]["href"])
    valid = scene["valid"]
    np.testing.assert_allclose(probabilities[:, valid], scores[:, valid], rtol=1e-4, atol=1e-4)
    assert np.isnan(probabilities[:, ~valid]).all()


def test_fixed_batch_size_model(scene, tmp_path):
    """A graph exported with batch 4: the 9 tiles go as 4 + 4 + 1 padded to 4, results unchanged."""
    conv_model(tmp_path / "seg.onnx", WEIGHTS, BIAS, size=64, batch=4)
    scaling = [{"type": "z-score", "mean": m, "stddev": s} for m, s in zip(MEANS, STDS)]
    inputs = [mlm_input("input", ["B04", "B03", "B02", "B08"], 4, 64, scaling=scaling)]
    outputs = [mlm_output("landcover", ["semantic-segmentation"], [4, 3, 64, 64],
                          ["batch", "class", "height", "width"], CLASSES)]
    model = mlm_item(tmp_path / "model.json", tmp_path / "seg.onnx", inputs, outputs)
    out = tmp_path / "out"
    predict(str(model), str(scene["item"]), out, PredictOptions(batch_size=2, resampling="nearest"))
    item, item_dir = _result(out)
    classes, _ = _read(item_dir / item["assets"]["classes"]["href"])
    _assert_classes(classes[0], _expected_scores(scene["bands"]), [1, 2, 5], scene["valid"])


def test_output_catalog_metadata_and_validation(scene, tmp_path):
    model = _seg_model(tmp_path, size=None)
    out = tmp_path / "out"
    predict(str(model), str(scene["item"]), out, PredictOptions(tile_size=64, resampling="nearest"))
    item, item_dir = _result(out)
    props = item["properties"]
    assert props["processing:level"] == "L4"
    # local inputs beside the output: relative hrefs, which survive moving the folders together
    assert props["processing:expression"] == {"format": "stac-mlm", "expression": "../../model.json"}
    assert props["datetime"] == "2024-06-01T10:30:00Z"
    assert props["proj:code"] == "EPSG:32631" and props["proj:shape"] == [HEIGHT, WIDTH]
    derived = [link for link in item["links"] if link["rel"] == "derived_from"]
    assert {(item_dir / link["href"]).resolve() for link in derived} == {scene["item"].resolve(), model.resolve()}
    assert any(link.get("mlm:name") == "Test model" for link in derived)
    asset = item["assets"]["classes"]
    assert asset["href"].startswith("./") and "data" in asset["roles"]
    assert [c["value"] for c in asset["classification:classes"]] == [1, 2, 5, 255]
    assert asset["classification:classes"][1]["color_hint"] == "00FF00"
    assert item["assets"]["quicklook"]["roles"] == ["overview", "thumbnail"]
    with rasterio.open(item_dir / asset["href"]) as cog:
        assert cog.colormap(1)[2][:3] == (0, 255, 0)
    assert validate_source(out / "catalog.json") == []


def test_scene_classification_one_class_per_tile(scene, tmp_path):
    weights = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    model = scene_model(tmp_path / "scene.onnx", weights, size=64)
    inputs = [mlm_input("input", ["B04", "B03", "B02", "B08"], 4, 64)]
    outputs = [mlm_output("scene", ["scene-classification"], [-1, 3], ["batch", "class"], CLASSES)]
    item = mlm_item(tmp_path / "model.json", model, inputs, outputs)
    out = tmp_path / "out"
    predict(str(item), str(scene["item"]), out, PredictOptions(overlap=8, resampling="nearest"))
    result, item_dir = _result(out)
    classes, profile = _read(item_dir / result["assets"]["classes"]["href"])
    rows, cols = [0, 64, HEIGHT - 64], [0, 64, WIDTH - 64]
    assert classes.shape == (1, len(rows), len(cols))
    assert profile["transform"].a == 640.0
    for i, y in enumerate(rows):
        for j, x in enumerate(cols):
            means = scene["bands"][:3, y:y + 64, x:x + 64].mean(axis=(1, 2))
            assert classes[0, i, j] == [1, 2, 5][int(np.argmax(means))], (i, j)


def test_regression_float_output(scene, tmp_path):
    model = conv_model(tmp_path / "reg.onnx", np.array([[0.5, 0.25, 0, -1.0]]), np.array([3.0]))
    inputs = [mlm_input("input", ["B04", "B03", "B02", "B08"], 4)]
    outputs = [mlm_output("height", ["regression"], [-1, 1, -1, -1], ["batch", "channel", "height", "width"])]
    item = mlm_item(tmp_path / "model.json", model, inputs, outputs)
    out = tmp_path / "out"
    predict(str(item), str(scene["item"]), out, PredictOptions(tile_size=48, overlap=8, resampling="nearest"))
    result, item_dir = _result(out)
    values, profile = _read(item_dir / result["assets"]["height"]["href"])
    bands = scene["bands"]
    expected = 0.5 * bands[0] + 0.25 * bands[1] - bands[3] + 3.0
    valid = scene["valid"]
    assert profile["dtype"] == "float32"
    np.testing.assert_allclose(values[0][valid], expected[valid], rtol=1e-5)
    assert np.isnan(values[0][~valid]).all()
    assert result["assets"]["height"]["raster:bands"][0]["nodata"] == "nan"


def test_two_inputs_with_gdal_calc_ndvi(scene, tmp_path):
    weights = np.array([[0.01, 0, 0, 1.0], [0, 0.01, 0, -1.0]])
    model = two_input_model(tmp_path / "two.onnx", weights)
    inputs = [mlm_input("rgb", ["B04", "B03", "B02"], 3),
              mlm_input("ndvi", ["B04", "B08"], 1, pre={"format": "gdal-calc", "expression": "(B - A) / (B + A)"})]
    outputs = [mlm_output("veg", ["semantic-segmentation"], [-1, 2, -1, -1], ["batch", "class", "height", "width"],
                          [{"value": 0, "name": "other"}, {"value": 1, "name": "vegetation"}])]
    item = mlm_item(tmp_path / "model.json", model, inputs, outputs)
    out = tmp_path / "out"
    predict(str(item), str(scene["item"]), out, PredictOptions(tile_size=64, resampling="nearest"))
    result, item_dir = _result(out)
    classes, _ = _read(item_dir / result["assets"]["classes"]["href"])
    b = scene["bands"]
    ndvi = (b[3] - b[0]) / (b[3] + b[0])
    scores = np.stack([0.01 * b[0] + ndvi, 0.01 * b[1] - ndvi])
    _assert_classes(classes[0], scores, [0, 1], scene["valid"])


def test_pixels_a_coarser_band_does_not_cover_are_nodata(scene, tmp_path):
    """A 20 m band without nodata covering only the top half: the bottom half of the result is nodata."""
    import shutil

    shutil.copy(scene["root"] / "visual.tif", tmp_path / "visual.tif")
    nir = np.random.default_rng(5).integers(1, 400, size=(HEIGHT // 4, WIDTH // 2)).astype(np.uint16)
    write_raster(tmp_path / "half.tif", nir, resolution=20.0)
    imagery = imagery_item(tmp_path / "item.json", {"visual": ("./visual.tif", ["B04", "B03", "B02"]),
                                                    "nir": ("./half.tif", ["B08"])})
    out = tmp_path / "out"
    predict(str(_seg_model(tmp_path)), str(imagery), out, PredictOptions(tile_size=64, resampling="nearest"))
    item, item_dir = _result(out)
    classes, _ = _read(item_dir / item["assets"]["classes"]["href"])
    covered = HEIGHT // 4 * 2
    assert (classes[0, covered:] == 255).all()
    assert (classes[0, :covered][scene["valid"][:covered]] != 255).all()


def test_band_less_input_reads_the_asset_named_like_it(scene, tmp_path):
    """As the MLM multi-input example's DEM: an input with `bands: []` takes the asset of the same name."""
    import shutil

    rng = np.random.default_rng(3)
    dem = rng.normal(100, 50, size=(HEIGHT, WIDTH)).astype(np.float32)
    write_raster(tmp_path / "dem.tif", dem)
    for name in ("visual.tif", "b08.tif"):
        shutil.copy(scene["root"] / name, tmp_path / name)
    imagery = imagery_item(tmp_path / "item.json", {"visual": ("./visual.tif", ["B04", "B03", "B02"]),
                                                    "DEM": ("./dem.tif", [])})
    model = two_input_model(tmp_path / "two.onnx", np.array([[0, 0, 0, 1.0]]), second="DEM")
    inputs = [mlm_input("rgb", ["B04", "B03", "B02"], 3), mlm_input("DEM", [], 1)]
    outputs = [mlm_output("elevation", ["regression"], [-1, 1, -1, -1], ["batch", "channel", "height", "width"])]
    mlm = mlm_item(tmp_path / "model.json", model, inputs, outputs)
    out = tmp_path / "out"
    predict(str(mlm), str(imagery), out, PredictOptions(tile_size=64))
    result, item_dir = _result(out)
    values, _ = _read(item_dir / result["assets"]["elevation"]["href"])
    valid = (scene["bands"][:3] != 0).all(axis=0)
    np.testing.assert_allclose(values[0][valid], dem[valid], rtol=1e-6)


def test_band_expression_and_cli(scene, tmp_path):
    """A derived NDVI band (rio-calc, as in the MLM example) next to real bands, run through the CLI."""
    model = conv_model(tmp_path / "m.onnx", np.array([[0, 0, 0, 1.0], [0, 0, 0, -1.0]]), np.zeros(2))
    bands = ["B04", "B03", "B02", {"name": "NDVI", "format": "rio-calc", "expression": "(B08 - B04) / (B08 + B04)"}]
    inputs = [mlm_input("input", bands, 4)]
    outputs = [mlm_output("veg", ["semantic-segmentation"], [-1, 2, -1, -1], ["batch", "class", "height", "width"])]
    item = mlm_item(tmp_path / "model.json", model, inputs, outputs)
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["predict", "-m", str(item), "-i", str(scene["item"]), "-o", str(out),
                                    "--tile-size", "64", "--resampling", "nearest"])
    assert run.exit_code == 0, run.output
    result, item_dir = _result(out)
    classes, _ = _read(item_dir / result["assets"]["classes"]["href"])
    b = scene["bands"]
    ndvi = (b[3] - b[0]) / (b[3] + b[0])
    _assert_classes(classes[0], np.stack([ndvi, -ndvi]), [0, 1], scene["valid"])


def test_catalog_of_several_items(scene, tmp_path):
    import pystac

    catalog = pystac.Catalog("stage-in", "staged imagery")
    for name in ("a", "b"):
        item = pystac.Item.from_file(str(scene["item"]))
        item.id = name
        for asset in item.assets.values():
            asset.href = str(scene["root"] / Path(asset.href).name)
        catalog.add_item(item)
    catalog.normalize_and_save(str(tmp_path / "staged"), pystac.CatalogType.SELF_CONTAINED)
    out = tmp_path / "out"
    predict(str(_seg_model(tmp_path)), str(tmp_path / "staged"), out, PredictOptions(tile_size=64))
    ids = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert ids == ["a-test-model", "b-test-model"]
    assert validate_source(out / "catalog.json") == []


def test_band_less_input_over_a_catalog_of_several_items(scene, tmp_path):
    """Each Item's DEM asset feeds the band-less input: nothing the first Item resolved sticks to the next one."""
    import shutil

    import pystac

    catalog = pystac.Catalog("stage-in", "staged imagery")
    dems = {}
    for seed, name in enumerate(("a", "b")):
        folder = tmp_path / name
        folder.mkdir()
        dems[name] = np.random.default_rng(seed).normal(100, 50, size=(HEIGHT, WIDTH)).astype(np.float32)
        write_raster(folder / "dem.tif", dems[name])
        shutil.copy(scene["root"] / "visual.tif", folder / "visual.tif")
        imagery = imagery_item(folder / "item.json", {"visual": ("./visual.tif", ["B04", "B03", "B02"]),
                                                      "DEM": ("./dem.tif", [])})
        item = pystac.Item.from_file(str(imagery))
        item.id = name
        for asset in item.assets.values():
            asset.href = str(folder / Path(asset.href).name)
        catalog.add_item(item)
    catalog.normalize_and_save(str(tmp_path / "staged"), pystac.CatalogType.SELF_CONTAINED)
    model = two_input_model(tmp_path / "two.onnx", np.array([[0, 0, 0, 1.0]]), second="DEM")
    inputs = [mlm_input("rgb", ["B04", "B03", "B02"], 3), mlm_input("DEM", [], 1)]
    outputs = [mlm_output("elevation", ["regression"], [-1, 1, -1, -1], ["batch", "channel", "height", "width"])]
    mlm = mlm_item(tmp_path / "model.json", model, inputs, outputs)
    out = tmp_path / "out"
    predict(str(mlm), str(tmp_path / "staged"), out, PredictOptions(tile_size=64))
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["a-test-model", "b-test-model"]
    valid = (scene["bands"][:3] != 0).all(axis=0)
    for name, dem in dems.items():
        result = json.loads((out / f"{name}-test-model" / f"{name}-test-model.json").read_text())
        values, _ = _read(out / f"{name}-test-model" / result["assets"]["elevation"]["href"])
        np.testing.assert_allclose(values[0][valid], dem[valid], rtol=1e-6)
    assert validate_source(out / "catalog.json") == []


def test_model_and_imagery_over_http(scene, tmp_path):
    """Item, assets and the ONNX file fetched over http(s), as from a STAC API or object store."""
    import shutil

    for name in ("item.json", "visual.tif", "b08.tif"):
        shutil.copy(scene["root"] / name, tmp_path / name)
    model = _seg_model(tmp_path)
    out = tmp_path / "out"
    with static_server(tmp_path) as base:
        predict(f"{base}/{model.name}", f"{base}/item.json", out, PredictOptions(tile_size=64, resampling="nearest"))
    item, item_dir = _result(out)
    classes, _ = _read(item_dir / item["assets"]["classes"]["href"])
    _assert_classes(classes[0], _expected_scores(scene["bands"]), [1, 2, 5], scene["valid"])
    assert item["properties"]["processing:expression"]["expression"] == f"{base}/{model.name}"


def _multi_io_model(path: Path) -> Path:
    """RGB (uint16) + NDVI + DEM in; both heads = mean(NDVI input) > 0 per tile; RGB and DEM weighted by 0."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Cast", ["RGB"], ["rgb_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["rgb_f"], ["rgb_m"], keepdims=0, axes=[1, 2, 3]),
        helper.make_node("ReduceMean", ["DEM"], ["dem_m"], keepdims=0, axes=[1, 2, 3]),
        helper.make_node("ReduceMean", ["NDVI"], ["ndvi_m"], keepdims=0, axes=[1, 2, 3]),
        helper.make_node("Add", ["rgb_m", "dem_m"], ["other"]),
        helper.make_node("Mul", ["other", "zero"], ["nothing"]),
        helper.make_node("Add", ["ndvi_m", "nothing"], ["score"]),
        helper.make_node("Greater", ["score", "zero"], ["positive"]),
        helper.make_node("Cast", ["positive"], ["flag"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["flag", "axis"], ["vegetation"]),
        helper.make_node("Identity", ["vegetation"], ["mask"]),
    ]
    graph = helper.make_graph(
        nodes, "multi-io",
        [helper.make_tensor_value_info("RGB", TensorProto.UINT16, ["N", 3, 64, 64]),
         helper.make_tensor_value_info("NDVI", TensorProto.FLOAT, ["N", 1, 64, 64]),
         helper.make_tensor_value_info("DEM", TensorProto.FLOAT, ["N", 1, 64, 64])],
        [helper.make_tensor_value_info("vegetation", TensorProto.FLOAT, ["N", 1]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1])],
        [numpy_helper.from_array(np.array(0, np.float32), "zero"), numpy_helper.from_array(np.array([1]), "axis")],
    )
    import onnx

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_official_multi_io_example(mlm_examples, tmp_path):
    """The MLM example item_multi_io.json as published (RGB + gdal-calc NDVI + band-less DEM in, two heads
    out, one with post_processing_function logical_not(A)), only its model asset pointed at an ONNX file."""
    import json as jsonlib

    example = jsonlib.loads((mlm_examples / "item_multi_io.json").read_text())
    _multi_io_model(tmp_path / "multi.onnx")
    example["assets"]["weights"].update({"href": "./multi.onnx", "mlm:artifact_type": "onnx",
                                         "type": "application/octet-stream; framework=onnx"})
    example["links"] = []
    (tmp_path / "model.json").write_text(jsonlib.dumps(example))

    rng = np.random.default_rng(11)
    red, nir = rng.integers(100, 3000, size=(2, 128, 192)).astype(np.uint16)
    nir[:64, :64] = red[:64, :64] // 2  # one tile clearly "vegetation" under the example's (A - B) / (A + B)
    write_raster(tmp_path / "red.tif", red)
    write_raster(tmp_path / "green.tif", red)
    write_raster(tmp_path / "blue.tif", red)
    write_raster(tmp_path / "nir.tif", nir)
    write_raster(tmp_path / "dem.tif", rng.normal(300, 20, size=(128, 192)).astype(np.float32))
    imagery = imagery_item(tmp_path / "item.json", {
        "red": ("./red.tif", ["B04"]), "green": ("./green.tif", ["B03"]), "blue": ("./blue.tif", ["B02"]),
        "nir": ("./nir.tif", ["B08"]), "DEM": ("./dem.tif", [])})
    out = tmp_path / "out"
    predict(str(tmp_path / "model.json"), str(imagery), out, PredictOptions())
    result, item_dir = _result(out)
    vegetation, _ = _read(item_dir / result["assets"]["vegetation-segmentation-classes"]["href"])
    inverse, _ = _read(item_dir / result["assets"]["inverse-mask-classes"]["href"])
    r, n = red.astype(np.float64), nir.astype(np.float64)
    ndvi = (r - n) / (r + n)
    expected = np.array([[ndvi[y:y + 64, x:x + 64].mean() > 0 for x in (0, 64, 128)] for y in (0, 64)])
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(vegetation[0], expected.astype(np.uint8))
    np.testing.assert_array_equal(inverse[0], (~expected).astype(np.uint8))
    assert validate_source(out / "catalog.json") == []
