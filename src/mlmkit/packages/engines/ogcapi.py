"""ogcapi: the package run by an OGC API - Processes server (an ADES: ZOO-Project-DRU, Weaver, eozilla,
`mlmkit serve`), with no local command line and no file system shared with it.

The package is deployed (Part 2: the verified local copy as `application/cwl+yaml`, `?w=<workflow id>`, with
`Authorization: Bearer $MLMKIT_ENGINE_TOKEN` when that is set), unless the job names a process already deployed
there; it is executed asynchronously (`Prefer: respond-async`), its job polled until it finishes or the
timeout passes, and the result catalog the job links to is fetched by URL with the stage-in machinery
(`mlmkit.packages.stage.stage_in`) into the output directory. Inputs travel by URL: a local path is refused,
the server could not read it. Only what this engine created is removed: the process it deployed (undeployed at
the end) and its job when the run is stopped or times out. A finished job stays on the server: the fetched
catalog's canonical links point at its results, and a failed one keeps its log there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

import requests

from mlmkit.errors import InvalidArgument, RemoteFailure
from mlmkit.packages.engines.base import CatalogRef, EngineFailed, EngineJob, place
from mlmkit.packages.stage import stage_in
from mlmkit.stac.read import HTTP_TIMEOUT_S, is_url

TOKEN_ENV = "MLMKIT_ENGINE_TOKEN"
FINISHED = ("successful", "failed", "dismissed")
RESULTS_RELS = ("results", "http://www.opengis.net/def/rel/ogc/1.0/results")
_FIRST_POLL_S, _LONGEST_POLL_S = 0.5, 5.0


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def _detail(response: requests.Response) -> str:
    """What the server says about a refusal: the exception document's detail or title, else its text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("detail", "title", "description", "message"):
            if isinstance(body.get(key), str) and body[key].strip():
                return _one_line(body[key])
    return _one_line(response.text) or response.reason


def _remote_value(name: str, value: Any) -> Any:
    """An input value as the server takes it: catalogs and File/Directory values as {"href": URL}."""
    if isinstance(value, list):
        return [_remote_value(name, entry) for entry in value]
    href = value.href if isinstance(value, CatalogRef) else None
    if isinstance(value, dict) and value.get("class") in ("File", "Directory"):
        href = value.get("location") or value.get("path")
    if href is None:
        return value
    if not is_url(href):
        raise InvalidArgument(f"input {name!r} is the local path {href}, which the server cannot read; expected a URL "
                              "(publish or stage out the data, then pass its URL)")
    return {"href": href}


def remote_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """The execute request's inputs; refuses local paths."""
    return {name: _remote_value(name, value) for name, value in inputs.items()}


