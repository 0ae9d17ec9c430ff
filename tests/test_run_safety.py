"""`mlmkit run` never replaces what it reads (the model's catalog, an input), and the scratch directory of a
killed run is removed by the next run into the same OUTDIR."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cwl_fixtures import BIN, staged_scene, vegetation_model
from mlmkit.errors import InvalidInput
from mlmkit.packages.runner import run_model

CWL = Path(__file__).resolve().parents[1] / "cwl"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _runnable_model(folder: Path) -> Path:
    return vegetation_model(folder, "--inference-cwl", str(CWL / "inference.cwl"))


@pytest.fixture(scope="module")
def sources(tmp_path_factory, schema_dir: Path) -> tuple[Path, Path]:
    """(model catalog with an inference runtime, a staged scene), made once: the originals each test copies."""
    root = tmp_path_factory.mktemp("sources")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        return _runnable_model(root / "model"), staged_scene(root / "scene", 1280, 0, "s2-window")


@pytest.mark.parametrize("kept", ["model", "input"])
def test_run_refuses_a_result_that_would_replace_what_it_reads(sources: tuple[Path, Path], tmp_path: Path,
                                                               kept: str) -> None:
    """The package's result goes to OUTDIR/results; with the model catalog or the input there, --overwrite
    would delete it: refused in one line before anything runs, every file as it was."""
    model, scene = sources
    runs = tmp_path / "runs"
    if kept == "model":
        model = _runnable_model(runs / "results")
    else:
        scene = shutil.copytree(scene, runs / "results")
    before, names = _files(runs), sorted(p.name for p in runs.iterdir())
    result = subprocess.run([BIN / "mlmkit", "run", "--model", model, "--input", scene, "--outdir", runs,
                             "--overwrite", "--no-container"], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: output directory {runs / 'results'} contains the input "), \
        result.stderr
    assert _files(runs) == before
    assert sorted(p.name for p in runs.iterdir()) == names  # no scratch directory left


def _marked(directory: Path, owner: Path, pid: int) -> Path:
    """A scratch directory carrying the owner mark mlmkit.stac.atomic documents: outdir, host, pid, start time."""
    directory.mkdir()
    (directory / "job.json").write_text("{}")
    mark = {"outdir": str(owner), "host": socket.gethostname(), "pid": pid, "started": None}
    (directory / ".mlmkit-owner.json").write_text(json.dumps(mark))
    return directory


def test_the_next_run_removes_the_scratch_of_a_killed_run(sources: tuple[Path, Path], tmp_path: Path) -> None:
    _, scene = sources
    bare = vegetation_model(tmp_path / "bare")  # no runtime: the run stops after making its scratch directory
    outdir = tmp_path / "runs"
    outdir.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owner = outdir / "mlmkit-run-scratch"
    _marked(outdir / ".mlmkit-run-scratch.killed.partial", owner, dead.pid)
    alive = _marked(outdir / ".mlmkit-run-scratch.alive.partial", owner, os.getpid())
    unmarked = outdir / ".mlmkit-run-scratch.unmarked.partial"
    unmarked.mkdir()
    with pytest.raises(InvalidInput, match="has no mlm:inference-runtime asset"):
        run_model(str(bare), [str(scene)], outdir)
    assert sorted(p.name for p in outdir.iterdir()) == sorted([alive.name, unmarked.name])


def test_engine_failure_line_names_the_cause_after_cwltools_lead_in(tmp_path: Path) -> None:
    """cwltool without Docker on PATH: its ERROR line only says 'try again with --debug'; the cause follows it."""
    from mlmkit.packages.engines.local import telling_line

    job = tmp_path / "job.yml"
    job.write_text("message: hi\n")
    log = tmp_path / "engine.log"
    package = Path(__file__).parent / "data" / "echo-package.cwl"
    with open(log, "w") as stream:
        run = subprocess.run([Path(sys.executable).parent / "cwltool", "--outdir", tmp_path / "out",
                              f"{package}#echo-message", job], stderr=stream, stdout=subprocess.DEVNULL,
                             env={**os.environ, "PATH": str(Path(sys.executable).parent)})
    assert run.returncode != 0
    line = telling_line(log)
    assert "try again with --debug" in line and "Docker is not available for this tool" in line
