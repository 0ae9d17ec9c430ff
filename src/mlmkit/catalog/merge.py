"""One catalog out of several: the last step of a scattered CWL run.

Each scattered `predict` job writes its own catalog; an ADES stage-out (and a user) expects a single
`catalog.json` linking every result Item, with local assets beside the Items under relative hrefs.
Ids only name directories through safe names, and only files inside a source's catalog directory are
copied: an asset href like `../../etc/passwd` (or a symlink out of the catalog) is refused.
Lineage links (derived_from, source) are re-written for the Items' new place, so they keep pointing at
the same documents.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pystac

from mlmkit.stac.atomic import atomic_output_dir
from mlmkit.errors import InvalidArgument, InvalidInput, InvalidMetadata, UnsafePath
from mlmkit.catalog.provenance import PREDICT_HREF_INPUTS, absolute_lineage, settle_lineage
from mlmkit.stac.safepath import layout_catalog, local_file_inside, safe_name
from mlmkit.stac.read import document_href, is_url, iter_items, local_files, read_stac
from mlmkit.stac.write import save_catalog


@dataclass
class _Source:
    """An Item to merge and the catalog directory its local files must lie in (None for a remote catalog)."""

    item: pystac.Item
    root: str | None
    files: list[str]


def _copy_local_assets(source: _Source, item_dir: Path) -> None:
    """Copy the item's local asset files into `item_dir` and point the assets at the copies."""
    item = source.item
    for key, asset in item.assets.items():
        href = asset.href
        if is_url(href):
            continue
        what = f"asset {key!r} of item {item.id!r}"
        if source.root is None:
            raise UnsafePath(f"{what} points at the local file {href} from a remote catalog; expected URLs only")
        real = local_file_inside(href, source.root, what)
        target = item_dir / safe_name(Path(href).name, "asset")
        if target.exists():
            raise InvalidMetadata(f"item {item.id!r} has two assets named {target.name}; expected distinct file names")
        try:
            shutil.copyfile(real, target)
            shutil.copystat(real, target)
        except OSError as exc:
            if exc.filename is None or str(exc.filename) == str(target):
                raise  # a failure to write (e.g. a full disk) is the output's, reported as such
            raise InvalidInput(f"{what} cannot be copied from {href}: {exc.strerror}") from exc
        asset.href = f"./{target.name}"


def _unique_items(sources: list[str]) -> list[_Source]:
    """Detached copies of every Item of the sources, asset hrefs absolute so the Items can move."""
    items: dict[str, _Source] = {}
    for source in sources:
        href = document_href(source)
        root = None if is_url(href) else os.path.dirname(href)
        for item in iter_items(source):
            if item.id in items:
                raise InvalidMetadata(f"item id {item.id!r} occurs in more than one input; expected unique ids")
            copy = item.clone()
            for link, original in zip(copy.links, item.links):  # pystac's Link.clone drops extra fields
                link.extra_fields = dict(original.extra_fields)
            copy.make_asset_hrefs_absolute()
            absolute_lineage(copy)
            for rel in ("root", "parent", "collection"):
                copy.clear_links(rel)
            copy.collection_id = None
            items[item.id] = _Source(copy, root, local_files([item]))
    return list(items.values())


def _merged_catalog(sources: list[str]) -> pystac.Catalog:
    first = read_stac(sources[0])
    title = getattr(first, "title", None) or "Merged results"
    description = getattr(first, "description", None) or "Results merged from several catalogs."
    return pystac.Catalog(id=first.id, title=title, description=description)


def merge_catalogs(sources: list[str], outdir: str | Path, overwrite: bool = False) -> Path:
    """Write OUTDIR/catalog.json linking every Item of `sources`, each in OUTDIR/<safe id>/ with its assets."""
    if not sources:
        raise InvalidArgument("no catalogs to merge; expected one or more catalog directories, files or URLs")
    catalog = _merged_catalog(sources)
    merged = _unique_items(sources)
    inputs = [*sources, *(path for entry in merged for path in entry.files)]
    with atomic_output_dir(outdir, overwrite, inputs) as work:
        for entry in merged:
            catalog.add_item(entry.item)
        layout_catalog(catalog, work)
        for entry in merged:
            item_dir = Path(entry.item.get_self_href()).parent
            item_dir.mkdir(parents=True)
            _copy_local_assets(entry, item_dir)
            settle_lineage(entry.item, entry.item.get_self_href(), (work, Path(outdir).absolute()),
                           PREDICT_HREF_INPUTS)
        save_catalog(catalog)
    return Path(outdir) / "catalog.json"
