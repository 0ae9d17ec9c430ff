"""Results that stay valid when a current pystac re-saves them, as a platform's stage-out does.

pystac migrates extension schema URIs it knows on read (classification v1.1.0 -> v2.0.0): every version it
writes for the documents mlmkit writes must be validatable offline, from the shared mirror or the schemas
mlmkit ships (mlmkit/stac/json-schemas, which hold classification v2.0.0).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pystac
import pytest

from cwl_fixtures import BIN
from mlmkit.stac.schemas import shipped_dir
from test_provenance import inputs  # noqa: F401 (the model and scene fixture)

CLASSIFICATION_V2 = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, schema_dir: Path) -> Path:
    """The shared mirror with the schemas mlmkit ships laid over it."""
    root = tmp_path_factory.mktemp("mirror") / "schemas"
    shutil.copytree(schema_dir, root)
    shutil.copytree(shipped_dir(), root, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="module")
def written(inputs: tuple[Path, Path], tmp_path_factory) -> tuple[Path, Path]:
    """(an MLM model catalog, a predict result catalog) as mlmkit writes them."""
    model, scene = inputs
    results = tmp_path_factory.mktemp("resave") / "results"
    run = subprocess.run([BIN / "mlmkit", "predict", "-m", model, "-i", scene, "-o", results], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    return model, results


def resave(catalog: Path, name: str) -> Path:
    """What a stage-out with a current pystac does: read the catalog and save it (a copy beside the original,
    so that relative lineage hrefs still resolve)."""
    target = catalog.with_name(f"{catalog.name}-{name}")
    shutil.copytree(catalog, target)
    read = pystac.Catalog.from_file(str(target / "catalog.json"))
    read.normalize_hrefs(str(target))
    read.save()
    return target


def mlmkit_validate(path: Path, mirror: Path) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "mlmkit", "validate", "--schema-dir", mirror, path], capture_output=True, text=True)


def extension_uris(catalog: Path) -> set[str]:
    return {uri for path in catalog.rglob("*.json") for uri in json.loads(path.read_text()).get("stac_extensions", [])}


@pytest.mark.parametrize("which", ["model", "results"])
def test_pystac_resaved_documents_validate_offline(written, mirror: Path, which: str, tmp_path: Path) -> None:
    catalog = written[0] if which == "model" else written[1]
    saved = resave(catalog, tmp_path.name)
    uris = extension_uris(saved)
    if which == "results":
        assert CLASSIFICATION_V2 in uris and CLASSIFICATION_V2 not in extension_uris(catalog)  # pystac migrated it
    for uri in uris:  # every schema a re-saved document names is there to validate against, offline
        parsed = urlsplit(uri)
        assert (mirror / parsed.netloc / parsed.path.lstrip("/")).is_file(), uri
    result = mlmkit_validate(saved, mirror)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shared_mirror_alone_lacks_the_migrated_schema(written, schema_dir: Path, tmp_path: Path) -> None:
    """Why mlmkit ships the file: without it a re-saved result cannot be checked offline."""
    saved = resave(written[1], tmp_path.name)
    result = mlmkit_validate(saved, schema_dir)
    assert result.returncode != 0 and "classification/v2.0.0" in result.stdout + result.stderr


def test_a_migrated_result_breaking_v2_is_refused(written, mirror: Path, tmp_path: Path) -> None:
    """The shipped schema is the real v2.0.0 rule set: a class name it forbids (v1.1.0 allowed it) is caught."""
    saved = resave(written[1], tmp_path.name)
    item_path = next(saved.glob("*/*.json"))
    item = json.loads(item_path.read_text())
    data = next(asset for asset in item["assets"].values() if "classification:classes" in asset)
    data["classification:classes"][0]["name"] = "not a machine name"
    item_path.write_text(json.dumps(item))
    result = mlmkit_validate(saved, mirror)
    assert result.returncode != 0 and "not a machine name" in result.stdout + result.stderr
