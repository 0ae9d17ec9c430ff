"""The CWL application package an MLM Item names as its runtime: fetched, checked, and read for its interface.

`mlm:inference-runtime` / `mlm:training-runtime` assets point at a CWL file, local or by URL, often a packed
`$graph` (OGC EO Application Package). Before anything runs, the file is downloaded when remote, its
`file:checksum` verified when the asset carries one, and the process to run is chosen: the href's `#fragment`,
else `#main`, else the package's only Workflow. Its inputs and outputs are read as data (YAML, never executed)
so that `mlmkit run` can fill in a job order and find the result catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlmkit.stac.checksum import verify_checksum
from mlmkit.errors import InvalidArgument, InvalidMetadata
from mlmkit.stac.fetch import download
from mlmkit.mlm.spec import ModelSpec
from mlmkit.stac.read import is_url

INFERENCE = "mlm:inference-runtime"
TRAINING = "mlm:training-runtime"
_DIRECT = {INFERENCE: "`mlmkit predict` runs the model directly", TRAINING: "`mlmkit train` trains a model directly"}
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SCALARS = {"int": (int,), "long": (int,), "float": (int, float), "double": (int, float), "boolean": (bool,)}


@dataclass(frozen=True)
class Parameter:
    """A process input or output: its name, the CWL types it accepts (arrays as `T[]`), whether it may be null."""

    name: str
    types: frozenset[str]
    optional: bool

    def accepts(self, type_name: str) -> bool:
        return type_name in self.types

    def value(self, text: str) -> Any:
        """The job-order value for a command-line `NAME=VALUE`: a path becomes a File/Directory, numbers numbers."""
        for kind in ("Directory", "File"):
            if self.accepts(kind) and not self.accepts("string"):
                return {"class": kind, "path": str(Path(text).absolute())}
        scalars = sorted(self.types & _SCALARS.keys())
        if scalars:
            try:
                loaded = yaml.safe_load(text)
            except yaml.YAMLError:
                loaded = None
            if any(isinstance(loaded, _SCALARS[kind]) and (kind == "boolean") == isinstance(loaded, bool)
                   for kind in scalars):
                return loaded
            if not self.accepts("string"):
                raise InvalidArgument(f"value {text!r} for input {self.name!r} is not a CWL {' or '.join(scalars)}")
        return text


@dataclass(frozen=True)
class Package:
    """One process of a CWL file, ready to hand to an engine as `file#id`."""

    path: Path
    process_id: str | None
    inputs: dict[str, Parameter]
    outputs: dict[str, Parameter]

    @property
    def process(self) -> str:
        return f"{self.path}#{self.process_id}" if self.process_id else str(self.path)

    def data_input(self) -> Parameter:
        """The one required Directory (or Directory[]) input besides `model`: where the --input catalogs go."""
        found = [p for p in self.inputs.values() if p.name != "model" and not p.optional
                 and (p.accepts("Directory") or p.accepts("Directory[]"))]
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise InvalidMetadata(f"{self.process} has {len(found)} required Directory inputs besides 'model' "
                                  f"({names}); expected exactly one to receive the input catalogs")
        return found[0]

    def result_output(self) -> Parameter:
        """The one Directory output: the catalog the run produces, named so that it can name a directory."""
        found = [p for p in self.outputs.values() if p.accepts("Directory")]
        if len(found) != 1:
            raise InvalidMetadata(f"{self.process} has {len(found)} Directory outputs; "
                                  "expected exactly one result catalog")
        if not _PLAIN_NAME.fullmatch(found[0].name):
            raise InvalidMetadata(f"{self.process} names its output {found[0].name!r}; "
                                  "expected letters, digits, '_', '-', '.'")
        return found[0]


def _types(declared: Any) -> tuple[set[str], bool]:
    """CWL type syntax (`T?`, `T[]`, lists, array/enum/record objects) as type names and whether null is allowed."""
    if isinstance(declared, str):
        optional = declared.endswith("?")
        name = declared.rstrip("?")
        return ({name} - {"null"}), optional or name == "null"
    if isinstance(declared, list):
        names: set[str] = set()
        optional = False
        for entry in declared:
            entry_names, entry_optional = _types(entry)
            names |= entry_names
            optional |= entry_optional
        return names, optional
    if isinstance(declared, dict):
        kind = declared.get("type")
        if kind == "array":
            items, _ = _types(declared.get("items"))
            return {f"{name}[]" for name in items}, False
        return ({kind} if isinstance(kind, str) else set()), False
    return set(), False


def _parameters(section: Any, where: str) -> dict[str, Parameter]:
    """A process's inputs or outputs, in map or list form, with packed ids (`#wf/name`) reduced to names."""
    if isinstance(section, dict):
        entries = [dict(spec, id=name) if isinstance(spec, dict) else {"id": name, "type": spec}
                   for name, spec in section.items()]
    elif isinstance(section, list):
        entries = section
    else:
        raise InvalidMetadata(f"{where} is not a CWL inputs/outputs section; expected a map or a list")
    parameters = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise InvalidMetadata(f"{where} holds an entry without an id: {str(entry)[:80]}")
        name = entry["id"].rsplit("/", 1)[-1].lstrip("#")
        types, optional = _types(entry.get("type"))
        parameters[name] = Parameter(name, frozenset(types), optional or "default" in entry)
    return parameters


