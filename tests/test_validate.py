"""`mlmkit validate`: schema retrieval (mirror, online + cache), catalog walking, CLI exit codes."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from http_helpers import static_server
from mlm_fixtures import item_path, write_water_catalog
from mlmkit.cli import main
from mlmkit.stac.schemas import SchemaStore, SchemaUnavailable, mirror_path
from mlmkit.catalog.validate import Problem, validate_dict, validate_source

PROCESSING_V110 = "https://stac-extensions.github.io/processing/v1.1.0/schema.json"


@pytest.fixture
def eo_item(mlm_examples: Path) -> dict:
    return json.loads((mlm_examples / "item_eo_bands.json").read_text())


@pytest.fixture(scope="module")
def water_catalog(tmp_path_factory: pytest.TempPathFactory, schema_dir: Path) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        return write_water_catalog(tmp_path_factory.mktemp("water"))


def test_problem_is_one_line_document_path_message() -> None:
    problem = Problem("item.json", "$.properties['mlm:name']", "is required")
    assert str(problem) == "item.json: $.properties['mlm:name']: is required"


def test_mirror_path_follows_host_and_path(tmp_path: Path) -> None:
    assert mirror_path(tmp_path, "https://example.org/a/v1/schema.json") == tmp_path / "example.org/a/v1/schema.json"
    with pytest.raises(SchemaUnavailable, match="escapes"):
        mirror_path(tmp_path, "https://example.org/../../etc/passwd")


def test_schema_registered_under_the_url_not_its_wrong_id(schema_dir: Path) -> None:
    raw = json.loads(mirror_path(schema_dir, PROCESSING_V110).read_text())
    assert "v1.0.0" in raw["$id"]  # the trap this guards against
    assert SchemaStore(schema_dir).load(PROCESSING_V110)["$id"] == PROCESSING_V110


def test_processing_expression_refs_resolve_through_processing_v110(eo_item: dict, schema_dir: Path) -> None:
    eo_item["properties"]["mlm:input"][0]["pre_processing_function"] = {"format": "python"}
    problems = validate_dict(eo_item, None, schema_dir)
    assert any("pre_processing_function" in p.path and "expression" in p.message for p in problems), problems


def test_schema_missing_from_mirror_names_url_and_mirror(tmp_path: Path, eo_item: dict) -> None:
    with pytest.raises(SchemaUnavailable) as info:
        validate_dict(eo_item, None, tmp_path)
    message = str(info.value)
    assert "https://schemas.stacspec.org/v1.0.0/item-spec/json-schema/item.json" in message
    assert str(tmp_path) in message


def test_online_schema_is_fetched_once_then_served_from_cache(
    tmp_path: Path, schema_dir: Path, eo_item: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real HTTP server hosts an extension schema; after one fetch it is not needed any more."""
    monkeypatch.delenv("MLMKIT_SCHEMA_DIR")
    served = tmp_path / "www" / "ext" / "v1.0.0"
    served.mkdir(parents=True)
    (served / "schema.json").write_text(json.dumps({
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {"properties": {"required": ["ext:colour"]}}}))
    cache = tmp_path / "cache"
    shutil.copytree(schema_dir, cache)  # the public schemas, as if cached by an earlier online run
    with static_server(tmp_path / "www") as base:
        url = f"{base}/ext/v1.0.0/schema.json"
        eo_item["stac_extensions"].append(url)
        problems = validate_dict(eo_item, None, store=SchemaStore(cache_dir=cache))
    assert [(p.path, p.message) for p in problems] == [
        ("$.properties", f"'ext:colour' is a required property ({url} schema)")]
    assert mirror_path(cache, url).is_file()
    eo_item["properties"]["ext:colour"] = "red"
    assert validate_dict(eo_item, None, store=SchemaStore(cache_dir=cache)) == []  # server is gone: cache only


def test_assets_of_the_wrong_type_are_a_problem_not_a_crash(eo_item: dict, schema_dir: Path) -> None:
    eo_item["assets"] = [eo_item["assets"]["weights"]]
    problems = validate_dict(eo_item, None, schema_dir)
    assert problems and all(p.path.startswith("$") for p in problems)
    assert any(p.path == "$.assets" and "object" in p.message for p in problems), problems


def test_not_a_stac_document(schema_dir: Path) -> None:
    problems = validate_dict({"type": "FeatureCollection", "features": []}, "x.json", schema_dir)
    assert [p.path for p in problems] == ["$"]
    assert "FeatureCollection" in problems[0].message


def test_catalog_walk_reports_each_document_and_broken_links(water_catalog: Path, tmp_path: Path,
                                                             schema_dir: Path) -> None:
    copy_dir = tmp_path / "copy"
    shutil.copytree(water_catalog.parent, copy_dir)  # self-contained: valid wherever it lies
    catalog = copy_dir / "catalog.json"
    assert validate_source(copy_dir, schema_dir) == []
    data = json.loads(catalog.read_text())
    data["links"].append({"rel": "child", "href": "./missing/collection.json", "type": "application/json"})
    catalog.write_text(json.dumps(data))
    item = item_path(catalog)
    item_data = json.loads(item.read_text())
    del item_data["properties"]["mlm:architecture"]
    item.write_text(json.dumps(item_data))
    problems = validate_source(catalog, schema_dir)
    assert {(p.document, p.path) for p in problems} == {
        (str(catalog), f"$.links[{len(data['links']) - 1}].href"),
        (str(item), "$.properties"),
    }
    assert any("mlm:architecture" in p.message for p in problems)


