"""Finding models by what they do (task, framework, text) and what they eat (bands), where and when they apply.

`ModelQuery.matches` is the one definition of a match. A local catalog is filtered by it alone; against a
STAC API the server narrows the candidates first (CQL2 filter when it conforms to Filter, else the Query
extension, else nothing) and the same predicate decides, so both give the same answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timezone
from pathlib import Path

import pystac
import requests
from dateutil import parser as dateparser
from pystac_client import Client, ConformanceClasses
from pystac_client.exceptions import APIError
from pystac_client.warnings import DoesNotConformTo

from mlmkit.errors import InvalidArgument, InvalidInput, RemoteFailure
from mlmkit.mlm.spec import ModelSpec, spec_from_item
from mlmkit.stac.read import MALFORMED_STAC, walk

SERVER_MODES = ("auto", "filter", "query", "client")
TEXT_FIELDS = ("title", "description", "mlm:name", "mlm:architecture")
PAGE_SIZE = 100


@dataclass(frozen=True)
class ModelQuery:
    """What the user asks for; every given criterion must hold (band names: every one of them)."""

    task: str | None = None
    bands: tuple[str, ...] = ()
    framework: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    datetime: str | None = None
    text: str | None = None
    collections: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.datetime is not None:
            parse_interval(self.datetime)  # a bad --datetime fails before any search

    @cached_property
    def interval(self) -> tuple[datetime | None, datetime | None] | None:
        return parse_interval(self.datetime) if self.datetime is not None else None

    def match(self, item: dict, collection_id: str | None = None) -> ModelSpec | None:
        """The MLM view of an Item (as JSON) when it is a model satisfying every criterion, else None."""
        spec = model_spec(item)
        if spec is None:
            return None
        props = item.get("properties", {})
        checks = (
            not self.collections or (collection_id or item.get("collection")) in self.collections,
            self.task is None or self.task.lower() in model_tasks(spec),
            self.framework is None or (spec.framework or "").lower() == self.framework.lower(),
            all(band.lower() in model_bands(spec) for band in self.bands),
            self.bbox is None or _bbox_intersects(item.get("bbox"), self.bbox),
            self.interval is None or _interval_overlaps(props, self.interval),
            self.text is None or _has_words(item, self.text),
        )
        return spec if all(checks) else None

    def cql2(self) -> dict | None:
        """The criteria a CQL2-JSON filter can express on the server (bands and text stay client-side)."""
        args = []
        if self.task:
            args.append({"op": "a_contains", "args": [{"property": "mlm:tasks"}, [self.task.lower()]]})
        if self.framework:
            args.append({"op": "=", "args": [{"op": "casei", "args": [{"property": "mlm:framework"}]},
                                             {"op": "casei", "args": [self.framework]}]})
        if not args:
            return None
        return args[0] if len(args) == 1 else {"op": "and", "args": args}

    def query_extension(self) -> dict | None:
        """The criteria the Query extension can express (exact framework)."""
        return {"mlm:framework": {"eq": self.framework}} if self.framework else None


@dataclass(frozen=True)
class ModelMatch:
    """A found model: its Item JSON and where it was found."""

    item: dict
    href: str | None
    collection_id: str | None
    spec: ModelSpec


def model_spec(item: dict) -> ModelSpec | None:
    """The MLM view of an Item, or None when it is no (readable) MLM Item."""
    try:
        return spec_from_item(pystac.Item.from_dict(item, migrate=False, preserve_dict=True))
    except (InvalidInput, *MALFORMED_STAC):
        return None


def model_tasks(spec: ModelSpec) -> set[str]:
    """The item-level mlm:tasks, the field a server can filter on."""
    return {task.lower() for task in spec.tasks}


def model_bands(spec: ModelSpec) -> set[str]:
    """Band names the model inputs use, with the common names their band descriptions give."""
    names = {band.name for model_input in spec.inputs for band in model_input.bands} | set(spec.band_info)
    common = {spec.band_info.get(name, {}).get(key) for name in names for key in ("eo:common_name", "common_name")}
    return {str(name).lower() for name in names | common if name}


def _bbox_intersects(item_bbox: list | None, box: tuple[float, float, float, float]) -> bool:
    if not item_bbox:
        return False
    half = len(item_bbox) // 2
    west, south, east, north = item_bbox[0], item_bbox[1], item_bbox[half], item_bbox[half + 1]
    return west <= box[2] and east >= box[0] and south <= box[3] and north >= box[1]


def _instant(text: str | None) -> datetime | None:
    if text in (None, "", ".."):
        return None
    try:
        value = dateparser.isoparse(text)
    except ValueError as exc:
        raise InvalidArgument(f"datetime {text!r} is not RFC 3339; expected e.g. 2024-01-01T00:00:00Z") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def parse_interval(text: str) -> tuple[datetime | None, datetime | None]:
    """'start/end' (either may be '..') or one instant → (start, end); None is open."""
    start, sep, end = text.partition("/")
    return (_instant(start), _instant(end)) if sep else (_instant(start), _instant(start))


def _interval_overlaps(props: dict, query: tuple[datetime | None, datetime | None]) -> bool:
    start = _instant(props.get("start_datetime") or props.get("datetime"))
    end = _instant(props.get("end_datetime") or props.get("datetime"))
    return ((query[1] is None or start is None or start <= query[1])
            and (query[0] is None or end is None or end >= query[0]))


def _has_words(item: dict, text: str) -> bool:
    props = item.get("properties", {})
    haystack = " ".join([str(item.get("id", ""))] + [str(props.get(key) or "") for key in TEXT_FIELDS]
                        + [str(word) for word in props.get("keywords") or []]).lower()
    return all(word in haystack for word in text.lower().split())


def search_local(source: str | Path, query: ModelQuery, limit: int | None = None) -> list[ModelMatch]:
    """Models in a local catalog (directory, catalog.json or Item) that match the query."""
    matches = []
    for node in walk(source):
        spec = query.match(node.data, node.collection_id) if node.kind == "Feature" else None
        if spec is not None:
            matches.append(ModelMatch(item=node.data, href=node.href, collection_id=node.collection_id, spec=spec))
            if limit is not None and len(matches) >= limit:
                break
    return matches


def open_api(api_url: str, headers: Mapping[str, str] | None = None) -> Client:
    try:
        return Client.open(api_url, headers=dict(headers or {}))
    except (APIError, requests.RequestException, *MALFORMED_STAC) as exc:
        raise RemoteFailure(f"cannot open the STAC API at {api_url}: {_one_line(exc)}; "
                          "expected a reachable STAC API landing page (a JSON STAC Catalog)") from exc


def server_mode(client: Client, mode: str = "auto") -> str:
    """How much filtering the server does: its best supported mode for 'auto'."""
    if mode not in SERVER_MODES:
        raise InvalidArgument(f"server filter mode {mode!r} is unknown; expected one of {', '.join(SERVER_MODES)}")
    if mode != "auto":
        return mode
    if client.conforms_to(ConformanceClasses.FILTER):
        return "filter"
    return "query" if client.conforms_to(ConformanceClasses.QUERY) else "client"


def server_candidates(client: Client, query: ModelQuery, mode: str) -> Iterator[dict]:
    """The Items the server returns for what it can filter in this mode (a superset of the matches)."""
    params: dict = {"limit": PAGE_SIZE, "collections": list(query.collections) or None,
                    "bbox": list(query.bbox) if query.bbox else None, "datetime": query.datetime}
    if mode == "filter" and query.cql2():
        params.update(filter=query.cql2(), filter_lang="cql2-json")
    if mode == "query" and query.query_extension():
        params["query"] = query.query_extension()
    followed: set[str] = set()
    for page in client.search(**params).pages_as_dicts():
        features = page.get("features") if isinstance(page, dict) else None
        if not isinstance(features, list) or not all(isinstance(feature, dict) for feature in features):
            raise RemoteFailure(f"the STAC API at {client.self_href} answered a search page that is not a GeoJSON "
                              "FeatureCollection of Items; expected an ItemCollection with a features array")
        yield from features
        following = _next_page(page)
        if following in followed:
            raise RemoteFailure(f"the STAC API at {client.self_href} links a search page to one it already gave "
                              "(a paging loop); expected next links that end")
        if following is not None:
            followed.add(following)


def _next_page(page: dict) -> str | None:
    """What identifies the page a search page's `next` link asks for (href, method and body)."""
    links = page.get("links")
    link = next((link for link in links if isinstance(link, dict) and link.get("rel") == "next"), None) \
        if isinstance(links, list) else None
    return None if link is None else repr((link.get("href"), link.get("method"), link.get("body")))


