"""The JSON schemas mlmkit ships: complete (every `$ref` resolves without the network), the published documents
unchanged, and used by default, so that `validate` works offline with no flags."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pystac
import rasterio
import pytest
import requests
from click.testing import CliRunner
from jsonschema_specifications import REGISTRY as SPECIFICATIONS

from mlmkit.cli import main
from mlmkit.stac import schemas
from mlmkit.stac.schemas import SchemaStore, shipped_dir

SHIPPED = sorted(path for path in shipped_dir().rglob("*.json"))


def url_of(path: Path) -> str:
    return "https://" + path.relative_to(shipped_dir()).as_posix()


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No schema mirror, an empty cache, and any download fails the test; returns the cache directory."""
    def no_network(*args, **kwargs):
        raise AssertionError(f"validation went online: {args}")

    monkeypatch.delenv("MLMKIT_SCHEMA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(requests, "get", no_network)
    schemas._shared_store.cache_clear()
    yield tmp_path / "cache"
    schemas._shared_store.cache_clear()


def test_the_shipped_set_covers_what_mlmkit_writes_and_the_stac_versions() -> None:
    urls = {url_of(path) for path in SHIPPED}
    for version in ("1.0.0", "1.1.0"):
        for spec in ("item-spec/json-schema/item.json", "catalog-spec/json-schema/catalog.json",
                     "collection-spec/json-schema/collection.json"):
            assert f"https://schemas.stacspec.org/v{version}/{spec}" in urls
    for minor in ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "1.5.1", "1.5.2"):
        assert f"https://stac-extensions.github.io/mlm/v{minor}/schema.json" in urls
    from pystac.extensions.classification import ClassificationExtension

    assert ClassificationExtension.get_schema_uri() in urls  # what a current pystac writes (v2.0.0)
    # every extension URL that mlmkit's writers name in their module constants
    import mlmkit.catalog.model_catalog as model_catalog
    import mlmkit.inference.catalog as result_catalog
    import mlmkit.mlm.build as build
    import mlmkit.mlm.spec as spec
    import mlmkit.stac.bands as bands
    import mlmkit.training.layout as layout

    constants = [value for module in (build, model_catalog, spec, bands, layout, result_catalog) for value in vars(module).values()]
    written = {url for value in constants for url in (value if isinstance(value, list) else [value])
               if isinstance(url, str) and url.startswith("https://") and url.endswith("/schema.json")}
    assert len(written) >= 12 and written <= urls, sorted(written - urls)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: url_of(path).removeprefix("https://"))
def test_every_ref_of_a_shipped_schema_resolves_offline(path: Path, offline: Path) -> None:
    store = SchemaStore(cache_dir=offline)
    url = url_of(path)
    store.validator(url)
    resolver = SPECIFICATIONS.combine(store.registry).resolver(url)  # the meta-schemas, as jsonschema adds them
    for ref in refs(json.loads(path.read_text())):
        target = urldefrag(urljoin(url, ref)).url
        if target != url and not target.startswith("http://json-schema.org/"):
            store.load(target)
        resolver.lookup(urljoin(url, ref) if not ref.startswith("#") else url + ref)
    assert not offline.exists()  # nothing was fetched or cached


def test_shipped_schemas_are_the_published_documents(schema_dir: Path) -> None:
    """The documents the public mirror holds; classification v2.0.0 as pystac ships it, PROJJSON v0.7 as
    rasterio's PROJ data has it (v0.5 has no such copy here)."""
    copies = {"stac-extensions.github.io/classification/v2.0.0/schema.json":
              Path(pystac.__file__).parent / "extensions" / "json-schema" / "classification" / "v2.0.0.json",
              "proj.org/schemas/v0.7/projjson.schema.json":
              Path(rasterio.__file__).parent / "proj_data" / "projjson.schema.json"}
    compared = 0
    for path in SHIPPED:
        relative = path.relative_to(shipped_dir()).as_posix()
        public = copies.get(relative, schema_dir / relative)
        if public.is_file():
            assert json.loads(path.read_text()) == json.loads(public.read_text()), path
            compared += 1
    assert compared == len(SHIPPED) - 1


def test_validate_with_no_flags_is_offline(offline: Path, mlm_examples: Path) -> None:
    sources = sorted(str(path) for path in mlm_examples.glob("*.json"))
    result = CliRunner().invoke(main, ["validate", *sources])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().endswith(f"documents in {len(sources)} sources valid")
    assert not offline.exists()


def test_a_schema_dropped_into_the_folder_is_used(offline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   mlm_examples: Path) -> None:
    folder = tmp_path / "json-schemas"
    shutil.copytree(shipped_dir(), folder)
    url = "https://stac-extensions.github.io/colour/v1.0.0/schema.json"
    target = folder / "stac-extensions.github.io" / "colour" / "v1.0.0" / "schema.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                                  "properties": {"properties": {"required": ["colour:name"]}}}))
    monkeypatch.setattr(schemas, "shipped_dir", lambda: folder)
    item = json.loads((mlm_examples / "item_basic.json").read_text())
    item["stac_extensions"].append(url)
    path = tmp_path / "item.json"
    path.write_text(json.dumps(item))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert "$.properties: 'colour:name' is a required property (colour v1.0.0 schema)" in result.stdout
