"""The describe/MLM reference pages and the third-party how-to are code: every key is documented, every YAML/JSON
example passes the schemas, mlmkit's own checks and the lint, and every command of the how-to runs as shown."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from docs_snippets import code_blocks, commands
from mlm_fixtures import make_segmenter
from predict_helpers import imagery_item, write_raster, yolo_model
from third_party_models import DETECTOR, DIRECTION, rapidocr_model, text_image
from mlmkit.catalog.validate import validate_dict
from mlmkit.errors import MlmkitWarning
from mlmkit.mlm.build import ModelMetadata
from mlmkit.catalog.model_catalog import describe_model
from mlmkit.mlm.describe import RUNTIME_KEYS, load_spec
from mlmkit.mlm.lint import lint_model
from mlmkit.mlm.spec import MLM_SCHEMA_URL, spec_from_item
from mlmkit.stac.read import stac_from_dict

DOCS = Path(__file__).resolve().parents[1] / "docs"
SPEC_PAGE = DOCS / "reference" / "describe-spec.md"
FIELDS_PAGE = DOCS / "reference" / "mlm-fields.md"
HOW_TO = DOCS / "how-to" / "describe-a-third-party-model.md"
SHAPES = DOCS / "model-shapes.md"
RGB = ["red", "green", "blue"]


def test_every_spec_key_is_documented() -> None:
    text = SPEC_PAGE.read_text()
    keys = [field.name for field in dataclasses.fields(ModelMetadata)] + list(RUNTIME_KEYS)
    missing = [key for key in keys if f"`{key}`" not in text]
    assert missing == []


def test_pages_link_to_pages_that_exist() -> None:
    for page in (SPEC_PAGE, FIELDS_PAGE, HOW_TO):
        for target in re.findall(r"\]\(([^)#]+)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"


def _described(tmp_path: Path, spec_text: str, model: Path) -> dict:
    """Describe `model` from a spec as written on the page: the Item must be valid and lint-clean."""
    (tmp_path / "spec.yaml").write_text(spec_text)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MlmkitWarning)  # a lint warning on a documented example fails the test
        catalog = describe_model(model, tmp_path / "out", load_spec(tmp_path / "spec.yaml"))
    (item,) = [json.loads(p.read_text()) for p in catalog.parent.rglob("*.json")
               if json.loads(p.read_text()).get("type") == "Feature"]
    return item


def test_reference_spec_examples_describe_valid_lint_clean_items(tmp_path: Path) -> None:
    water, cars = code_blocks(SPEC_PAGE, "yaml")
    item = _described(tmp_path / "water", water.text, make_segmenter(_dir(tmp_path / "water") / "seg.onnx"))
    assert item["properties"]["mlm:input"][0]["value_scaling"] == [{"type": "scale", "value": 10000}]
    item = _described(tmp_path / "cars", cars.text, yolo_model(_dir(tmp_path / "cars") / "yolo.onnx", 3))
    assert item["properties"]["mlm:output"][0]["result"]["dim_order"] == ["batch", "cxcywh-obj-class", "detection"]


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_example_spec_file_is_lint_clean(tmp_path: Path) -> None:
    spec = load_spec(DOCS / "describe-spec.example.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("error", MlmkitWarning)
        describe_model(make_segmenter(tmp_path / "seg.onnx"), tmp_path / "out", spec)


def _item_with(fragment: dict) -> dict:
    """A whole MLM Item around an `mlm:output` fragment from a page (the model file remote: not opened)."""
    return {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": [MLM_SCHEMA_URL], "id": "fragment",
        "geometry": {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]},
        "bbox": [-180, -90, 180, 90],
        "properties": {"datetime": "2024-01-01T00:00:00Z", "mlm:name": "Fragment", "mlm:architecture": "detector",
                       "mlm:tasks": ["object-detection"], "mlm:framework": "ONNX",
                       "mlm:input": [{"name": "input", "input": {"shape": [-1, 3, 640, 640], "data_type": "float32",
                                                                 "dim_order": ["batch", "channel", "height", "width"]}}],
                       **fragment},
        "assets": {"model": {"href": "https://example.com/model.onnx", "roles": ["mlm:model"],
                             "type": "application/octet-stream; framework=onnx", "mlm:artifact_type": "onnx"}},
        "links": [],
    }


@pytest.mark.parametrize("block", code_blocks(SHAPES, "json"), ids=lambda block: f"line{block.line}")
def test_model_shapes_json_examples_pass_the_schema_and_every_check(block) -> None:
    data = _item_with(json.loads(block.text))
    assert [str(problem) for problem in validate_dict(data, warnings=True)] == []
    assert lint_model(spec_from_item(stac_from_dict(data, None))) == []


@pytest.fixture(scope="module")
def how_to_dir(tmp_path_factory) -> Path:
    """What the how-to assumes: the two model files, its spec files, a page of text and three text lines."""
    root = tmp_path_factory.mktemp("how-to")
    for block in code_blocks(HOW_TO, "yaml"):
        name = block.text.splitlines()[0].lstrip("# ").strip()
        assert name.endswith(".yaml"), f"{block.where(HOW_TO)}: a spec block starts with '# NAME.yaml'"
        (root / name).write_text(block.text)
    for model in (DETECTOR, DIRECTION):
        shutil.copy(rapidocr_model(model), root / model)
    lines = ["The quick brown fox", "jumps over the lazy", "dog 12345 HELLO", "mlmkit reads metadata"] * 6
    for folder, image in (("page", text_image(512, 512, lines)),
                          ("lines", np.concatenate([text_image(48, 192, ["Hello world 123"]),
                                                    text_image(48, 192, ["Hello world 123"], True),
                                                    text_image(48, 192, ["mlmkit text"], True)], axis=2))):
        write_raster(_dir(root / folder) / "image.tif", image)
        imagery_item(root / folder / "item.json", {"image": ("./image.tif", RGB)})
    return root


def _shape(line: str) -> str:
    """A line with its numbers blanked: the words and fields the page shows, whatever the counts."""
    return re.sub(r"\d+(\.\d+)?", "N", line)


def test_how_to_commands_run_as_shown(how_to_dir: Path) -> None:
    mlmkit = str(Path(sys.executable).with_name("mlmkit"))
    printed: list[str] = []
    for block in code_blocks(HOW_TO, "bash"):
        for command in commands(block):
            assert command.startswith("mlmkit "), block.where(HOW_TO)
            run = subprocess.run([mlmkit, *command.split()[1:]], cwd=how_to_dir, capture_output=True, text=True,
                                 timeout=300)
            assert run.returncode == 0, f"{block.where(HOW_TO)}: {command}\n{run.stdout}\n{run.stderr}"
            assert "Warning" not in run.stderr, run.stderr
            printed += run.stdout.splitlines()
    shown = code_blocks(HOW_TO, "text")[0].text.splitlines()
    assert [_shape(line) for line in shown] == [_shape(line) for line in printed if ": smoke: " in line]
    assert "`mlm:total_parameters: 1171841`" in HOW_TO.read_text()
    item = next(json.loads(p.read_text()) for p in (how_to_dir / "text-detector").rglob("*.json")
                if json.loads(p.read_text()).get("type") == "Feature")
    assert item["properties"]["mlm:total_parameters"] == 1171841


def test_how_to_inverted_scaling_output_is_what_mlmkit_prints(how_to_dir: Path) -> None:
    """The page's second illustration: the detector with `scale 0.00392`, validated against the same page."""
    spec = yaml.safe_load((how_to_dir / "text-detector.yaml").read_text())
    spec["value_scaling"] = [{"type": "scale", "value": 0.00392}]
    (how_to_dir / "inverted.yaml").write_text(yaml.safe_dump(spec))
    mlmkit = str(Path(sys.executable).with_name("mlmkit"))
    subprocess.run([mlmkit, "describe", DETECTOR, "-o", "text-detector-inverted", "--spec", "inverted.yaml",
                    "--overwrite"], cwd=how_to_dir, check=True, capture_output=True)
    run = subprocess.run([mlmkit, "validate", "text-detector-inverted", "--against", "page/item.json", "-q"],
                         cwd=how_to_dir, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    shown = code_blocks(HOW_TO, "text")[1].text.splitlines()
    printed = run.stdout.splitlines()
    assert printed[0].endswith(shown[0].split(".json", 1)[1]) and _shape(printed[1]) == _shape(shown[1])
