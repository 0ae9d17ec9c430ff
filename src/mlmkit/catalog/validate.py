"""Validate STAC Items, Collections and Catalogs: every declared schema, then MLM semantics.

Each problem is one line naming the document and the JSON path, so a user (or the publish and
predict steps that call this before they act) can see exactly which field to fix.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jsonschema import ValidationError

from mlmkit.errors import InvalidInput
from mlmkit.progress import QUIET, Progress
from mlmkit.catalog.provenance import lineage_findings
from mlmkit.stac.schemas import SchemaStore, SchemaUnavailable
from mlmkit.mlm.spec import KNOWN_VERSIONS, mlm_version
from mlmkit.mlm.semantic import Finding, asset_file_findings, mlm_findings
from mlmkit.stac.read import FOLLOWED_RELS, document_href, is_url, json_path, read_json, resolve_href

_CORE_SCHEMAS = {
    "Feature": "item-spec/json-schema/item.json",
    "Catalog": "catalog-spec/json-schema/catalog.json",
    "Collection": "collection-spec/json-schema/collection.json",
}
_SCHEMA_NAME = re.compile(r"(?:stac-extensions\.github\.io|mlm-extension)/([^/]+)/(v[^/]+)/|stacspec\.org/(v[^/]+)/")
_DISCRIMINATORS = ("const", "type", "enum", "maxItems")
# Schema comments too vague to act on, replaced by what to do about them.
_HINTS = {
    "Need at least one 'bands' definition":
        "bands listed in mlm:input/mlm:output need their definitions: eo:bands (eo extension) on the item or "
        "model asset, raster:bands on the model asset (raster extension), or STAC 1.1 bands",
}
_MAX_REPR = 80


@dataclass(frozen=True)
class Problem:
    """One reason a document is invalid, or (`warning`) something valid that mlmkit cannot act on."""

    document: str
    path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.document}: {self.path}: {'warning: ' if self.warning else ''}{self.message}"


def core_schema_url(data: dict) -> str | None:
    """The STAC core schema for a document's type and stac_version."""
    suffix = _CORE_SCHEMAS.get(data.get("type"))
    version = data.get("stac_version")
    if suffix is None or not isinstance(version, str):
        return None
    return f"https://schemas.stacspec.org/v{version}/{suffix}"


def _schema_name(url: str) -> str:
    match = _SCHEMA_NAME.search(url)
    if not match:
        return url
    return f"{match.group(1)} {match.group(2)}" if match.group(1) else f"STAC {match.group(3)}"


