"""What public deployers check before they accept a CWL application package, as rules mlmkit can apply itself.

Each rule names the deployer, the source file of that deployer's checking code and what it asks; the rules were
read from the deployers' public code (none of it is copied here) and are applied to the package as data (YAML,
never executed). `mlmkit serve` applies them to every package deployed to it, the tests apply them to the shipped
packages, and docs/how-to/deploy.md lists them. Where a deployer's own checker is installable (zoo-calrissian-runner,
cwl2ogc, cwltool as eozilla and MAAP call it), the tests also run that code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mlmkit.errors import InvalidMetadata

SCHEMA_ORG = ("https://schema.org", "https://schema.org/", "http://schema.org/")
# Weaver: weaver/processes/constants.py CWL_REQUIREMENTS_SUPPORTED (the classes these packages could use)
WEAVER_SUPPORTED = frozenset({
    "DockerRequirement", "cwltool:CUDARequirement", "CUDARequirement", "EnvVarRequirement",
    "InitialWorkDirRequirement", "InplaceUpdateRequirement", "InlineJavascriptRequirement", "LoadListingRequirement",
    "MultipleInputFeatureRequirement", "NetworkAccess", "ResourceRequirement", "ScatterFeatureRequirement",
    "StepInputExpressionRequirement", "cwltool:Secrets", "SubworkflowFeatureRequirement", "ToolTimeLimit",
    "WorkReuse"})
WEAVER_APP_TYPES = frozenset({"DockerRequirement", "DockerGpuRequirement", "BuiltinRequirement", "OGCAPIRequirement",
                              "WPS1Requirement", "ESGF-CWTRequirement"})
WEAVER_SUPPORTED |= WEAVER_APP_TYPES
# weaver/wps_restapi/swagger_definitions.py SLUG
WEAVER_ID = re.compile(r"^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$")
# Types eozilla (eoap_process.py) and Weaver (constants.py PACKAGE_ARRAY_ITEMS) turn into OGC schemas
PLAIN_TYPES = frozenset({"boolean", "int", "long", "float", "double", "string", "File", "Directory"})
MAAP_VERSION = re.compile(r"s:version:[ \t]*(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class Rule:
    """One acceptance rule of one deployer: `check` yields what fails it (nothing when the package passes)."""

    deployer: str
    rule: str
    source: str  # repository and file of the deployer's code
    text: str
    check: Callable[[dict, str], Iterator[str]]

    @property
    def key(self) -> str:
        return f"{self.deployer}:{self.rule}"


def _graph(document: dict) -> list[dict]:
    graph = document.get("$graph")
    if isinstance(graph, list):
        return [p for p in graph if isinstance(p, dict)]
    return [document] if document.get("class") else []


def _ident(process: dict) -> str:
    return str(process.get("id", "")).lstrip("#")


def _of(document: dict, kind: str) -> list[dict]:
    return [p for p in _graph(document) if p.get("class") == kind]


def _entries(section: Any) -> list[tuple[str, dict]]:
    """Inputs/outputs/requirements in map or list form as (name, spec)."""
    if isinstance(section, dict):
        return [(name, spec if isinstance(spec, dict) else {"type": spec}) for name, spec in section.items()]
    if isinstance(section, list):
        return [(str(e.get("id") or e.get("class", "")), e) for e in section if isinstance(e, dict)]
    return []


def _classes(process: dict, *sections: str) -> list[str]:
    classes = []
    for section in sections:
        value = process.get(section)
        if isinstance(value, dict):
            classes += list(value)
        elif isinstance(value, list):
            classes += [str(e.get("class", "")) for e in value if isinstance(e, dict)]
    return classes


def _schema_prefix(document: dict) -> str | None:
    namespaces = document.get("$namespaces")
    if not isinstance(namespaces, dict):
        return None
    return next((key for key, url in namespaces.items() if url in SCHEMA_ORG), None)


def _type_problem(declared: Any) -> str | None:
    """Why a CWL type has no OGC schema in eozilla/Weaver (records, unions of two real types), else None."""
    if isinstance(declared, str):
        name = declared[:-1] if declared.endswith("?") else declared
        name = name[:-2] if name.endswith("[]") else name
        return None if name in PLAIN_TYPES else f"type {declared!r}"
    if isinstance(declared, list):
        real = [entry for entry in declared if entry != "null"]
        if len(real) != 1 or len(declared) > 2:
            return f"union {declared!r} (only T or [null, T])"
        return _type_problem(real[0])
    if isinstance(declared, dict):
        kind = declared.get("type")
        if kind == "enum":
            return None
        if kind == "array":
            return _type_problem(declared.get("items"))
        return f"{kind} type"
    return f"type {declared!r}"


# --- eozilla-eoap: src/eozilla_eoap/service/eoap_acceptance.py, procolike/eoap_process.py ----------------------

def _eozilla_req07(document: dict, text: str) -> Iterator[str]:
    if not _of(document, "Workflow") or not _of(document, "CommandLineTool"):
        yield "needs a Workflow and a CommandLineTool"


def _eozilla_req08(document: dict, text: str) -> Iterator[str]:
    for tool in _of(document, "CommandLineTool"):
        for field in ("id", "baseCommand", "inputs", "requirements"):
            if not tool.get(field):
                yield f"CommandLineTool {_ident(tool) or '?'} has no {field}"
        if "DockerRequirement" not in _classes(tool, "requirements", "hints"):
            yield f"CommandLineTool {_ident(tool)} names no DockerRequirement"


def _eozilla_req09(document: dict, text: str) -> Iterator[str]:
    for workflow in _of(document, "Workflow"):
        for field in ("id", "label", "doc"):
            if not workflow.get(field):
                yield f"Workflow {_ident(workflow) or '?'} has no {field}"


def _eozilla_req10(document: dict, text: str) -> Iterator[str]:
    for workflow in _of(document, "Workflow"):
        for name, spec in _entries(workflow.get("inputs")):
            missing = [field for field in ("label", "doc") if not spec.get(field)]
            if missing:
                yield f"input {name} of {_ident(workflow)} has no {' or '.join(missing)}"


def _eozilla_req11(document: dict, text: str) -> Iterator[str]:
    prefix = _schema_prefix(document)
    if prefix is None:
        yield "$namespaces has no schema.org prefix"
    elif document.get(f"{prefix}:version") in (None, ""):
        yield f"no top-level {prefix}:version"


def _eozilla_types(document: dict, text: str) -> Iterator[str]:
    for workflow in _of(document, "Workflow"):
        for section in ("inputs", "outputs"):
            for name, spec in _entries(workflow.get(section)):
                problem = _type_problem(spec.get("type"))
                if problem:
                    yield f"{section[:-1]} {name} of {_ident(workflow)}: {problem} has no OGC schema"


# --- ZOO-Project-DRU: zoo-calrissian-runner (zoo_runner_common/zoo_conf.py, zoo_calrissian_runner/__init__.py) --

def _zoo_version(document: dict, text: str) -> Iterator[str]:
    if not str(document.get("s:softwareVersion", "")).strip():
        yield "no top-level s:softwareVersion (CWLWorkflow.get_version)"


def _zoo_steps(document: dict, text: str) -> Iterator[str]:
    ids = {_ident(p) for p in _graph(document)}
    for workflow in _of(document, "Workflow"):
        for name, step in _entries(workflow.get("steps")):
            run = step.get("run")
            if not isinstance(run, str) or not run.startswith("#") or run[1:] not in ids:
                yield f"step {name} of {_ident(workflow)} runs {run!r}; expected '#<id>' of a process in the $graph"


def _zoo_resources(document: dict, text: str) -> Iterator[str]:
    for tool in _of(document, "CommandLineTool"):
        found = [spec for name, spec in _entries(tool.get("requirements")) + _entries(tool.get("hints"))
                 if spec.get("class") == "ResourceRequirement"]
        if len(found) != 1:
            yield f"{_ident(tool)} has {len(found)} ResourceRequirements; expected one"
        elif not (found[0].get("coresMax") and found[0].get("ramMax")):
            yield f"{_ident(tool)} ResourceRequirement has no coresMax/ramMax (the pod would get the defaults)"


def zoo_mandatory_inputs(workflow: dict) -> list[str]:
    """Inputs ZOO's runner demands in every execute request: all without a default that are not `string?`."""
    def optional_string(declared: Any) -> bool:
        return declared == "string?" or (isinstance(declared, list) and sorted(map(str, declared)) == ["null", "string"])
    return [name for name, spec in _entries(workflow.get("inputs"))
            if "default" not in spec and not optional_string(spec.get("type"))]


