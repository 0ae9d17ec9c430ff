"""The describe form's output fields beyond classes: a detector's layout (shown for object detection only, prefilled
from GeoDeep metadata, its lint beside it) and the post-processing expression; both become the Item fields that
`mlmkit describe` writes for the same spec keys, and the Item validates."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import onnx
import pytest
import requests
from click.testing import CliRunner

from form_helpers import form_server, hidden_model_info, messages_of, water_fields, water_model
from mlm_fixtures import item_path
from mlmkit.cli import main
from mlmkit.web.spec_form import spec_from_form
from predict_helpers import yolo_model

DETECTOR = {"name": "Cell detector", "architecture": "YOLO", "tasks": ["object-detection"], "license": "MIT",
            "class-0-value": "0", "class-0-name": "car", "class-1-value": "1", "class-1-name": "truck",
            "scaling-0-type": "scale", "scaling-0-value": "1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, schema_dir: Path):
    with form_server(tmp_path_factory.mktemp("form-tmp"), MLMKIT_SCHEMA_DIR=str(schema_dir)) as base:
        yield base


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> Path:
    """[N, 7, cells] for 3 bands: 4 box values, then 3 scores: read with 2 classes as box, objectness, 2 classes."""
    return yolo_model(tmp_path_factory.mktemp("yolo") / "cells.onnx", 3)


def _build(base: str, model: Path, fields: dict, target: Path) -> dict:
    """The Item of the catalog the form builds (unzipped under `target`), after `mlmkit validate` accepts it."""
    with open(model, "rb") as stream:
        built = requests.post(f"{base}/build", data=fields, files={"model": (model.name, stream)}, timeout=120)
    assert built.headers["content-type"] == "application/zip", built.text[-2000:]
    zipfile.ZipFile(io.BytesIO(built.content)).extractall(target)
    (catalog,) = target.glob("*/catalog.json")
    run = CliRunner().invoke(main, ["validate", str(catalog)])
    assert run.exit_code == 0, run.output
    return json.loads(item_path(catalog).read_text())


def _parsed(fields: dict):
    """The form's spec from fields as requests sends them (one text, or a list, per name)."""
    return spec_from_form({key: value if isinstance(value, list) else [value] for key, value in fields.items()})


def _check(base: str, fields: dict) -> list[dict]:
    response = requests.post(f"{base}/check", data=fields, headers={"Accept": "application/json"}, timeout=60)
    assert response.status_code == 200
    return response.json()["messages"]


def _read(base: str, model: Path) -> str:
    with open(model, "rb") as stream:
        response = requests.post(f"{base}/upload", files={"model": (model.name, stream)}, timeout=60)
    assert response.status_code == 200, response.text[-2000:]
    return response.text


def test_the_detection_layout_field_names_the_yolo_values(server, detector, tmp_path) -> None:
    """7 values per box with 2 classes fit both 4 + 3 and 5 + 2: without the layout the checks say so beside the
    detection layout field; with it the Item's dim_order states it, as `describe --spec` writes it."""
    info = hidden_model_info(_read(server, detector))
    unnamed = _check(server, {**DETECTOR, "model_info": info})
    assert any(m["field"] == "detection_layout" and m["severity"] == "error" for m in unnamed), unnamed

    fields = {**DETECTOR, "detection_layout": "cxcywh-obj-class", "model_info": info}
    assert [m for m in _check(server, fields) if m["severity"] == "error"] == []
    item = _build(server, detector, fields, tmp_path / "form")
    output = item["properties"]["mlm:output"][0]
    assert output["result"]["dim_order"] == ["batch", "cxcywh-obj-class", "detection"]

    spec = {key: value for key, value in DETECTOR.items() if "-" not in key}
    spec.update(detection_layout="cxcywh-obj-class", value_scaling=[{"type": "scale", "value": 1}],
                classes=[{"value": 0, "name": "car"}, {"value": 1, "name": "truck"}])
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    run = CliRunner().invoke(main, ["describe", str(detector), "--spec", str(tmp_path / "spec.json"),
                                    "-o", str(tmp_path / "cli")])
    assert run.exit_code == 0, run.output
    cli = json.loads(item_path(tmp_path / "cli" / "catalog.json").read_text())
    assert cli["properties"]["mlm:output"][0]["result"] == output["result"]


def test_the_detection_layout_is_shown_and_read_for_detectors_only(server, detector) -> None:
    segmenter = {**water_fields(), "detection_layout": "cxcywh-class"}
    assert "detection_layout" not in _parsed(segmenter).spec  # a stale choice is no part of a segmenter
    assert _parsed(DETECTOR | {"detection_layout": "cxcywh-class"}).spec["detection_layout"] == "cxcywh-class"
    page = requests.post(f"{server}/check", data=segmenter, timeout=60).text
    assert '<div class="field" id="detection_layout-field" data-when-task="object-detection" hidden>' in page
    page = requests.post(f"{server}/check", data=DETECTOR, timeout=60).text
    assert '<div class="field" id="detection_layout-field" data-when-task="object-detection">' in page
    bad = _parsed(DETECTOR | {"detection_layout": "boxes-first"})
    assert [(m.field, m.text) for m in bad.messages] == [
        ("detection_layout", "'boxes-first' is not one of " + ", ".join(
            f"{box}-{rest}" for box in ("cxcywh", "xyxy", "yxyx", "xywh") for rest in ("class", "obj-class")))]


def test_geodeep_det_type_prefills_the_layout(server, detector, tmp_path) -> None:
    model = onnx.load(str(detector))
    for key, value in {"model_type": "Detector", "class_names": {"0": "car", "1": "truck"},
                       "det_type": "YOLO_v5_or_v7_default", "det_conf": 0.3}.items():
        model.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(model, str(tmp_path / "geodeep.onnx"))
    page = _read(server, tmp_path / "geodeep.onnx")
    assert '<option value="cxcywh-obj-class" selected>' in page
    assert '<div class="field" id="detection_layout-field" data-when-task="object-detection">' in page
    assert 'id="hyperparameters" name="hyperparameters" rows="2"' in page and "score_threshold" in page
    assert messages_of(page, "detection_layout") == []


def test_post_processing_becomes_the_outputs_function(server, tmp_path) -> None:
    """`B > 0.9` over the water model's two scores: the Item's post_processing_function, a gdal-calc expression."""
    model = water_model(tmp_path / "water.onnx")
    fields = {**water_fields(), "post_processing": "B > 0.9"}
    item = _build(server, model, fields, tmp_path / "form")
    assert item["properties"]["mlm:output"][0]["post_processing_function"] == {"format": "gdal-calc",
                                                                               "expression": "B > 0.9"}
    assert _parsed(fields).field_for("$.properties['mlm:output'][0].post_processing_function.expression") \
        == "post_processing"
