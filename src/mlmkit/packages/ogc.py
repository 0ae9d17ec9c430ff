"""OGC API - Processes descriptions of the CWL packages, made with cwl2ogc (what an ADES shows as /processes/{id})."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlmkit.errors import InvalidInput, InvalidMetadata


def _workflow_id(document: dict, path: Path, chosen: str | None = None) -> str:
    workflows = [p["id"] for p in document.get("$graph", []) if p.get("class") == "Workflow"]
    if chosen is not None and chosen in workflows:
        return chosen
    if len(workflows) != 1:
        raise InvalidMetadata(f"{path} has {len(workflows)} Workflows; expected exactly one in its $graph")
    return workflows[0]


def _restore_falsy_defaults(inputs: dict[str, Any], workflow: Any) -> None:
    """cwl2ogc writes a default only when it is truthy; 0, false and "" defaults are put back."""
    for parameter in workflow.inputs:
        name = parameter.id.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        schema = inputs.get(name, {}).get("schema")
        if parameter.default is not None and isinstance(schema, dict) and "default" not in schema:
            schema["default"] = parameter.default


def process_description(path: str | Path, workflow_id: str | None = None) -> dict[str, Any]:
    """The OGC process description (id, version, inputs, outputs) of the package's Workflow (`workflow_id`
    where it has several)."""
    try:
        from cwl2ogc import BaseCWLtypes2OGCConverter
        from cwl_utils.parser import load_document_by_uri
    except ImportError as exc:
        raise InvalidInput("OGC descriptions need cwl2ogc; expected `pip install cwl2ogc`") from exc
    path = Path(path).absolute()
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    workflow_id = _workflow_id(document, path, workflow_id)
    workflow = load_document_by_uri(f"{path.as_uri()}#{workflow_id}")
    converter = BaseCWLtypes2OGCConverter(workflow)
    inputs = converter.get_inputs()
    _restore_falsy_defaults(inputs, workflow)
    return {
        "id": workflow_id,
        "title": workflow.label,
        "description": workflow.doc,
        "version": str(document.get("s:softwareVersion", "")),
        "jobControlOptions": ["async-execute"],
        "outputTransmission": ["reference"],
        "inputs": inputs,
        "outputs": converter.get_outputs(),
    }
