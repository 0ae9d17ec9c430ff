"""Checksums, atomic output directories and STAC source reading."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlmkit.stac.atomic import atomic_output_dir
from mlmkit.stac.checksum import file_checksum, verify_checksum
from mlmkit.errors import InvalidInput
from mlmkit.stac.read import iter_items, read_stac, resolve_href


def test_sha256_multihash_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"mlmkit" * 1000)
    expected = "1220" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_checksum(path) == expected
    verify_checksum(path, expected)


def test_checksum_mismatch_names_both_values(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    wrong = "1220" + "00" * 32
    with pytest.raises(InvalidInput, match="checksum mismatch.*" + wrong):
        verify_checksum(path, wrong)


def test_unknown_multihash_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    with pytest.raises(InvalidInput, match="not a supported hex multihash"):
        verify_checksum(path, "zz")


def test_atomic_dir_appears_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_output_dir(target) as work:
            (work / "catalog.json").write_text("{}")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_output_dir(target) as work:
        (work / "catalog.json").write_text("{}")
    assert (target / "catalog.json").read_text() == "{}"


def test_atomic_dir_refuses_non_empty_target(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep")
    with pytest.raises(InvalidInput, match="not empty"):
        with atomic_output_dir(tmp_path / "out"):
            pass
    with atomic_output_dir(tmp_path / "out", overwrite=True) as work:
        (work / "y").write_text("new")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["y"]


def test_resolve_href() -> None:
    assert resolve_href("b.tif", "/data/items/item.json") == "/data/items/b.tif"
    assert resolve_href("../b.tif", "https://h/x/items/i.json") == "https://h/x/b.tif"
    assert resolve_href("/abs/b.tif", "/data/item.json") == "/abs/b.tif"


def test_iter_items_of_catalog_directory(tmp_path: Path) -> None:
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "a", "geometry": None, "properties":
            {"datetime": "2020-01-01T00:00:00Z"}, "links": [], "assets": {}}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "a.json").write_text(json.dumps(item))
    (tmp_path / "catalog.json").write_text(json.dumps({
        "type": "Catalog", "stac_version": "1.0.0", "id": "c", "description": "d",
        "links": [{"rel": "item", "href": "./a/a.json"}]}))
    assert [i.id for i in iter_items(tmp_path)] == ["a"]


@pytest.mark.parametrize("content", ["not json", json.dumps({"type": "Thing"})])
def test_unreadable_sources_are_named(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(InvalidInput, match="x.json"):
        read_stac(path)


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        read_stac(tmp_path / "nope.json")
    with pytest.raises(InvalidInput, match="without catalog.json"):
        read_stac(tmp_path)
