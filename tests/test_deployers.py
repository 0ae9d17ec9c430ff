"""Every public deployer's acceptance rules on both packages (inference, training), each naming its source.

The rules (mlmkit.packages.acceptance) were read from the deployers' code: eozilla-eoap's eoap_acceptance.py,
ZOO-Project-DRU's zoo-calrissian-runner, Weaver's wps_package/utils/constants and NASA MAAP's ogc_process_util.
Where the deployer's own code is installable it runs here too: cwltool --validate --strict and cwl_utils'
parser as eozilla calls them, zoo-calrissian-runner (PyPI) reading and wrapping the package as ZOO-Project-DRU
does before a run, and cwltool's load_tool as MAAP calls it. Weaver is not on PyPI (the `weaver` there is another
project), so its rules are encoded only. Each rule is also shown to fail on a package that breaks it.
"""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from mlmkit.cli import main
from mlmkit.errors import InvalidMetadata
from mlmkit.packages.acceptance import RULES, check_package, findings
from test_cwl import BASE_URL, PINS

REPO = Path(__file__).resolve().parents[1]
CWL = REPO / "cwl"
BIN = Path(sys.executable).parent
PACKAGES = {"inference.cwl": "mlmkit-inference", "training.cwl": "mlmkit-training"}
DEVELOPMENT_ONLY = {"maap:entrypoint"}  # met by the maap/ copies `mlmkit release` writes
# Optional inputs whose absence means "decide from the data/model" (no default can say that): ZOO's runner
# demands them in the execute request; docs/how-to/deploy.md says so.
KNOWN_GAPS = {"zoo:optional-inputs": {"inference.cwl": ["tile_size"],
                                      "training.cwl": ["task", "architecture", "width", "schema_dir"]}}


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "cwl"
    result = CliRunner().invoke(main, ["release", "--version", "9.9.9", "--base-url", BASE_URL, "--output", str(out),
                                       *[arg for pin in PINS for arg in ("--image", pin)]])
    assert result.exit_code == 0, result.output
    return out


def _read(path: Path) -> tuple[dict, str]:
    text = path.read_text()
    return yaml.safe_load(text), text


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.key)
@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_shipped_package_passes(package: str, rule) -> None:
    document, text = _read(CWL / package)
    problems = list(rule.check(document, text))
    if rule.key in DEVELOPMENT_ONLY:
        assert problems and "named main" in problems[0], rule.source
    elif rule.key in KNOWN_GAPS:
        assert [p.split()[2] for p in problems] == KNOWN_GAPS[rule.key][package]
    else:
        assert problems == [], f"{rule.key} ({rule.source}): {problems}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.key)
@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_released_package_passes(released: Path, package: str, rule) -> None:
    """What is deployed: the released copy (pinned images required); MAAP gets the maap/ copy."""
    path = released / "maap" / package if rule.deployer == "maap" else released / package
    document, text = _read(path)
    problems = list(rule.check(document, text))
    if rule.key in KNOWN_GAPS:
        assert [p.split()[2] for p in problems] == KNOWN_GAPS[rule.key][package]
    else:
        assert problems == [], rule.source
    assert document["s:version"] == document["s:softwareVersion"] == "9.9.9"


def _drop_version(doc: dict) -> None:
    del doc["s:version"]


def _record_input(doc: dict) -> None:
    workflow = next(p for p in doc["$graph"] if p["class"] == "Workflow")
    workflow["inputs"]["area"] = {"type": {"type": "record", "fields": {"x": "int"}}, "label": "a", "doc": "b"}


def _unlabelled_input(doc: dict) -> None:
    next(p for p in doc["$graph"] if p["class"] == "Workflow")["inputs"]["model"].pop("label")


def _two_apps(doc: dict) -> None:
    tool = next(p for p in doc["$graph"] if p["class"] == "CommandLineTool")
    tool["requirements"].append({"class": "DockerGpuRequirement", "dockerPull": "x"})


def _unsupported(doc: dict) -> None:
    next(p for p in doc["$graph"] if p["class"] == "CommandLineTool")["requirements"].append(
        {"class": "ShellCommandRequirement"})


