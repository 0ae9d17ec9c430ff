"""A local, self-contained copy of STAC Items and their assets: a directory with catalog.json, as a stage-in writes.

CWL tools see only the Directories they are given (mounted into a container as they are), so Items read from
URLs, or lying outside any catalog directory, are copied into one first. File and directory names come from
positions and sanitised basenames, never from ids or hrefs as written.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Collection
from pathlib import Path
from urllib.parse import unquote, urlparse

import pystac

from mlmkit.errors import InvalidInput
from mlmkit.stacio import download, is_url, iter_items, resolve_href

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _file_name(href: str, key: str, used: set[str]) -> str:
    """A safe, unused file name for an asset: its basename when harmless, else its key made safe."""
    base = unquote(Path(urlparse(href).path if is_url(href) else href).name)
    name = base if base and not _SAFE.search(base) and not base.startswith(".") else _SAFE.sub("-", key).lstrip(".-")
    name = name or "asset"
    stem, suffix, n = Path(name).stem, Path(name).suffix, 1
    while name in used:
        n += 1
        name = f"{stem}-{n}{suffix}"
    used.add(name)
    return name


def _fetch(href: str, target: Path, what: str) -> None:
    if is_url(href):
        download(href, target, what)
        return
    try:
        shutil.copyfile(href, target)
    except OSError as exc:
        raise InvalidInput(f"cannot copy {what} from {href}: {exc.strerror}; expected a readable file") from exc


def _detached(item: pystac.Item) -> pystac.Item:
    copy = item.clone()
    for rel in ("root", "parent", "collection", "self"):
        copy.clear_links(rel)
    copy.collection_id = None
    return copy


def _copy_assets(source: pystac.Item, copy: pystac.Item, roles: Collection[str] | None) -> None:
    """Copy the assets with one of `roles` (all when None) beside `copy`; the others keep absolute hrefs."""
    item_dir = Path(copy.get_self_href()).parent
    used: set[str] = set()
    for key, asset in copy.assets.items():
        href = resolve_href(source.assets[key].href, source.get_self_href())
        if roles is not None and not set(asset.roles or ()) & set(roles):
            asset.href = href
            continue
        name = _file_name(href, key, used)
        _fetch(href, item_dir / name, f"asset {key!r} of item {source.id!r}")
        asset.href = f"./{name}"


def copy_items(source: str, outdir: Path, roles: Collection[str] | None = None) -> Path:
    """Write outdir/catalog.json linking a copy of every Item of `source` (a path or URL), assets beside each.

    Only assets with one of `roles` are copied when roles are given (an MLM Item needs its model and weights,
    not its checkpoint); the others keep absolute hrefs.
    """
    items = list(iter_items(source))
    if not items:
        raise InvalidInput(f"{source} holds no STAC Items; expected an Item or a catalog with Items")
    outdir.mkdir(parents=True)
    catalog = pystac.Catalog(id="local-copy", description=f"Local copy of {source}")
    catalog.set_self_href(str(outdir / "catalog.json"))
    for n, item in enumerate(items):
        copy = _detached(item)
        catalog.add_item(copy)  # pystac places it by id; it goes by position instead, before assets are set
        copy.set_self_href(str(outdir / f"item-{n}" / "item.json"))
        Path(copy.get_self_href()).parent.mkdir()
        _copy_assets(item, copy, roles)
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return outdir
