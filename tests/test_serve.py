"""`mlmkit serve` for real: wraptile's server in its own process on loopback, clients over HTTP (OWSLib's OGC API
- Processes client from PyPI and plain requests), jobs run by cwltool without containers.

cuiman (the eozilla client) is not used: every release that imports with gavicore 0.3.0 (which wraptile 0.3.0
needs) requires Python >= 3.12 through remotestate, and this project runs on 3.11.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cwl_fixtures import check_vegetation_results, vegetation_model
from http_helpers import loopback_process, static_server
from mlmkit.packages.stage import stage_in
from mlmkit import __version__

REPO = Path(__file__).resolve().parents[1]
CWL = REPO / "cwl"
BIN = Path(sys.executable).parent
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ECHO = Path(__file__).parent / "data" / "echo-package.cwl"
POLL_LIMIT = 1200  # polls of 0.25 s: a bound, not a timing assertion


def server(state: Path, *args: str, token: str | None = TOKEN, **env: str):
    environment = {**os.environ, **env}
    environment.pop("MLMKIT_DEPLOY_TOKEN", None)
    if token:
        environment["MLMKIT_DEPLOY_TOKEN"] = token

    def command(port: int) -> list[str]:
        return [str(BIN / "mlmkit"), "serve", "--host", "127.0.0.1", "--port", str(port), "--state", str(state),
                "--no-container", *args]
    return loopback_process(command, "mlmkit serve", env=environment)


def deploy(base: str, path: Path, workflow: str | None = None, headers: dict | None = None) -> requests.Response:
    return requests.post(f"{base}/processes", params={"w": workflow} if workflow else None, data=path.read_bytes(),
                         headers={"Content-Type": "application/cwl+yaml", **(AUTH if headers is None else headers)})


def finished(base: str, location: str) -> dict:
    for _ in range(POLL_LIMIT):
        status = requests.get(location).json()
        if status["status"] in ("successful", "failed", "dismissed"):
            return status
        time.sleep(0.25)
    raise AssertionError(f"{location} did not finish")


def test_deploy_execute_fetch_validate_restart(tmp_path: Path, served) -> None:
    """The inference package deployed over HTTP, run on the served model and Sentinel-2 windows, its result
    catalog fetched by URL and checked pixel by pixel; after a restart the job and its results are still there."""
    root, data = served
    state = tmp_path / "state"
    inputs = {"model": f"{data}/model/catalog.json", "imagery": [f"{data}/scenes/scene-0/catalog.json"]}
    with server(state) as base:
        assert deploy(base, CWL / "inference.cwl", "mlmkit-inference", headers={}).status_code == 401
        answer = deploy(base, CWL / "inference.cwl", "mlmkit-inference")
        assert answer.status_code == 201, answer.text
        assert answer.headers["Location"] == f"{base}/processes/mlmkit-inference"
        assert deploy(base, CWL / "inference.cwl", "mlmkit-inference").status_code == 409
        description = requests.get(answer.headers["Location"]).json()
        assert description["version"] == __version__ and set(description["inputs"]) >= {"model", "imagery"}
        job = requests.post(f"{base}/processes/mlmkit-inference/execution", json={"inputs": inputs},
                            headers={"Prefer": "respond-async"})
        assert job.status_code == 201 and job.headers["Location"].startswith(f"{base}/jobs/")
        status = finished(base, job.headers["Location"])
        assert status["status"] == "successful", requests.get(f"{job.headers['Location']}/log").text[-3000:]
        results = requests.get(f"{job.headers['Location']}/results").json()
        href = results["results"]["href"]
        assert href.startswith(f"{base}/jobs/{status['jobID']}/outputs/") and href.endswith("/catalog.json")
        check_vegetation_results(stage_in([href], tmp_path / "fetched"), 1)
    with server(state) as base:  # a new process on the same state
        again = requests.get(f"{base}/jobs/{status['jobID']}").json()
        assert again["status"] == "successful" and again["processID"] == "mlmkit-inference"
        kept = requests.get(f"{base}/jobs/{status['jobID']}/results").json()["results"]["href"]
        assert kept == f"{base}/jobs/{status['jobID']}/outputs/{href.split('/outputs/', 1)[1]}"
        check_vegetation_results(stage_in([kept], tmp_path / "again"), 1)
        assert "mlmkit-inference" in [p["id"] for p in requests.get(f"{base}/processes").json()["processes"]]


def test_models_as_processes_with_owslib(tmp_path: Path, schema_dir: Path) -> None:
    """An MLM Item naming its inference package is a process; OWSLib lists it, describes it (without the
    `model` input, which the Item fills) and executes it synchronously."""
    from owslib.ogcapi.processes import Processes

    from cwl_fixtures import staged_scenes

    models = vegetation_model(tmp_path / "models", "--inference-cwl", str(CWL / "inference.cwl"))
    staged_scenes(tmp_path / "scenes", 1)
    with static_server(tmp_path / "scenes") as data, server(tmp_path / "state", "--models", str(models),
                                                            token=None) as base:
        client = Processes(base)
        assert [p["id"] for p in client.processes()] == ["nir-over-red"]
        description = client.process("nir-over-red")
        assert "model" not in description["inputs"] and "imagery" in description["inputs"]
        assert "sync-execute" in description["jobControlOptions"]
        results = client.execute("nir-over-red", {"imagery": [f"{data}/scene-0/catalog.json"]})
        check_vegetation_results(stage_in([results["results"]["href"]], tmp_path / "fetched"), 1)
        landing = requests.get(base).json()
        rels = {link["rel"] for link in landing["links"]}
        assert {"service-desc", "http://www.opengis.net/def/rel/ogc/1.0/conformance"} <= rels
        assert requests.post(f"{base}/processes", data=ECHO.read_bytes(),
                             headers={"Content-Type": "application/cwl+yaml", **AUTH}).status_code == 405
        assert requests.put(f"{base}/processes/nir-over-red").status_code == 405
        form = requests.get(f"{base}/describe")  # the describe form is part of the server (mlmkit.web)
        assert form.status_code == 200 and 'type="file"' in form.text


def test_part2_refusals_replace_undeploy_and_failed_job_log(tmp_path: Path) -> None:
    bad = tmp_path / "no-version.cwl"
    bad.write_text(ECHO.read_text().replace('s:version: "1.0.0"\n', ""))
    big = tmp_path / "big.cwl"
    big.write_text(ECHO.read_text() + "#" * 5000)
    with server(tmp_path / "state", MLMKIT_DEPLOY_MAX_BYTES="4000") as base:
        refused = deploy(base, bad)
        assert refused.status_code == 400 and "eozilla:req-11" in refused.json()["detail"]
        assert deploy(base, big).status_code == 413
        assert requests.post(f"{base}/processes", data=b"{}", headers={"Content-Type": "text/plain", **AUTH}
                             ).status_code == 415
        with static_server(ECHO.parent) as files:  # an OGC application package naming the CWL by href
            body = {"executionUnit": [{"href": f"{files}/{ECHO.name}", "type": "application/cwl"}]}
            answer = requests.post(f"{base}/processes", json=body,
                                   headers={"Content-Type": "application/ogcapppkg+json", **AUTH})
        assert answer.status_code == 201 and answer.headers["Location"].endswith("/processes/echo-message")
        replaced = requests.put(f"{base}/processes/echo-message", data=ECHO.read_bytes(),
                                headers={"Content-Type": "application/cwl+yaml", **AUTH})
        assert replaced.status_code == 204
        package = requests.get(f"{base}/processes/echo-message/package").json()
        assert package["executionUnit"]["value"]["s:version"] == "1.0.0"
        # a job that fails keeps its log
        job = requests.post(f"{base}/processes/echo-message/execution", json={"inputs": {"message": ["not", 1]}},
                            headers={"Prefer": "respond-async"})
        status = finished(base, job.headers["Location"])
        assert status["status"] == "failed" and status["message"]
        assert requests.get(f"{job.headers['Location']}/results").status_code == 500
        assert "cwltool" in requests.get(f"{job.headers['Location']}/log").text
        assert requests.delete(job.headers["Location"]).json()["status"] == "dismissed"
        assert requests.get(job.headers["Location"]).status_code == 404
        assert requests.delete(f"{base}/processes/echo-message").status_code == 401
        assert requests.delete(f"{base}/processes/echo-message", headers=AUTH).status_code == 204
        assert requests.get(f"{base}/processes/echo-message").status_code == 404


def test_twenty_concurrent_jobs_none_lost_none_mixed(tmp_path: Path) -> None:
    """A bounded load test on loopback: 20 jobs posted at once; every job finishes and holds its own message."""
    with server(tmp_path / "state", "--jobs", "4") as base:
        assert deploy(base, ECHO).status_code == 201

        def submit(n: int) -> tuple[str, str]:
            message = f"message-{n:02d}-{os.urandom(4).hex()}"
            answer = requests.post(f"{base}/processes/echo-message/execution",
                                   json={"inputs": {"message": message}}, headers={"Prefer": "respond-async"})
            assert answer.status_code == 201
            return message, answer.headers["Location"]

        with ThreadPoolExecutor(20) as pool:
            submitted = list(pool.map(submit, range(20)))
        assert len({location for _, location in submitted}) == 20
        for message, location in submitted:
            assert finished(base, location)["status"] == "successful"
            href = requests.get(f"{location}/results").json()["echoed"]["href"]
            assert requests.get(href).text == message + "\n"
        listed = {job["jobID"] for job in requests.get(f"{base}/jobs").json()["jobs"]}
        assert {location.rsplit("/", 1)[-1] for _, location in submitted} <= listed
