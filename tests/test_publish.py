"""`mlmkit publish` against a real stac-fastapi-pgstac server: the seed flow and every bad input of issue 6."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import requests
from click.testing import CliRunner
from rasterio.transform import Affine

from mlmkit.cli import main
from mlmkit.errors import InvalidInput
from mlmkit.catalog.publish import PublishError, auth_headers, parse_header, plan_publication, publish
from mlmkit.catalog.search import ModelQuery, open_api, search_api, search_local, server_candidates
from model_catalogs import NIR_BANDS, S2_BANDS, edit_item, item_path, model_catalog
from pgstac_server import free_port, pgstac_api, running_pgstac  # noqa: F401  (fixture)

pytestmark = pytest.mark.pgstac
BASE = "https://models.example.org/pub"


def _auth(api) -> dict:
    return {"Authorization": f"Bearer {api.token}"}


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _get(api, path: str) -> requests.Response:
    return requests.get(f"{api.url}{path}", timeout=30)


def test_seed_flow_publish_search_get_back_republish(pgstac_api, tmp_path):
    seg = model_catalog(tmp_path / "seg", "seed-water-seg", task="semantic-segmentation", bands=S2_BANDS,
                        bbox=[5.0, 45.0, 10.0, 48.0])
    cls = model_catalog(tmp_path / "cls", "seed-crop-cls", task="classification", bands=NIR_BANDS,
                        bbox=[-10.0, 10.0, 0.0, 20.0])
    summary = publish(seg, pgstac_api.url, headers=_auth(pgstac_api), base_href=f"{BASE}/seg/")
    assert summary.created == ["collection 'seed-water-seg-collection'",
                               "item 'seed-water-seg' (collection 'seed-water-seg-collection')"]
    assert summary.updated == [] and summary.local_hrefs == 0
    publish(cls, pgstac_api.url, headers=_auth(pgstac_api), base_href=f"{BASE}/cls/")

    # The item comes back with every MLM field as written, and assets where the files are served.
    local = json.loads(item_path(seg, "seed-water-seg").read_text())
    remote = _get(pgstac_api, "/collections/seed-water-seg-collection/items/seed-water-seg").json()
    # pgstac stores no null values (e.g. `"value_scaling": null` comes back absent); everything else is equal.
    local_props = _without_nulls(local["properties"])
    mlm_keys = [key for key in local_props if key.startswith("mlm:") or key == "eo:bands"]
    assert len(mlm_keys) >= 10
    assert {k: remote["properties"][k] for k in mlm_keys} == {k: local_props[k] for k in mlm_keys}
    assert remote["stac_extensions"] == local["stac_extensions"]
    assert remote["assets"]["model"]["href"] == f"{BASE}/seg/seed-water-seg-collection/seed-water-seg/model.onnx"
    assert remote["assets"]["model"]["file:checksum"] == local["assets"]["model"]["file:checksum"]

    # Search by task, bands (common names) and bbox finds exactly the expected model, as the local search does.
    collections = ("seed-water-seg-collection", "seed-crop-cls-collection")
    by_seg = ModelQuery(task="semantic-segmentation", bands=("red", "B03"), bbox=(6.0, 46.0, 7.0, 47.0),
                        collections=collections)
    assert [m.item["id"] for m in search_api(pgstac_api.url, by_seg)] == ["seed-water-seg"]
    assert [m.item["id"] for m in search_local(seg, by_seg)] == ["seed-water-seg"]
    by_nir = ModelQuery(bands=("nir",), collections=collections)
    assert [m.item["id"] for m in search_api(pgstac_api.url, by_nir)] == ["seed-crop-cls"]
    wrong_place = ModelQuery(task="semantic-segmentation", bbox=(-9.0, 11.0, -8.0, 12.0), collections=collections)
    assert search_api(pgstac_api.url, wrong_place) == []

    # Re-publishing after a change updates in place: same count, new content.
    edit_item(seg, "seed-water-seg", description="retrained on 2023 data")
    again = publish(seg, pgstac_api.url, headers=_auth(pgstac_api), base_href=f"{BASE}/seg/")
    assert again.created == [] and len(again.updated) == 2
    remote = _get(pgstac_api, "/collections/seed-water-seg-collection/items/seed-water-seg").json()
    assert remote["properties"]["description"] == "retrained on 2023 data"
    listed = _get(pgstac_api, "/collections/seed-water-seg-collection/items").json()
    assert [f["id"] for f in listed["features"]] == ["seed-water-seg"]


def test_collection_option_creates_collection_from_item_extent(pgstac_api, tmp_path):
    first = model_catalog(tmp_path / "a", "extent-a", task="classification", bands=NIR_BANDS,
                          bbox=[1.0, 2.0, 3.0, 4.0], start="2019-05-01T00:00:00Z", end="2020-01-01T00:00:00Z")
    second = model_catalog(tmp_path / "b", "extent-b", task="classification", bands=NIR_BANDS,
                           bbox=[-5.0, 0.0, 2.0, 3.0], start="2021-01-01T00:00:00Z", end="2021-06-30T00:00:00Z")
    summary = publish(first, pgstac_api.url, collection="shared-models", headers=_auth(pgstac_api))
    assert summary.created == ["collection 'shared-models'", "item 'extent-a' (collection 'shared-models')"]
    assert summary.local_hrefs == 1  # the model asset stays a local path without --base-href
    collection = _get(pgstac_api, "/collections/shared-models").json()
    assert collection["extent"]["spatial"]["bbox"] == [[1.0, 2.0, 3.0, 4.0]]
    assert collection["extent"]["temporal"]["interval"][0][0].startswith("2019-05-01")
    # A second model joins the existing collection, which is kept as the API has it.
    summary = publish(second, pgstac_api.url, collection="shared-models", headers=_auth(pgstac_api))
    assert summary.kept == ["collection 'shared-models'"]
    assert summary.created == ["item 'extent-b' (collection 'shared-models')"]
    items = _get(pgstac_api, "/collections/shared-models/items").json()["features"]
    assert sorted(f["id"] for f in items) == ["extent-a", "extent-b"]
    assert items[0]["assets"]["model"]["href"].startswith(str(tmp_path))


def test_cli_publish_with_token_env_and_search_json(pgstac_api, tmp_path, monkeypatch):
    cat = model_catalog(tmp_path / "cli", "cli-flood-seg", task="semantic-segmentation", bands=S2_BANDS,
                        bbox=[20.0, 40.0, 21.0, 41.0], framework="pytorch", keywords=("flood", "sar-free"))
    monkeypatch.setenv("MLMKIT_API_TOKEN", pgstac_api.token)
    runner = CliRunner()
    result = runner.invoke(main, ["publish", str(cat), "--api", pgstac_api.url, "--base-href", BASE])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [
        "published: 2 created, 0 updated",
        "note: catalog(s) 'cli-flood-seg-catalog' not stored: a STAC API holds collections and items"]
    result = runner.invoke(main, ["search", "--api", pgstac_api.url, "--framework", "PyTorch", "--text", "flood",
                                  "--bbox", "20.5,40.5,22,42", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert [f["id"] for f in found["features"]] == ["cli-flood-seg"]
    assert found["features"][0]["properties"]["mlm:framework"] == "PyTorch"
    table = runner.invoke(main, ["search", "--api", pgstac_api.url, "--task", "semantic-segmentation",
                                 "--bands", "blue", "--collection", "cli-flood-seg-collection"])
    assert table.exit_code == 0
    header, row = table.output.splitlines()
    assert header.split() == ["id", "collection", "name", "tasks", "framework", "bands", "href"]
    assert row.split()[:2] == ["cli-flood-seg", "cli-flood-seg-collection"]
    assert row.split()[-1] == f"{pgstac_api.url}/collections/cli-flood-seg-collection/items/cli-flood-seg"


@pytest.mark.parametrize("mode", ["filter", "query", "client"])
def test_every_server_filter_mode_gives_the_same_models(pgstac_api, tmp_path, mode):
    collection = "modes-models"
    for name, task, framework in [("modes-a", "classification", "ONNX"), ("modes-b", "classification", "pytorch"),
                                  ("modes-c", "semantic-segmentation", "ONNX")]:
        cat = model_catalog(tmp_path / name, name, task=task, bands=S2_BANDS, bbox=[0, 0, 1, 1], framework=framework)
        publish(cat, pgstac_api.url, collection=collection, headers=_auth(pgstac_api))
    query = ModelQuery(task="classification", framework="ONNX", collections=(collection,))
    assert [m.item["id"] for m in search_api(pgstac_api.url, query, mode=mode)] == ["modes-a"]
    # What the server itself filtered: CQL2 both criteria, the Query extension the framework, 'client' nothing.
    narrowed = {"filter": ["modes-a"], "query": ["modes-a", "modes-c"], "client": ["modes-a", "modes-b", "modes-c"]}
    candidates = server_candidates(open_api(pgstac_api.url), query, mode)
    assert sorted(item["id"] for item in candidates) == narrowed[mode]


# --- bad inputs ---------------------------------------------------------------------------------------------


def test_unreachable_server_is_one_clear_error(tmp_path):
    cat = model_catalog(tmp_path / "m", "unreachable-m", task="classification", bands=NIR_BANDS, bbox=[0, 0, 1, 1])
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PublishError, match=rf"cannot reach the STAC API at {url} \(reading /conformance\)"):
        publish(cat, url)
    result = CliRunner().invoke(main, ["search", "--api", url, "--task", "classification"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot open the STAC API at {url}")


@pytest.mark.parametrize("headers, status", [({}, 401), ({"Authorization": "Bearer wrong"}, 403)])
def test_missing_or_wrong_token_publishes_nothing(pgstac_api, tmp_path, headers, status):
    cat = model_catalog(tmp_path / "m", f"auth-{status}", task="classification", bands=NIR_BANDS, bbox=[0, 0, 1, 1])
    with pytest.raises(PublishError) as raised:
        publish(cat, pgstac_api.url, headers=headers)
    message = str(raised.value)
    assert f"refused collection 'auth-{status}-collection': HTTP {status}" in message
    assert "the token option or $MLMKIT_API_TOKEN" in message and "published before this failure: nothing" in message
    assert _get(pgstac_api, f"/collections/auth-{status}-collection").status_code == 404


def test_server_rejection_names_the_item_and_what_was_published(pgstac_api, tmp_path):
    """An id valid in STAC but refused by the server (400): the error names it and the partial state."""
    cat = model_catalog(tmp_path / "m", "reject-me", task="classification", bands=NIR_BANDS, bbox=[0, 0, 1, 1])
    path = item_path(cat, "reject-me")
    data = json.loads(path.read_text())
    data["id"] = "reject:me"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["publish", str(cat), "--api", pgstac_api.url, "--token", pgstac_api.token])
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line
    assert line.startswith("Error: the STAC API refused item 'reject:me' (collection 'reject-me-collection'): "
                           "HTTP 400 Bad Request: ID (reject:me) cannot contain")
    assert line.endswith("(published before this failure: 1 created, 0 updated; 1 not published)")


def test_server_side_geometry_rejection_lists_the_field(pgstac_api, tmp_path):
    """An unclosed ring passes the GeoJSON schema but not the server's model (HTTP 400 with pydantic details)."""
    cat = model_catalog(tmp_path / "m", "open-ring", task="classification", bands=NIR_BANDS, bbox=[0, 0, 1, 1])
    path = item_path(cat, "open-ring")
    data = json.loads(path.read_text())
    data["geometry"]["coordinates"][0][-1] = [0.5, 0.5]
    path.write_text(json.dumps(data))
    with pytest.raises(PublishError, match=r"refused item 'open-ring' .*HTTP 400 Bad Request: geometry\.Polygon"
                                           r"\.coordinates: Value error, All linear rings"):
        publish(cat, pgstac_api.url, headers=_auth(pgstac_api))