def test_self_reference_loop_terminates(tmp_path: Path, schema_dir: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({
        "type": "Catalog", "stac_version": "1.0.0", "id": "loop", "description": "links to itself",
        "links": [{"rel": "child", "href": "./catalog.json"}]}))
    assert validate_source(catalog, schema_dir) == []


def test_cli_exit_codes_and_lines(water_catalog: Path, tmp_path: Path, schema_dir: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", str(water_catalog.parent)])
    assert ok.exit_code == 0, ok.output
    assert "3 documents valid" in ok.output  # catalog, collection, item

    item = item_path(water_catalog)
    data = json.loads(item.read_text())
    bad = copy.deepcopy(data)
    bad["assets"]["model"]["file:checksum"] = "1220" + "00" * 32
    broken = item.with_name("broken.json")
    broken.write_text(json.dumps(bad))
    try:
        invalid = runner.invoke(main, ["validate", "--quiet", str(broken)])
        schema_only = runner.invoke(main, ["validate", "--no-semantic", str(broken)])
    finally:
        broken.unlink()
    assert invalid.exit_code == 1
    assert invalid.output.splitlines()[0].startswith(f"{broken}: $.assets.model['file:checksum']: checksum mismatch")
    assert "invalid" not in invalid.output.splitlines()[-1]  # --quiet: no summary
    assert schema_only.exit_code == 0, schema_only.output

    missing = runner.invoke(main, ["validate", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.output

    empty_mirror = tmp_path / "mirror"
    empty_mirror.mkdir()
    offline = runner.invoke(main, ["validate", "--schema-dir", str(empty_mirror), str(item)])
    assert offline.exit_code == 2
    assert str(empty_mirror) in offline.output and "schemas.stacspec.org" in offline.output


def test_model_that_does_not_open_is_reported(water_catalog: Path, tmp_path: Path, schema_dir: Path) -> None:
    from mlmkit.stac.checksum import file_checksum

    copy_dir = tmp_path / "copy"
    shutil.copytree(water_catalog.parent, copy_dir)
    item = item_path(copy_dir / "catalog.json")
    model = item.parent / "water.onnx"
    model.write_bytes(b"\x08\x01 not a protobuf graph")
    data = json.loads(item.read_text())
    data["assets"]["model"].update({"file:size": model.stat().st_size, "file:checksum": file_checksum(model)})
    item.write_text(json.dumps(data))
    problems = validate_source(item, schema_dir)
    assert [p.path for p in problems] == ["$.assets.model.href"]
    assert "does not open as an ONNX model" in problems[0].message


def test_extension_that_is_not_a_url_is_a_problem_not_a_crash(eo_item: dict, schema_dir: Path) -> None:
    eo_item["stac_extensions"].append("eo")
    problems = validate_dict(eo_item, None, schema_dir)
    assert [(p.path, p.message) for p in problems] == [
        (f"$.stac_extensions[{len(eo_item['stac_extensions']) - 1}]",
         "'eo' is not a schema URL; expected https://.../schema.json")]


def test_catalog_served_over_http(water_catalog: Path, tmp_path: Path, schema_dir: Path) -> None:
    """URLs work like paths: links resolve against the URL; remote assets are not downloaded."""
    site = tmp_path / "site"
    shutil.copytree(water_catalog.parent, site)
    (site / "catalog.json").write_text((site / "catalog.json").read_text().replace(
        '"links": [', '"links": [{"rel": "child", "href": "./lost/collection.json"}, ', 1))
    item = item_path(site / "catalog.json")
    data = json.loads(item.read_text())
    del data["properties"]["mlm:architecture"]
    item.write_text(json.dumps(data))
    with static_server(site) as base:
        problems = validate_source(f"{base}/catalog.json", schema_dir)
    item_url = f"{base}/{item.relative_to(site).as_posix()}"
    assert [(p.document, p.path) for p in problems] == [(f"{base}/catalog.json", "$.links[0].href"),
                                                        (item_url, "$.properties")]
    assert "lost/collection.json" in problems[0].message and "mlm:architecture" in problems[1].message


def test_shapes_predict_cannot_run_are_warnings_not_errors(tmp_path: Path) -> None:
    """A valid Item whose input names height but no width: `validate` warns, exits 0, names why."""
    import numpy as np

    from predict_helpers import conv_model, mlm_input, mlm_item, mlm_output

    model = conv_model(tmp_path / "m.onnx", np.ones((2, 3)), np.zeros(2))
    model_input = mlm_input("input", ["B04", "B03", "B02"], 3)
    model_input["input"]["dim_order"] = ["batch", "bands", "height", "time"]
    item = mlm_item(tmp_path / "model.json", model, [model_input],
                    [mlm_output("out", ["semantic-segmentation"], [-1, 2, -1, -1],
                                ["batch", "class", "height", "width"])], band_names=["B04", "B03", "B02"])
    assert validate_source(item) == []  # warnings only when asked for: publish/describe callers see none
    warnings = validate_source(item, warnings=True)
    assert [w.warning for w in warnings] == [True]
    assert str(warnings[0]).endswith("warning: input 'input' has dim_order ['batch', 'bands', 'height', "
                                     "'time']: one of height/width without the other; expected both (a "
                                     "raster) or neither (one row per pixel)")
    run = CliRunner().invoke(main, ["validate", str(item)])
    assert run.exit_code == 0 and "warning: input 'input'" in run.output and "1 document valid" in run.output
