"""`describe`'s spec: the metadata a user gives (spec file and/or options) read into `ModelMetadata`.

A spec file (YAML or JSON) holds the `ModelMetadata` fields plus `inference_runtime` /
`training_runtime` (CWL path or URL); command-line options override it field by field, and both override
what GeoDeep's ONNX metadata or a geoai side-car already say (`mlm.foreign`); `catalog.model_catalog.describe_model`
writes the catalog. Every key: docs/reference/describe-spec.md.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import yaml

from mlmkit.errors import InvalidInput, InvalidMetadata
from mlmkit.mlm.build import ModelMetadata
from mlmkit.stac.read import is_url

RUNTIME_KEYS = {"inference_runtime": "mlm:inference-runtime", "training_runtime": "mlm:training-runtime"}
_FIELDS = {f.name for f in dataclasses.fields(ModelMetadata)}
_REQUIRED = ("name", "architecture", "tasks")


def load_spec(path: str | Path) -> dict[str, Any]:
    """A spec file's mapping, with runtime paths made relative to the file, not the working directory."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        spec = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise InvalidInput(f"cannot read spec file {path}: {exc.strerror}; expected a YAML or JSON file") from exc
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInput(f"spec file {path} is not valid YAML/JSON: {str(exc).splitlines()[0]}") from exc
    if not isinstance(spec, dict):
        raise InvalidInput(f"spec file {path} holds a {type(spec).__name__}; expected a mapping of metadata fields")
    for key in RUNTIME_KEYS:
        href = spec.get(key)
        if isinstance(href, str) and not is_url(href) and not Path(href).is_absolute():
            spec[key] = str(path.parent / href)
    return spec


def _default_id(model_path: Path, name: str | None) -> str:
    base = name or model_path.stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-").lower() or "model"


def metadata_from_spec(model_path: Path, spec: dict[str, Any]) -> tuple[ModelMetadata, dict[str, str]]:
    """ModelMetadata and the runtime role -> CWL href map from a merged spec."""
    unknown = sorted(set(spec) - _FIELDS - set(RUNTIME_KEYS))
    if unknown:
        raise InvalidMetadata(f"unknown spec fields {unknown}; expected some of {sorted(_FIELDS | set(RUNTIME_KEYS))}")
    missing = [key for key in _REQUIRED if not spec.get(key)]
    if missing:
        raise InvalidMetadata(f"model metadata lacks {missing}; expected them in the spec file or as options")
    fields = {key: value for key, value in spec.items() if key in _FIELDS and value is not None}
    fields.setdefault("id", _default_id(model_path, spec.get("name")))
    fields["tasks"] = [fields["tasks"]] if isinstance(fields["tasks"], str) else list(fields["tasks"])
    fields["bands"] = [{"name": band} if isinstance(band, str) else band for band in fields.get("bands", [])]
    if isinstance(fields.get("value_scaling"), dict):
        fields["value_scaling"] = [fields["value_scaling"]]
    runtime = {role: spec[key] for key, role in RUNTIME_KEYS.items() if spec.get(key)}
    try:
        return ModelMetadata(**fields), runtime
    except TypeError as exc:
        raise InvalidMetadata(f"model metadata is incomplete: {exc}") from exc
