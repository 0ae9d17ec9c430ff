"""Reading STAC documents from a file, a URL or a directory holding a catalog, exactly as written.

An ADES stage-in hands a tool a directory with `catalog.json`; users hand it a
path or a URL to an Item. Every command accepts all three through this module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pystac
import requests

from mlmkit.errors import InvalidInput

HTTP_TIMEOUT_S = 60


def is_url(href: str) -> bool:
    return urlparse(str(href)).scheme in ("http", "https")


def resolve_href(href: str, base: str | None) -> str:
    """An absolute path or URL for `href` as written relative to the document at `base`."""
    if is_url(href) or os.path.isabs(href) or base is None:
        return href
    if is_url(base):
        return urljoin(base, href)
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(base)), href))


def read_json(href: str | Path) -> dict:
    """Load a JSON document; failures name the document and the reason."""
    href = str(href)
    try:
        if is_url(href):
            response = requests.get(href, timeout=HTTP_TIMEOUT_S)
            response.raise_for_status()
            return response.json()
        with open(href, encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, requests.RequestException) as exc:
        raise InvalidInput(f"cannot read {href}: {exc}") from exc
    except ValueError as exc:
        raise InvalidInput(f"{href} is not valid JSON: {exc}") from exc


def document_href(source: str | Path) -> str:
    """The STAC document a source names: a directory stands for its catalog.json."""
    source = str(source)
    if not is_url(source) and os.path.isdir(source):
        catalog = os.path.join(source, "catalog.json")
        if not os.path.exists(catalog):
            raise InvalidInput(f"{source} is a directory without catalog.json; expected a STAC catalog directory")
        return os.path.abspath(catalog)
    if not is_url(source):
        if not os.path.exists(source):
            raise InvalidInput(f"{source} does not exist; expected a STAC Item/Catalog file, a directory or a URL")
        return os.path.abspath(source)
    return source


def read_stac(source: str | Path) -> pystac.STACObject:
    """A pystac object for a path, URL or catalog directory, with its self href set."""
    href = document_href(source)
    return stac_from_dict(read_json(href), href)


def stac_from_dict(data: dict, href: str | None) -> pystac.STACObject:
    """A pystac object exactly as written: no migration, which would rewrite extension versions."""
    kind = data.get("type")
    try:
        if kind == "Feature":
            obj: pystac.STACObject = pystac.Item.from_dict(data, href=href, migrate=False)
        elif kind == "Collection":
            obj = pystac.Collection.from_dict(data, href=href, migrate=False)
        elif kind == "Catalog":
            obj = pystac.Catalog.from_dict(data, href=href, migrate=False)
        else:
            raise InvalidInput(f"{href} has type {kind!r}; expected a STAC Item, Collection or Catalog")
    except (KeyError, TypeError, ValueError, pystac.STACError) as exc:
        raise InvalidInput(f"{href} is not a readable STAC document: {exc}") from exc
    published = _published_self(data)
    if href and not is_url(href) and published and obj.get_single_link("canonical") is None:
        obj.add_link(pystac.Link("canonical", published, media_type=pystac.MediaType.GEOJSON if kind == "Feature"
                                 else pystac.MediaType.JSON))
    obj.set_self_href(href)
    return obj


def _published_self(data: dict) -> str | None:
    """The absolute URL a local copy of a published document names as its `self`: where it really lives."""
    links = data.get("links") if isinstance(data.get("links"), list) else []
    href = next((link.get("href") for link in links if isinstance(link, dict) and link.get("rel") == "self"), None)
    return href if isinstance(href, str) and is_url(href) else None


def iter_items(source: str | Path) -> Iterator[pystac.Item]:
    """Every Item reachable from a source: the Item itself, or a catalog's items recursively."""
    for node in walk(source):
        if node.kind == "Feature":
            yield stac_from_dict(node.data, node.href)


def asset_href(item: pystac.Item, key: str) -> str:
    """The absolute href of an item's asset."""
    asset = item.assets[key]
    return resolve_href(asset.href, item.get_self_href())


FOLLOWED_RELS = ("child", "item")


@dataclass(frozen=True)
class Node:
    """One document of a catalog: its JSON, where it lives, and the nearest Collection above or at it."""

    data: dict
    href: str
    collection_id: str | None

    @property
    def kind(self) -> str:
        return self.data.get("type", "")


def walk(source: str | Path) -> Iterator[Node]:
    """Every Catalog, Collection and Item reachable from a source through child/item links, parents first."""
    href = document_href(source)
    yield from _walk(href, read_json(href), None, set())


def _walk(href: str, data: dict, owner: str | None, seen: set[str]) -> Iterator[Node]:
    kind = data.get("type")
    if kind not in ("Feature", "Collection", "Catalog"):
        raise InvalidInput(f"{href} has type {kind!r}; expected a STAC Item, Collection or Catalog")
    seen.add(href)
    if kind == "Collection":
        owner = data.get("id")
    yield Node(data=data, href=href, collection_id=owner if kind != "Feature" else owner or data.get("collection"))
    if kind == "Feature":
        return
    for link in data.get("links", []):
        if link.get("rel") not in FOLLOWED_RELS or "href" not in link:
            continue
        target = resolve_href(link["href"], href)
        if target in seen:
            continue
        try:
            child = read_json(target)
        except InvalidInput as exc:
            raise InvalidInput(f"broken {link['rel']} link in {href}: {exc}") from exc
        yield from _walk(target, child, owner, seen)
