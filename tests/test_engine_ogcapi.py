"""`mlmkit run --engine ogcapi` against a real `mlmkit serve` on loopback (wraptile, Part 2 behind a token, jobs
run by cwltool without containers): the same class map as `--engine cwltool --no-container`, pixel for pixel;
a failed or timed-out remote job, a bad URL, an unreachable server, a refused token and a local input each give
one line; what the engine did not create stays on the server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests

from docs_snippets import code_blocks
from cwl_fixtures import BIN, WINDOWS, check_vegetation_results, staged_scene, staged_scenes, vegetation_model
from http_helpers import static_server
from test_serve import TOKEN, deploy, server

REPO = Path(__file__).resolve().parents[1]
CWL = REPO / "cwl"
PAGE = REPO / "docs" / "how-to" / "deploy.md"
PROCESS = "mlmkit-inference"


@pytest.fixture(scope="module")
def published(tmp_path_factory, schema_dir: Path):
    """(root, base URL): the vegetation model with the shipped inference package, one Sentinel-2 window, and
    that window without its NIR band, served over loopback HTTP as a STAC API or object store serves them."""
    root = tmp_path_factory.mktemp("published")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        vegetation_model(root / "model", "--inference-cwl", str(CWL / "inference.cwl"))
        staged_scenes(root / "scenes", 1)
        scene = staged_scene(root / "no-nir", *WINDOWS[0], "s2-window-0")
    item_path = scene / "s2-window-0" / "s2-window-0.json"
    item = json.loads(item_path.read_text())  # a NIR file that is not a raster: the remote job fails reading it
    (item_path.parent / item["assets"]["B08"]["href"]).write_text("not a raster")  # (run refuses a missing band)
    with static_server(root) as base:
        yield root, base


def environment(token: str | None, **variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "MLMKIT_ENGINE_TOKEN"}
    if token is not None:
        env["MLMKIT_ENGINE_TOKEN"] = token
    return {**env, "PATH": f"{BIN}:{env['PATH']}", **variables}


def mlmkit_run(*args: str | Path, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "mlmkit", "run", *map(str, args)], capture_output=True, text=True,
                          env=environment(token))


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def class_map(results: Path) -> np.ndarray:
    """The class raster of the one result Item, read back with rasterio."""
    catalog = json.loads((results / "catalog.json").read_text())
    item_path = results / next(link["href"] for link in catalog["links"] if link["rel"] == "item")
    item = json.loads(item_path.read_text())
    data = next(asset for asset in item["assets"].values() if "data" in asset["roles"])
    with rasterio.open(item_path.parent / data["href"]) as dataset:
        return dataset.read()


def process_ids(base: str) -> list[str]:
    return [process["id"] for process in requests.get(f"{base}/processes").json()["processes"]]


def test_remote_run_gives_the_local_class_map(published, tmp_path: Path) -> None:
    """The command of docs/how-to/deploy.md: deployed, executed, polled and fetched; the result equals cwltool's
    on this machine and NIR > red; the process the engine deployed is gone afterwards, the finished job (which
    the result names) stays."""
    _, data = published
    model, scene = f"{data}/model/catalog.json", f"{data}/scenes/scene-0/catalog.json"
    local = mlmkit_run("--model", model, "--input", scene, "--no-container", "--outdir", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    [block] = code_blocks(PAGE, "bash")
    assert "--engine ogcapi" in block.text
    (tmp_path / "remote").mkdir()
    with server(tmp_path / "state") as base:
        remote = subprocess.run(["bash", "-euo", "pipefail", "-c", block.text], cwd=tmp_path / "remote",
                                capture_output=True, text=True, env=environment(TOKEN, ADES=base, MODEL=model,
                                                                                SCENE=scene))
        assert remote.returncode == 0, remote.stderr
        assert remote.stdout.strip() == str(tmp_path / "remote" / "runs" / "results" / "catalog.json")
        assert PROCESS not in process_ids(base)
        jobs = requests.get(f"{base}/jobs").json()["jobs"]
        assert [(job["processID"], job["status"]) for job in jobs] == [(PROCESS, "successful")]
    results = tmp_path / "remote" / "runs" / "results"
    expected, fetched = class_map(tmp_path / "local" / "results"), class_map(results)
    assert fetched.dtype == expected.dtype and fetched.shape == expected.shape
    np.testing.assert_array_equal(fetched, expected)
    check_vegetation_results(results, 1)  # NIR > red, assets local, mlmkit validate
    assert sorted(p.name for p in results.parent.iterdir()) == ["results"]


def test_failed_and_timed_out_remote_jobs_get_one_line(published, tmp_path: Path) -> None:
    """A process deployed by someone else (--engine-process) stays deployed; a job that fails is named with the
    server's cause; a job past --engine-timeout is dismissed."""
    _, data = published
    with server(tmp_path / "state") as base:
        assert deploy(base, CWL / "inference.cwl", PROCESS).status_code == 201
        failing = ("--model", f"{data}/model/catalog.json", "--input", f"{data}/no-nir/catalog.json")
        line = one_line(mlmkit_run(*failing, "--engine", "ogcapi", "--engine-url", base, "--engine-process", PROCESS,
                                   "--outdir", tmp_path / "out", token=None))
        job_id = requests.get(f"{base}/jobs").json()["jobs"][0]["jobID"]
        assert line.startswith(f"Error: job {base}/jobs/{job_id} failed: cwltool failed (exit 1)"), line
        assert "B08" in line and line.endswith(f"its log is {base}/jobs/{job_id}/log")
        assert PROCESS in process_ids(base)  # not created by the engine: not undeployed
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["results.log"]
        good = ("--model", f"{data}/model/catalog.json", "--input", f"{data}/scenes/scene-0/catalog.json")
        line = one_line(mlmkit_run(*good, "--engine", "ogcapi", "--engine-url", base, "--engine-process", PROCESS,
                                   "--engine-timeout", "0.5", "--outdir", tmp_path / "late"))
        assert line.startswith(f"Error: job {base}/jobs/") and "after 0.5 s; it was dismissed" in line, line
        late = line.split()[2]
        assert requests.get(late).status_code == 404  # dismissed and removed by the server
        assert [job["jobID"] for job in requests.get(f"{base}/jobs").json()["jobs"]] == [job_id]


