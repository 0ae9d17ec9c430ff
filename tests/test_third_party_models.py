"""Other people's models, described from a spec as a user would: results equal the model run directly with
onnxruntime. Real PP-OCR models from a PyPI wheel (a DBNet text detector with one probability channel, a
text-direction classifier with a 48 × 192 native size) and a YOLO-style single-tensor detector built here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import rasterio
import yaml
from click.testing import CliRunner
from onnx import numpy_helper

from mlm_fixtures import item_path
from predict_helpers import imagery_item, write_raster, yolo_model
from test_predict_detection import BANDS as YOLO_BANDS, _reference, _result, _to_crs, _written, _yolo_tile, scene  # noqa: F401
from third_party_models import DETECTOR, DIRECTION, PP_OCR_SCALING, pp_ocr_input, rapidocr_model, text_image
from mlmkit.cli import main

RGB = ["red", "green", "blue"]
LINES = ["The quick brown fox", "jumps over the lazy", "dog 12345 HELLO", "mlmkit reads metadata"] * 3


def _rgb_scene(root: Path, image: np.ndarray) -> Path:
    write_raster(root / "image.tif", image)
    return imagery_item(root / "scene.json", {"image": ("./image.tif", RGB)})


def _describe(root: Path, model: Path, spec: dict, *options: str) -> Path:
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    run = CliRunner().invoke(main, ["describe", str(model), "-o", str(root / "model"), "--spec",
                                    str(root / "spec.yaml"), *options])
    assert run.exit_code == 0, run.output
    assert "Warning" not in run.output, run.output
    return root / "model" / "catalog.json"


def _predict(model: Path, scene_item: Path, out: Path, *options: str) -> tuple[dict, Path]:
    run = CliRunner().invoke(main, ["predict", "-m", str(model), "-i", str(scene_item), "-o", str(out), *options])
    assert run.exit_code == 0, run.output
    return _result(out)


def _read(item_dir: Path, asset: dict) -> np.ndarray:
    with rasterio.open(item_dir / asset["href"]) as dataset:
        return dataset.read()


def _ocr_bands() -> list[dict]:
    return [{"name": band, "common_name": band, "data_type": "uint8"} for band in RGB]


def test_pp_ocr_text_detector_with_its_threshold_equals_the_model_run_directly(tmp_path: Path) -> None:
    """DBNet gives one probability channel that PP-OCR thresholds at 0.3: post_processing says so, the class map
    equals (p > 0.3) pixel for pixel and --probabilities keeps p itself, not the thresholded values."""
    model = rapidocr_model(DETECTOR)
    image = text_image(256, 256, LINES)
    spec = {"name": "PP-OCRv4 text detector", "architecture": "DBNet", "tasks": ["semantic-segmentation"],
            "bands": _ocr_bands(), "value_scaling": PP_OCR_SCALING, "post_processing": "A > 0.3",
            "classes": [{"value": 0, "name": "background"}, {"value": 1, "name": "text"}]}
    catalog = _describe(tmp_path, model, spec)
    item = json.loads(item_path(catalog).read_text())
    props = item["properties"]
    # Paddle2ONNX keeps every weight in Constant nodes: counted, independently of mlmkit's reader
    constants = [numpy_helper.to_array(attr.t) for node in onnx.load(str(model)).graph.node
                 if node.op_type == "Constant" for attr in node.attribute if attr.name == "value"]
    assert props["mlm:total_parameters"] == sum(array.size for array in constants) > 1_000_000
    assert props["mlm:memory_size"] == sum(array.nbytes for array in constants)
    assert props["mlm:output"][0]["post_processing_function"] == {"format": "gdal-calc", "expression": "A > 0.3"}
    run = CliRunner().invoke(main, ["validate", str(catalog)])
    assert run.exit_code == 0 and "warning" not in run.output, run.output

    result, item_dir = _predict(catalog, _rgb_scene(tmp_path, image), tmp_path / "out", "--probabilities")
    direct = ort.InferenceSession(str(model)).run(None, {"x": pp_ocr_input(image)})[0][0]  # (1, 256, 256)
    classes = _read(item_dir, result["assets"]["classes"])[0]
    assert np.array_equal(classes, (direct[0] > 0.3).astype(np.uint8))
    assert 0.02 < classes.mean() < 0.5  # text found, not everywhere
    scores = _read(item_dir, result["assets"]["scores"])[0]
    np.testing.assert_allclose(scores, direct[0], atol=1e-5)


def test_pp_ocr_direction_classifier_runs_at_its_native_size(tmp_path: Path) -> None:
    """The classifier's ONNX input is dynamic, but it was made for 48 × 192 crops: input_shape fixes that (checked
    by one run) and each 48 × 192 tile's class equals the model's answer on that crop."""
    model = rapidocr_model(DIRECTION)
    image = np.concatenate([text_image(48, 192, ["Hello world 123"]), text_image(48, 192, ["Hello world 123"], True),
                            text_image(48, 192, ["mlmkit text"], True)], axis=2)  # (3, 48, 576): three tiles
    spec = {"name": "PP-OCR text direction", "architecture": "MobileNetV3", "tasks": ["classification"],
            "bands": _ocr_bands(), "value_scaling": PP_OCR_SCALING, "input_shape": [-1, 3, 48, 192],
            "classes": [{"value": 0, "name": "upright"}, {"value": 180, "name": "upside-down"}]}
    catalog = _describe(tmp_path, model, spec)
    props = json.loads(item_path(catalog).read_text())["properties"]
    assert props["mlm:input"][0]["input"]["shape"] == [-1, 3, 48, 192]
    result, item_dir = _predict(catalog, _rgb_scene(tmp_path, image), tmp_path / "out")
    session = ort.InferenceSession(str(model))
    expected = [[0, 180][int(np.argmax(session.run(None, {"x": pp_ocr_input(image[:, :, x:x + 192])})[0]))]
                for x in (0, 192, 384)]
    assert expected == [0, 180, 180]
    assert _read(item_dir, result["assets"]["classes"])[0, 0].tolist() == expected


@pytest.mark.parametrize("shape, text", [
    ("-1,48,192", "input_shape [-1, 48, 192] does not fit the ONNX input 'x' [-1, 3, -1, -1]; expected 4 sizes"),
    ("-1,4,48,192", "input_shape [-1, 4, 48, 192] does not fit the ONNX input 'x' [-1, 3, -1, -1]"),
    ("-1,3,0,192", "input_shape [-1, 3, 0, 192] does not fit the ONNX input 'x' [-1, 3, -1, -1]"),
    ("-1,3,48,50", "input_shape [-1, 3, 48, 50]: the model does not run on zeros of shape [1, 3, 48, 50]: "),
])
def test_an_input_shape_the_onnx_model_cannot_take_is_refused(tmp_path: Path, shape: str, text: str) -> None:
    """The DBNet detector needs sizes in multiples of 32: 48 × 50 fails inside the model, which is said."""
    run = CliRunner().invoke(main, ["describe", str(rapidocr_model(DETECTOR)), "-o", str(tmp_path / "out"),
                                    "--name", "Direction", "--architecture", "MobileNetV3", "--task", "classification",
                                    "--input-shape", shape])
    assert run.exit_code == 1 and text in run.output and "\n" == run.output[-1] and run.output.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_yolo_detector_described_from_a_spec_equals_the_model_run_directly(scene, tmp_path: Path) -> None:
    model = yolo_model(tmp_path / "yolo.onnx", 3)
    spec = {"name": "Cell detector", "architecture": "YOLO-like", "tasks": ["object-detection"],
            "bands": [{"name": band} for band in YOLO_BANDS],
            "classes": [{"value": 1, "name": "ship"}, {"value": 2, "name": "platform"}, {"value": 3, "name": "buoy"}]}
    catalog = _describe(tmp_path, model, spec)
    output = json.loads(item_path(catalog).read_text())["properties"]["mlm:output"][0]
    assert output["result"]["dim_order"] == ["batch", "cxcywh-class", "detection"]
    result, item_dir = _predict(catalog, scene["item"], tmp_path / "out")
    expected = _to_crs(_reference(model, scene["image"], _yolo_tile, 0, 0.25, 0.5))
    assert expected and _written(item_dir / result["assets"]["detections"]["href"]) == expected
