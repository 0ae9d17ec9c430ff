"""The CWL application packages: CWL validity, EOAP rules, OGC descriptions, release copies, the merge
step that joins the scattered results (in-process), and the training package run with
`cwltool --no-container` (the DockerRequirement is a hint). The container runs are in test_cwl_docker.py,
the staged (wrapped) runs in test_cwl_staged.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio
import yaml
from click.testing import CliRunner

from cwl_fixtures import docker_pulls, run_training_package, staged_scenes, vegetation_model
from mlmkit import __version__
from mlmkit.stac.checksum import file_checksum
from mlmkit.cli import main
from mlmkit.packages.ogc import process_description

REPO = Path(__file__).resolve().parents[1]
CWL = REPO / "cwl"
PACKAGES = {"inference.cwl": "mlmkit-inference", "training.cwl": "mlmkit-training"}
BIN = Path(sys.executable).parent
DIGEST = "sha256:" + "0123456789abcdef" * 4
PINS = [f"mlmkit:{__version__}=ghcr.io/mlmkit/mlmkit@{DIGEST}",
        f"mlmkit:{__version__}-training=ghcr.io/mlmkit/mlmkit-training@{DIGEST}"]
BASE_URL = "https://github.com/mlmkit/mlmkit/releases/download/v9.9.9"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_cwltool_validates(package: str) -> None:
    result = subprocess.run([BIN / "cwltool", "--validate", CWL / package], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"{package} is valid CWL" in result.stdout + result.stderr


def _eoap_findings(path: Path) -> tuple[dict, list[tuple[str, str, str]]]:
    result = subprocess.run([BIN / "eoap-validator", "--profile", "eoap-package", "--profile", "metadata",
                             "--format", "json", CWL / path if not path.is_absolute() else path],
                            capture_output=True, text=True)
    report = json.loads(result.stdout)
    return report, [(f["rule_id"], f["status"], f["severity"]) for f in report["findings"]
                    if f["status"] not in ("passed", "not-applicable")]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_eoap_validator_finds_no_error_and_only_the_container_hint(package: str) -> None:
    """0 errors; the one warning is the DockerRequirement being a hint, which lets the files run with
    cwltool --no-container (released copies make it a requirement: see the release test)."""
    report, findings = _eoap_findings(Path(package))
    tools = [p for p in _load(CWL / package)["$graph"] if p["class"] == "CommandLineTool"]
    assert findings == [("EOAP.CONTAINER.HINT", "needs-review", "warning")] * len(tools)
    assert report["entrypoint"] == PACKAGES[package]
    assert report["counts"]["passed"] > 60 and report["counts"]["failed"] == report["counts"]["blocked"] == 0


def test_staged_directories_satisfy_the_staging_profile(tmp_path: Path) -> None:
    """imagery and model (training_data) in, results (model) out: Directory-typed, as ADES stage-in/out require."""
    staged_parameters = {"mlmkit-inference": (["imagery", "model"], ["results"]),
                         "mlmkit-training": (["training_data"], ["model"])}
    for package, process in PACKAGES.items():
        config = tmp_path / f"{process}.json"
        inputs, outputs = staged_parameters[process]
        config.write_text(json.dumps({"inputs": {process: inputs}, "outputs": {process: outputs}}))
        result = subprocess.run([BIN / "eoap-validator", "--profile", "eoap-staging", "--staging", config,
                                 "--format", "json", CWL / package], capture_output=True, text=True)
        findings = json.loads(result.stdout)["findings"]
        staged = {f["rule_id"]: f["status"] for f in findings if f["rule_id"].startswith("EOAP.REQ1")}
        assert result.returncode == 0, [f["message"] for f in findings if f["status"] == "failed"]
        assert staged["EOAP.REQ13.INPUT"] == staged["EOAP.REQ14.OUTPUT"] == "passed", process
        inputs_checked = [f for f in findings if f["rule_id"] == "EOAP.REQ13.INPUT"]
        assert len(inputs_checked) == len(inputs) and all(f["status"] == "passed" for f in inputs_checked)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_package_names_this_version_and_its_image(package: str) -> None:
    document = _load(CWL / package)
    assert document["s:softwareVersion"] == __version__
    expected = f"mlmkit:{__version__}" + ("-training" if package == "training.cwl" else "")
    assert set(docker_pulls(document)) == {expected}
    workflows = [p for p in document["$graph"] if p["class"] == "Workflow"]
    assert [w["id"] for w in workflows] == [PACKAGES[package]]


def test_ogc_description_of_inference() -> None:
    description = process_description(CWL / "inference.cwl")
    inputs, outputs = description["inputs"], description["outputs"]
    assert description["id"] == "mlmkit-inference" and description["version"] == __version__
    assert set(inputs) == {"model", "imagery", "tile_size", "overlap", "batch_size", "probabilities", "providers",
                           "source_hrefs", "model_href"}
    assert inputs["source_hrefs"]["minOccurs"] == 0 and inputs["source_hrefs"]["schema"]["items"] == {"type": "string"}
    assert inputs["model_href"]["minOccurs"] == 0
    assert inputs["imagery"]["schema"]["type"] == "array" and inputs["imagery"]["minOccurs"] == 1
    assert inputs["model"]["schema"]["oneOf"][0] == {"type": "string", "format": "uri"}  # a staged Directory
    assert inputs["tile_size"]["minOccurs"] == 0 and inputs["batch_size"]["schema"]["default"] == 4
    # cwl2ogc drops falsy defaults; they are put back
    assert inputs["overlap"]["schema"]["default"] == 0 and inputs["probabilities"]["schema"]["default"] is False
    assert inputs["providers"]["schema"]["items"] == {"type": "string"} and inputs["providers"]["minOccurs"] == 0
    assert list(outputs) == ["results"] and outputs["results"]["title"] == "Results catalog"


def test_ogc_description_of_training() -> None:
    description = process_description(CWL / "training.cwl")
    inputs = description["inputs"]
    assert description["id"] == "mlmkit-training"
    assert {"training_data", "task", "architecture", "epochs", "batch_size", "learning_rate", "seed"} <= set(inputs)
    assert inputs["task"]["schema"]["enum"] == ["scene-classification", "semantic-segmentation"]
    assert inputs["learning_rate"]["schema"]["type"] == "number" and inputs["training_data"]["minOccurs"] == 1
    assert inputs["seed"]["schema"]["default"] == 0
    assert list(description["outputs"]) == ["model"]


@pytest.mark.parametrize("params", sorted((CWL / "params").glob("*.yml")), ids=lambda p: p.name)
def test_example_parameters_match_the_package_inputs(params: Path) -> None:
    package = CWL / ("training.cwl" if "training" in params.name else "inference.cwl")
    workflow = next(p for p in _load(package)["$graph"] if p["class"] == "Workflow")
    required = {name for name, spec in workflow["inputs"].items()
                if not str(spec["type"]).endswith("?") and "default" not in spec and "null" not in spec["type"]}
    given = set(_load(params))
    assert given <= set(workflow["inputs"]) and required <= given


def test_release_pins_images_and_sets_version(tmp_path: Path) -> None:
    out = tmp_path / "release"
    result = CliRunner().invoke(main, ["release", "--version", "9.9.9", "--base-url", BASE_URL, "--output", str(out),
                                       *[arg for pin in PINS for arg in ("--image", pin)]])
    assert result.exit_code == 0, result.output
    inference, training = _load(out / "inference.cwl"), _load(out / "training.cwl")
    assert set(docker_pulls(inference)) == {f"ghcr.io/mlmkit/mlmkit@{DIGEST}"}
    assert set(docker_pulls(training)) == {f"ghcr.io/mlmkit/mlmkit-training@{DIGEST}"}
    assert inference["s:softwareVersion"] == training["s:softwareVersion"] == "9.9.9"
    workflow = next(p for p in training["$graph"] if p["class"] == "Workflow")
    assert workflow["inputs"]["inference_cwl"]["default"] == f"{BASE_URL}/inference.cwl"
    assert workflow["inputs"]["training_cwl"]["default"] == f"{BASE_URL}/training.cwl"
    for package in PACKAGES:
        check = subprocess.run([BIN / "cwltool", "--validate", out / package], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        # the pinned image is required, not hinted: 0 errors, 0 warnings
        assert _eoap_findings(out / package)[1] == []
        assert all("DockerRequirement" not in json.dumps(p.get("hints", [])) for p in _load(out / package)["$graph"])
    ogc = json.loads((out / "ogc" / "mlmkit-inference.json").read_text())
    assert ogc["version"] == "9.9.9" and "imagery" in ogc["inputs"]
    assert (out / "ogc" / "mlmkit-training.json").is_file()


def test_release_without_a_pin_fails_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "release"
    result = CliRunner().invoke(main, ["release", "--base-url", BASE_URL, "--output", str(out), "--image", PINS[0]])
    assert result.exit_code == 2  # an argument missing: a usage error
    assert result.output.strip().splitlines() == [
        f"Error: {CWL / 'training.cwl'}: no pinned image for 'mlmkit:{__version__}-training' (process "
        f"mlmkit-train); expected an image pin mlmkit:{__version__}-training=REPOSITORY@sha256:DIGEST in images"]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_release_rejects_a_tag_instead_of_a_digest(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["release", "--base-url", BASE_URL, "--output", str(tmp_path / "r"),
                                       "--image", f"mlmkit:{__version__}=ghcr.io/mlmkit/mlmkit:latest"])
    assert result.exit_code == 2 and "expected TAG=REPOSITORY@sha256:<64 hex digits>" in result.output


def test_release_points_model_runtime_assets_at_released_packages(tmp_path: Path) -> None:
    model = tmp_path / "model"
    vegetation_model(model, "--inference-cwl", str(CWL / "inference.cwl"), "--container", f"mlmkit:{__version__}")
    item_path = next(model.rglob("nir-over-red.json"))
    assert (item_path.parent / "inference.cwl").is_file()  # describe copied the development package
    data = json.loads(item_path.read_text())
    runtime = next(a for a in data["assets"].values() if "mlm:inference-runtime" in a["roles"])
    runtime["file:checksum"] = file_checksum(item_path.parent / "inference.cwl")
    item_path.write_text(json.dumps(data))
    out = tmp_path / "release"
    result = CliRunner().invoke(main, ["release", "--base-url", BASE_URL, "--output", str(out), "--model", str(model),
                                       *[arg for pin in PINS for arg in ("--image", pin)]])
    assert result.exit_code == 0, result.output
    asset = next(a for a in json.loads(item_path.read_text())["assets"].values()
                 if "mlm:inference-runtime" in a["roles"])
    assert asset["href"] == f"{BASE_URL}/inference.cwl"
    assert asset["file:checksum"] == file_checksum(out / "inference.cwl") != runtime["file:checksum"]
    assert not (item_path.parent / "inference.cwl").exists()
    container = json.loads(item_path.read_text())["assets"]["container"]
    assert container["href"] == f"ghcr.io/mlmkit/mlmkit@{DIGEST}"  # the image, pinned by digest
    check = subprocess.run([BIN / "mlmkit", "validate", str(model)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_merge_joins_catalogs_with_relative_local_assets(tmp_path: Path) -> None:
    scenes = staged_scenes(tmp_path / "in", 2)
    out = tmp_path / "merged"
    result = CliRunner().invoke(main, ["merge", *map(str, scenes), "--output", str(out)])
    assert result.exit_code == 0, result.output
    catalog = json.loads((out / "catalog.json").read_text())
    items = [link["href"] for link in catalog["links"] if link["rel"] == "item"]
    assert items == ["./s2-window-0/s2-window-0.json", "./s2-window-1/s2-window-1.json"]
    for href, scene in zip(items, scenes):
        item = json.loads((out / href).read_text())
        assert {a["href"] for a in item["assets"].values()} == {"./B04.tif", "./B08.tif"}
        parent = next(link["href"] for link in item["links"] if link["rel"] == "parent")
        assert parent == "../catalog.json"
        with rasterio.open((out / href).parent / "B08.tif") as merged, \
                rasterio.open(scene / item["id"] / "B08.tif") as source:
            assert (merged.read() == source.read()).all() and merged.transform == source.transform
    check = subprocess.run([BIN / "mlmkit", "validate", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_merge_refuses_duplicate_items_and_writes_nothing(tmp_path: Path) -> None:
    scene = staged_scenes(tmp_path / "in", 1)[0]
    out = tmp_path / "merged"
    result = CliRunner().invoke(main, ["merge", str(scene), str(scene / "catalog.json"), "--output", str(out)])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: item id 's2-window-0' occurs in more than one input; "
                                     "expected unique ids")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.slow
def test_training_package_runs_without_containers(tmp_path: Path, schema_dir: Path) -> None:
    run = run_training_package(tmp_path, schema_dir, "--no-container")
    assert "docker" not in run.stderr
    check = subprocess.run([BIN / "mlmkit", "validate", tmp_path / "out" / "model"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
