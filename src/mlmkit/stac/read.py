"""Reading STAC documents from a file, a URL or a directory holding a catalog, exactly as written.

An ADES stage-in hands a tool a directory with `catalog.json`; users hand it a
path or a URL to an Item. Every command accepts all three through this module.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pystac
import requests

from mlmkit.errors import InvalidInput, InvalidMetadata, NotFound, RemoteFailure, UnsafePath
from mlmkit.stac.objstore import is_object_store, open_store
from mlmkit.stac.safepath import local_file_inside

HTTP_TIMEOUT_S = 60
# What pystac (and pystac-client) raise on JSON that is not the STAC it should be: wrong types, missing fields.
MALFORMED_STAC = (pystac.STACError, pystac.STACTypeError, KeyError, TypeError, ValueError, AttributeError, IndexError)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(*parts: str | int) -> str:
    """`$.properties['mlm:input'][0]`, the notation jsonschema uses for its errors."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.match(part):
            path += f".{part}"
        else:
            path += f"[{part!r}]"
    return path


def is_url(href: str) -> bool:
    """Whether `href` is remote: http(s), or an s3/gs/az object."""
    return urlparse(str(href)).scheme in ("http", "https") or is_object_store(href)


def resolve_href(href: str, base: str | None) -> str:
    """An absolute path or URL for `href` as written relative to the document at `base`."""
    if is_url(href) or os.path.isabs(href) or base is None:
        return href
    if is_object_store(base):  # urljoin leaves schemes it does not know alone
        parsed = urlparse(base)
        path = posixpath.normpath(posixpath.join(posixpath.dirname(parsed.path), href))
        return f"{parsed.scheme}://{parsed.netloc}{path}"
    if is_url(base):
        return urljoin(base, href)
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(base)), href))


