"""predict refuses bad models, imagery and arguments with one clear line, and leaves no output behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from mlmkit.cli import main
from mlmkit.errors import InvalidInput
from mlmkit.inference import PredictOptions, predict
from mlmkit.runtimes.onnx import OnnxRunner
from mlmkit.inference.outputs.raster import PixelSink
from predict_helpers import conv_model, imagery_item, mlm_input, mlm_item, mlm_output, scene_model, write_raster

SEG = ["semantic-segmentation"]
SEG_SHAPE, SEG_DIMS = [-1, 2, -1, -1], ["batch", "class", "height", "width"]


@pytest.fixture()
def scene(tmp_path) -> Path:
    data = np.arange(3 * 80 * 90, dtype=np.uint16).reshape(3, 80, 90) % 500 + 1
    write_raster(tmp_path / "img.tif", data, nodata=0)
    return imagery_item(tmp_path / "item.json", {"img": ("./img.tif", ["B04", "B03", "B02"])})


def _model(tmp_path: Path, bands=("B04", "B03", "B02"), channels: int = 3, **kwargs) -> Path:
    model = conv_model(tmp_path / "m.onnx", np.ones((2, channels)), np.zeros(2))
    inputs = [mlm_input("input", list(bands), channels, pre=kwargs.pop("pre", None))]
    outputs = [mlm_output("out", SEG, SEG_SHAPE, SEG_DIMS)]
    return mlm_item(tmp_path / "model.json", model, inputs, outputs, **kwargs)


def _fails(model: Path, item: Path, out: Path, match: str, **options) -> str:
    with pytest.raises(InvalidInput, match=match) as info:
        predict(str(model), str(item), out, PredictOptions(**options))
    assert not out.exists() or not (out / "catalog.json").exists()
    assert not list(out.parent.glob(f".{out.name}.*"))  # no temporary directory left behind
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_band_lists_what_the_item_has(tmp_path, scene):
    model = _model(tmp_path, bands=("B04", "B03", "B11"))
    message = _fails(model, scene, tmp_path / "out", "B11")
    assert "B04" in message and "B02" in message


def test_band_count_mismatch(tmp_path, scene):
    model = conv_model(tmp_path / "m.onnx", np.ones((2, 4)), np.zeros(2))
    item = mlm_item(tmp_path / "model.json", model, [mlm_input("input", ["B04", "B03", "B02"], 4)],
                    [mlm_output("out", SEG, SEG_SHAPE, SEG_DIMS)])
    _fails(item, scene, tmp_path / "out", "provides 3 channel.*takes 4")


def test_unreadable_asset(tmp_path):
    (tmp_path / "broken.tif").write_text("not a raster")
    item = imagery_item(tmp_path / "item.json", {"img": ("./broken.tif", ["B04", "B03", "B02"])})
    _fails(_model(tmp_path), item, tmp_path / "out", "cannot read imagery asset")


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_no_georeference(tmp_path):
    write_raster(tmp_path / "plain.tif", np.ones((3, 70, 70), np.uint16), crs=None)
    item = imagery_item(tmp_path / "item.json", {"img": ("./plain.tif", ["B04", "B03", "B02"])})
    _fails(_model(tmp_path), item, tmp_path / "out", "no georeference")


def test_band_in_a_wrong_crs_does_not_overlap(tmp_path, scene):
    write_raster(tmp_path / "nir.tif", np.ones((40, 45), np.uint16), resolution=20.0, crs="EPSG:32632")
    item = imagery_item(tmp_path / "item2.json", {"img": ("./img.tif", ["B04", "B03", "B02"]),
                                                  "nir": ("./nir.tif", ["B08"])})
    _fails(_model(tmp_path, bands=("B04", "B03", "B08")), item, tmp_path / "out", "does not overlap")


def test_checksum_mismatch_refused_before_any_tile(tmp_path, scene):
    wrong = "1220" + "00" * 32
    _fails(_model(tmp_path, checksum=wrong), scene, tmp_path / "out", "checksum mismatch")


def test_fixed_tile_size_cannot_be_overridden(tmp_path, scene):
    model = scene_model(tmp_path / "s.onnx", np.ones((2, 3)), size=64)
    mlm = mlm_item(tmp_path / "model.json", model, [mlm_input("input", ["B04", "B03", "B02"], 3, 64)],
                   [mlm_output("scene", ["scene-classification"], [-1, 2], ["batch", "class"])])
    _fails(mlm, scene, tmp_path / "out", "fixed height of 64", tile_size=32)


def test_all_nodata_image_gives_all_nodata_result_without_running_the_model(tmp_path, monkeypatch):
    write_raster(tmp_path / "empty.tif", np.zeros((3, 70, 70), np.uint16), nodata=0)
    item = imagery_item(tmp_path / "item.json", {"img": ("./empty.tif", ["B04", "B03", "B02"])})
    calls = []
    original = OnnxRunner.run
    monkeypatch.setattr(OnnxRunner, "run", lambda self, feeds: calls.append(feeds["input"].shape) or original(self, feeds))
    out = tmp_path / "out"
    predict(str(_model(tmp_path)), str(item), out, PredictOptions(tile_size=32))
    assert calls.count((1, 3, 32, 32)) == 1  # the dry run that sizes the outputs; every tile was skipped
    assert all(shape[0] == 1 for shape in calls)  # the rest are one-tile size probes, no batch of tiles
    with rasterio.open(next(out.glob("*/classes.tif"))) as result:
        assert (result.read(1) == result.nodata).all()


def test_image_smaller_than_default_tile_with_dynamic_model(tmp_path):
    write_raster(tmp_path / "small.tif", np.ones((3, 40, 50), np.uint16))
    item = imagery_item(tmp_path / "item.json", {"img": ("./small.tif", ["B04", "B03", "B02"])})
    out = tmp_path / "out"
    predict(str(_model(tmp_path)), str(item), out, PredictOptions())
    with rasterio.open(next(out.glob("*/classes.tif"))) as result:
        assert result.shape == (40, 50) and (result.read(1) != result.nodata).all()


def test_interrupted_run_leaves_no_catalog(tmp_path, scene, monkeypatch):
    def interrupt(self, row):
        raise KeyboardInterrupt

    monkeypatch.setattr(PixelSink, "end_row", interrupt)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        predict(str(_model(tmp_path)), str(scene), out, PredictOptions(tile_size=32))
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_python_expression_needs_the_allow_flag(tmp_path, scene):
    pre = {"format": "python", "expression": "numpy:negative"}
    model = _model(tmp_path, pre=pre)
    message = _fails(model, scene, tmp_path / "out", "refusing to run code")
    assert "the allow_python_expressions argument" in message
    predict(str(model), str(scene), tmp_path / "ok", PredictOptions(tile_size=32, allow_python=True))
    assert (tmp_path / "ok" / "catalog.json").exists()


@pytest.mark.parametrize("allow_python", [False, True])
def test_python_band_expression_is_not_supported_with_or_without_the_flag(tmp_path, scene, allow_python):
    """Never "the allow_python_expressions argument" for something the flag would not make work."""
    ndvi = {"name": "NDVI", "format": "python", "expression": "pkg.mod:ndvi"}
    model = _model(tmp_path, bands=("B04", "B03", ndvi))
    message = _fails(model, scene, tmp_path / "out", "python band expressions are not supported",
                     allow_python=allow_python)
    assert "allow_python_expressions" not in message


@pytest.mark.parametrize("allow_python", [False, True])
def test_python_post_processing_is_not_supported_with_or_without_the_flag(tmp_path, scene, allow_python):
    model = conv_model(tmp_path / "m.onnx", np.ones((2, 3)), np.zeros(2))
    post = {"format": "python", "expression": "pkg.mod:post"}
    item = mlm_item(tmp_path / "model.json", model, [mlm_input("input", ["B04", "B03", "B02"], 3)],
                    [mlm_output("out", SEG, SEG_SHAPE, SEG_DIMS, post=post)])
    message = _fails(item, scene, tmp_path / "out", "python post-processing is not supported",
                     tile_size=32, allow_python=allow_python)
    assert "allow_python_expressions" not in message


def test_unsafe_expression_is_refused(tmp_path, scene):
    pre = {"format": "gdal-calc", "expression": "__import__('os').system('true')"}
    _fails(_model(tmp_path, pre=pre), scene, tmp_path / "out", "not allowed")


def test_output_dir_not_writable(tmp_path, scene):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="cannot write into"):
        predict(str(_model(tmp_path)), str(scene), tmp_path / "file" / "out", PredictOptions(tile_size=32))


def test_non_onnx_artifact_names_what_is_supported(tmp_path, scene):
    model = _model(tmp_path)
    text = model.read_text().replace('"onnx"', '"tf.keras.Model.save"').replace("framework=onnx", "framework=keras")
    text = text.replace("./m.onnx", "./m.keras")
    model.write_text(text)
    _fails(model, scene, tmp_path / "out", "runs ONNX")


def test_cli_error_is_one_line_and_exit_1(tmp_path, scene):
    model = _model(tmp_path, bands=("B04", "B03", "B99"))
    run = CliRunner().invoke(main, ["predict", "-m", str(model), "-i", str(scene), "-o", str(tmp_path / "out")])
    assert run.exit_code == 1
    assert run.output.startswith("Error: ") and run.output.count("\n") == 1
