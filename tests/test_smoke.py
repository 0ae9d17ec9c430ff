"""`mlmkit validate MODEL --against IMAGERY`: the model run by predict on a few tiles, what came out, and warnings
where it looks degenerate; a healthy and a degenerate case of the same model, told apart only by value_scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from predict_helpers import imagery_item, write_raster
from third_party_models import DETECTOR, PP_OCR_SCALING, rapidocr_model, text_image
from mlmkit.cli import main
from mlmkit.inference.smoke import smoke_run

RGB = ["red", "green", "blue"]


def _sigmoid_model(path: Path) -> Path:
    """score = sigmoid(10 × (red - 0.5)) per pixel: one probability channel, 0.5 where red is 0.5."""
    nodes = [helper.make_node("Conv", ["image", "weight", "bias"], ["logits"]),
             helper.make_node("Sigmoid", ["logits"], ["score"])]
    graph = helper.make_graph(
        nodes, "sigmoid", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1, "h", "w"])],
        initializer=[numpy_helper.from_array(np.array([10, 0, 0], np.float32).reshape(1, 3, 1, 1), "weight"),
                     numpy_helper.from_array(np.array([-5], np.float32), "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def gradient(tmp_path_factory) -> Path:
    """512 × 512 8-bit RGB whose red rises from 1 to 255 across the image: four tiles of 256 px."""
    root = tmp_path_factory.mktemp("gradient")
    red = _red().astype(np.uint8)
    write_raster(root / "image.tif", np.stack([red, red // 2, red // 3]))
    return imagery_item(root / "scene.json", {"image": ("./image.tif", RGB)})


def _described(root: Path, scale: float) -> Path:
    spec = {"name": "Red detector", "architecture": "sigmoid", "tasks": ["semantic-segmentation"],
            "bands": [{"name": band, "data_type": "uint8"} for band in RGB],
            "value_scaling": [{"type": "scale", "value": scale}],
            "classes": [{"value": 0, "name": "dark"}, {"value": 1, "name": "red"}]}
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    run = CliRunner().invoke(main, ["describe", str(_sigmoid_model(root / "model.onnx")), "-o", str(root / "model"),
                                    "--spec", str(root / "spec.yaml")])
    assert run.exit_code == 0, run.output
    return root / "model" / "catalog.json"


def _against(model: Path, imagery: Path, *options: str) -> tuple[int, list[str]]:
    run = CliRunner().invoke(main, ["validate", str(model), "--against", str(imagery), "--tiles", "4", "-q",
                                    *options])
    return run.exit_code, run.output.splitlines()


def _red() -> np.ndarray:
    return np.tile(np.linspace(1, 255, 512).round(), (512, 1))


def _expected(scale: float) -> tuple[dict[int, int], np.ndarray]:
    """The class histogram and scores the model gives, computed here with numpy."""
    scores = 1 / (1 + np.exp(-(10 * _red() / scale - 5)))
    values, counts = np.unique(scores > 0.5, return_counts=True)
    return {int(value): int(count) for value, count in zip(values, counts)}, scores


def test_a_healthy_model_reports_what_came_out_and_no_warning(tmp_path: Path, gradient: Path) -> None:
    model = _described(tmp_path, 255)
    status, lines = _against(model, gradient)
    assert status == 0, lines
    (line,) = [line for line in lines if ": smoke: " in line]
    histogram, scores = _expected(255)
    assert set(histogram) == {0, 1}
    assert line.endswith(f"smoke: classes (binary): 4 tiles; class histogram {{0 dark: {histogram[0]}, "
                         f"1 red: {histogram[1]}}} px; scores {scores.min():.4g} to {scores.max():.4g}; NaN 0")
    assert not [line for line in lines if "warning" in line]


def test_an_inverted_scaling_gives_a_degenerate_output_that_is_named(tmp_path: Path, gradient: Path) -> None:
    """`value: 1/255` multiplies by 255: every score saturates; lint says so from the Item, the smoke run from
    what the model gave."""
    model = _described(tmp_path, 1 / 255)
    status, lines = _against(model, gradient)
    assert status == 0, lines
    assert any("value_scaling[0].value: warning: value_scaling scale 0.00392157 divides" in line for line in lines)
    smoke = [line.split(": smoke: ", 1)[1] for line in lines if ": smoke: " in line]
    assert smoke[0] == f"classes (binary): 4 tiles; class histogram {{1 red: {512 * 512}}} px; scores 1 to 1; NaN 0"
    assert smoke[1:] == [
        "warning: classes: one class, 1 (red), everywhere on 4 tiles; expected several on varied imagery (check "
        "value_scaling, the band order and input_shape)",
        "warning: classes: every score is >= 0.5 on every tile (lowest 1); expected low scores where there is "
        "nothing (check value_scaling: MLM's scale divides)"]


def test_nan_output_is_named(tmp_path: Path, gradient: Path) -> None:
    """log(red - 128): NaN wherever red is below 128."""
    nodes = [helper.make_node("Slice", ["image", "start", "end", "axis"], ["red"]),
             helper.make_node("Sub", ["red", "half"], ["shifted"]),
             helper.make_node("Log", ["shifted"], ["score"])]
    graph = helper.make_graph(
        nodes, "log", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1, "h", "w"])],
        initializer=[numpy_helper.from_array(np.array([0], np.int64), "start"),
                     numpy_helper.from_array(np.array([1], np.int64), "end"),
                     numpy_helper.from_array(np.array([1], np.int64), "axis"),
                     numpy_helper.from_array(np.array(128, np.float32), "half")])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8
    onnx.save(onnx_model, str(tmp_path / "log.onnx"))
    run = CliRunner().invoke(main, ["describe", str(tmp_path / "log.onnx"), "-o", str(tmp_path / "model"), "--name",
                                    "Log red", "--architecture", "log", "--task", "regression",
                                    *[arg for band in RGB for arg in ("--band", band)]])
    assert run.exit_code == 0, run.output
    report = smoke_run(str(tmp_path / "model" / "catalog.json"), str(gradient), tiles=4)
    (output,) = report.outputs
    assert output.kind == "values" and output.nan == int((_red() < 128).sum()) > 0
    assert report.warnings == [f"score: the model gave {output.nan} NaN values; expected numbers (check "
                               "value_scaling and the input's data type)"]


def test_real_text_detector_on_text_is_healthy_and_on_a_blank_page_finds_nothing(tmp_path: Path) -> None:
    lines = ["The quick brown fox", "jumps over the lazy", "dog 12345 HELLO", "mlmkit reads metadata"] * 6
    write_raster(tmp_path / "text.tif", text_image(512, 512, lines))
    scene = imagery_item(tmp_path / "text.json", {"image": ("./text.tif", RGB)})
    spec = {"name": "PP-OCRv4 text detector", "architecture": "DBNet", "tasks": ["semantic-segmentation"],
            "bands": [{"name": band, "data_type": "uint8"} for band in RGB], "value_scaling": PP_OCR_SCALING,
            "post_processing": "A > 0.3", "classes": [{"value": 0, "name": "background"}, {"value": 1, "name": "text"}]}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    run = CliRunner().invoke(main, ["describe", str(rapidocr_model(DETECTOR)), "-o", str(tmp_path / "model"),
                                    "--spec", str(tmp_path / "spec.yaml")])
    assert run.exit_code == 0, run.output
    report = smoke_run(str(tmp_path / "model" / "catalog.json"), str(scene), tiles=4)
    (output,) = report.outputs
    assert output.tiles == 4 and set(output.histogram) == {0, 1} and report.warnings == []
    assert 0 <= output.low < 0.3 < output.high <= 1