class _Server:
    """One OGC API - Processes server, with every request logged and every failure one line."""

    def __init__(self, base: str, session: requests.Session, log: IO[str]) -> None:
        self.base, self.session, self.log = base.rstrip("/"), session, log

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, url, timeout=HTTP_TIMEOUT_S, **kwargs)
        except requests.ConnectionError as exc:
            raise RemoteFailure(f"cannot reach the OGC API - Processes server at {self.base}: "
                                f"{_one_line(exc, 200)}; expected a running server at that URL") from exc
        except requests.RequestException as exc:
            raise RemoteFailure(f"{method} {url} failed: {_one_line(exc, 200)}") from exc
        self.log.write(f"{method} {response.url} -> HTTP {response.status_code}\n")
        self.log.flush()
        return response

    def json(self, response: requests.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RemoteFailure(f"{response.url} answered HTTP {response.status_code} without a JSON object; "
                                "expected an OGC API - Processes server")
        return body

    def refused(self, response: requests.Response, what: str) -> RemoteFailure:
        if response.status_code in (401, 403):
            return RemoteFailure(f"the server at {self.base} refuses to {what} (HTTP {response.status_code}: "
                                 f"{_detail(response)}); expected a token it accepts in {TOKEN_ENV}")
        return RemoteFailure(f"the server at {self.base} refuses to {what}: HTTP {response.status_code} "
                             f"{_detail(response)}")

    def deploy(self, job: EngineJob) -> str:
        """Deploy the package (Part 2); the id of the new process."""
        package = job.package
        shown = f"{job.package_url or package.path}{'#' + package.process_id if package.process_id else ''}"
        response = self.request("POST", f"{self.base}/processes", data=package.path.read_bytes(),
                                params={"w": package.process_id} if package.process_id else None,
                                headers={"Content-Type": "application/cwl+yaml"})
        if response.status_code in (404, 405, 501):
            raise RemoteFailure(f"the server at {self.base} does not deploy packages (HTTP {response.status_code} on "
                                "POST /processes); expected an OGC API - Processes Part 2 server, or the id of a "
                                "process deployed there (process)")
        if response.status_code == 409:
            raise RemoteFailure(f"the server at {self.base} already has a process {package.process_id!r}; expected "
                                "it named as the process to run (process), or undeployed first")
        if response.status_code not in (200, 201):
            raise self.refused(response, f"deploy {shown}")
        process = self.json(response).get("id") or package.process_id
        if not isinstance(process, str) or not process:
            raise RemoteFailure(f"the server at {self.base} deployed {shown} but named no process id")
        return process

    def undeploy(self, process: str) -> None:
        with suppress(RemoteFailure):  # best effort: the run's own outcome is what is reported
            self.request("DELETE", f"{self.base}/processes/{process}")

    def execute(self, process: str, inputs: dict) -> str:
        """Start a job; its status URL."""
        response = self.request("POST", f"{self.base}/processes/{process}/execution", json={"inputs": inputs},
                                headers={"Prefer": "respond-async"})
        if response.status_code not in (200, 201, 202):
            raise self.refused(response, f"execute process {process!r}")
        location = response.headers.get("Location")
        if location:
            return requests.compat.urljoin(response.url, location)
        job_id = self.json(response).get("jobID")
        if not isinstance(job_id, str):
            raise RemoteFailure(f"the server at {self.base} started no job for process {process!r} (HTTP "
                                f"{response.status_code}, no Location header, no jobID); expected an asynchronous job")
        return f"{self.base}/jobs/{job_id}"

    def status(self, job_url: str) -> dict:
        response = self.request("GET", job_url)
        if response.status_code != 200:
            raise self.refused(response, f"show the status of job {job_url}")
        status = self.json(response)
        if status.get("status") not in (*FINISHED, "accepted", "running"):
            raise RemoteFailure(f"job {job_url} has status {str(status.get('status'))[:40]!r}; expected one of "
                                f"accepted, running, {', '.join(FINISHED)}")
        return status

    def wait(self, job_url: str, timeout_s: float) -> dict:
        """The job's final status document."""
        deadline, pause = time.monotonic() + timeout_s, _FIRST_POLL_S
        while (status := self.status(job_url))["status"] not in FINISHED:
            if time.monotonic() >= deadline:
                raise EngineFailed(f"job {job_url} is still {status['status']} after {timeout_s:g} s; it was "
                                   "dismissed (a longer timeout lets it finish)")
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, _LONGEST_POLL_S)
        return status

    def dismiss(self, job_url: str) -> None:
        with suppress(RemoteFailure):  # best effort: the run is being stopped anyway
            self.request("DELETE", job_url)

    def result_href(self, job_url: str, status: dict, name: str) -> str:
        """The URL of the result catalog of output `name`."""
        links = [link for link in status.get("links") or [] if isinstance(link, dict)]
        url = next((link["href"] for link in links if link.get("rel") in RESULTS_RELS), f"{job_url}/results")
        response = self.request("GET", url)
        if response.status_code != 200:
            raise self.refused(response, f"give the results of job {job_url}")
        results = self.json(response)
        value = results.get(name)
        if isinstance(value, dict) and isinstance(value.get("value"), dict):
            value = value["value"]  # a qualified value
        href = value.get("href") if isinstance(value, dict) else value
        if not isinstance(href, str) or not is_url(href):
            raise RemoteFailure(f"job {job_url} gave no URL for its output {name!r} ({str(value)[:80]}); expected "
                                "the URL of a STAC catalog")
        return href if href.endswith(".json") else f"{href.rstrip('/')}/catalog.json"


@contextmanager
def _session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Accept"] = "application/json"
        token = os.environ.get(TOKEN_ENV)
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        yield session


def _failure(job_url: str, status: dict) -> EngineFailed:
    message = _one_line(status.get("message") or "the server gave no message", 400)
    log = next((link.get("href") for link in status.get("links") or []
                if isinstance(link, dict) and link.get("rel") == "log"), None)
    return EngineFailed(f"job {job_url} {status['status']}: {message}{f'; its log is {log}' if log else ''}")


class OgcApi:
    name = "ogcapi"

    def check(self, job: EngineJob) -> None:
        options = job.options
        if not options.url:
            raise InvalidArgument("the ogcapi engine needs the server's URL (url); expected the landing page of an "
                                  "OGC API - Processes server")
        if not options.url.startswith(("http://", "https://")):
            raise InvalidArgument(f"server URL {options.url!r} is not an http(s) URL; expected the landing page of an "
                                  "OGC API - Processes server")
        if options.batch_system or options.extra_args or not options.container:
            raise InvalidArgument("the ogcapi engine leaves how the tools run to the server; expected no batch system, "
                                  "engine arguments or container setting")
        if options.timeout_s <= 0:
            raise InvalidArgument(f"timeout {options.timeout_s:g} s is not positive; expected seconds > 0")
        remote_inputs(job.inputs)

    def run(self, job: EngineJob) -> None:
        self.check(job)
        inputs = remote_inputs(job.inputs)
        job.log.parent.mkdir(parents=True, exist_ok=True)
        with _session() as session, open(job.log, "w", encoding="utf-8") as log:
            server = _Server(job.options.url or "", session, log)
            process = job.options.process or server.deploy(job)
            try:
                job_url = server.execute(process, inputs)
                log.write(f"job {job_url}\n")
                try:
                    status = server.wait(job_url, job.options.timeout_s)
                except BaseException:  # a timeout, SIGTERM or Ctrl-C: the job this run started is stopped
                    server.dismiss(job_url)
                    raise
                if status["status"] != "successful":
                    raise _failure(job_url, status)
                href = server.result_href(job_url, status, job.result)
            finally:
                if not job.options.process:
                    server.undeploy(process)
        place(stage_in([href], job.workdir / "result"), job.outdir)