def test_invalid_item_is_not_uploaded(pgstac_api, tmp_path):
    cat = model_catalog(tmp_path / "m", "invalid-m", task="classification", bands=NIR_BANDS, bbox=[0, 0, 1, 1])
    edit_item(cat, "invalid-m", **{"mlm:tasks": ["telepathy"]})
    with pytest.raises(InvalidInput, match=r"^nothing published: \d+ validation problem\(s\) in .*invalid-m\.json"):
        publish(cat, pgstac_api.url, headers=_auth(pgstac_api))
    assert _get(pgstac_api, "/collections/invalid-m-collection").status_code == 404


def test_asset_without_href_is_a_validation_error_not_a_crash(pgstac_api, tmp_path):
    cat = model_catalog(tmp_path / "m", "nohref-m", task="classification", bands=NIR_BANDS, bbox=[0, 0, 1, 1])
    path = next(cat.rglob("nohref-m.json"))
    data = json.loads(path.read_text())
    data["assets"]["notes"] = {"title": "an asset that lost its href"}
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match=r"^nothing published: .*'href' is a required property"):
        publish(cat, pgstac_api.url, headers=_auth(pgstac_api))
    assert _get(pgstac_api, "/collections/nohref-m-collection").status_code == 404


def test_broken_link_is_not_uploaded(pgstac_api, tmp_path):
    cat = model_catalog(tmp_path / "m", "broken-m", task="classification", bands=NIR_BANDS, bbox=[0, 0, 1, 1])
    shutil.rmtree(cat / "broken-m-collection" / "broken-m")
    result = CliRunner().invoke(main, ["publish", str(cat), "--api", pgstac_api.url, "--token", pgstac_api.token])
    assert result.exit_code == 1
    assert "broken-m.json" in result.output and "\n" not in result.output.strip()
    assert _get(pgstac_api, "/collections/broken-m-collection").status_code == 404