def _no_resources(doc: dict) -> None:
    tool = next(p for p in doc["$graph"] if p["class"] == "CommandLineTool")
    tool["requirements"] = [r for r in tool["requirements"] if r["class"] != "ResourceRequirement"]


def _second_workflow(doc: dict) -> None:
    workflow = next(p for p in doc["$graph"] if p["class"] == "Workflow")
    doc["$graph"].append(dict(copy.deepcopy(workflow), id="main"))


def _bad_id(doc: dict) -> None:
    doc["$graph"][0]["id"] = "mlmkit inference"


def _outside_run(doc: dict) -> None:
    next(iter(next(p for p in doc["$graph"] if p["class"] == "Workflow")["steps"].values()))["run"] = "tool.cwl"


MUTATIONS = {
    "no s:version": (_drop_version, {"eozilla:req-11", "maap:version"}),
    "record input": (_record_input, {"eozilla:types"}),
    "input without label": (_unlabelled_input, {"eozilla:req-10"}),
    "two application requirements": (_two_apps, {"weaver:app-requirement"}),
    "ShellCommandRequirement": (_unsupported, {"weaver:supported"}),
    "no ResourceRequirement": (_no_resources, {"zoo:resources", "maap:resources"}),
    "a second Workflow named main": (_second_workflow, {"weaver:graph", "zoo:main"}),
    "process id with a space": (_bad_id, {"weaver:ids"}),
    "step running another file": (_outside_run, {"zoo:steps", "maap:resources"}),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_rule_fails_a_package_that_breaks_it(mutation: str) -> None:
    change, expected = MUTATIONS[mutation]
    document = yaml.safe_load((CWL / "inference.cwl").read_text())
    change(document)
    text = yaml.safe_dump(document, sort_keys=False)
    failed = {key for key, problems in findings(document, text).items() if problems} - DEVELOPMENT_ONLY - set(KNOWN_GAPS)
    assert failed == expected
    with pytest.raises(InvalidMetadata, match="the package fails"):
        check_package(document, text, deployers=tuple({key.split(":")[0] for key in expected}))


# --- the deployers' own code -----------------------------------------------------------------------------------

@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_eozilla_cwl_check_strict_validation_and_parser(tmp_path: Path, package: str) -> None:
    """eoap_acceptance._is_valid_as_cwl: the package dumped to a file and `cwltool --validate --strict`; then
    cwl_utils' parser with load_all, whose first Workflow is the process eozilla deploys."""
    from cwl_utils import parser

    document = yaml.safe_load((CWL / package).read_text())
    dumped = tmp_path / "package"
    dumped.write_text(yaml.safe_dump(document))
    run = subprocess.run([BIN / "cwltool", "--validate", "--strict", dumped], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = parser.load_document(document, load_all=True)
    classes = [process.class_ for process in loaded]
    assert "Workflow" in classes and "CommandLineTool" in classes
    workflow = next(process for process in loaded if process.class_ == "Workflow")
    assert workflow.id.split("#", 1)[-1] == PACKAGES[package] and workflow.label and workflow.doc


@pytest.fixture()
def eoap_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """The EOAP schema URLs the stage-in/out tools import, answered from ../shared/eoap-schemas."""
    spec = importlib.util.spec_from_file_location("eoap_offline", REPO / "scripts" / "eoap-offline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(requests.Session, "__init__", requests.Session.__init__)  # restored after the test
    module._mount_mirror()


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_zoo_calrissian_runner_reads_and_wraps_the_package(package: str, eoap_mirror, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """ZOO-Project-DRU's runner (zoo-calrissian-runner from PyPI) as it handles an execution, short of Kubernetes:
    the process version, the pod's cores and RAM from the tools' ResourceRequirements, the mandatory inputs,
    and the package wrapped between the stage-in and stage-out tools (cwl/stage/), valid CWL."""
    from zoo_calrissian_runner import ZooCalrissianRunner

    monkeypatch.setenv("WRAPPER_STAGE_IN", str(CWL / "stage" / "stage-in.cwl"))
    monkeypatch.setenv("WRAPPER_STAGE_OUT", str(CWL / "stage" / "stage-out.cwl"))
    monkeypatch.setenv("WRAPPER_STAGE_IN_FILE", str(tmp_path / "none.cwl"))
    monkeypatch.setenv("WRAPPER_STAGE_OUT_FILE", str(tmp_path / "none.cwl"))
    document = yaml.safe_load((CWL / package).read_text())
    workflow = next(p for p in document["$graph"] if p["class"] == "Workflow")
    required = [name for name, spec in workflow["inputs"].items()
                if not str(spec["type"]).endswith("?") and "default" not in spec and "null" not in spec["type"]]
    # what ZOO demands: the required inputs and the optional ones the zoo:optional-inputs rule names
    demanded = sorted(required + KNOWN_GAPS["zoo:optional-inputs"][package])
    outputs = {next(iter(workflow["outputs"])): {"value": None}}
    conf = {"lenv": {"Identifier": PACKAGES[package], "usid": "job-1"}}
    given = {name: {"value": "https://example.org/stac/item.json"} for name in required}
    assert not ZooCalrissianRunner(document, conf, given, outputs).assert_parameters()
    given.update({name: {"value": "1"} for name in KNOWN_GAPS["zoo:optional-inputs"][package]})
    runner = ZooCalrissianRunner(document, conf, given, outputs)
    assert runner.workflow.get_version() == document["s:softwareVersion"]
    assert runner.assert_parameters() and sorted(runner.get_workflow_inputs(mandatory=True)) == demanded
    tools = [p for p in document["$graph"] if p["class"] == "CommandLineTool"]
    resources = [next(r for r in tool["requirements"] if r["class"] == "ResourceRequirement") for tool in tools]
    scattered = any("scatter" in step for step in workflow["steps"].values())
    # ZOO doubles a scattered step's resources (SCATTER_MULTIPLIER, default 2)
    assert runner.get_max_cores() == max(r["coresMax"] for r in resources) * (2 if scattered else 1)
    assert runner.get_max_ram() == f"{max(r['ramMax'] for r in resources) * (2 if scattered else 1)}Mi"
    wrapped = tmp_path / "wrapped.cwl"
    wrapped.write_text(yaml.safe_dump(runner.wrap(), sort_keys=False))
    offline = [sys.executable, str(REPO / "scripts" / "eoap-offline.py")]
    run = subprocess.run([*offline, "cwltool", "--validate", f"{wrapped}#main"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_maap_loads_the_maap_copy_and_refuses_a_graph_without_main(released: Path, package: str) -> None:
    """get_cwl_metadata: cwltool's load_tool on the whole document (no '#' target), then cwl_utils' parser; the
    process id is the Workflow's id and the version the s:version in the text."""
    from cwl_utils.parser import cwl_v1_2, load_document_by_string
    from cwltool.context import LoadingContext
    from cwltool.load_tool import load_tool
    from cwltool.workflow import default_make_tool
    from cwl_utils.errors import GraphTargetMissingException

    def load(path: Path) -> None:
        context = LoadingContext()
        context.do_update = False
        context.construct_tool_object = default_make_tool
        load_tool(yaml.safe_load(path.read_text()), context)

    with pytest.raises(GraphTargetMissingException, match="graph of multiple objects"):
        load(released / package)
    load(released / "maap" / package)
    text = (released / "maap" / package).read_text()
    loaded = load_document_by_string(text, uri="api://user-submitted-raw-text.cwl", load_all=True)
    workflow = next(p for p in loaded if isinstance(p, cwl_v1_2.Workflow))
    assert workflow.id.rsplit("#", 1)[-1] == PACKAGES[package]
    first_run = workflow.steps[0].run
    assert first_run.endswith("#main")
    run = subprocess.run([BIN / "cwltool", "--validate", f"{released / 'maap' / package}#{PACKAGES[package]}"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def test_docs_table_lists_every_rule_with_its_source() -> None:
    page = (REPO / "docs" / "how-to" / "deploy.md").read_text()
    for rule in RULES:
        row = next((line for line in page.splitlines() if line.startswith(f"| {rule.deployer} | `{rule.key}` |")), "")
        assert rule.source in row, rule.key
        assert ("fails" in row) == (rule.key in DEVELOPMENT_ONLY | set(KNOWN_GAPS)), rule.key
