"""Conformance: the official MLM v1.5.2 examples pass; broken variants fail naming the field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from mlm_fixtures import item_path, write_water_catalog
from mlmkit.mlm.spec import read_model
from mlmkit.catalog.validate import Problem, validate_dict, validate_source

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "shared" / "mlm-examples").glob("item_*.json"))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("validation went online although a schema mirror was given")

    monkeypatch.setattr(requests, "get", refuse)


def test_examples_found() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_official_example_validates_offline_and_reads(example: Path, schema_dir: Path, no_network) -> None:
    assert validate_source(example, schema_dir) == []
    spec = read_model(example)
    data = json.loads(example.read_text())
    assert spec.name == data["properties"]["mlm:name"]
    assert len(spec.inputs) == len(data["properties"]["mlm:input"])
    assert len(spec.outputs) == len(data["properties"]["mlm:output"])


def _props(data: dict) -> dict:
    return data["properties"]


def _first_input(data: dict) -> dict:
    return data["properties"]["mlm:input"][0]


# (what breaks, edit of item_eo_bands.json, text that must appear in a problem's path or message)
SCHEMA_VARIANTS: list[tuple[str, Callable[[dict], object], str | tuple[str, str]]] = [
    ("missing mlm:name", lambda d: _props(d).pop("mlm:name"), "mlm:name"),
    ("unknown task", lambda d: _props(d).update({"mlm:tasks": ["classification", "guessing"]}), "mlm:tasks"),
    ("no mlm:model role", lambda d: d["assets"]["weights"].update({"roles": ["mlm:weights"]}), "mlm:model"),
    ("z-score without stddev",
     lambda d: _first_input(d).update({"value_scaling": [{"type": "z-score", "mean": 1.0}]}), "stddev"),
    ("accelerator cpu", lambda d: _props(d).update({"mlm:accelerator": "cpu"}), "mlm:accelerator"),
    ("unknown mlm field", lambda d: _props(d).update({"mlm:colour": "red"}), "mlm:colour"),
    ("artifact type off the model asset",
     lambda d: d["assets"]["source_code"].update({"mlm:artifact_type": "torch.save"}), "mlm:artifact_type"),
    ("artifact type in item properties", lambda d: _props(d).update({"mlm:artifact_type": "onnx"}), "mlm:artifact_type"),
    ("bands without band definitions", lambda d: d["assets"]["weights"].pop("eo:bands"), "eo:bands"),
    ("eo:bands on the item only (eo v1.1.0 forbids it)",
     lambda d: _props(d).update({"eo:bands": d["assets"]["weights"].pop("eo:bands")}), ("eo:bands", "not allowed")),
    ("class without description",
     lambda d: d["properties"]["mlm:output"][0].update({"classification:classes": [{"value": 0, "name": "x"}]}),
     "description"),
    ("value_scaling as an object",
     lambda d: _first_input(d).update({"value_scaling": {"type": "scale", "value": 2}}), "value_scaling"),
    ("unknown data type", lambda d: _first_input(d)["input"].update({"data_type": "float"}), "data_type"),
    ("band count differs from channel dim", lambda d: _first_input(d).update({"bands": ["B01", "B02"]}), "bands"),
    ("dim_order shorter than shape",
     lambda d: _first_input(d)["input"].update({"dim_order": ["batch", "bands", "height"]}), "dim_order"),
    ("value_scaling count differs from bands",
     lambda d: _first_input(d)["value_scaling"].pop(), "value_scaling"),
]


def _names_field(problems: list[Problem], field: str | tuple[str, str]) -> bool:
    """Some problem names `field` (path or message), or has both (path part, message part)."""
    if isinstance(field, tuple):
        return any(field[0] in p.path and field[1] in p.message for p in problems)
    return any(field in problem.path or field in problem.message for problem in problems)


@pytest.mark.parametrize("edit, field", [v[1:] for v in SCHEMA_VARIANTS], ids=[v[0] for v in SCHEMA_VARIANTS])
def test_broken_example_is_rejected_naming_the_field(edit, field, mlm_examples: Path, schema_dir: Path) -> None:
    data = json.loads((mlm_examples / "item_eo_bands.json").read_text())
    assert validate_dict(copy.deepcopy(data), None, schema_dir) == []
    edit(data)
    problems = validate_dict(data, None, schema_dir)
    assert problems, "the broken variant passed"
    assert _names_field(problems, field), [str(p) for p in problems]


def _output(data: dict) -> dict:
    return data["properties"]["mlm:output"][0]


# Variants of an Item describing a real ONNX file, written beside that file.
MODEL_VARIANTS: list[tuple[str, Callable[[dict], object], str | tuple[str, str]]] = [
    ("checksum mismatch", lambda d: d["assets"]["model"].update({"file:checksum": "1220" + "ab" * 32}), "file:checksum"),
    ("size mismatch", lambda d: d["assets"]["model"].update({"file:size": 5}), "file:size"),
    ("model file missing", lambda d: d["assets"]["model"].update({"href": "./gone.onnx"}), "href"),
    ("ONNX channel count", lambda d: _first_input(d)["input"]["shape"].__setitem__(1, 4), ("shape[1]", "ONNX")),
    ("ONNX rank", lambda d: _first_input(d)["input"].update({"shape": [-1, 3, 8], "dim_order": ["batch", "bands", "height"]}),
     "input.shape"),
    ("ONNX data type", lambda d: _output(d)["result"].update({"data_type": "float64"}), "data_type"),
    ("ONNX class count", lambda d: _output(d)["result"]["shape"].__setitem__(1, 5), ("shape[1]", "ONNX")),
    ("class count vs output size", lambda d: _output(d)["classification:classes"].pop(),
     ("result.shape[1]", "classification:classes")),
    ("band count vs channel dim", lambda d: (_first_input(d)["bands"].pop(), d["properties"]["eo:bands"].pop()),
     ("input.shape[1]", "bands")),
    ("z-score stddev of zero",
     lambda d: _first_input(d).update({"value_scaling": [{"type": "z-score", "mean": 1, "stddev": 0}]}),
     ("value_scaling[0].stddev", "> 0")),
    ("min-max range inverted",
     lambda d: _first_input(d).update({"value_scaling": [{"type": "min-max", "minimum": 5, "maximum": 1}]}),
     ("value_scaling[0].maximum", "minimum")),
    ("runtime CWL missing", lambda d: d["assets"].update({"inference-runtime": {
        "href": "./predict.cwl", "type": "application/cwl+yaml", "roles": ["mlm:inference-runtime", "runtime"]}}),
     "inference-runtime"),
]


@pytest.fixture(scope="module")
def water_item(tmp_path_factory: pytest.TempPathFactory, schema_dir: Path) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        return item_path(write_water_catalog(tmp_path_factory.mktemp("water")))


@pytest.mark.parametrize("edit, field", [v[1:] for v in MODEL_VARIANTS], ids=[v[0] for v in MODEL_VARIANTS])
def test_item_contradicting_its_model_is_rejected(edit, field, water_item: Path, schema_dir: Path) -> None:
    data = json.loads(water_item.read_text())
    edit(data)
    broken = water_item.with_name("broken.json")
    broken.write_text(json.dumps(data))
    try:
        problems = validate_source(broken, schema_dir)
    finally:
        broken.unlink()
    assert problems, "the broken variant passed"
    assert _names_field(problems, field), [str(p) for p in problems]
    assert all(p.document == str(broken) for p in problems)


def test_described_item_itself_is_valid(water_item: Path, schema_dir: Path) -> None:
    assert validate_source(water_item, schema_dir) == []