def search_api(api_url: str, query: ModelQuery, *, limit: int | None = None,
               headers: Mapping[str, str] | None = None, mode: str = "auto") -> list[ModelMatch]:
    """Models in a STAC API that match the query; the server narrows what it can, the predicate decides."""
    client = open_api(api_url, headers)
    chosen = server_mode(client, mode)
    matches = []
    try:
        for item in server_candidates(client, query, chosen):
            spec = query.match(item)
            if spec is not None:
                self_link = next((link["href"] for link in item.get("links", []) if link.get("rel") == "self"), None)
                matches.append(ModelMatch(item=item, href=self_link, collection_id=item.get("collection"), spec=spec))
                if limit is not None and len(matches) >= limit:
                    break
    except DoesNotConformTo as exc:
        raise RemoteFailure(f"the STAC API at {api_url} does not support {exc}; expected item search "
                          f"(server filter mode 'client' searches APIs without filter/query)") from exc
    except (APIError, requests.RequestException) as exc:
        raise RemoteFailure(f"searching the STAC API at {api_url} failed: {_one_line(exc)}") from exc
    except MALFORMED_STAC as exc:  # a page pystac-client could not even take apart
        raise RemoteFailure(f"searching the STAC API at {api_url} failed: its answer is not the JSON STAC API "
                          f"promises ({_one_line(exc)}); expected an ItemCollection") from exc
    return matches


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
