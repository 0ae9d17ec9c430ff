"""Writing the STAC catalogs mlmkit hands out: one STAC version, every link titled.

mlmkit writes STAC 1.0.0: the extension versions it uses (eo and raster v1.1.0, whose band lists MLM
cross-references; file v2.1.0; label; ml-aoi) are the STAC 1.0 ones, and the official MLM examples are 1.0.0
too. STAC 1.1 `bands` would need eo/raster v2, which MLM 1.5 does not read band references from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pystac

STAC_VERSION = "1.0.0"
_KIND = {pystac.Catalog: "catalog", pystac.Collection: "collection", pystac.Item: "item"}


@contextmanager
def stac_version(version: str = STAC_VERSION) -> Iterator[None]:
    """pystac writes `stac_version` from a process-wide setting: set it for the duration of a save."""
    previous = pystac.get_stac_version()
    pystac.set_stac_version(version)
    try:
        yield
    finally:
        pystac.set_stac_version(previous)


def _title(link: pystac.Link) -> str | None:
    target = link.target if isinstance(link.target, pystac.STACObject) else None
    if target is None:
        return None
    name = getattr(target, "title", None) or target.id
    return f"{name} ({_KIND.get(type(target), 'document')})" if link.rel in ("root", "parent") else name


def title_links(catalog: pystac.Catalog) -> None:
    """Give each structural link (root, parent, child, item, collection) the title of what it points at."""
    for parent, _, items in catalog.walk():
        for stac_object in (parent, *items):
            for link in stac_object.links:
                if link.title is None and (title := _title(link)):
                    link.title = title


def save_catalog(catalog: pystac.Catalog) -> None:
    """Save a self-contained catalog (relative hrefs, no self links: it can be moved and staged as a whole)."""
    title_links(catalog)
    with stac_version():
        catalog.save(pystac.CatalogType.SELF_CONTAINED)
