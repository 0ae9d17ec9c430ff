"""Shared fixtures: the offline schema mirror and the official MLM examples beside the checkout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def require_services() -> bool:
    """In CI a missing service is a failure, not a skip."""
    return os.environ.get("MLMKIT_REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def schema_dir() -> Path:
    path = Path(os.environ.get("MLMKIT_SCHEMA_DIR", SHARED / "stac-schemas"))
    if not path.is_dir():
        pytest.fail(f"offline STAC schema mirror not found at {path}")
    return path


@pytest.fixture(autouse=True)
def _offline_schemas(schema_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))


@pytest.fixture(scope="session")
def mlm_examples() -> Path:
    return SHARED / "mlm-examples"


@pytest.fixture(scope="module")
def docker_images() -> None:
    """The engine runs and holds exactly the images the CWL packages name (fails in CI, skips elsewhere)."""
    from cwl_fixtures import docker_pulls

    problem = None
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        problem = "no Docker engine (bash scripts/services/docker.sh starts one)"
    else:
        images = {image for package in ("inference.cwl", "training.cwl")
                  for image in docker_pulls(yaml.safe_load((REPO / "cwl" / package).read_text()))}
        missing = sorted(image for image in images
                         if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0)
        if missing:
            problem = f"images {missing} not built (bash scripts/services/docker.sh builds them)"
    if problem:
        if require_services():
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture(scope="module")
def served(tmp_path_factory, schema_dir: Path):
    """(root, base URL): two imagery Items, each in its own catalog (scenes/scene-N/), and an MLM model
    catalog (model/) served over loopback HTTP, as a STAC API or object store would serve them."""
    from cwl_fixtures import staged_scenes, vegetation_model
    from http_helpers import static_server

    root = tmp_path_factory.mktemp("served")
    with pytest.MonkeyPatch.context() as patch:  # module scope runs before the per-test schema setting
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        staged_scenes(root / "scenes", 2)
        vegetation_model(root / "model")
    with static_server(root) as base:
        yield root, base
