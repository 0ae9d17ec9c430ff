"""Shared fixtures: the offline schema mirror and the official MLM examples beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