def _zoo_optional(document: dict, text: str) -> Iterator[str]:
    for workflow in _of(document, "Workflow"):
        for name, spec in _entries(workflow.get("inputs")):
            declared = spec.get("type")
            optional = (isinstance(declared, str) and declared.endswith("?")) or \
                (isinstance(declared, list) and "null" in declared)
            if optional and name in zoo_mandatory_inputs(workflow):
                yield f"optional input {name} has no default: ZOO fails a run whose request leaves it out"


def _zoo_main(document: dict, text: str) -> Iterator[str]:
    if any(_ident(p) == "main" for p in _of(document, "Workflow")):
        yield "a Workflow is named main, the id of the stage-in/stage-out orchestrator"


# --- Weaver: crim-ca/weaver weaver/processes/utils.py, wps_package.py, constants.py, utils.py -------------------

def _weaver_graph(document: dict, text: str) -> Iterator[str]:
    workflows = _of(document, "Workflow")
    if len(workflows) > 1:
        yield f"{len(workflows)} Workflows in the $graph; one top-level Workflow per deployment"
    if sum(1 for p in _graph(document) if _ident(p) == "main") > 1:
        yield "more than one process is named main"


def _weaver_ids(document: dict, text: str) -> Iterator[str]:
    for process in _graph(document):
        if not WEAVER_ID.match(_ident(process)):
            yield f"process id {_ident(process)!r} is not a slug ([A-Za-z0-9] words joined by '-' or '_')"


