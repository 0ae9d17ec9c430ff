"""JSON schemas of STAC and its extensions: shipped with mlmkit, from a local mirror, or from the web (cached).

Validation works offline (CI, an HPC node, an air-gapped ADES): the schemas of every STAC and extension version
mlmkit reads or writes ship in the package (`json-schemas/`, laid out `<host>/<path>`; a new one is a file dropped
there). A schema it does not ship is fetched once and cached on disk. A `schema_dir` argument (or
`MLMKIT_SCHEMA_DIR`) names a mirror laid out the same way that replaces both, strictly offline.
Schemas are registered under the URL they were looked up by, never under their `$id`
(processing v1.1.0 declares the `$id` of v1.0.0).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import jsonschema
import requests
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT7

from mlmkit.errors import SchemaUnavailable

SCHEMA_DIR_ENV = "MLMKIT_SCHEMA_DIR"
HTTP_TIMEOUT_S = 30


def shipped_dir() -> Path:
    """The schemas that ship with mlmkit, laid out `<host>/<path>`."""
    return Path(str(importlib.resources.files("mlmkit.stac") / "json-schemas"))


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlmkit" / "schemas"


def mirror_path(root: Path, url: str) -> Path:
    """Where `url` lies in a `<host>/<path>` mirror."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SchemaUnavailable(f"schema reference {url!r} is not an http(s) URL; expected a schema URL")
    relative = Path(parsed.netloc) / parsed.path.lstrip("/")
    if ".." in relative.parts:
        raise SchemaUnavailable(f"schema URL {url} escapes the schema mirror; expected a plain <host>/<path> URL")
    return root / relative


def resolve_schema_dir(schema_dir: str | Path | None) -> Path | None:
    """The mirror to use: the argument, else $MLMKIT_SCHEMA_DIR, else none (the shipped schemas, then online)."""
    chosen = schema_dir or os.environ.get(SCHEMA_DIR_ENV) or None
    if chosen is None:
        return None
    path = Path(chosen)
    if not path.is_dir():
        raise SchemaUnavailable(f"schema directory {path} does not exist; expected a mirror laid out <host>/<path>")
    return path


class SchemaStore:
    """Loads schemas by URL and hands out validators whose `$ref`s resolve through it."""

    def __init__(self, schema_dir: str | Path | None = None, cache_dir: Path | None = None) -> None:
        self.schema_dir = resolve_schema_dir(schema_dir)
        self.cache_dir = cache_dir or default_cache_dir()
        self._schemas: dict[str, dict] = {}
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        self.registry: Registry = Registry(retrieve=self._retrieve)

    @classmethod
    def shared(cls, schema_dir: str | Path | None = None) -> SchemaStore:
        """One store per mirror (or per cache when online), so schemas are read and compiled once."""
        return _shared_store(resolve_schema_dir(schema_dir), default_cache_dir())

    def load(self, url: str) -> dict:
        """The schema document at `url` (fragment ignored)."""
        url = urldefrag(url).url
        if url not in self._schemas:
            contents = self._read_local(url) if self.schema_dir else self._read_shipped_cached_or_fetch(url)
            contents = dict(contents)
            contents["$id"] = url  # trust the URL we looked up, not a possibly wrong `$id`
            self._schemas[url] = contents
        return self._schemas[url]

    def validator(self, url: str) -> jsonschema.protocols.Validator:
        """A validator for the schema at `url`, with `$ref`s resolved through this store."""
        url = urldefrag(url).url
        if url not in self._validators:
            schema = self.load(url)
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            self._validators[url] = cls(schema, registry=self.registry)
        return self._validators[url]

    def errors(self, url: str, instance: dict) -> list[jsonschema.ValidationError]:
        """Every way `instance` breaks the schema at `url`; a schema that cannot be had raises."""
        try:
            return list(self.validator(url).iter_errors(instance))
        except Unresolvable as exc:
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, SchemaUnavailable):
                cause = cause.__cause__ or cause.__context__
            raise cause or SchemaUnavailable(f"cannot resolve {exc} while validating against {url}") from exc

    def _retrieve(self, uri: str) -> Resource:
        return Resource.from_contents(self.load(uri), default_specification=DRAFT7)

    def _read_local(self, url: str) -> dict:
        path = mirror_path(self.schema_dir, url)
        if not path.is_file():
            raise SchemaUnavailable(
                f"schema {url} is not in the schema mirror {self.schema_dir} (expected {path}); "
                "add it there, or give no schema_dir (and no MLMKIT_SCHEMA_DIR) to use the shipped schemas and the web"
            )
        return _read_json_file(path, url)

    def _read_shipped_cached_or_fetch(self, url: str) -> dict:
        for root in (shipped_dir(), self.cache_dir):
            path = mirror_path(root, url)
            if path.is_file():
                return _read_json_file(path, url)
        try:
            response = requests.get(url, timeout=HTTP_TIMEOUT_S)
            response.raise_for_status()
            contents = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise SchemaUnavailable(
                f"cannot download schema {url} ({type(exc).__name__}); "
                "mlmkit does not ship it; expected network access or a local mirror (schema_dir or MLMKIT_SCHEMA_DIR)"
            ) from exc
        _write_cache(mirror_path(self.cache_dir, url), contents)
        return contents


@functools.lru_cache(maxsize=8)
def _shared_store(schema_dir: Path | None, cache_dir: Path) -> SchemaStore:
    return SchemaStore(schema_dir, cache_dir)


def _read_json_file(path: Path, url: str) -> dict:
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError) as exc:
        raise SchemaUnavailable(f"schema {url} at {path} is unreadable: {exc}; expected a JSON schema file") from exc


def _write_cache(path: Path, contents: dict) -> None:
    """Best effort: a read-only home must not stop validation."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as tmp:
            json.dump(contents, tmp)
        os.replace(tmp.name, path)
    except OSError:
        pass