def test_item_without_known_collection_publishes_nothing(pgstac_api, mlm_examples):
    """The official example names collection 'ml-model-examples', which neither the file nor the API has."""
    with pytest.raises(PublishError, match=r"^nothing published: item 'example-model' \(collection "
                                           r"'ml-model-examples'\) goes into a collection the STAC API does not"):
        publish(mlm_examples / "item_basic.json", pgstac_api.url, headers=_auth(pgstac_api))


def test_database_down_is_a_clear_5xx_error(tmp_path):
    cat = model_catalog(tmp_path / "m", "db-down", task="classification", bands=NIR_BANDS, bbox=[0, 0, 1, 1])
    with running_pgstac() as api:
        api.stop_database()
        with pytest.raises(PublishError, match=r"refused collection 'db-down-collection': HTTP 5\d\d .*"
                                               r"published before this failure: nothing"):
            publish(cat, api.url, headers=_auth(api))
        result = CliRunner().invoke(main, ["search", "--api", api.url, "--task", "classification"])
        assert result.exit_code == 1
        assert result.output.startswith(f"Error: searching the STAC API at {api.url} failed: ")


def test_search_url_that_is_no_stac_api(pgstac_api):
    result = CliRunner().invoke(main, ["search", "--api", f"{pgstac_api.url}/no/such/path"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot open the STAC API at {pgstac_api.url}/no/such/path: ")


# --- planning (no server) -----------------------------------------------------------------------------------


def test_base_href_must_be_a_url_and_cover_the_files(tmp_path):
    cat = model_catalog(tmp_path / "m", "plan-m", task="classification", bands=NIR_BANDS, bbox=[0, 0, 1, 1])
    with pytest.raises(InvalidInput, match="is not an http"):
        plan_publication(cat, base_href="/srv/models")
    edit = json.loads(item_path(cat, "plan-m").read_text())
    edit["assets"]["model"]["href"] = str(tmp_path / "elsewhere.onnx")
    item_path(cat, "plan-m").write_text(json.dumps(edit))
    with pytest.raises(InvalidInput, match="outside the catalog directory"):
        plan_publication(cat, base_href=BASE)


def test_catalog_without_collection_needs_the_option(tmp_path, mlm_examples):
    root = tmp_path / "loose"
    root.mkdir()
    item = json.loads((mlm_examples / "item_eo_bands.json").read_text())
    del item["collection"]
    item["links"] = []
    (root / "item.json").write_text(json.dumps(item))
    (root / "catalog.json").write_text(json.dumps({
        "type": "Catalog", "stac_version": "1.0.0", "id": "loose", "description": "no collections",
        "links": [{"rel": "item", "href": "./item.json"}]}))
    with pytest.raises(InvalidInput, match=r"item 'resnet-18_sentinel-2_all_moco_classification' .* belongs to no collection"):
        plan_publication(root)
    plan = plan_publication(root, collection="mine")
    assert [(u.kind, u.collection_id, u.keep_existing) for u in plan.uploads] == [
        ("collection", "mine", True), ("item", "mine", False)]
    assert plan.uploads[1].data["collection"] == "mine" and plan.uploads[1].data["links"] == []


def test_auth_headers_from_option_env_and_header(monkeypatch):
    monkeypatch.setenv("MLMKIT_API_TOKEN", "from-env")
    assert auth_headers() == {"Authorization": "Bearer from-env"}
    assert auth_headers("given") == {"Authorization": "Bearer given"}
    assert auth_headers("given", {"authorization": "Basic abc"}) == {"authorization": "Basic abc"}
    assert parse_header("X-Api-Key:  s3cret ") == ("X-Api-Key", "s3cret")
    with pytest.raises(InvalidInput, match="is not 'Name: value'"):
        parse_header("no-colon")


def test_single_item_file_publishes_into_its_collection(tmp_path):
    cat = model_catalog(tmp_path / "m", "single-m", task="classification", bands=NIR_BANDS, bbox=[0, 0, 1, 1])
    plan = plan_publication(Path(item_path(cat, "single-m")))
    assert [(u.kind, u.collection_id) for u in plan.uploads] == [("item", "single-m-collection")]


def test_predict_like_catalog_with_cog_assets(pgstac_api, tmp_path):
    """Any STAC catalog publishes, not only models: a collection of items with GeoTIFF assets under --base-href."""
    root = tmp_path / "prediction"
    catalog = pystac.Catalog(id="prediction", description="a prediction output")
    collection = pystac.Collection(id="pred-scenes", description="predicted maps", license="proprietary",
                                   extent=pystac.Extent(pystac.SpatialExtent([[10.0, 50.0, 10.01, 50.01]]),
                                                        pystac.TemporalExtent([[None, None]])))
    catalog.add_child(collection)
    for index in range(2):
        box = [10.0, 50.0, 10.01, 50.01]
        geometry = {"type": "Polygon", "coordinates": [[[10.0, 50.0], [10.01, 50.0], [10.01, 50.01], [10.0, 50.01],
                                                        [10.0, 50.0]]]}
        item = pystac.Item(id=f"pred-{index}", geometry=geometry, bbox=box,
                           datetime=pystac.utils.str_to_datetime("2024-05-01T00:00:00Z"), properties={})
        collection.add_item(item)
    catalog.normalize_hrefs(str(root))
    for item in collection.get_items():
        tif = Path(item.get_self_href()).parent / "map.tif"
        tif.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(tif, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8", crs="EPSG:4326",
                           transform=Affine(0.0025, 0.0, 10.0, 0.0, -0.0025, 50.01)) as dst:
            dst.write(np.zeros((1, 4, 4), np.uint8))
        item.add_asset("data", pystac.Asset(href="./map.tif", media_type=pystac.MediaType.COG, roles=["data"]))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)

    summary = publish(root, pgstac_api.url, headers=_auth(pgstac_api), base_href="https://maps.example.org/run1")
    assert summary.created == ["collection 'pred-scenes'", "item 'pred-0' (collection 'pred-scenes')",
                               "item 'pred-1' (collection 'pred-scenes')"]
    item = _get(pgstac_api, "/collections/pred-scenes/items/pred-1").json()
    assert item["assets"]["data"]["href"] == "https://maps.example.org/run1/pred-scenes/pred-1/map.tif"
    # Not models: a model search over the API does not list them.
    assert search_api(pgstac_api.url, ModelQuery(collections=("pred-scenes",))) == []