def _process(document: Any, fragment: str | None, where: str) -> tuple[dict, str | None]:
    """The process to run: the fragment's, else #main, else the only Workflow of a $graph, else the document."""
    if not isinstance(document, dict):
        raise InvalidMetadata(f"{where} is not a CWL document; expected a YAML/JSON object")
    graph = document.get("$graph")
    if graph is None:
        if fragment and document.get("id", "").lstrip("#") != fragment:
            raise InvalidMetadata(f"{where} has no process {fragment!r}; expected the id after '#' to name its process")
        return document, None
    processes = {str(p.get("id", "")).lstrip("#"): p for p in graph if isinstance(p, dict)}
    if fragment:
        if fragment not in processes:
            raise InvalidMetadata(f"{where} has no process {fragment!r}; it has {', '.join(processes)}")
        return processes[fragment], fragment
    if "main" in processes:
        return processes["main"], "main"
    workflows = [name for name, process in processes.items() if process.get("class") == "Workflow"]
    if len(workflows) != 1:
        raise InvalidMetadata(f"{where} holds {len(workflows)} Workflows ({', '.join(workflows) or 'none'}); "
                              "expected one, #main, or the process id after '#' in the runtime asset's href")
    return processes[workflows[0]], workflows[0]


def read_package(path: Path, fragment: str | None = None) -> Package:
    """The interface of the process `path#fragment`."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidMetadata(f"cannot read the CWL package {path}: {exc}") from exc
    process, process_id = _process(document, fragment, str(path))
    where = f"{path}#{process_id}" if process_id else str(path)
    return Package(path=path, process_id=process_id,
                   inputs=_parameters(process.get("inputs", {}), f"{where} inputs"),
                   outputs=_parameters(process.get("outputs", {}), f"{where} outputs"))


def fetch_package(spec: ModelSpec, role: str, workdir: Path) -> Package:
    """The runtime package `role` of an MLM Item: downloaded into `workdir` if remote, checksum verified."""
    asset = spec.runtime(role)
    if asset is None:
        raise InvalidMetadata(f"MLM Item {spec.item.id!r} has no {role} asset, so there is no CWL package to run; "
                              f"{_DIRECT[role]}")
    href, _, fragment = asset.href.partition("#")
    if is_url(href):
        # A fixed name: hrefs are data and never choose where a file is written.
        path = download(href, workdir / f"{role.split(':')[1]}.cwl")
    else:
        path = Path(href)
        if not path.is_file():
            raise InvalidMetadata(f"the {role} package {href} of MLM Item {spec.item.id!r} does not exist; "
                                  "expected a CWL file beside the Item or a URL")
    if asset.file_checksum:
        verify_checksum(path, asset.file_checksum)
    return read_package(path.absolute(), fragment or None)
