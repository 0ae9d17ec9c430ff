"""One catalog out of several: the last step of a scattered CWL run.

Each scattered `predict` job writes its own catalog; an ADES stage-out (and a user) expects a single
`catalog.json` linking every result Item, with local assets beside the Items under relative hrefs.
Lineage links (derived_from, source) are re-written for the Items' new place, so they keep pointing at
the same documents.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pystac

from mlmkit.atomic import atomic_output_dir
from mlmkit.errors import InvalidInput
from mlmkit.provenance import absolute_lineage, settle_lineage
from mlmkit.stacio import is_url, iter_items, read_stac


def _copy_local_assets(item: pystac.Item, item_dir: Path) -> None:
    """Copy the item's local asset files into `item_dir` and point the assets at the copies."""
    for key, asset in item.assets.items():
        source = asset.href
        if is_url(source):
            continue
        target = item_dir / Path(source).name
        if target.exists():
            raise InvalidInput(f"item {item.id} has two assets named {target.name}; expected distinct file names")
        try:
            shutil.copy2(source, target)
        except OSError as exc:
            raise InvalidInput(f"asset {key!r} of item {item.id} cannot be copied from {source}: {exc.strerror}") from exc
        asset.href = f"./{target.name}"


def _unique_items(sources: list[str]) -> list[pystac.Item]:
    """Detached copies of every Item of the sources, asset hrefs absolute so the Items can move."""
    items: dict[str, pystac.Item] = {}
    for source in sources:
        for item in iter_items(source):
            if item.id in items:
                raise InvalidInput(f"item id {item.id!r} occurs in more than one input; expected unique ids")
            copy = item.clone()
            for link, original in zip(copy.links, item.links):  # pystac's Link.clone drops extra fields
                link.extra_fields = dict(original.extra_fields)
            copy.make_asset_hrefs_absolute()
            absolute_lineage(copy)
            for rel in ("root", "parent", "collection"):
                copy.clear_links(rel)
            copy.collection_id = None
            items[item.id] = copy
    return list(items.values())


def _merged_catalog(sources: list[str]) -> pystac.Catalog:
    first = read_stac(sources[0])
    title = getattr(first, "title", None) or "Merged results"
    description = getattr(first, "description", None) or "Results merged from several catalogs."
    return pystac.Catalog(id=first.id, title=title, description=description)


def merge_catalogs(sources: list[str], outdir: str | Path, overwrite: bool = False) -> Path:
    """Write OUTDIR/catalog.json linking every Item of `sources`, each in OUTDIR/<id>/ with its assets."""
    if not sources:
        raise InvalidInput("no catalogs to merge; expected one or more catalog directories, files or URLs")
    catalog = _merged_catalog(sources)
    with atomic_output_dir(outdir, overwrite) as work:
        for item in _unique_items(sources):
            catalog.add_item(item)
        catalog.normalize_hrefs(f"{work}/")
        for item in catalog.get_items():
            item_dir = Path(item.get_self_href()).parent
            item_dir.mkdir(parents=True)
            _copy_local_assets(item, item_dir)
            settle_lineage(item, item.get_self_href(), (work, Path(outdir).absolute()), "predict's --source-href")
        catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return Path(outdir) / "catalog.json"