def _weaver_app_requirement(document: dict, text: str) -> Iterator[str]:
    for tool in _of(document, "CommandLineTool"):
        apps = [c for c in _classes(tool, "requirements", "hints") if c in WEAVER_APP_TYPES]
        if len(apps) != 1:
            yield f"{_ident(tool)} has {len(apps)} application requirements ({', '.join(apps) or 'none'}); expected one"


def _weaver_supported(document: dict, text: str) -> Iterator[str]:
    for process in _graph(document):
        unknown = sorted(set(_classes(process, "requirements", "hints")) - WEAVER_SUPPORTED)
        if unknown:
            yield f"{_ident(process)} uses {', '.join(unknown)}, which Weaver does not support"


# --- NASA MAAP: MAAP-Project/maap-api-nasa api/utils/ogc_process_util.py get_cwl_metadata ------------------------

def _maap_version(document: dict, text: str) -> Iterator[str]:
    match = MAAP_VERSION.search(text)
    version = match.group(1).strip().strip("'\"") if match else ""
    if not version:
        yield "no s:version in the file text"
    elif ":" in version:
        yield f"s:version {version!r} contains ':'"


def _maap_workflow(document: dict, text: str) -> Iterator[str]:
    workflows = _of(document, "Workflow")
    if document.get("cwlVersion") != "v1.2" or not workflows or not _ident(workflows[0]):
        yield "needs a CWL v1.2 Workflow with an id"


def _maap_entrypoint(document: dict, text: str) -> Iterator[str]:
    graph = _graph(document)
    if len(graph) > 1 and not any(_ident(p) == "main" for p in graph):
        yield ("cwltool loads the whole file without a '#' target: a $graph of several processes needs one "
               "named main (mlmkit release writes maap/ copies whose first step's tool is main)")


def _maap_resources(document: dict, text: str) -> Iterator[str]:
    workflows = _of(document, "Workflow")
    steps = _entries(workflows[0].get("steps")) if workflows else []
    if not steps:
        return
    run = str(steps[0][1].get("run", "")).lstrip("#")
    tool = next((p for p in _of(document, "CommandLineTool") if _ident(p) == run), None)
    if tool is None or "ResourceRequirement" not in _classes(tool, "requirements"):
        yield f"the first step's tool {run!r} has no ResourceRequirement under requirements (ramMin, coresMin)"