def read_json(href: str | Path) -> dict:
    """Load a JSON object (every STAC document and GeoJSON file is one); failures name the document and the reason."""
    href = str(href)
    try:
        if is_object_store(href):
            data = json.loads(_object_bytes(href))
        elif is_url(href):
            response = requests.get(href, timeout=HTTP_TIMEOUT_S)
            response.raise_for_status()
            data = response.json()
        else:
            with open(href, encoding="utf-8") as stream:
                data = json.load(stream)
    except (OSError, requests.RequestException, UnicodeError) as exc:
        failure = RemoteFailure if is_url(href) or is_object_store(href) else InvalidInput
        raise failure(f"cannot read {href}: {_one_line(exc)}") from exc
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested deeper than Python can parse
        raise InvalidMetadata(f"{href} is not valid JSON: {_one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise InvalidMetadata(f"{href} holds a JSON {json_type(data)}; expected a JSON object (a STAC document)")
    return data


def _object_bytes(href: str) -> bytes:
    """The content of an s3/gs/az object; a missing object or a refused read is an OSError."""
    store, key = open_store(href)  # first: without obstore installed it says how to install it
    import obstore
    from obstore.exceptions import BaseError

    try:
        return bytes(obstore.get(store, key).bytes())
    except BaseError as exc:
        raise OSError(str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__) from exc


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def document_href(source: str | Path) -> str:
    """The STAC document a source names: a directory stands for its catalog.json."""
    source = str(source)
    if not is_url(source) and os.path.isdir(source):
        catalog = os.path.join(source, "catalog.json")
        if not os.path.exists(catalog):
            raise NotFound(f"{source} is a directory without catalog.json; expected a STAC catalog directory")
        return os.path.abspath(catalog)
    if not is_url(source):
        if not os.path.exists(source):
            raise NotFound(f"{source} does not exist; expected a STAC Item/Catalog file, a directory or a URL")
        return os.path.abspath(source)
    return source


def read_stac(source: str | Path) -> pystac.STACObject:
    """A pystac object for a path, URL or catalog directory, with its self href set."""
    href = document_href(source)
    return stac_from_dict(read_json(href), href)


def stac_from_dict(data: dict, href: str | None) -> pystac.STACObject:
    """A pystac object exactly as written: no migration, which would rewrite extension versions."""
    if not isinstance(data, dict):
        raise InvalidMetadata(f"{href} holds a JSON {json_type(data)}; expected a JSON object (a STAC document)")
    kind = data.get("type")
    try:
        if kind == "Feature":
            obj: pystac.STACObject = pystac.Item.from_dict(data, href=href, migrate=False)
        elif kind == "Collection":
            obj = pystac.Collection.from_dict(data, href=href, migrate=False)
        elif kind == "Catalog":
            obj = pystac.Catalog.from_dict(data, href=href, migrate=False)
        else:
            raise InvalidMetadata(f"{href} has {_type_shown(kind)}; expected a STAC Item, Collection or Catalog")
    except MALFORMED_STAC as exc:
        raise InvalidMetadata(f"{href} is not a readable STAC document: {_one_line(exc)}; expected a STAC "
                           f"{kind if isinstance(kind, str) else 'document'} as the specification defines it") from exc
    published = published_self(data)
    if href and not is_url(href) and published and obj.get_single_link("canonical") is None:
        obj.add_link(pystac.Link("canonical", published, media_type=pystac.MediaType.GEOJSON if kind == "Feature"
                                 else pystac.MediaType.JSON))
    obj.set_self_href(href)
    return obj


def published_self(data: dict) -> str | None:
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


def _local(documents: Iterable[tuple[str | None, Iterable[str]]]) -> list[str]:
    """The local files among (document href, its asset hrefs as written) pairs."""
    hrefs = [href for document, assets in documents
             for href in (document, *(resolve_href(asset, document) for asset in assets))]
    return [href for href in hrefs if href and not is_url(href)]


def local_files(items: Iterable[pystac.Item]) -> list[str]:
    """The local files Items are read from (their documents and assets): inputs an output must not replace."""
    return _local((item.get_self_href(), [asset.href for asset in item.assets.values()]) for item in items)


def node_files(nodes: Iterable[Node]) -> list[str]:
    """The local files walked documents are read from (`local_files` for `walk`'s nodes)."""
    return _local((node.href, [asset["href"] for asset in (node.data.get("assets") or {}).values()]) for node in nodes)


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


def confine(href: str, document: str, folder: str | None, what: str) -> None:
    """Refuse an absolute `href` that a copy made from the `document` it is written in would read from this
    machine: a local path in a document read from a URL, or a file outside `folder`, the local input's folder."""
    if is_url(href):
        return
    if is_url(document) or folder is None:
        raise UnsafePath(f"{what} is {href}, a local path in a document read from a URL; expected a URL "
                           "(absolute, or relative to the document)")
    local_file_inside(href, folder, what)


def input_folder(root: str) -> str | None:
    """The folder local files of the input whose document is `root` must lie in; None for a URL."""
    return None if is_url(root) else os.path.dirname(root)


def walk(source: str | Path, confined: bool = False) -> Iterator[Node]:
    """Every Catalog, Collection and Item reachable from a source through child/item links, parents first.

    Iterative, so a hostile chain of thousands of nested catalogs cannot exhaust the Python stack.
    `confined`: links are followed only as `confine` allows, for copies of what is read.
    """
    root = document_href(source)
    pending: list[tuple[str, str | None, tuple[str, str] | None]] = [(root, None, None)]  # href, owner, (rel, from)
    seen: set[str] = set()
    while pending:
        href, owner, linked_from = pending.pop()
        if href in seen:
            continue
        seen.add(href)
        try:
            data = read_json(href)
        except InvalidInput as exc:
            if linked_from is None:
                raise
            raise type(exc)(f"broken {linked_from[0]} link in {linked_from[1]}: {exc}") from exc
        kind = data.get("type")
        if kind not in ("Feature", "Collection", "Catalog"):
            raise InvalidMetadata(f"{href} has {_type_shown(kind)}; expected a STAC Item, Collection or Catalog")
        if kind == "Collection":
            owner = _text_field(data, "id", href)
        collection = owner if kind != "Feature" else owner or _text_field(data, "collection", href, required=False)
        links = _links(data, href)
        _check_assets(data, href)
        yield Node(data=data, href=href, collection_id=collection)
        if kind != "Feature":
            followed = [(resolve_href(link["href"], href), owner, (link["rel"], href))
                        for link in links if link["rel"] in FOLLOWED_RELS]
            for target, _, (rel, _) in followed if confined else ():
                confine(target, href, input_folder(root), f"{rel} link of {href}")
            pending.extend(reversed(followed))


def _type_shown(kind: object) -> str:
    """'type 'Foo'' for a wrong type, 'no type' where the field is missing or null."""
    return "no type" if kind is None else f"type {_shown(kind)}"


def _shown(value: object) -> str:
    return repr(value) if len(repr(value)) <= 60 else f"a JSON {json_type(value)}"


def _text_field(data: dict, key: str, href: str, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidMetadata(f"{href}: {key} is {_shown(value)}; expected a string")
    return value


def _check_assets(data: dict, href: str) -> None:
    """Assets, where present, are an object of asset objects with a string href."""
    assets = data.get("assets", {})
    if not isinstance(assets, dict):
        raise InvalidMetadata(f"{href}: assets is a JSON {json_type(assets)}; expected an object of asset objects")
    for key, asset in assets.items():
        if not (isinstance(asset, dict) and isinstance(asset.get("href"), str)):
            raise InvalidMetadata(f"{href}: asset {_shown(key)} is {_shown(asset)}; expected an object with a string href")


def _links(data: dict, href: str) -> list[dict]:
    """The document's links, each an object with a string rel and href."""
    links = data.get("links", [])
    if not isinstance(links, list):
        raise InvalidMetadata(f"{href}: links is a JSON {json_type(links)}; expected an array of link objects")
    for index, link in enumerate(links):
        if not (isinstance(link, dict) and isinstance(link.get("href"), str) and isinstance(link.get("rel"), str)):
            raise InvalidMetadata(f"{href}: links[{index}] is {_shown(link)}; expected an object with string rel and href")
    return links