def test_unusable_servers_and_inputs_get_one_line(published, tmp_path: Path) -> None:
    root, data = published
    sources = ("--model", f"{data}/model/catalog.json", "--input", f"{data}/scenes/scene-0/catalog.json")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    line = one_line(mlmkit_run(*sources, "--engine", "ogcapi", "--engine-url", closed, "--outdir", tmp_path))
    assert line.startswith(f"Error: cannot reach the OGC API - Processes server at {closed}: "), line
    line = one_line(mlmkit_run(*sources, "--engine", "ogcapi", "--engine-url", "ftp://example.org",
                               "--outdir", tmp_path))
    assert "server URL 'ftp://example.org' is not an http(s) URL" in line
    assert "needs the server's URL" in one_line(mlmkit_run(*sources, "--engine", "ogcapi", "--outdir", tmp_path))
    with server(tmp_path / "state") as base:
        line = one_line(mlmkit_run(*sources, "--engine", "ogcapi", "--engine-url", base, "--outdir", tmp_path,
                                   token="wrong"))
        assert line.startswith(f"Error: the server at {base} refuses to deploy {data}/model/") and "HTTP 401" in line
        assert line.endswith("expected a token it accepts in MLMKIT_ENGINE_TOKEN"), line
        line = one_line(mlmkit_run("--model", f"{data}/model/catalog.json", "--input", root / "scenes" / "scene-0",
                                   "--engine", "ogcapi", "--engine-url", base, "--outdir", tmp_path))
        assert f"input 'imagery' is the local path {root / 'scenes' / 'scene-0'}, which the server cannot read" in line
        line = one_line(mlmkit_run("--model", root / "model", *sources[2:], "--engine", "ogcapi", "--engine-url", base,
                                   "--outdir", tmp_path))
        assert "input 'model' is the local path" in line
        assert requests.get(f"{base}/jobs").json()["jobs"] == [] and PROCESS not in process_ids(base)
        line = one_line(mlmkit_run(*sources, "--engine", "ogcapi", "--engine-url", base, "--no-container",
                                   "--outdir", tmp_path))
        assert "leaves how the tools run to the server" in line
    with server(tmp_path / "part1", token=None) as base:  # no MLMKIT_DEPLOY_TOKEN: Part 1 only
        line = one_line(mlmkit_run(*sources, "--engine", "ogcapi", "--engine-url", base, "--outdir", tmp_path))
        assert f"the server at {base} does not deploy packages (HTTP 405" in line, line
    # no result, no scratch; the log of the last failed run, which says what was asked
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part1", "results.log", "state"]
    assert (tmp_path / "results.log").read_text().splitlines() == [f"POST {base}/processes?w={PROCESS} -> HTTP 405"]
