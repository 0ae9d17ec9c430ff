"""stage-in copies only what the staged documents may name: no file of this machine through a remote document
or from outside a local input's folder, no asset overwriting another file of the staged tree, never the input
itself replaced; and STAC on an object store stages like STAC over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from http_helpers import static_server
from mlmkit.packages.stage import stage_in
from s3_helpers import moto_s3, s3_environment

BIN = Path(sys.executable).parent


def _item(item_id: str, assets: dict[str, str], links: list[dict] | None = None) -> dict:
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "geometry": None,
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": links or [],
            "assets": {key: {"href": href} for key, href in assets.items()}}


def _catalog(item_hrefs: list[str]) -> dict:
    return {"type": "Catalog", "stac_version": "1.0.0", "id": "cat", "description": "test",
            "links": [{"rel": "item", "href": href} for href in item_hrefs]}


def _write(path: Path, data: dict | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(json.dumps(data))
    return path


def _stage_in(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "mlmkit", "stage-in", *map(str, args)], capture_output=True, text=True)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def secret(tmp_path: Path) -> Path:
    return _write(tmp_path / "home" / "credentials", b"aws_secret_access_key = SECRET-VALUE\n")


def _nothing_staged(out: Path, secret: Path) -> None:
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*"))
    hits = [p for p in out.parent.parent.rglob("*") if p.is_file() and p != secret and b"SECRET" in p.read_bytes()]
    assert hits == []


def _refused_from_server(served: Path, name: str, out: Path, secret: Path) -> tuple[str, str]:
    """Stage `name` from a loopback server of `served`: the server's URL and the one-line refusal; nothing staged."""
    with static_server(served) as base:
        line = _one_line_error(_stage_in(f"{base}/{name}", "-o", out))
    _nothing_staged(out, secret)
    return base, line


def test_a_served_item_cannot_stage_a_local_file(tmp_path: Path, secret: Path) -> None:
    served = tmp_path / "served"
    _write(served / "item.json", _item("remote", {"B04": "./B04.tif", "creds": str(secret)}))
    _write(served / "B04.tif", b"band")
    base, line = _refused_from_server(served, "item.json", tmp_path / "work" / "out", secret)
    assert f"asset 'creds' of {base}/item.json is {secret}" in line and "expected a URL" in line


def test_a_served_catalog_cannot_link_a_local_document(tmp_path: Path, secret: Path) -> None:
    local_item = _write(tmp_path / "home" / "item.json", _item("local", {"creds": "./credentials"}))
    served = tmp_path / "served"
    _write(served / "catalog.json", _catalog([str(local_item)]))
    base, line = _refused_from_server(served, "catalog.json", tmp_path / "work" / "out", secret)
    assert f"item link of {base}/catalog.json is {local_item}" in line and "expected a URL" in line


def test_a_local_item_cannot_stage_a_file_outside_its_folder(tmp_path: Path, secret: Path) -> None:
    item = _write(tmp_path / "scene" / "item.json", _item("local", {"creds": "../home/credentials"}))
    out = tmp_path / "work" / "out"
    line = _one_line_error(_stage_in(item, "-o", out))
    assert f"asset 'creds' of {item} points at {secret}, outside its catalog {item.parent}" in line
    _nothing_staged(out, secret)


def test_assets_of_the_same_name_keep_their_own_content(tmp_path: Path) -> None:
    """Two Items mirrored into one folder, each with a B04.tif from elsewhere; an asset named catalog.json
    beside the root catalog: every staged asset has the bytes of its own source, the catalog stays one."""
    src = tmp_path / "src"
    sources = {"one": _write(src / "items" / "a" / "B04.tif", b"band of one"),
               "two": _write(src / "items" / "b" / "B04.tif", b"band of two"),
               "three": _write(src / "data" / "catalog.json", b"an asset that happens to be called catalog.json")}
    _write(src / "items" / "one.json", _item("one", {"B04": "./a/B04.tif"}))
    _write(src / "items" / "two.json", _item("two", {"B04": "./b/B04.tif"}))
    _write(src / "three.json", _item("three", {"data": "./data/catalog.json"}))
    _write(src / "catalog.json", _catalog(["./items/one.json", "./items/two.json", "./three.json"]))
    out = stage_in([str(src / "catalog.json")], tmp_path / "out")
    catalog = json.loads((out / "catalog.json").read_text())
    assert catalog["id"] == "cat" and catalog["type"] == "Catalog"
    staged = {}
    for link in (link for link in catalog["links"] if link["rel"] == "item"):
        item_path = out / link["href"]
        item = json.loads(item_path.read_text())
        (asset,) = item["assets"].values()
        staged[item["id"]] = (item_path.parent / asset["href"]).read_bytes()
    assert staged == {key: path.read_bytes() for key, path in sources.items()}


def test_stage_in_never_replaces_its_own_input(tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    _write(scene / "item" / "B04.tif", b"red")
    _write(scene / "item" / "B08.tif", b"nir")
    _write(scene / "item" / "item.json", _item("item", {"B04": "./B04.tif", "B08": "./B08.tif"}))
    _write(scene / "catalog.json", _catalog(["./item/item.json"]))
    before = _files(scene)
    line = _one_line_error(_stage_in(scene / "catalog.json", "-o", scene, "--asset", "B04", "--overwrite"))
    assert f"output directory {scene} contains the input" in line
    assert _files(scene) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]


def test_stage_in_of_an_item_on_s3_with_its_assets_on_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    red, nir = b"red band bytes", b"nir band bytes elsewhere"
    with moto_s3() as endpoint:
        s3_environment(monkeypatch, endpoint)
        client = boto3.client("s3", endpoint_url=endpoint)
        for bucket in ("scenes", "bands"):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket="scenes", Key="s2/item.json", Body=json.dumps(
            _item("s3-item", {"B04": "./B04.tif", "B08": "s3://bands/nir/B08.tif"})).encode())
        client.put_object(Bucket="scenes", Key="s2/B04.tif", Body=red)
        client.put_object(Bucket="bands", Key="nir/B08.tif", Body=nir)
        result = _stage_in("s3://scenes/s2/item.json", "-o", tmp_path / "out")
        missing = _stage_in("s3://scenes/s2/none.json", "-o", tmp_path / "none")
    assert _one_line_error(missing).startswith("Error: cannot read s3://scenes/s2/none.json: ")
    assert not (tmp_path / "none").exists()
    assert result.returncode == 0, result.stderr
    catalog_path = Path(result.stdout.strip())
    (link,) = [link for link in json.loads(catalog_path.read_text())["links"] if link["rel"] == "item"]
    item_path = catalog_path.parent / link["href"]
    item = json.loads(item_path.read_text())
    assert {key: (item_path.parent / asset["href"]).read_bytes() for key, asset in item["assets"].items()} == \
        {"B04": red, "B08": nir}
    assert [l["href"] for l in item["links"] if l["rel"] == "canonical"] == ["s3://scenes/s2/item.json"]
