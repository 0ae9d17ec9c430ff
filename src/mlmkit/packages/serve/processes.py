"""What `mlmkit serve` can run: the MLM models of a catalog or STAC API, and CWL packages deployed to it.

A model is a process when its Item names an inference runtime (`mlm:inference-runtime`): the process id is the
Item id, its description that of the package's Workflow (cwl2ogc) less the `model` input, which the Item fills.
Deployed packages live in STATE/processes/<id>/package.cwl, checked with the deployers' acceptance rules and
`cwltool --validate` before they are kept.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlmkit.catalog.search import ModelQuery, search_api, search_local
from mlmkit.errors import InvalidArgument, InvalidMetadata
from mlmkit.packages.acceptance import RULES, findings
from mlmkit.packages.cwl import INFERENCE, fetch_package
from mlmkit.packages.ogc import process_description
from mlmkit.mlm.spec import read_model
from mlmkit.stac.read import is_url

# Rules the shipped packages themselves do not meet (see docs/how-to/deploy.md): not asked of deployed ones.
NOT_ASKED = ("maap:entrypoint", "zoo:optional-inputs")


@dataclass
class Process:
    id: str
    package: str            # file#workflow
    description: dict
    model: str | None = None  # MLM Item href (model processes)
    mutable: bool = False


def _workflow_ids(document: dict) -> list[str]:
    return [str(p.get("id", "")).lstrip("#") for p in document.get("$graph", [document])
            if isinstance(p, dict) and p.get("class") == "Workflow"]


def model_processes(source: str, workdir: Path) -> dict[str, Process]:
    """One process per MLM Item with an inference runtime in the catalog (path) or STAC API (URL)."""
    matches = search_api(source, ModelQuery()) if is_url(source) and not source.endswith(".json") \
        else search_local(source, ModelQuery())
    processes = {}
    for match in matches:
        if match.spec.runtime(INFERENCE) is None or not match.href:
            continue
        spec = read_model(match.href)  # hrefs resolved against where the Item is
        package = fetch_package(spec, INFERENCE, workdir / spec.item.id)
        description = process_description(package.path, package.process_id)
        description["inputs"].pop("model", None)
        description.update(id=match.spec.item.id, title=match.spec.item.properties.get("mlm:name") or
                           match.spec.item.id, description=match.spec.item.properties.get("description")
                           or description.get("description"))
        processes[match.spec.item.id] = Process(match.spec.item.id, package.process, description, match.href)
    return processes


def checked_package(text: str, workflow: str | None) -> tuple[dict, str]:
    """The package document and the Workflow it deploys, after the acceptance rules and cwltool --validate."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidMetadata(f"the package is not YAML/JSON: {str(exc).splitlines()[0]}") from exc
    if not isinstance(document, dict):
        raise InvalidMetadata("the package is not a CWL document; expected a YAML/JSON object")
    workflows = _workflow_ids(document)
    if workflow is None and len(workflows) != 1:
        raise InvalidMetadata(f"the package has {len(workflows)} Workflows; expected one, or ?w=<workflow id>")
    chosen = workflow or workflows[0]
    if chosen not in workflows:
        raise InvalidArgument(f"the package has no Workflow {chosen!r}; it has {', '.join(workflows) or 'none'}")
    _check_rules(document, text)
    with tempfile.TemporaryDirectory() as temp:
        path = Path(temp) / "package.cwl"
        path.write_text(text, encoding="utf-8")
        run = subprocess.run([sys.executable, "-m", "cwltool", "--validate", f"{path}#{chosen}"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            lines = [line for line in run.stderr.splitlines() if line.strip()]
            raise InvalidMetadata("cwltool --validate refuses the package: "
                                  f"{lines[-1][:300] if lines else 'no output'}")
    return document, chosen


def _check_rules(document: dict, text: str) -> None:
    for key, problems in findings(document, text).items():
        if problems and key not in NOT_ASKED:
            rule = next(r for r in RULES if r.key == key)
            raise InvalidMetadata(f"the package fails {key} ({rule.source}): {problems[0]}; expected {rule.text}")


class DeployedProcesses:
    """The packages deployed under STATE/processes."""

    def __init__(self, state: Path) -> None:
        self.root = state / "processes"
        self.root.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict[str, Process]:
        processes = {}
        for folder in sorted(self.root.iterdir()):
            meta = folder / "process.json"
            if meta.is_file():
                data = json.loads(meta.read_text(encoding="utf-8"))
                processes[data["id"]] = Process(data["id"], data["package"], data["description"], mutable=True)
        return processes

    def save(self, text: str, workflow: str | None, replace: str | None = None) -> Process:
        """Check and keep a package; `replace` names the process it replaces (its id must stay)."""
        document, chosen = checked_package(text, workflow)
        if replace is not None and chosen != replace:
            raise InvalidArgument(f"the package's Workflow is {chosen!r}; "
                                  f"expected {replace!r}, the process it replaces")
        folder = self.root / chosen
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{chosen}."))
        (staging / "package.cwl").write_text(text, encoding="utf-8")
        package = f"{folder / 'package.cwl'}#{chosen}"
        description = process_description(staging / "package.cwl", chosen)
        description["version"] = str(document.get("s:version") or document.get("s:softwareVersion") or "")
        description["mutable"] = True
        process = Process(chosen, package, description, mutable=True)
        (staging / "process.json").write_text(json.dumps({"id": chosen, "package": package,
                                                          "description": description}, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
        return process

    def remove(self, process_id: str) -> None:
        shutil.rmtree(self.root / process_id, ignore_errors=True)
