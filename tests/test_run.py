"""`mlmkit run`: a model run through the CWL package its MLM Item names, on cwltool and Toil, for real.

The model is a 1x1 conv whose class map is exactly NIR > red, so every result is checked against the
source bands themselves. Runs without containers use a copy of the shipped packages with DockerRequirement
under `hints` (what `cwltool --no-container` accepts); the container run uses the shipped package as it is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cwl_fixtures import (BIN, WINDOWS, check_vegetation_results, staged_scene, staged_scenes, validate_catalog,
                          vegetation_model)
from http_helpers import static_server
from mlmkit import __version__
from mlmkit.stac.checksum import file_checksum
from mlmkit.errors import InvalidMetadata
from mlmkit.packages.cwl import read_package
from mlmkit.training.chips import ChipOptions, build_chips
from mlmkit.training.layout import parse_classes
from train_fixtures import CLASSES_SPEC, write_scene

REPO = Path(__file__).resolve().parents[1]
CWL = REPO / "cwl"
RUNTIME_ROLES = ("mlm:inference-runtime", "mlm:training-runtime")


def hints_copy(package: Path, target: Path) -> Path:
    """The package with its DockerRequirements under hints, so that --no-container runs it."""
    document = yaml.safe_load(package.read_text())
    for process in document["$graph"]:
        docker = [r for r in process.get("requirements", []) if r["class"] == "DockerRequirement"]
        process["requirements"] = [r for r in process.get("requirements", []) if r not in docker]
        process.setdefault("hints", []).extend(docker)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def model_item(catalog: Path) -> Path:
    return next(path for path in catalog.rglob("*.json") if path.name not in ("catalog.json", "collection.json"))


def add_runtime_checksums(catalog: Path) -> None:
    """file:checksum on the runtime assets, as `mlmkit release` writes them."""
    path = model_item(catalog)
    item = json.loads(path.read_text())
    for asset in item["assets"].values():
        if set(asset["roles"]) & set(RUNTIME_ROLES):
            asset["file:checksum"] = file_checksum(path.parent / asset["href"])
    path.write_text(json.dumps(item, indent=2))


@dataclass(frozen=True)
class Workspace:
    root: Path
    model: Path       # runtime assets: hints copies of both packages, with file:checksum
    bare: Path        # no runtime assets
    scenes: list[Path]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, schema_dir: Path) -> Workspace:
    root = tmp_path_factory.mktemp("run")
    inference = hints_copy(CWL / "inference.cwl", root / "cwl" / "inference.cwl")
    training = hints_copy(CWL / "training.cwl", root / "cwl" / "training.cwl")
    with pytest.MonkeyPatch.context() as patch:  # module scope runs before the per-test schema setting
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        model = vegetation_model(root / "model", "--inference-cwl", str(inference), "--training-cwl", str(training))
        bare = vegetation_model(root / "bare")
    add_runtime_checksums(model)
    return Workspace(root, model, bare, staged_scenes(root / "scenes", 2))


def mlmkit_run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "mlmkit", "run", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def one_line_error(result: subprocess.CompletedProcess, status: int = 1) -> str:
    assert result.returncode == status, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def assert_nothing_left(outdir: Path, *allowed: str) -> None:
    """No result catalog, no scratch directory: only the named files (a kept log)."""
    present = sorted(p.name for p in outdir.iterdir()) if outdir.exists() else []
    assert present == sorted(allowed)


def test_cwltool_runs_the_models_runtime(workspace: Workspace, tmp_path: Path) -> None:
    """A catalog directory goes in as it is; an Item file outside a catalog is staged into one first."""
    item_file = next((workspace.scenes[1] / "s2-window-1").glob("*.json"))
    result = mlmkit_run("--model", model_item(workspace.model), "--input", workspace.scenes[0],
                        "--input", item_file, "--outdir", tmp_path / "out", "--no-container", "-p", "overlap=16")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "out" / "results" / "catalog.json")
    check_vegetation_results(tmp_path / "out" / "results", 2)
    assert_nothing_left(tmp_path / "out", "results")  # the log of a good run is not kept unless asked for


def test_toil_runs_urls_on_single_machine(workspace: Workspace, tmp_path: Path) -> None:
    """MLM Item and imagery by URL: both are downloaded into catalog directories and scattered on Toil."""
    with static_server(workspace.root) as base:
        urls = [f"{base}/{p.relative_to(workspace.root)}" for p in
                (model_item(workspace.model), *(next((s / f"s2-window-{n}").glob("*.json"))
                                                for n, s in enumerate(workspace.scenes)))]
        result = mlmkit_run("--model", urls[0], "--input", urls[1], "--input", urls[2], "--engine", "toil",
                            "--batch-system", "single_machine", "--no-container", "--outdir", tmp_path,
                            "--log", tmp_path / "toil.log")
    assert result.returncode == 0, result.stderr
    check_vegetation_results(tmp_path / "results", 2)
    log = (tmp_path / "toil.log").read_text()
    assert "--batchSystem single_machine" in log.splitlines()[0]
    assert len(set(re.findall(r"Issued job .*mlmkit-inference\.(\d)\.mlmkit-predict", log))) == 2
    assert_nothing_left(tmp_path, "results", "toil.log")


def test_train_runs_the_training_runtime(workspace: Workspace, tmp_path: Path, schema_dir: Path) -> None:
    scene, labels = write_scene(tmp_path / "scene")
    chips = tmp_path / "chips"
    build_chips(str(scene), str(labels), parse_classes(CLASSES_SPEC), chips,
                ChipOptions(chip_size=16, block_size=2, fractions=(0.5, 0.25, 0.25)))
    result = mlmkit_run("--train", "--model", workspace.model, "--input", chips, "--outdir", tmp_path / "out",
                        "--no-container", "-p", "task=semantic-segmentation", "-p", "architecture=unet",
                        "-p", "epochs=1", "-p", "width=4", "-p", "model_id=retrained", "-p", f"schema_dir={schema_dir}")
    assert result.returncode == 0, result.stderr
    catalog = tmp_path / "out" / "model" / "catalog.json"
    assert result.stdout.strip() == str(catalog)
    item = json.loads(next(catalog.parent.rglob("retrained.json")).read_text())
    assert "semantic-segmentation" in item["properties"]["mlm:tasks"]
    validate_catalog(catalog.parent)


@pytest.mark.docker
@pytest.mark.slow
def test_cwltool_runs_the_shipped_package_in_containers(docker_images, workspace: Workspace, tmp_path: Path,
                                                       schema_dir: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        model = vegetation_model(tmp_path / "model", "--inference-cwl", str(CWL / "inference.cwl"))
    result = mlmkit_run("--model", model, "--input", workspace.scenes[0], "--input", workspace.scenes[1],
                        "--outdir", tmp_path / "out", "--log", tmp_path / "cwltool.log")
    assert result.returncode == 0, result.stderr
    assert f"mlmkit:{__version__}" in (tmp_path / "cwltool.log").read_text()  # the tools ran in the project image
    check_vegetation_results(tmp_path / "out" / "results", 2)


def test_a_model_without_runtime_gets_one_line(workspace: Workspace, tmp_path: Path) -> None:
    line = one_line_error(mlmkit_run("--model", workspace.bare, "--input", workspace.scenes[0], "--outdir", tmp_path))
    assert "no mlm:inference-runtime asset" in line and "mlmkit predict" in line
    line = one_line_error(mlmkit_run("--train", "--model", workspace.bare, "--input", workspace.scenes[0],
                                     "--outdir", tmp_path))
    assert "no mlm:training-runtime asset" in line and "mlmkit train" in line
    assert_nothing_left(tmp_path)


def test_a_tampered_runtime_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    model = shutil.copytree(workspace.model, tmp_path / "model")
    package = model_item(model).parent / "inference.cwl"
    package.write_text(package.read_text() + "# changed after release\n")
    line = one_line_error(mlmkit_run("--model", model, "--input", workspace.scenes[0], "--outdir", tmp_path / "out",
                                     "--no-container"))
    assert "checksum mismatch" in line and str(package) in line
    assert_nothing_left(tmp_path / "out")


def test_an_engine_failure_names_its_log(workspace: Workspace, tmp_path: Path) -> None:
    """Imagery whose NIR file is not a raster (`run` refuses a missing band itself, as `match` does): the predict
    step fails inside cwltool; the line quotes it and names the log."""
    scene = staged_scene(tmp_path / "no-nir", *WINDOWS[0], "s2-window-0")
    item_path = scene / "s2-window-0" / "s2-window-0.json"
    item = json.loads(item_path.read_text())
    (item_path.parent / item["assets"]["B08"]["href"]).write_text("not a raster")
    outdir = tmp_path / "out"
    line = one_line_error(mlmkit_run("--model", workspace.model, "--input", scene, "--outdir", outdir,
                                     "--no-container"))
    log = outdir / "results.log"
    assert line.startswith("Error: cwltool failed (exit 1)") and line.endswith(f"the full log is {log}")
    assert "B08" in line  # the tool's own error, quoted from the log
    assert "Final process status is permanentFail" in log.read_text()
    assert_nothing_left(outdir, "results.log")


@pytest.mark.parametrize(("args", "expected"), [
    (("--batch-system", "slurm"), "needs the toil engine"),
    (("-p", "tilesize=64"), "has no input 'tilesize'; expected one of model, imagery"),
    (("-p", "imagery=x"), "input 'imagery' is set by the model and inputs arguments"),
    (("-p", "overlap=many"), "value 'many' for input 'overlap' is not a CWL int"),
    (("-p", "overlap=true"), "value 'true' for input 'overlap' is not a CWL int"),
])
def test_unusable_options_get_one_line(workspace: Workspace, tmp_path: Path, args: tuple[str, ...],
                                      expected: str) -> None:
    line = one_line_error(mlmkit_run("--model", workspace.model, "--input", workspace.scenes[0],
                                     "--outdir", tmp_path / "out", "--no-container", *args), status=2)
    assert expected in line and "--" not in line  # an argument of the wrong form: a usage error, no CLI flags
    assert_nothing_left(tmp_path / "out")


def test_sigterm_stops_the_engine_and_cleans_up(workspace: Workspace, tmp_path: Path) -> None:
    outdir = tmp_path / "out"
    process = subprocess.Popen([BIN / "mlmkit", "run", "--model", str(workspace.model), "--input",
                                str(workspace.scenes[0]), "--outdir", str(outdir), "--engine", "toil", "--no-container"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = outdir / "results.log"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:  # until the engine logs beyond its command line
        if list(outdir.glob(".mlmkit-run-*/job.json")) and log.is_file() and len(log.read_text().splitlines()) > 1:
            break
        time.sleep(0.05)
    engines = _children(process.pid)
    assert process.poll() is None and engines, log.read_text() if log.is_file() else os.listdir(outdir)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0, stderr
    assert process.returncode == 143, stderr
    assert stderr.splitlines() == ["Error: terminated (SIGTERM); temporary output removed"]
    assert not [pid for pid in engines if Path(f"/proc/{pid}").exists()]  # the engine stopped and was reaped
    assert not (outdir / "results").exists()
    assert not list(outdir.glob(".mlmkit-run-*")), os.listdir(outdir)
    assert_nothing_left(outdir, "results.log")  # the log of the stopped run is kept


def _children(pid: int) -> list[int]:
    """The processes `pid` started (Linux)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_package_interface_is_read_from_the_shipped_files() -> None:
    inference = read_package(CWL / "inference.cwl")
    assert inference.process_id == "mlmkit-inference"
    assert inference.data_input().name == "imagery" and inference.data_input().accepts("Directory[]")
    assert inference.result_output().name == "results"
    assert inference.inputs["overlap"].value("32") == 32 and inference.inputs["overlap"].optional
    training = read_package(CWL / "training.cwl", "mlmkit-training")
    assert training.data_input().name == "training_data" and training.result_output().name == "model"
    assert training.inputs["schema_dir"].value("schemas") == {"class": "Directory", "path": str(Path("schemas").absolute())}
    assert training.inputs["model_id"].value("007") == "007"  # strings stay strings


def test_package_without_a_single_workflow_needs_a_fragment(tmp_path: Path) -> None:
    document = yaml.safe_load((CWL / "inference.cwl").read_text())
    second = dict(next(p for p in document["$graph"] if p["class"] == "Workflow"), id="other")
    document["$graph"].append(second)
    path = tmp_path / "two.cwl"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InvalidMetadata, match="holds 2 Workflows"):
        read_package(path)
    assert read_package(path, "other").process == f"{path}#other"
    with pytest.raises(InvalidMetadata, match="has no process 'missing'"):
        read_package(path, "missing")


def test_an_output_name_cannot_leave_the_outdir(tmp_path: Path) -> None:
    """Output ids are data: one that would name a directory above OUTDIR is refused."""
    document = yaml.safe_load((CWL / "inference.cwl").read_text())
    workflow = next(p for p in document["$graph"] if p["class"] == "Workflow")
    workflow["outputs"] = {"..": workflow["outputs"]["results"]}
    path = tmp_path / "escape.cwl"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InvalidMetadata, match=r"names its output '\.\.'"):
        read_package(path).result_output()
