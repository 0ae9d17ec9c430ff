"""Publishing a local STAC catalog into a STAC API through its Transactions extension.

Everything is read and validated before the first request, so a bad document uploads nothing; then
collections and items are upserted (POST, PUT on 409), which makes re-publishing idempotent. A failure
midway says what was already published.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

from mlmkit.errors import InvalidArgument, InvalidMetadata, RemoteFailure, UnsafePath
from mlmkit.mlm.spec import is_container_asset
from mlmkit.progress import QUIET, Progress
from mlmkit.stac.safepath import is_within
from mlmkit.stac.read import HTTP_TIMEOUT_S, Node, is_url, resolve_href, walk
from mlmkit.catalog.validate import check_source, validate_dict

TOKEN_ENV = "MLMKIT_API_TOKEN"
# Links an API generates itself; publishing local ones would point readers at files on this machine.
STRUCTURAL_RELS = {"self", "root", "parent", "child", "item", "items", "collection"}
SHOWN_PROBLEMS = 5


class PublishError(RemoteFailure):
    """The STAC API could not be reached or refused a document."""


@dataclass(frozen=True)
class Upload:
    """One document to upsert: a Collection, or an Item with the collection it goes into."""

    kind: str
    collection_id: str
    data: dict
    keep_existing: bool = False

    @property
    def label(self) -> str:
        if self.kind == "collection":
            return f"collection {self.collection_id!r}"
        return f"item {self.data.get('id')!r} (collection {self.collection_id!r})"


@dataclass
class PublishSummary:
    """What a publication did, per document label: created, updated, or left as the API had it."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    local_hrefs: int = 0
    catalogs: tuple[str, ...] = ()

    def record(self, upload: Upload, outcome: str) -> None:
        getattr(self, outcome).append(upload.label)

    def counts(self) -> str:
        parts = [f"{len(self.created)} created", f"{len(self.updated)} updated"]
        if self.kept:
            parts.append(f"{len(self.kept)} already present")
        return ", ".join(parts)

    def lines(self) -> list[str]:
        lines = [f"created {label}" for label in self.created] + [f"updated {label}" for label in self.updated]
        lines += [f"kept existing {label}" for label in self.kept]
        lines.append(f"published: {self.counts()}")
        if self.catalogs:
            lines.append(f"note: catalog(s) {', '.join(map(repr, self.catalogs))} not stored: a STAC API holds "
                         "collections and items")
        if self.local_hrefs:
            lines.append(f"note: {self.local_hrefs} asset/link hrefs point at local files; "
                         "give base_href (the URL the catalog's files are served at) to point them there")
        return lines


@dataclass(frozen=True)
class Plan:
    uploads: tuple[Upload, ...]
    local_hrefs: int
    catalogs: tuple[str, ...] = ()


