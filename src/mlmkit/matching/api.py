"""Models and imagery from STAC APIs, for `match`: the server filters what it can, the rules decide the rest.

Imagery for a model: the server is asked for the Items of the given collections that intersect the model's
geometry (`intersects`) within the model's datetime range intersected with the one asked for (`datetime`);
bands, processing level, resolution and the other rules are checked on the client, as for local Items.
Models: `mlmkit.catalog.search` finds the MLM Items of the given collections, area and time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pystac
import requests
from pystac_client.exceptions import APIError
from pystac_client.warnings import DoesNotConformTo

from mlmkit.catalog.search import ModelQuery, open_api, parse_interval, search_api
from mlmkit.errors import RemoteFailure
from mlmkit.matching.footprints import relation
from mlmkit.mlm.spec import ModelSpec, mlm_version
from mlmkit.stac.read import MALFORMED_STAC

PAGE_SIZE = 100


@dataclass(frozen=True)
class ApiSearch:
    """Where and what to search: a STAC API root, collections, an area (WEST, SOUTH, EAST, NORTH), a time."""

    url: str
    collections: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    datetime: str | None = None
    limit: int = 100
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.datetime is not None:
            parse_interval(self.datetime)  # a bad datetime fails before any request


def models_from_api(search: ApiSearch) -> list[ModelSpec]:
    """The MLM Items of a STAC API's collections that apply to the area and time asked for."""
    query = ModelQuery(bbox=search.bbox, datetime=search.datetime, collections=search.collections)
    return [found.spec for found in search_api(search.url, query, limit=search.limit, headers=search.headers)]


def _text(moment: datetime | None) -> str:
    return moment.isoformat().replace("+00:00", "Z") if moment else ".."


def _within(asked: str | None, spec: ModelSpec | None) -> str | None | bool:
    """The datetime interval to ask the server for: the one asked for within the model's range; False when
    they do not meet (nothing to ask)."""
    start, end = parse_interval(asked) if asked else (None, None)
    if spec is not None:
        meta = spec.item.common_metadata
        if meta.start_datetime and (start is None or meta.start_datetime > start):
            start = meta.start_datetime
        if meta.end_datetime and (end is None or meta.end_datetime < end):
            end = meta.end_datetime
    if start and end and start > end:
        return False
    return None if start is None and end is None else f"{_text(start)}/{_text(end)}"


def _server_filter(search: ApiSearch, spec: ModelSpec | None) -> dict | None:
    """The search parameters for the server; None when the model's range and the time asked for do not meet."""
    interval = _within(search.datetime, spec)
    if interval is False:
        return None
    params: dict = {"collections": list(search.collections) or None, "datetime": interval,
                    "limit": min(search.limit, PAGE_SIZE), "max_items": search.limit}
    geometry = spec.item.geometry if spec is not None else None
    if geometry is not None:
        params["intersects"] = geometry  # STAC API: bbox and intersects exclude each other; bbox is checked here
    elif search.bbox is not None:
        params["bbox"] = list(search.bbox)
    return params


def _from_api(data: dict) -> pystac.Item:
    self_link = next((link.get("href") for link in data.get("links") or [] if isinstance(link, dict)
                      and link.get("rel") == "self"), None)
    return pystac.Item.from_dict(data, href=self_link, migrate=False)


def _pages(search: ApiSearch, params: dict) -> Iterator[dict]:
    client = open_api(search.url, search.headers)
    try:
        yield from client.search(**params).items_as_dicts()
    except DoesNotConformTo as exc:
        raise RemoteFailure(f"the STAC API at {search.url} does not support {exc}; expected item search") from exc
    except (APIError, requests.RequestException) as exc:
        raise RemoteFailure(f"searching the STAC API at {search.url} for imagery failed: "
                            f"{' '.join(str(exc).split())[:300]}") from exc


def imagery_from_api(search: ApiSearch, specs: Sequence[ModelSpec] = ()) -> list[pystac.Item]:
    """The imagery Items of a STAC API, narrowed on the server to each model's geometry and time range
    (one search per model, Items found twice kept once); MLM Items are left out."""
    items: dict[tuple, pystac.Item] = {}
    for spec in specs or [None]:
        params = _server_filter(search, spec)
        if params is None:
            continue
        for data in _pages(search, params):
            if not isinstance(data, dict) or mlm_version(data) is not None:
                continue
            try:
                item = _from_api(data)
            except MALFORMED_STAC as exc:
                raise RemoteFailure(f"the STAC API at {search.url} returned an Item that is not STAC "
                                    f"({' '.join(str(exc).split())[:200]}); expected STAC Items") from exc
            inside = search.bbox is None or relation(None, search.bbox, item.geometry, item.bbox) not in (None, "outside")
            if inside:
                items.setdefault((item.collection_id, item.id), item)
    return list(items.values())

