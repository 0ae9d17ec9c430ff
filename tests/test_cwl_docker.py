"""The CWL packages run for real: cwltool in container mode and Toil's single-machine batch system, on
staged catalogs of a real Sentinel-2 scene, in the images scripts/services/docker.sh builds."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mlmkit import __version__
from cwl_fixtures import (BIN, check_vegetation_results, run_training_package, staged_scenes, validate_catalog,
                          vegetation_model)

REPO = Path(__file__).resolve().parents[1]
CWL = REPO / "cwl"
pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _job(path: Path, model: Path, scenes: list[Path], **tuning) -> Path:
    job = {"model": {"class": "Directory", "path": str(model)},
           "imagery": [{"class": "Directory", "path": str(scene)} for scene in scenes], **tuning}
    path.write_text(yaml.safe_dump(job))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, schema_dir: Path) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("cwl-inputs")
    with pytest.MonkeyPatch.context() as patch:  # module scope runs before the per-test schema setting
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        model = vegetation_model(root / "model")
    return model, staged_scenes(root / "scenes", 3)


def test_inference_package_in_containers(docker_images, inputs, tmp_path: Path) -> None:
    model, scenes = inputs
    job = _job(tmp_path / "job.yml", model, scenes[:2], overlap=16, batch_size=4, tile_size=128)
    run = subprocess.run([BIN / "cwltool", "--outdir", tmp_path / "out", f"{CWL / 'inference.cwl'}#mlmkit-inference",
                          job], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"mlmkit:{__version__}" in run.stderr  # the tools ran in the project image
    check_vegetation_results(tmp_path / "out" / "results", 2)


def test_inference_scatters_in_parallel_on_toil(docker_images, inputs, tmp_path: Path) -> None:
    """Three staged scenes: Toil issues all three predict jobs before the first one finishes."""
    model, scenes = inputs
    job = _job(tmp_path / "job.yml", model, scenes)
    run = subprocess.run([BIN / "toil-cwl-runner", "--batchSystem", "single_machine", "--no-prepull",
                          "--jobStore", tmp_path / "jobstore", "--outdir", tmp_path / "out",
                          f"{CWL / 'inference.cwl'}#mlmkit-inference", job], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stderr.splitlines()
    issued = [n for n, line in enumerate(log) if re.search(r"Issued job .*mlmkit-inference\.\d\.mlmkit-predict", line)]
    done = [n for n, line in enumerate(log) if re.search(r"CWL step complete: mlmkit-inference\.\d\.mlmkit-predict", line)]
    assert len(issued) == len(done) == 3
    assert max(issued) < min(done)
    check_vegetation_results(tmp_path / "out" / "results", 3)


def test_training_package_in_a_container(docker_images, tmp_path: Path, schema_dir: Path) -> None:
    """The model catalog is validated inside the container against the schema mirror handed in as a Directory."""
    run = run_training_package(tmp_path, schema_dir)
    assert f"mlmkit:{__version__}-training" in run.stderr
    validate_catalog(tmp_path / "out" / "model")