def auth_headers(token: str | None = None, headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Request headers from header values and a bearer token (argument, else $MLMKIT_API_TOKEN)."""
    result = dict(headers or {})
    token = token or os.environ.get(TOKEN_ENV)
    if token and not any(key.lower() == "authorization" for key in result):
        result["Authorization"] = f"Bearer {token}"
    return result


def parse_header(text: str) -> tuple[str, str]:
    """'Key: value' → (key, value)."""
    key, sep, value = text.partition(":")
    if not sep or not key.strip():
        raise InvalidArgument(f"header {text!r} is not 'Name: value'; expected e.g. 'X-Api-Key: secret'")
    return key.strip(), value.strip()


def _rewrite(href: str, base: str, root_dir: str, base_href: str | None, asset: bool) -> tuple[str, bool]:
    """An href for the API: absolute, and under base_href when it is a local file of the catalog.

    A local asset file must lie inside the catalog directory (symlinks followed) with or without
    --base-href: publishing would otherwise point readers (and whatever serves --base-href) at a file
    from elsewhere on this machine.
    """
    absolute = resolve_href(href, base)
    if is_url(absolute):
        return absolute, False
    inside = is_within(absolute, root_dir)
    if asset and not inside:
        raise UnsafePath(f"nothing published: an asset of {base} points at {absolute}, outside the catalog directory "
                           f"{root_dir} (symlinks followed); expected asset files inside the catalog")
    if base_href is None:
        return absolute, True
    if not inside:
        raise UnsafePath(f"{absolute} (referenced by {base}) is outside the catalog directory {root_dir}; "
                           "expected local files under the catalog to map under base_href")
    relative = Path(os.path.relpath(absolute, root_dir)).as_posix()
    return f"{base_href.rstrip('/')}/{quote(relative)}", False  # quoted: a file named '%2e%2e' stays a name


def _for_api(node: Node, root_dir: str, base_href: str | None) -> tuple[dict, int]:
    """The document as the API should store it: no structural links, hrefs absolute or under base_href."""
    data = dict(node.data)
    local = 0
    assets = {}
    for key, asset in (data.get("assets") or {}).items():
        if is_container_asset(asset):  # an image reference, not a file to serve
            assets[key] = asset
            continue
        href, is_local = _rewrite(asset["href"], node.href, root_dir, base_href, asset=True)
        assets[key] = {**asset, "href": href}
        local += is_local
    if "assets" in data:
        data["assets"] = assets
    links = []
    for link in data.get("links", []):
        if link.get("rel") in STRUCTURAL_RELS or "href" not in link:
            continue
        href, is_local = _rewrite(link["href"], node.href, root_dir, base_href, asset=False)
        links.append({**link, "href": href})
        local += is_local
    data["links"] = links
    return data, local


def _item_interval(properties: dict) -> tuple[str | None, str | None]:
    start = properties.get("start_datetime") or properties.get("datetime")
    end = properties.get("end_datetime") or properties.get("datetime")
    return start, end


def collection_from_items(collection_id: str, items: list[dict], source: str) -> dict:
    """A minimal Collection whose extent covers the items, for items published into a new collection."""
    boxes = [(b[0], b[1], b[len(b) // 2], b[len(b) // 2 + 1]) for b in (item.get("bbox") for item in items) if b]
    bbox = ([min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
            if boxes else [-180.0, -90.0, 180.0, 90.0])
    intervals = [_item_interval(item.get("properties", {})) for item in items]
    starts = [start for start, _ in intervals if start]
    ends = [end for _, end in intervals if end]
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": collection_id,
        "description": f"Items published by mlmkit from {source}",
        "license": "proprietary",
        "extent": {"spatial": {"bbox": [bbox]},
                   "temporal": {"interval": [[min(starts) if starts else None, max(ends) if ends else None]]}},
        "links": [],
    }


def plan_publication(source: str | Path, collection: str | None = None, base_href: str | None = None) -> Plan:
    """Read a local catalog (or Item) into the ordered uploads: collections first, then items.

    With `collection`, every item goes into that collection (created from the items' extent unless the
    catalog has a Collection of that id); otherwise an item goes into its nearest Collection, or the one
    its `collection` field names.
    """
    if base_href is not None and not is_url(base_href):
        raise InvalidArgument(f"base_href {base_href!r} is not an http(s) URL; expected the URL the files are served at")
    nodes = list(walk(source))
    root_dir = os.path.dirname(nodes[0].href)
    local = 0
    collections: dict[str, dict] = {}
    items: list[tuple[str, dict]] = []
    catalogs = tuple(str(node.data.get("id")) for node in nodes if node.kind == "Catalog")
    for node in nodes:
        if node.kind == "Catalog":
            continue
        data, node_local = _for_api(node, root_dir, base_href)
        local += node_local
        if node.kind == "Collection":
            collections[data["id"]] = data
            continue
        target = collection or node.collection_id
        if not target:
            raise InvalidMetadata(f"item {data.get('id')!r} ({node.href}) belongs to no collection; "
                               "expected a Collection in the catalog or the collection option")
        items.append((target, {**data, "collection": target}))
    _check_unique(items)
    uploads = [Upload("collection", cid, data) for cid, data in collections.items()
               if collection is None or cid == collection]
    if collection is not None and collection not in collections:
        synthesized = collection_from_items(collection, [data for _, data in items], str(source))
        uploads.append(Upload("collection", collection, synthesized, keep_existing=True))
    uploads += [Upload("item", target, data) for target, data in items]
    return Plan(uploads=tuple(uploads), local_hrefs=local, catalogs=catalogs)


def _check_unique(items: list[tuple[str, dict]]) -> None:
    seen: set[tuple[str, str]] = set()
    for target, data in items:
        key = (target, data.get("id"))
        if key in seen:
            raise InvalidMetadata(f"item id {key[1]!r} appears twice for collection {target!r}; expected unique ids")
        seen.add(key)


def refuse_invalid(source: str | Path, problems: list) -> None:
    """Refuse to publish anything when a document of the catalog (or a collection made up for it) is invalid."""
    if problems:
        shown = "; ".join(str(problem) for problem in problems[:SHOWN_PROBLEMS])
        more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
        raise InvalidMetadata(f"nothing published: {len(problems)} validation problem(s) in {source}: {shown}{more}")


class StacApiWriter:
    """Upserts documents through the Transactions endpoints of one STAC API."""

    def __init__(self, api_url: str, headers: Mapping[str, str] | None = None) -> None:
        self.url = api_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", **(headers or {})})

    def _request(self, method: str, path: str, what: str, **kwargs) -> requests.Response:
        try:
            return self.session.request(method, f"{self.url}{path}", timeout=HTTP_TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            raise PublishError(f"cannot reach the STAC API at {self.url} ({what}): {type(exc).__name__}; "
                               "expected a running STAC API at that URL") from exc

    def check_transactions(self) -> None:
        """Fail before any write when the API is unreachable or has no Transactions extension."""
        response = self._request("GET", "/conformance", "reading /conformance")
        if response.status_code != 200:
            raise PublishError(f"{self.url}/conformance answered {response.status_code}; expected a STAC API")
        classes = conformance_classes(response)
        if not any("transaction" in cls for cls in classes):
            raise PublishError(f"the STAC API at {self.url} does not advertise the Transactions extension; "
                               "expected a writable STAC API")

    def check_collections_exist(self, plan: Plan) -> None:
        """Items headed for a collection this publication does not create need it to exist already."""
        planned = {upload.collection_id for upload in plan.uploads if upload.kind == "collection"}
        for upload in plan.uploads:
            if upload.kind != "item" or upload.collection_id in planned:
                continue
            path = f"/collections/{quote(upload.collection_id, safe='')}"
            response = self._request("GET", path, f"looking up collection {upload.collection_id!r}")
            if response.status_code == 404:
                raise PublishError(f"nothing published: {upload.label} goes into a collection the STAC API does "
                                   "not have; expected the Collection in the catalog, or the collection option")
            if response.status_code != 200:
                raise PublishError(f"nothing published: looking up collection {upload.collection_id!r} failed: "
                                   f"{_describe(response)}")
            planned.add(upload.collection_id)

    def upsert(self, upload: Upload) -> str:
        """'created', 'updated' or 'kept'; raises PublishError naming the document otherwise."""
        cid = quote(upload.collection_id, safe="")
        if upload.kind == "collection":
            create, update = "/collections", f"/collections/{cid}"
        else:
            create = f"/collections/{cid}/items"
            update = f"{create}/{quote(str(upload.data.get('id')), safe='')}"
        response = self._request("POST", create, f"creating {upload.label}", json=upload.data)
        if response.status_code in (200, 201):
            return "created"
        if response.status_code == 409:
            if upload.keep_existing:
                return "kept"
            response = self._request("PUT", update, f"updating {upload.label}", json=upload.data)
            if response.status_code in (200, 201, 204):
                return "updated"
        raise PublishError(f"the STAC API refused {upload.label}: {_describe(response)}")


def conformance_classes(response: requests.Response) -> list[str]:
    """The conformance classes of a `/conformance` answer, refused unless it is the JSON STAC API promises."""
    try:
        body = response.json()
    except ValueError:
        body = None
    classes = body.get("conformsTo") if isinstance(body, dict) else None
    if not isinstance(classes, list) or not all(isinstance(cls, str) for cls in classes):
        raise PublishError(f"{response.url} did not answer a JSON object with a conformsTo list of strings "
                           f"(got {response.headers.get('content-type') or 'no content type'}: "
                           f"{' '.join(response.text[:80].split())!r}); expected a STAC API conformance document")
    return classes


def _server_message(response: requests.Response) -> str:
    """The server's own explanation: description/detail, pydantic error lists as 'field: message'."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if not isinstance(body, dict):
        return str(body)
    detail = body.get("description") or body.get("detail") or body
    if isinstance(detail, list):
        detail = "; ".join(f"{'.'.join(map(str, entry.get('loc', [])[2:]))}: {entry.get('msg')}"
                           if isinstance(entry, dict) else str(entry) for entry in detail)
    return str(detail)


def _describe(response: requests.Response) -> str:
    """'HTTP <status> <reason>: <server message>' on one line, with a hint for auth failures."""
    text = " ".join(_server_message(response).split())[:300]
    hint = ""
    if response.status_code in (401, 403):
        hint = f"; expected a valid token (the token option or ${TOKEN_ENV}) or an authorising header"
    return f"HTTP {response.status_code} {response.reason}: {text}{hint}"


def publish(source: str | Path, api_url: str, *, collection: str | None = None, base_href: str | None = None,
            headers: Mapping[str, str] | None = None, schema_dir: Path | None = None,
            progress: Progress | None = None) -> PublishSummary:
    """Validate a local catalog, then upsert its collections and items into the STAC API at api_url."""
    progress = progress or Progress(QUIET)
    # before anything reads the documents
    refuse_invalid(source, check_source(str(source), schema_dir=schema_dir, progress=progress).problems)
    plan = plan_publication(source, collection=collection, base_href=base_href)
    refuse_invalid(source, [problem for upload in plan.uploads if upload.keep_existing
                            for problem in validate_dict(upload.data, None, schema_dir=schema_dir)])
    writer = StacApiWriter(api_url, headers)
    writer.check_transactions()
    writer.check_collections_exist(plan)
    summary = PublishSummary(local_hrefs=plan.local_hrefs, catalogs=plan.catalogs)
    with progress.task(f"publish {source}", len(plan.uploads), "documents") as task:
        for upload in plan.uploads:
            _upsert(writer, upload, plan, summary)
            task.advance()
    return summary


def _upsert(writer: StacApiWriter, upload: Upload, plan: Plan, summary: PublishSummary) -> None:
    """Upsert one document and record the outcome; a failure says what was published before it."""
    try:
        summary.record(upload, writer.upsert(upload))
    except PublishError as exc:
        done = summary.counts() if summary.created or summary.updated or summary.kept else "nothing"
        raise PublishError(f"{exc} (published before this failure: {done}; "
                           f"{len(plan.uploads) - len(summary.created + summary.updated + summary.kept)} "
                           "not published)") from exc
