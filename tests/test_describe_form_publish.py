"""Publishing from the describe form, where the operator enabled it: the catalog kept where the operator serves
files, its Item and Collection upserted into a real STAC API (stac-fastapi-pgstac), the model served at the
href the API now holds; an id already published is refused beside the id field."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests

from form_helpers import form_server, hidden_model_info, messages_of, water_fields, water_model
from http_helpers import static_server
from mlmkit.catalog.validate import validate_source
from pgstac_server import pgstac_api  # noqa: F401  (fixture)

pytestmark = pytest.mark.pgstac


def _post(base: str, action: str, model: Path, fields: dict) -> requests.Response:
    with open(model, "rb") as stream:
        return requests.post(f"{base}/{action}", data=fields, files={"model": (model.name, stream)}, timeout=120)


def test_publish_keeps_the_catalog_served_and_upserts_it(pgstac_api, tmp_path, schema_dir) -> None:
    model = water_model(tmp_path / "water.onnx")
    files = tmp_path / "published"
    files.mkdir()
    with static_server(files) as files_url, form_server(
            tmp_path / "form-tmp", MLMKIT_SCHEMA_DIR=str(schema_dir), MLMKIT_API_TOKEN=pgstac_api.token,
            MLMKIT_DESCRIBE_PUBLISH_API=pgstac_api.url, MLMKIT_DESCRIBE_PUBLISH_DIR=str(files),
            MLMKIT_DESCRIBE_PUBLISH_URL=files_url) as base:
        page = _post(base, "upload", model, {})
        assert f"Publish to {pgstac_api.url}" in page.text
        fields = {**water_fields(), "model_info": hidden_model_info(page.text), "id": "form-water"}
        published = _post(base, "publish", model, fields)
        assert published.status_code == 201, published.text[-2000:]
        assert f"Published to {pgstac_api.url}: 2 created, 0 updated" in published.text

        url = f"{pgstac_api.url}/collections/form-water-collection/items/form-water"
        item = requests.get(url, timeout=30).json()
        href = item["assets"]["model"]["href"]
        assert href == f"{files_url}/form-water-catalog/form-water-collection/form-water/water.onnx"
        served = requests.get(href, timeout=30).content
        assert served == model.read_bytes()
        assert item["assets"]["model"]["file:checksum"] == "1220" + hashlib.sha256(served).hexdigest()
        assert validate_source(f"{files_url}/form-water-catalog/catalog.json", schema_dir) == []

        again = _post(base, "publish", model, fields)
        assert again.status_code == 422
        assert messages_of(again.text, "id") == [
            "Error: a model catalog form-water-catalog is already published here; expected another item id (or a "
            "new version in it)"]
    assert sorted(path.name for path in files.iterdir()) == ["form-water-catalog"]
