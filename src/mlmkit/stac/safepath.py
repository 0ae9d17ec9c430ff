"""Metadata is data, never a path: safe file names for ids, containment checks for hrefs.

Item, Collection and Catalog ids, asset keys and hrefs come from other people's documents. An id like
`../../../X` must not choose where a file lands, and an asset href like `../../etc/passwd` must not
make a command copy (or upload) a file from outside the catalog it belongs to.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from pathlib import Path

import pystac
from pystac.layout import HrefLayoutStrategy

from mlmkit.errors import InvalidInput, InvalidMetadata, UnsafePath

_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
SLUG_LENGTH = 80


def safe_name(text: object, fallback: str = "item") -> str:
    """A file or directory name for metadata text: the text itself when it is already a plain name,
    else an ASCII slug plus a hash of the text, so distinct texts never share a name."""
    text = str(text)
    return text if _SAFE.fullmatch(text) else hashed_name(text, fallback)


def hashed_name(text: str, fallback: str = "item") -> str:
    """An ASCII slug of `text` plus a hash of it (lowercase hex): names of distinct texts differ also when
    compared without case."""
    slug = _UNSAFE_RUN.sub("-", text).strip(".-")[:SLUG_LENGTH].rstrip(".-") or fallback
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug}-{digest}"


def is_within(path: str | Path, root: str | Path) -> bool:
    """Whether `path` is `root` or lies below it once both are resolved (symlinks followed)."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or os.path.commonpath([real, base]) == base


def local_file_inside(path: str | Path, root: str | Path, what: str) -> Path:
    """The real path of the local file `path`, refused unless it is a file inside `root` (symlinks followed)."""
    real = Path(os.path.realpath(path))
    if not is_within(real, root):
        shown = f"{path} (a link to {real})" if str(real) != os.path.normpath(str(path)) else str(path)
        raise UnsafePath(f"{what} points at {shown}, outside its catalog {root}; "
                           "expected local files inside the catalog directory")
    if not real.is_file():
        raise InvalidInput(f"{what} points at {path}, which is not a readable file; expected a local file")
    return real


class SafeLayoutStrategy(HrefLayoutStrategy):
    """pystac's best-practice layout (`<id>/<id>.json`, `<id>/collection.json`) with safe names for ids.

    Two ids that differ only in case ('Scene', 'scene') would share a directory on a case-insensitive file
    system (macOS, Windows): the second one to be laid out in a directory gets its hashed name instead.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}  # (parent directory, name without case) -> the id it names

    def _name(self, ident: str, parent_dir: str, fallback: str) -> str:
        folder = posixpath.normpath(parent_dir)
        for name in (safe_name(ident, fallback), hashed_name(ident, fallback)):
            if self._ids.setdefault((folder, name.casefold()), ident) == ident:
                break
        return name  # both names taken by other ids: layout_catalog refuses the shared file

    def get_catalog_href(self, cat: pystac.Catalog, parent_dir: str, is_root: bool) -> str:
        root = parent_dir if is_root else posixpath.join(parent_dir, self._name(cat.id, parent_dir, "catalog"))
        return posixpath.join(root, cat.DEFAULT_FILE_NAME)

    def get_collection_href(self, col: pystac.Collection, parent_dir: str, is_root: bool) -> str:
        root = parent_dir if is_root else posixpath.join(parent_dir, self._name(col.id, parent_dir, "collection"))
        return posixpath.join(root, col.DEFAULT_FILE_NAME)

    def get_item_href(self, item: pystac.Item, parent_dir: str) -> str:
        name = self._name(item.id, parent_dir, "item")
        return posixpath.join(parent_dir, name, f"{name}.json")


def layout_catalog(catalog: pystac.Catalog, root_dir: str | Path) -> None:
    """Set every document's href under `root_dir` from safe names; two documents never share a file, also
    on a case-insensitive file system."""
    root = os.path.abspath(root_dir)
    catalog.normalize_hrefs(f"{root}/", strategy=SafeLayoutStrategy())  # trailing slash: ".partial" is no suffix
    owners: dict[str, str] = {}
    for node, _, items in catalog.walk():
        for obj in (node, *items):
            href = os.path.normpath(obj.get_self_href() or "")
            if not is_within(href, root):  # safe names cannot leave the root; this guards the guarantee
                raise UnsafePath(f"{type(obj).__name__} {obj.id!r} would be written to {href}, outside {root}")
            key = href.casefold()
            if key in owners and owners[key] != obj.id:
                raise InvalidMetadata(f"ids {owners[key]!r} and {obj.id!r} would share the file {href}; "
                                   "expected ids that differ as file names")
            if key in owners:
                raise InvalidMetadata(f"id {obj.id!r} occurs twice in the catalog; expected unique ids")
            owners[key] = obj.id

