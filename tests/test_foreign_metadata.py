"""Describe from other ecosystems: GeoDeep/Deepness ONNX metadata, geoai's .onnx.json side-cars, and MLM v1.6.0
Items written by stac-model 0.7.0 (read, run, validated against the nearest schema at hand with a note)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pystac
import rasterio
from click.testing import CliRunner
from stac_model.input import InputStructure, ModelInput, ValueScalingScale
from stac_model.output import MLMClassification, ModelOutput, ModelResult
from stac_model.schema import ItemMLModelExtension, MLModelProperties

from mlm_fixtures import item_path, make_segmenter
from predict_helpers import imagery_item, write_raster, yolo_model
from third_party_models import DIRECTION, rapidocr_model
from mlmkit.catalog.validate import validate_source
from mlmkit.cli import main
from mlmkit.inference import PredictOptions, predict
from mlmkit.mlm.spec import read_model

BANDS = ["B04", "B03", "B02"]


def _with_metadata(source: Path, target: Path, values: dict) -> Path:
    """A copy of an ONNX model with GeoDeep-style metadata_props (every value JSON-encoded, as GeoDeep writes)."""
    model = onnx.load(str(source))
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(model, str(target))
    return target


def test_geodeep_metadata_prefills_the_detector_description(tmp_path: Path) -> None:
    """A YOLOv5-style GeoDeep detector: [N, cells, 5 + K], objectness after the box; its det_type says so."""
    base = yolo_model(tmp_path / "base.onnx", 3)  # [N, 7, cells]: read as 5 + 2 classes with objectness
    model = _with_metadata(base, tmp_path / "cars.onnx", {
        "model_type": "Detector", "class_names": {"0": "car", "1": "truck"}, "det_type": "YOLO_v5_or_v7_default",
        "det_conf": 0.3, "det_iou_thresh": 0.8, "resolution": 10, "tiles_overlap": 5})
    run = CliRunner().invoke(main, ["describe", str(model), "-o", str(tmp_path / "out"), "--name", "Car detector",
                                    "--architecture", "YOLOv5", "--band", "red", "--band", "green", "--band", "blue"])
    assert run.exit_code == 0, run.output
    props = json.loads(item_path(tmp_path / "out" / "catalog.json").read_text())["properties"]
    assert props["mlm:tasks"] == ["object-detection"]
    output = props["mlm:output"][0]
    assert output["result"]["dim_order"] == ["batch", "cxcywh-obj-class", "detection"]
    assert [(c["value"], c["name"]) for c in output["classification:classes"]] == [(0, "car"), (1, "truck")]
    assert props["mlm:hyperparameters"] == {"score_threshold": 0.3, "iou_threshold": 0.8}
    assert props["gsd"] == 0.1  # GeoDeep states centimetres per pixel
    assert props["mlm:input"][0]["value_scaling"] == [{"type": "scale", "value": 255.0}]  # GeoDeep feeds x / 255
    # the user's own options win over the file's metadata
    run = CliRunner().invoke(main, ["describe", str(model), "-o", str(tmp_path / "own"), "--name", "Car detector",
                                    "--architecture", "YOLOv5", "--class", "0:vehicle", "--class", "1:lorry",
                                    "--value-scaling", '[{"type": "scale", "value": 1000}]'])
    assert run.exit_code == 0, run.output
    props = json.loads(item_path(tmp_path / "own" / "catalog.json").read_text())["properties"]
    assert [c["name"] for c in props["mlm:output"][0]["classification:classes"]] == ["vehicle", "lorry"]
    assert props["mlm:input"][0]["value_scaling"] == [{"type": "scale", "value": 1000}]


def test_geoai_sidecar_gives_the_task_classes_and_native_size(tmp_path: Path) -> None:
    model = tmp_path / "direction.onnx"
    shutil.copy(rapidocr_model(DIRECTION), model)
    (tmp_path / "direction.onnx.json").write_text(json.dumps({
        "model_name": "PaddlePaddle/ch_ppocr_mobile_v2.0_cls", "task": "image-classification", "input_height": 48,
        "input_width": 192, "input_channels": 3, "opset_version": 11, "output_names": ["logits"],
        "id2label": {"0": "upright", "1": "upside-down"}, "num_labels": 2}))
    run = CliRunner().invoke(main, ["describe", str(model), "-o", str(tmp_path / "out"), "--name", "Text direction",
                                    "--architecture", "MobileNetV3"])
    assert run.exit_code == 0, run.output
    props = json.loads(item_path(tmp_path / "out" / "catalog.json").read_text())["properties"]
    assert props["mlm:tasks"] == ["classification"]
    assert props["mlm:input"][0]["input"]["shape"] == [-1, 3, 48, 192]
    assert [c["name"] for c in props["mlm:output"][0]["classification:classes"]] == ["upright", "upside-down"]
    assert props["mlm:pretrained"] is True and props["mlm:pretrained_source"] == "PaddlePaddle/ch_ppocr_mobile_v2.0_cls"


def _stac_model_item(root: Path) -> Path:
    """An MLM Item of a real ONNX segmenter, written by stac-model 0.7.0 (the extension's own library)."""
    model = make_segmenter(root / "seg.onnx", channels=3, classes=2)
    model_input = ModelInput(name="image", bands=BANDS, input=InputStructure(
        shape=[-1, 3, -1, -1], dim_order=["batch", "bands", "height", "width"], data_type="float32"),
        value_scaling=[ValueScalingScale(type="scale", value=10000)])
    output = ModelOutput(name="scores", tasks={"semantic-segmentation"}, result=ModelResult(
        shape=[-1, 2, -1, -1], dim_order=["batch", "class", "height", "width"], data_type="float32"),
        classes=[MLMClassification(value=0, name="land", description="land"),
                 MLMClassification(value=1, name="water", description="water")])
    properties = MLModelProperties(name="Water segmenter", architecture="1x1 conv", tasks={"semantic-segmentation"},
                                   framework="ONNX", accelerator="amd64", input=[model_input], output=[output],
                                   total_parameters=8, pretrained=False)
    item = pystac.Item(id="stac-model-water", bbox=[-180, -90, 180, 90], datetime=None, properties={  # the scene's area too
        "start_datetime": "2020-01-01T00:00:00Z", "end_datetime": "2021-01-01T00:00:00Z"},
        geometry={"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]})
    item.add_asset("model", pystac.Asset(href="./seg.onnx", media_type="application/octet-stream; application=onnx",
                                         roles=["mlm:model"], extra_fields={"mlm:artifact_type": "onnx",
                                                                            "eo:bands": [{"name": b} for b in BANDS]}))
    ItemMLModelExtension.ext(item, add_if_missing=True).apply(properties)
    data = item.to_dict()
    data["stac_extensions"].append("https://stac-extensions.github.io/eo/v1.1.0/schema.json")
    data["properties"]["eo:bands"] = [{"name": band} for band in BANDS]
    (root / "item.json").write_text(json.dumps(data))
    return root / "item.json"


def test_stac_model_070_items_are_read_run_and_validated_with_a_note(tmp_path: Path) -> None:
    item = _stac_model_item(tmp_path)
    assert "https://stac-extensions.github.io/mlm/v1.6.0/schema.json" in json.loads(item.read_text())["stac_extensions"]
    spec = read_model(item)
    assert spec.mlm_version == "1.6.0" and [b.name for b in spec.inputs[0].bands] == BANDS
    problems = validate_source(item, warnings=True)
    assert [str(p).split(": ", 1)[1] for p in problems] == [
        "$.stac_extensions[0]: warning: the MLM v1.6.0 schema is not available; validated against v1.5.2, the "
        "nearest version at hand"]
    image = np.random.default_rng(3).integers(0, 10000, size=(3, 32, 32)).astype(np.uint16)
    write_raster(tmp_path / "image.tif", image)
    scene = imagery_item(tmp_path / "scene.json", {"image": ("./image.tif", BANDS)})
    predict(str(item), str(scene), tmp_path / "out", PredictOptions())
    (result,) = [p for p in (tmp_path / "out").rglob("classes.tif")]
    with rasterio.open(result) as dataset:
        classes = dataset.read(1)
    scores = ort.InferenceSession(str(tmp_path / "seg.onnx")).run(None, {"image": image[None] / np.float32(10000)})[0]
    assert np.array_equal(classes, scores[0].argmax(axis=0))
