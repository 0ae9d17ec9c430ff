"""Exit statuses, one rule for every command: usage errors (a path argument that does not exist, a folder without
its catalog.json, an argument of the wrong form) exit 2 with one line; a failure of the work exits 1; the table in
mlmkit.cli is the one docs/reference/errors.md documents."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cwl_fixtures import vegetation_model
from mlmkit import __version__, errors
from mlmkit.cli import EXIT_STATUS, EXIT_USAGE

REPO = Path(__file__).resolve().parents[1]
MLMKIT = Path(sys.executable).parent / "mlmkit"


def mlmkit(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([MLMKIT, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def one_line(result: subprocess.CompletedProcess, status: int) -> str:
    assert result.returncode == status, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with a folder that holds no catalog.json and a JSON document that is no STAC."""
    root = tmp_path_factory.mktemp("exit")
    (root / "folder").mkdir()
    (root / "folder" / "notes.txt").write_text("no catalog here")
    (root / "feature.json").write_text('{"type": "FeatureCollection", "features": []}')
    vegetation_model(root / "model")
    return root


MISSING = "missing.json"
# Every command that reads a path argument, with that argument missing.
MISSING_PATHS = {
    "describe": ["describe", "missing.onnx", "-o", "out"],
    "validate": ["validate", MISSING],
    "predict --model": ["predict", "--model", MISSING, "--input", "folder", "-o", "out"],
    "predict --input": ["predict", "--model", "model", "--input", MISSING, "-o", "out"],
    "chips": ["chips", "--imagery", MISSING, "--labels", "labels.tif", "--classes", "0=a,1=b", "-o", "out"],
    "train": ["train", "--data", MISSING, "-o", "out"],
    "search": ["search", MISSING],
    "publish": ["publish", MISSING, "--api", "http://127.0.0.1:9"],
    "run": ["run", "--model", MISSING, "--input", "folder", "--no-container"],
    "merge": ["merge", MISSING, "-o", "out"],
    "stage-in": ["stage-in", MISSING, "-o", "out"],
    "stage-out": ["stage-out", "missing-folder", "--s3-url", "s3://bucket/prefix"],
    "release --model": ["release", "--base-url", "https://example.org/", "-o", "out", "--model", MISSING,
                        *(f"--image=mlmkit:{__version__}{tag}=r@sha256:{'0' * 64}" for tag in ("", "-training"))],
}


@pytest.mark.parametrize("args", MISSING_PATHS.values(), ids=MISSING_PATHS.keys())
def test_a_missing_path_is_a_usage_error(place: Path, args: list[str]) -> None:
    line = one_line(mlmkit(*args, cwd=place), EXIT_USAGE)
    assert "does not exist" in line
    assert not (place / "out").exists()


@pytest.mark.parametrize("command", ["validate", "search", "predict", "merge"])
def test_a_folder_without_catalog_json_is_a_usage_error(place: Path, command: str) -> None:
    args = {"validate": ["folder"], "search": ["folder"], "merge": ["folder", "-o", "out"],
            "predict": ["--model", "folder", "--input", "folder", "-o", "out"]}[command]
    assert "is a directory without catalog.json" in one_line(mlmkit(command, *args, cwd=place), EXIT_USAGE)


@pytest.mark.parametrize("args", [
    ["search", "feature.json", "--bbox", "1,2,x"],      # click's own check of a value
    ["search"],                                         # neither a catalog nor an API
    ["predict", "--model", "feature.json", "--input", "feature.json", "-o", "out", "--tile-size", "1"],
    ["describe", "feature.json", "-o", "out", "--class", "water"],
    ["train", "--data", "feature.json", "-o", "out", "--epochs", "0"],
])
def test_an_argument_of_the_wrong_form_is_a_usage_error(place: Path, args: list[str]) -> None:
    one_line(mlmkit(*args, cwd=place), EXIT_USAGE)


@pytest.mark.parametrize("args", [
    ["predict", "--model", "feature.json", "--input", "feature.json", "-o", "out"],
    ["search", "feature.json"],
    ["merge", "feature.json", "-o", "out"],
])
def test_input_that_cannot_be_used_is_a_failure(place: Path, args: list[str]) -> None:
    assert "FeatureCollection" in one_line(mlmkit(*args, cwd=place), 1)


def test_validate_exits_1_for_an_invalid_document_and_says_how_many(place: Path) -> None:
    result = mlmkit("validate", "feature.json", cwd=place)
    assert result.returncode == 1
    assert result.stdout.strip() == (f"{place / 'feature.json'}: $: type 'FeatureCollection' and no stac_version: not a "
                                     "STAC document; expected a Feature, Collection or Catalog with a stac_version")
    assert result.stderr.strip() == "validate: 1 of 1 document invalid, 1 problem"


def test_validate_counts_a_source_it_cannot_read(place: Path) -> None:
    (place / "broken.json").write_text("{")
    result = mlmkit("validate", "broken.json", "feature.json", cwd=place)
    assert result.returncode == 1
    assert result.stderr.strip() == "validate: 2 of 2 documents in 2 sources invalid, 2 problems"


def documented_statuses() -> dict[str, int]:
    """`| NotFound | 2 | ...` rows of the errors reference."""
    page = (REPO / "docs" / "reference" / "errors.md").read_text()
    return {name: int(status) for name, status in re.findall(r"^\| `(\w+)` \| (\d+) \|", page, re.M)}


def test_the_table_is_the_documented_one() -> None:
    documented = documented_statuses()
    for kind, status in EXIT_STATUS:
        assert documented.pop(kind.__name__) == status, kind
    # every other documented error class exits as its first base in the table does
    for name, status in documented.items():
        kind = getattr(errors, name)
        assert status == next(status for base, status in EXIT_STATUS if issubclass(kind, base)), name
    named = {name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, errors.MlmkitError)}
    assert named <= set(documented_statuses()), sorted(named - set(documented_statuses()))