RULES: tuple[Rule, ...] = (
    Rule("eozilla", "req-07", "eo-tools/eozilla-eoap src/eozilla_eoap/service/eoap_acceptance.py",
         "a Workflow and at least one CommandLineTool", _eozilla_req07),
    Rule("eozilla", "req-08", "eo-tools/eozilla-eoap src/eozilla_eoap/service/eoap_acceptance.py",
         "every CommandLineTool has id, baseCommand, inputs, requirements and a DockerRequirement", _eozilla_req08),
    Rule("eozilla", "req-09", "eo-tools/eozilla-eoap src/eozilla_eoap/service/eoap_acceptance.py",
         "every Workflow has id, label and doc", _eozilla_req09),
    Rule("eozilla", "req-10", "eo-tools/eozilla-eoap src/eozilla_eoap/service/eoap_acceptance.py",
         "every Workflow input has a label and a doc", _eozilla_req10),
    Rule("eozilla", "req-11", "eo-tools/eozilla-eoap src/eozilla_eoap/service/eoap_acceptance.py",
         "a top-level s:version (schema.org prefix from $namespaces)", _eozilla_req11),
    Rule("eozilla", "types", "eo-tools/eozilla-eoap src/eozilla_eoap/procolike/eoap_process.py",
         "Workflow inputs/outputs are plain types, enums, arrays or [null, T]; no records", _eozilla_types),
    Rule("zoo", "version", "ZOO-Project/zoo-calrissian-runner zoo_runner_common/zoo_conf.py (CWLWorkflow)",
         "a top-level s:softwareVersion (the process version)", _zoo_version),
    Rule("zoo", "steps", "ZOO-Project/zoo-calrissian-runner zoo_runner_common/zoo_conf.py (eval_resource)",
         "every step runs '#<id>' of a process in the same $graph", _zoo_steps),
    Rule("zoo", "resources", "ZOO-Project/zoo-calrissian-runner zoo_runner_common/zoo_conf.py (eval_resource)",
         "every tool has one ResourceRequirement with coresMax and ramMax", _zoo_resources),
    Rule("zoo", "optional-inputs", "ZOO-Project/zoo-calrissian-runner zoo_runner_common/base_runner.py "
         "(assert_parameters)", "every optional input has a default or is string?", _zoo_optional),
    Rule("zoo", "main", "ZOO-Project/zoo-calrissian-runner zoo_calrissian_runner/__init__.py (wrap)",
         "no Workflow named main (the stage-in/out orchestrator's id)", _zoo_main),
    Rule("weaver", "graph", "crim-ca/weaver weaver/processes/utils.py (resolve_deployment_order)",
         "one Workflow per $graph, at most one process named main", _weaver_graph),
    Rule("weaver", "ids", "crim-ca/weaver weaver/utils.py (assert_sane_name), swagger_definitions.py (SLUG)",
         "every process id is a slug", _weaver_ids),
    Rule("weaver", "app-requirement", "crim-ca/weaver weaver/processes/wps_package.py (get_application_requirement)",
         "every tool has exactly one application requirement (DockerRequirement)", _weaver_app_requirement),
    Rule("weaver", "supported", "crim-ca/weaver weaver/processes/constants.py (CWL_REQUIREMENTS_SUPPORTED)",
         "only requirements and hints Weaver supports", _weaver_supported),
    Rule("maap", "version", "MAAP-Project/maap-api-nasa api/utils/ogc_process_util.py (get_cwl_metadata)",
         "'s:version: X' in the file text, X non-empty without ':'", _maap_version),
    Rule("maap", "workflow", "MAAP-Project/maap-api-nasa api/utils/ogc_process_util.py (get_cwl_metadata)",
         "a CWL v1.2 Workflow with an id (the process id)", _maap_workflow),
    Rule("maap", "entrypoint", "MAAP-Project/maap-api-nasa api/utils/ogc_process_util.py (load_tool)",
         "the file loads without a '#' target: one process, or one named main", _maap_entrypoint),
    Rule("maap", "resources", "MAAP-Project/maap-api-nasa api/utils/ogc_process_util.py (get_cwl_metadata)",
         "the first step's tool has a ResourceRequirement under requirements", _maap_resources),
)
DEPLOYERS = tuple(dict.fromkeys(rule.deployer for rule in RULES))


def findings(document: dict, text: str = "", deployers: tuple[str, ...] = DEPLOYERS) -> dict[str, list[str]]:
    """Rule key -> what fails it, for every rule of `deployers` (an empty list: the package passes)."""
    if not isinstance(document, dict):
        raise InvalidMetadata("the package is not a CWL document; expected a YAML/JSON object")
    return {rule.key: list(rule.check(document, text)) for rule in RULES if rule.deployer in deployers}


def check_package(document: dict, text: str = "", deployers: tuple[str, ...] = DEPLOYERS) -> None:
    """Raise InvalidMetadata naming the first failed rule and its source."""
    for key, problems in findings(document, text, deployers).items():
        if problems:
            rule = next(r for r in RULES if r.key == key)
            raise InvalidMetadata(f"the package fails {key} ({rule.source}): {problems[0]}; expected {rule.text}")
