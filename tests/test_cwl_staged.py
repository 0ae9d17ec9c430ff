"""The ADES contract, run for real: both packages wrapped with eoap-cwlwrap (stage-in -> package ->
stage-out, as ADES deployments compose them), the inference one run by cwltool on STAC Items and an MLM
catalog served over loopback HTTP, its results uploaded to a moto S3 server on loopback, read back,
validated, and their provenance checked against the served URLs. Without containers here; in the
project images in the docker-marked test.

The EOAP types are imported by URL (https://raw.githubusercontent.com/eoap/schemas/...); offline, the
tools run through scripts/eoap-offline.py, which answers those URLs from ../shared/eoap-schemas.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from cwl_fixtures import WINDOWS, docker_pulls, expected_vegetation
from http_helpers import download_prefix, s3_server
from mlmkit import __version__

REPO = Path(__file__).resolve().parents[1]
CWL = REPO / "cwl"
BIN = Path(sys.executable).parent
OFFLINE = [sys.executable, str(REPO / "scripts" / "eoap-offline.py")]
URI = "https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI"
PACKAGES = {"inference": "mlmkit-inference", "training": "mlmkit-training"}
STAGED_INPUTS = {"inference": {"imagery", "model"}, "training": {"training_data", "schema_dir"}}


def wrap(package: str, output: Path) -> Path:
    """eoap-cwlwrap (a transpiler-mate plugin) around one package, with the tools in cwl/stage/."""
    run = subprocess.run([*OFFLINE, "transpiler-mate", "cwlwrap", f"{CWL / package}.cwl#{PACKAGES[package]}",
                          "--directory-stage-in", CWL / "stage" / "stage-in.cwl",
                          "--directory-stage-out", CWL / "stage" / "stage-out.cwl", "--output", output],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return output


@pytest.fixture(scope="module")
def wrapped(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("wrapped")
    return {package: wrap(package, folder / f"{package}.cwl") for package in PACKAGES}


def _main(document: dict) -> dict:
    return next(p for p in document["$graph"] if p["id"] == "main")


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_wrapped_packages_are_valid_and_stage_every_directory(wrapped, package: str) -> None:
    run = subprocess.run([*OFFLINE, "cwltool", "--validate", f"{wrapped[package]}#main"], capture_output=True, text=True)
    assert run.returncode == 0 and "is valid CWL" in run.stdout + run.stderr, run.stderr[-2000:]
    main = _main(yaml.safe_load(wrapped[package].read_text()))
    inputs = {entry["id"]: entry["type"] for entry in main["inputs"]}
    staged = {name for name, kind in inputs.items() if URI in json.dumps(kind)}
    assert staged == STAGED_INPUTS[package]
    assert {"s3_url", "endpoint_url", "aws_access_key_id", "aws_secret_access_key", "region_name"} <= set(inputs)
    assert [output["type"] for output in main["outputs"]] == [URI]
    steps = {step["id"]: step for step in main["steps"]}
    assert set(steps) == {f"directory_stage_in_{n}" for n in range(len(staged))} | {"app", "stage_out_0"}
    if package == "inference":  # one stage-in job per imagery Item URL
        assert steps["directory_stage_in_1"]["scatter"] == "reference"


def _job(path: Path, base: str, endpoint: str, prefix: str) -> Path:
    job = {"model": {"value": f"{base}/model/catalog.json"},
           "imagery": [{"value": f"{base}/scenes/scene-{n}/s2-window-{n}/s2-window-{n}.json"} for n in range(2)],
           "tile_size": 128, "s3_url": f"s3://results/{prefix}", "endpoint_url": endpoint,
           "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    path.write_text(yaml.safe_dump(job))
    return path


def _check_staged_results(back: Path, root: Path, base: str) -> None:
    """The uploaded catalog: valid, one result per Item, classes = NIR > red, lineage = the served URLs."""
    check = subprocess.run([BIN / "mlmkit", "validate", back], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    model_url = f"{base}/{next((root / 'model').rglob('nir-over-red.json')).relative_to(root).as_posix()}"
    for n in range(2):
        item_path = back / f"s2-window-{n}-nir-over-red" / f"s2-window-{n}-nir-over-red.json"
        item = json.loads(item_path.read_text())
        derived = sorted(link["href"] for link in item["links"] if link["rel"] == "derived_from")
        assert derived == sorted([f"{base}/scenes/scene-{n}/s2-window-{n}/s2-window-{n}.json", model_url])
        assert item["properties"]["processing:expression"] == {"format": "stac-mlm", "expression": model_url}
        text = json.dumps(item)
        assert "/stg" not in text and "/var/lib/cwl" not in text and "/tmp/" not in text
        data = next(asset for asset in item["assets"].values() if "data" in asset["roles"])
        with rasterio.open(item_path.parent / data["href"]) as dataset:
            np.testing.assert_array_equal(dataset.read(1), expected_vegetation(*WINDOWS[n]))


def run_staged(wrapped_file: Path, served, tmp_path: Path, *cwltool_args: str) -> subprocess.CompletedProcess:
    root, base = served
    with s3_server("results") as endpoint:
        job = _job(tmp_path / "job.yml", base, endpoint, "run-1")
        run = subprocess.run([*OFFLINE, "cwltool", *cwltool_args, "--outdir", tmp_path / "out",
                              f"{wrapped_file}#main", job], capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-4000:]
        assert json.loads(run.stdout)["results"] == {"value": "s3://results/run-1/catalog.json"}
        download_prefix(endpoint, "results", "run-1", tmp_path / "back")
    _check_staged_results(tmp_path / "back", root, base)
    return run


@pytest.mark.slow
def test_staged_inference_without_containers(wrapped, served, tmp_path: Path) -> None:
    """The DockerRequirement is a hint: with mlmkit installed the same files run with --no-container."""
    run_staged(wrapped["inference"], served, tmp_path, "--no-container")


@pytest.mark.docker
@pytest.mark.slow
def test_staged_inference_in_containers(docker_images, wrapped, served, tmp_path: Path) -> None:
    """Every step in the project image; the tools with NetworkAccess reach the loopback servers on the host network."""
    image = f"mlmkit:{__version__}"
    assert set(docker_pulls(yaml.safe_load(wrapped["inference"].read_text()))) == {image}
    run = run_staged(wrapped["inference"], served, tmp_path, "--custom-net", "host", "--parallel")
    # three stage-in jobs (the model, two Items), two predict jobs, merge, stage-out: seven containers
    assert run.stderr.count(f"    {image} \\\n") == 7
