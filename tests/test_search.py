"""`mlmkit search` over a local catalog of the official MLM examples (no server): the filter semantics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlmkit.cli import main
from mlmkit.errors import InvalidInput
from mlmkit.catalog.search import ModelQuery, parse_interval, search_local

ALL_MLM = ["item_bands_expression", "item_basic", "item_datacube_variables", "item_eo_and_raster_bands",
           "item_eo_bands", "item_eo_bands_summarized", "item_multi_io", "item_pytorch_geo_unet",
           "item_raster_bands"]
TORCHGEO = ["item_bands_expression", "item_eo_and_raster_bands", "item_eo_bands", "item_eo_bands_summarized",
            "item_raster_bands"]


@pytest.fixture
def examples_catalog(tmp_path: Path, mlm_examples: Path) -> Path:
    """The official examples behind one catalog.json, plus a plain (non-MLM) STAC Item."""
    root = tmp_path / "examples"
    shutil.copytree(mlm_examples, root)
    plain = json.loads((root / "item_basic.json").read_text())
    plain.update(id="plain-scene", stac_extensions=[], assets={}, links=[])
    plain["properties"] = {"datetime": "2021-01-01T00:00:00Z", "description": "a classification scene, no model"}
    (root / "plain.json").write_text(json.dumps(plain))
    links = [{"rel": "item", "href": f"./{name}.json"} for name in ALL_MLM + ["plain"]]
    (root / "catalog.json").write_text(json.dumps({
        "type": "Catalog", "stac_version": "1.0.0", "id": "examples", "description": "MLM examples", "links": links}))
    return root


def found(catalog: Path, **criteria) -> list[str]:
    return sorted(Path(match.href).stem for match in search_local(catalog, ModelQuery(**criteria)))


@pytest.mark.parametrize("criteria, expected", [
    ({}, ALL_MLM),
    ({"task": "semantic-segmentation"}, ["item_pytorch_geo_unet"]),
    ({"task": "Regression"}, ["item_datacube_variables"]),
    ({"bands": ("nir",)}, ["item_bands_expression", "item_eo_and_raster_bands", "item_eo_bands",
                           "item_eo_bands_summarized"]),
    ({"bands": ("B08",)}, ["item_bands_expression", "item_eo_and_raster_bands", "item_eo_bands",
                           "item_eo_bands_summarized", "item_multi_io", "item_raster_bands"]),
    ({"bands": ("red", "B8A")}, ["item_eo_and_raster_bands", "item_eo_bands", "item_eo_bands_summarized"]),
    ({"framework": "PyTorch"}, sorted(set(ALL_MLM) - {"item_basic", "item_pytorch_geo_unet"})),
    ({"datetime": "2025-01-01T00:00:00Z/.."}, sorted(set(ALL_MLM) - {"item_pytorch_geo_unet"})),
    ({"datetime": "1930-06-01T00:00:00Z"}, sorted(set(ALL_MLM) - {"item_pytorch_geo_unet",
                                                                   "item_datacube_variables"})),
    ({"bbox": (0.0, 40.0, 1.0, 41.0)}, sorted(set(ALL_MLM) - {"item_datacube_variables"})),
    ({"bbox": (100.0, -10.0, 110.0, 0.0)}, []),
    ({"text": "TorchGeo"}, TORCHGEO),
    ({"text": "unet downscaling"}, ["item_datacube_variables"]),
    ({"task": "classification", "bands": ("nir",), "text": "torchgeo"},
     ["item_bands_expression", "item_eo_and_raster_bands", "item_eo_bands", "item_eo_bands_summarized"]),
    ({"collections": ("ml-model-examples",), "task": "semantic-segmentation"}, ["item_pytorch_geo_unet"]),
    ({"collections": ("other",)}, []),
])
def test_local_filters(examples_catalog, criteria, expected):
    assert found(examples_catalog, **criteria) == expected


def test_limit_stops_early(examples_catalog):
    assert len(search_local(examples_catalog, ModelQuery(), limit=2)) == 2


def test_parse_interval():
    start, end = parse_interval("2020-01-01T00:00:00Z/..")
    assert start.year == 2020 and start.tzinfo is not None and end is None
    assert parse_interval("2021-03-04T05:06:07Z")[0] == parse_interval("2021-03-04T05:06:07Z")[1]
    with pytest.raises(InvalidInput, match="is not RFC 3339"):
        parse_interval("last tuesday")


def test_cql2_filter_carries_task_and_framework():
    assert ModelQuery().cql2() is None
    assert ModelQuery(task="Classification").cql2() == {
        "op": "a_contains", "args": [{"property": "mlm:tasks"}, ["classification"]]}
    both = ModelQuery(task="classification", framework="pytorch").cql2()
    assert both["op"] == "and" and len(both["args"]) == 2
    assert ModelQuery(framework="ONNX").query_extension() == {"mlm:framework": {"eq": "ONNX"}}


def test_cli_table_and_json(examples_catalog):
    runner = CliRunner()
    table = runner.invoke(main, ["search", str(examples_catalog), "--task", "semantic-segmentation"])
    assert table.exit_code == 0, table.output
    header, row = table.output.splitlines()
    assert header.split() == ["id", "collection", "name", "tasks", "framework", "bands", "href"]
    assert row.split()[:6] == ["pytorch_geo_unet", "ml-model-examples", "U-Net_efficientnet-b3", "semantic-segmentation",
                               "segmentation_models_pytorch.decoders.unet.model", "B4,B3,B2,B8"]
    as_json = runner.invoke(main, ["search", str(examples_catalog), "--bands", "red,nir", "--json"])
    collection = json.loads(as_json.output)
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 4
    original = json.loads((examples_catalog / "item_eo_bands.json").read_text())
    assert original in collection["features"]  # exactly as written, no STAC version migration
    nothing = runner.invoke(main, ["search", str(examples_catalog), "--task", "object-detection"])
    assert nothing.exit_code == 0 and nothing.output.strip() == "no matching models"


@pytest.mark.parametrize("args, message", [
    ([], "Error: give either a local CATALOG or --api URL"),
    (["--bbox", "1,2,x"], "Error: Invalid value for '--bbox': '1,2,x' is not four numbers"),
    (["--bbox", "1,2,3"], "Error: bbox [1.0, 2.0, 3.0] has 3 numbers"),
    (["--bbox", "5,0,1,1"], "Error: bbox [5.0, 0.0, 1.0, 1.0] has west > east"),
    (["--datetime", "yesterday"], "Error: datetime 'yesterday' is not RFC 3339"),
])
def test_cli_bad_arguments(examples_catalog, args, message):
    if args:
        args = [str(examples_catalog), *args]
    result = CliRunner().invoke(main, ["search", *args])
    assert result.exit_code == 2  # usage errors
    assert result.output.strip().startswith(message) and "\n" not in result.output.strip()


def test_broken_link_in_local_catalog(examples_catalog):
    (examples_catalog / "item_basic.json").unlink()
    result = CliRunner().invoke(main, ["search", str(examples_catalog)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: broken item link in {examples_catalog / 'catalog.json'}: cannot read")
