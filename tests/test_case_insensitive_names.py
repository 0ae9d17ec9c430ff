"""Ids that differ only in case get names that differ also on a case-insensitive file system (macOS, Windows)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pystac
import pytest
from click.testing import CliRunner

from mlmkit.cli import main
from mlmkit.errors import InvalidInput
from mlmkit.stac.safepath import layout_catalog

WHEN = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _item(ident: str) -> pystac.Item:
    return pystac.Item(id=ident, geometry=None, bbox=None, datetime=WHEN, properties={})


def _folders(catalog: pystac.Catalog, root: Path) -> list[str]:
    """The directory of each document below the root, relative to it."""
    hrefs = [obj.get_self_href() for node, _, items in catalog.walk() for obj in (node, *items)]
    return [str(Path(href).parent.relative_to(root)) for href in hrefs if Path(href).parent != root]


def test_ids_differing_only_in_case_get_folders_differing_without_case(tmp_path: Path) -> None:
    catalog = pystac.Catalog(id="root", description="ids that differ only in case")
    catalog.add_child(pystac.Catalog(id="Scene", description="a catalog"))
    catalog.add_items([_item("scene"), _item("SCENE"), _item("other")])
    layout_catalog(catalog, tmp_path)
    folders = _folders(catalog, tmp_path)
    assert len({folder.casefold() for folder in folders}) == len(folders) == 4
    plain = {"Scene", "scene", "SCENE"} & set(folders)  # the first laid out of the three keeps its name
    assert len(plain) == 1 and "other" in folders
    assert all(re.fullmatch(r"scene-[0-9a-f]{10}", folder, re.IGNORECASE) for folder in set(folders) - plain - {"other"})


def test_an_id_that_occurs_twice_is_still_refused(tmp_path: Path) -> None:
    catalog = pystac.Catalog(id="root", description="one id twice")
    catalog.add_items([_item("scene"), _item("scene")])
    with pytest.raises(InvalidInput, match="occurs twice"):
        layout_catalog(catalog, tmp_path)


def test_merge_writes_items_differing_only_in_case_to_separate_folders(tmp_path: Path) -> None:
    sources = []
    for ident in ("Scene", "scene"):
        catalog = pystac.Catalog(id=f"results-{ident}", description="one result")
        catalog.add_item(_item(ident))
        catalog.normalize_and_save(str(tmp_path / ident), catalog_type=pystac.CatalogType.SELF_CONTAINED)
        sources.append(str(tmp_path / ident / "catalog.json"))
    result = CliRunner().invoke(main, ["merge", *sources, "-o", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    folders = sorted(path.name for path in (tmp_path / "merged").iterdir() if path.is_dir())
    assert len({folder.casefold() for folder in folders}) == 2
    merged = pystac.Catalog.from_file(str(tmp_path / "merged" / "catalog.json"))
    assert sorted(item.id for item in merged.get_items()) == ["Scene", "scene"]
