"""Class names given as words ("Dense forest") are written as classification v2.0.0 machine names with the
words kept as title, so describe, chips, train and predict outputs validate before and after a pystac re-save
(which migrates classification v1.1.0 to v2.0.0), offline with the schemas mlmkit ships."""

from __future__ import annotations

import json
from pathlib import Path

import pystac
import pytest
from click.testing import CliRunner

from mlm_fixtures import make_segmenter, water_metadata
from mlmkit.catalog.validate import validate_dict
from mlmkit.cli import main
from mlmkit.errors import InvalidArgument
from mlmkit.catalog.model_catalog import write_model_catalog
from mlmkit.mlm.build import build_model_item
from mlmkit.mlm.spec import read_model
from mlmkit.stac.classes import machine_name
from mlmkit.training.chips import build_chips
from mlmkit.training.layout import parse_classes
from test_resave import mirror, mlmkit_validate, resave  # noqa: F401 (shared mirror + shipped schemas)
from train_fixtures import CHIP_OPTIONS, scene  # noqa: F401

WORDS = "0=Open water,1=Dense forest,2=Bare field"
EXPECTED = [(0, "open-water", "Open water"), (1, "dense-forest", "Dense forest"), (2, "bare-field", "Bare field")]
V2_NAME = r"^[0-9A-Za-z-_]+$"


def shipped_v2_pattern() -> str:
    from mlmkit.stac.schemas import shipped_dir

    schema = json.loads((shipped_dir() / "stac-extensions.github.io/classification/v2.0.0/schema.json").read_text())
    return schema["definitions"]["class_object"]["properties"]["name"]["pattern"]


def written_classes(document: dict) -> list[list[dict]]:
    """Every classification:classes list of an Item: on assets and in mlm:output."""
    lists = [asset["classification:classes"] for asset in document.get("assets", {}).values()
             if "classification:classes" in asset]
    lists += [o["classification:classes"] for o in document.get("properties", {}).get("mlm:output", [])
              if o.get("classification:classes")]
    return lists


def items(catalog: Path) -> list[Path]:
    return [p for p in catalog.rglob("*.json") if json.loads(p.read_text()).get("type") == "Feature"]


def assert_valid_before_and_after_pystac(catalog: Path, mirror: Path, tmp_path: Path) -> None:  # noqa: F811
    for path in items(catalog):
        document = json.loads(path.read_text())
        resaved = pystac.Item.from_dict(document).to_dict()
        assert "https://stac-extensions.github.io/classification/v2.0.0/schema.json" in resaved["stac_extensions"] \
            or not written_classes(document)
        for version in (document, resaved):
            problems = [p for p in validate_dict(version, str(path), mirror, semantic=False) if not p.warning]
            assert problems == [], problems
    result = mlmkit_validate(resave(catalog, tmp_path.name), mirror)
    assert result.returncode == 0, result.stdout + result.stderr


def test_machine_names() -> None:
    assert shipped_v2_pattern() == V2_NAME  # the rule these names are made for
    assert machine_name("Dense vegetation", 1) == "dense-vegetation"
    assert machine_name("water_body", 0) == "water_body" and machine_name("AnnualCrop", 0) == "AnnualCrop"
    assert machine_name("  Forêt / bois (mixte) ", 3) == "foret-bois-mixte"
    assert machine_name("水", 7) == "class-7"


def test_describe_with_worded_classes(tmp_path: Path, mirror: Path) -> None:  # noqa: F811
    model = make_segmenter(tmp_path / "seg.onnx")
    classes = [{"value": 0, "name": "Bare soil"}, {"value": 1, "name": "Open water", "description": "lakes, rivers"}]
    catalog = write_model_catalog(build_model_item(model, water_metadata(classes=classes)), model, tmp_path / "out")
    (path,) = items(catalog.parent)
    (written,) = written_classes(json.loads(path.read_text()))
    assert written == [{"value": 0, "name": "bare-soil", "title": "Bare soil", "description": "Bare soil"},
                       {"value": 1, "name": "open-water", "title": "Open water", "description": "lakes, rivers"}]
    spec = read_model(str(catalog))
    assert [(c.name, c.title) for c in spec.outputs[0].classes] == [("bare-soil", "Bare soil"),
                                                                     ("open-water", "Open water")]
    assert_valid_before_and_after_pystac(catalog.parent, mirror, tmp_path)


def test_describe_refuses_two_names_becoming_one(tmp_path: Path) -> None:
    model = make_segmenter(tmp_path / "seg.onnx")
    classes = [{"value": 0, "name": "Open water"}, {"value": 1, "name": "open-water"}]
    with pytest.raises(InvalidArgument) as caught:
        build_model_item(model, water_metadata(classes=classes))
    message = str(caught.value)
    assert "'Open water'" in message and "'open-water'" in message and "\n" not in message


def test_chips_refuse_two_names_becoming_one() -> None:
    with pytest.raises(InvalidArgument, match="both become the class name 'dense-forest'") as caught:
        parse_classes("0=Dense forest,1=dense  forest")
    assert "\n" not in str(caught.value)


def test_a_machine_name_beside_worded_names_is_kept() -> None:
    """Names already valid are written unchanged (EuroSAT's AnnualCrop, the demo's dense-vegetation)."""
    classes = parse_classes("0=AnnualCrop,1=Dense forest")
    assert [c.name for c in classes] == ["AnnualCrop", "Dense forest"]


@pytest.fixture(scope="module")
def worded(scene, tmp_path_factory, schema_dir: Path) -> dict[str, Path]:  # noqa: F811
    """Chips, a random-forest model and a prediction whose classes were given as words."""
    root = tmp_path_factory.mktemp("worded")
    chips = root / "chips"
    build_chips(str(scene[0]), str(scene[1]), parse_classes(WORDS), chips, CHIP_OPTIONS)
    model, results = root / "model", root / "results"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        run = CliRunner().invoke(main, ["train", "--data", str(chips), "--output", str(model), "--architecture",
                                        "random-forest", "--trees", "5", "--max-samples", "600", "--seed", "1"])
        assert run.exit_code == 0, run.output
        run = CliRunner().invoke(main, ["predict", "-m", str(model), "-i", str(scene[0]), "-o", str(results)])
        assert run.exit_code == 0, run.output
    return {"chips": chips, "model": model, "results": results}


@pytest.mark.parametrize("which", ["chips", "model", "results"])
def test_train_and_predict_outputs_with_worded_classes(worded, which: str, mirror: Path,  # noqa: F811
                                                       tmp_path: Path) -> None:
    catalog = worded[which]
    lists = [classes for path in items(catalog) for classes in written_classes(json.loads(path.read_text()))]
    assert lists
    for classes in lists:
        named = [(c["value"], c["name"], c.get("title")) for c in classes if not c.get("nodata")]
        assert named == EXPECTED
        assert all(c["description"] for c in classes)
    assert_valid_before_and_after_pystac(catalog, mirror, tmp_path)