def _explain(error: ValidationError) -> ValidationError:
    """Descend a oneOf/anyOf to the branch the instance was meant for (its type/const matched)."""
    while error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[object, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        meant = [errs for errs in branches.values()
                 if not any(e.validator in _DISCRIMINATORS and len(e.relative_path) <= 1 for e in errs)]
        if len(meant) != 1:
            return error
        error = min(meant[0], key=lambda e: (e.validator in ("oneOf", "anyOf"), -len(e.path)))
    return error


def _short(value: object) -> str:
    if isinstance(value, dict) and len(repr(value)) > _MAX_REPR:
        return "the object"
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _required_names(schema: object) -> list[str]:
    """Field names a (possibly composite) `required` schema lists."""
    if not isinstance(schema, dict):
        return []
    names = list(schema.get("required", []))
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            names += _required_names(sub)
    return names


def _resolve(schema: object, url: str, store: SchemaStore) -> object:
    """Follow a local `$ref` (`#/...`) inside the schema at `url`."""
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
        target: object = store.load(url)
        for part in schema["$ref"][2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return target
    return schema


def _expected(error: ValidationError) -> list[str] | None:
    """What each oneOf/anyOf branch wanted of the value itself, when every branch says so."""
    wanted = []
    for sub in error.context:
        if sub.relative_path:
            continue
        if sub.validator == "enum":
            wanted.append(f"one of {sub.validator_value}")
        elif sub.validator == "type":
            wanted.append(f"{sub.validator_value}")
        elif sub.validator == "const":
            wanted.append(repr(sub.validator_value))
    branches = {sub.relative_schema_path[0] for sub in error.context}
    return wanted if len(wanted) >= len(branches) else None


def _message(error: ValidationError, url: str, store: SchemaStore) -> str:
    """jsonschema's message, made to name the field and the expectation where it does not."""
    instance = _short(error.instance)
    if error.validator == "not":
        forbidden = _required_names(_resolve(error.validator_value, url, store))
        present = [name for name in forbidden if isinstance(error.instance, dict) and name in error.instance]
        if present:
            return f"{', '.join(map(repr, present))} is not allowed here"
        return f"{instance} is not allowed here"
    if error.validator in ("oneOf", "anyOf"):
        expected = _expected(error)
        if expected:
            return f"{instance} is not valid; expected {' or '.join(expected)}"
        schema = error.schema if isinstance(error.schema, dict) else {}
        comment = schema.get("$comment") or schema.get("description")
        if comment:
            hint = next((text for prefix, text in _HINTS.items() if comment.startswith(prefix)), comment)
            return f"{instance} is not valid: {hint}"
    if error.schema is False:
        return "this field is not allowed here"
    return error.message.replace(repr(error.instance), instance)


def _error_path(error: ValidationError, document: dict) -> str:
    """The error's JSON path; jsonschema leaves the key off for a `false` subschema, so find it."""
    if error.schema is not False:
        return error.json_path
    container: object = document
    for part in error.absolute_path:
        container = container[part]
    keys = [key for key, value in container.items() if value == error.instance] if isinstance(container, dict) else []
    return json_path(*error.absolute_path, keys[0]) if len(keys) == 1 else error.json_path


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def nearest_mlm_schema(url: str, store: SchemaStore) -> str | None:
    """For an MLM schema URL that cannot be had, the URL of the nearest MLM version's schema that can (older
    first); None for other URLs or when none can."""
    version = mlm_version({"stac_extensions": [url]})
    if version is None:
        return None
    wanted = _version_key(version)
    older = sorted((v for v in KNOWN_VERSIONS if _version_key(v) < wanted), key=_version_key, reverse=True)
    newer = sorted((v for v in KNOWN_VERSIONS if _version_key(v) > wanted), key=_version_key)
    for candidate in older + newer:
        other = url.replace(f"/v{version}/", f"/v{candidate}/")
        try:
            store.load(other)
        except SchemaUnavailable:
            continue
        return other
    return None


def _schema_errors(url: str, data: dict, store: SchemaStore, notes: list[Finding]) -> tuple[str, list]:
    """Errors against the schema at `url`; an MLM version whose schema cannot be had is checked against the
    nearest one that can, with a note saying so (`notes`)."""
    try:
        return url, store.errors(url, data)
    except SchemaUnavailable:
        fallback = nearest_mlm_schema(url, store)
        if fallback is None:
            raise
    index = data["stac_extensions"].index(url)
    notes.append((json_path("stac_extensions", index),
                  f"the MLM v{mlm_version({'stac_extensions': [url]})} schema is not available; validated against "
                  f"v{mlm_version({'stac_extensions': [fallback]})}, the nearest version at hand"))
    copy = {**data, "stac_extensions": [fallback if entry == url else entry for entry in data["stac_extensions"]]}
    return fallback, store.errors(fallback, copy)


def schema_findings(data: dict, store: SchemaStore, notes: list[Finding] | None = None) -> list[Finding]:
    """Errors against the core schema and every schema in `stac_extensions` (`notes`: what could only be
    checked against another schema version)."""
    core = core_schema_url(data)
    if core is None:
        shown = [f"no {key}" if data.get(key) is None else f"{key} {data[key]!r}" for key in ("type", "stac_version")]
        return [("$", f"{shown[0]} and {shown[1]}: not a STAC document; expected a Feature, Collection or Catalog "
                      "with a stac_version")]
    extensions = data.get("stac_extensions") if isinstance(data.get("stac_extensions"), list) else []
    findings: list[Finding] = [
        (json_path("stac_extensions", index), f"{url!r} is not a schema URL; expected https://.../schema.json")
        for index, url in enumerate(extensions) if not isinstance(url, str) or not is_url(url)
    ]
    urls = [core] + [url for url in extensions if isinstance(url, str) and is_url(url)]
    for url in dict.fromkeys(urls):
        used, errors = _schema_errors(url, data, store, notes if notes is not None else [])
        for error in errors:
            leaf = _explain(error)
            finding = (_error_path(leaf, data), f"{_message(leaf, used, store)} ({_schema_name(used)} schema)")
            if finding not in findings:
                findings.append(finding)
    return findings


def validate_dict(
    data: dict, href: str | None = None, schema_dir: str | Path | None = None, *,
    semantic: bool = True, store: SchemaStore | None = None, warnings: bool = False,
) -> list[Problem]:
    """Problems of one STAC document; `href` locates relative asset hrefs for the file checks.

    With `warnings`, also what is valid but unusable (a model shape `mlmkit predict` cannot run).
    """
    if not isinstance(data, dict):
        return [Problem(href or "<document>", "$", f"is a {type(data).__name__}; expected a JSON object")]
    store = store or SchemaStore.shared(schema_dir)
    document = href or str(data.get("id", "<document>"))
    notes: list[Finding] = []
    findings = schema_findings(data, store, notes)
    schema_valid = not findings  # MLM consistency is only meaningful once the Item has the shape schemas demand
    model_findings, model_warnings = mlm_findings(data, href) if semantic and schema_valid else ([], [])
    if semantic:
        findings += [*asset_file_findings(data, href), *lineage_findings(data, href), *model_findings]
    problems = [Problem(document, path, " ".join(message.splitlines())) for path, message in findings]
    if warnings:
        problems += [Problem(document, path, " ".join(message.splitlines()), warning=True)
                     for path, message in [*notes, *model_warnings]]
    return problems


def _links_to_follow(data: dict, href: str) -> list[tuple[str, str]]:
    links = data.get("links") if isinstance(data.get("links"), list) else []
    return [(resolve_href(link["href"], href), json_path("links", index, "href"))
            for index, link in enumerate(links)
            if isinstance(link, dict) and link.get("rel") in FOLLOWED_RELS and isinstance(link.get("href"), str)]


@dataclass(frozen=True)
class SourceReport:
    """What validating one source found: its problems (warnings among them), and how many documents it checked."""

    problems: list[Problem]
    documents: int


def validate_source(source: str | Path, schema_dir: str | Path | None = None, *, semantic: bool = True,
                    warnings: bool = False) -> list[Problem]:
    """Problems of an Item, Collection or Catalog (path, URL or catalog directory), children included."""
    return check_source(source, schema_dir, semantic=semantic, warnings=warnings).problems


def check_source(source: str | Path, schema_dir: str | Path | None = None, *, semantic: bool = True,
                 warnings: bool = False, progress: Progress | None = None) -> SourceReport:
    """Validate an Item, Collection or Catalog and every document it links to, counting them as it goes."""
    task = (progress or Progress(QUIET)).task(f"validate {source}", unit="documents", summary=False)
    with task:
        problems = _validate_tree(source, schema_dir, semantic, warnings, task.advance)
    return SourceReport(problems, task.done)


def _validate_tree(source: str | Path, schema_dir: str | Path | None, semantic: bool, warnings: bool,
                   checked: Callable[[], None]) -> list[Problem]:
    store = SchemaStore.shared(schema_dir)
    root = document_href(source)
    # each document to read, with the (document, JSON path) of the link that led to it
    pending: deque[tuple[str, tuple[str, str]]] = deque([(root, (root, "$"))])
    seen: set[str] = set()
    problems: list[Problem] = []
    while pending:
        href, (linked_from, link_path) = pending.popleft()
        if href in seen:
            continue
        seen.add(href)
        try:
            data = read_json(href)
        except InvalidInput as exc:
            problems.append(Problem(linked_from, link_path, str(exc)))
            if linked_from == href:  # the source itself could not be read: one document checked, invalid
                checked()
            continue
        problems += validate_dict(data, href, semantic=semantic, store=store, warnings=warnings)
        checked()
        if isinstance(data, dict):
            pending += [(target, (href, path)) for target, path in _links_to_follow(data, href)]
    return problems
