"""The mlmkit service plugged into wraptile: Part 1 for every process, Part 2 when MLMKIT_DEPLOY_TOKEN is set.

Around wraptile 0.3.0's limits: execute answers 201 *with* a Location header (and 200 with the results for
`Prefer: wait`), job ids are UUIDs never reused, jobs live on disk, and the landing page links service-desc,
conformance, processes and jobs. Outputs are served under /jobs/{id}/outputs/..., the engine log under
/jobs/{id}/log.
"""

from __future__ import annotations

import asyncio
import atexit
import hmac
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import fastapi
import requests
import yaml
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from gavicore.dru_models import CwlDescription, OgcApplicationPackage, OgcApplicationPackageProcessDescription
from gavicore.dru_service import DruService
from gavicore.models import (Capabilities, ConformanceDeclaration, JobInfo, JobList, JobStatus, Link,
                             ProcessDescription, ProcessList, ProcessSummary)
from wraptile.exceptions import ServiceException
from wraptile.services.base import DEFAULT_CONFORMS_TO, ServiceBase

from mlmkit.errors import InvalidInput, NotFound
from mlmkit.packages.serve.jobs import ACCEPTED, DISMISSED, FINISHED, RUNNING, SUCCESSFUL, Job, JobStore
from mlmkit.packages.serve.processes import DeployedProcesses, Process, model_processes
from mlmkit.stac.read import is_url
from mlmkit.stac.safepath import is_within

TOKEN_ENV = "MLMKIT_DEPLOY_TOKEN"
MAX_BODY_ENV = "MLMKIT_DEPLOY_MAX_BYTES"
MAX_BODY = 1 << 20  # a CWL package is a few kB; 1 MiB leaves room and stops abuse
CWL_TYPES = ("application/cwl", "application/cwl+json", "application/cwl+yaml")
APP_PKG = "application/ogcapppkg+json"
OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0/"
PART2 = ["http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/deploy-replace-undeploy",
         "http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/ogcapppkg",
         "http://www.opengis.net/spec/ogcapi-processes-2/1.0/conf/cwl"]
_POLL_S = 0.5


def _fail(status: int, detail: str, type_id: str) -> ServiceException:
    return ServiceException(status_code=status, detail=detail, type_id=type_id)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class MlmkitService(ServiceBase):
    """OGC API - Processes Part 1 over mlmkit's processes and engines."""

    def __init__(self, state: Path, models: str | None = None, engine: str = "cwltool", container: bool = True,
                 batch_system: str | None = None, max_jobs: int = 2) -> None:
        super().__init__(title="mlmkit", description="MLM models and CWL application packages as OGC API - "
                                                     "Processes, run by mlmkit's engines")
        self.state = state.absolute()
        self.jobs = JobStore(self.state)
        self.deployed = DeployedProcesses(self.state)
        self.models = model_processes(models, self.state / "models") if models else {}
        # a local model catalog is served under /models/, so that jobs stage it, and results name it, by URL
        self.models_root = Path(models).absolute() if models and not is_url(models) else None
        if self.models_root is not None and not self.models_root.is_dir():
            self.models_root = self.models_root.parent
        self.engine, self.container, self.batch_system = engine, container, batch_system
        self._workers: dict[str, subprocess.Popen] = {}
        self._queue: queue.Queue[str] = queue.Queue()
        for job in self.jobs.recover():
            self._queue.put(job.id)
        for _ in range(max_jobs):
            threading.Thread(target=self._dispatch, daemon=True).start()
        atexit.register(self._stop_workers)

    # --- jobs ------------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while True:
            job_id = self._queue.get()
            try:
                if self.jobs.get(job_id).status != ACCEPTED:
                    continue
            except NotFound:
                continue  # dismissed before it started
            folder = self.jobs.folder(job_id)
            with open(folder / "worker.log", "ab") as log:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "mlmkit.packages.serve.worker", str(self.state), job_id, self.engine,
                     "1" if self.container else "0", *([self.batch_system] if self.batch_system else [])],
                    stdout=log, stderr=subprocess.STDOUT)
                self._workers[job_id] = worker
                worker.wait()
                self._workers.pop(job_id, None)

    def _stop_workers(self) -> None:
        for worker in list(self._workers.values()):
            worker.terminate()
        for worker in list(self._workers.values()):
            worker.wait()

    def _job(self, job_id: str) -> Job:
        try:
            return self.jobs.get(job_id)
        except NotFound as exc:
            raise _fail(404, str(exc), "no-such-job") from None

    def _job_info(self, request: fastapi.Request, job: Job) -> JobInfo:
        links = [Link(href=str(request.url_for("get_job", jobId=job.id)), rel="self", type="application/json"),
                 Link(href=str(request.url_for("job_log", job_id=job.id)), rel="log", type="text/plain")]
        if job.status == SUCCESSFUL:
            links.append(Link(href=str(request.url_for("get_job_results", jobId=job.id)), rel=f"{OGC_REL}results",
                              type="application/json"))
        return JobInfo(jobID=job.id, processID=job.process, status=JobStatus(job.status), message=job.message,
                       created=_time(job.created), started=_time(job.started), finished=_time(job.finished),
                       updated=_time(job.updated), links=links)

    def _results(self, request: fastapi.Request, job: Job) -> dict:
        results = {}
        for name, output in job.outputs.items():
            if "path" not in output:
                results[name] = output.get("value")
                continue
            path = output["path"]
            folder = self.jobs.folder(job.id) / "outputs" / path
            media = "application/octet-stream"
            if output.get("class") == "Directory" and (folder / "catalog.json").is_file():
                path, media = f"{path}/catalog.json", "application/json"
            results[name] = {"href": str(request.url_for("job_output", job_id=job.id, path=path)), "type": media}
        return results

    # --- Part 1 ----------------------------------------------------------------------------------------------

    def processes(self) -> dict[str, Process]:
        return {**self.models, **self.deployed.load()}

    def _process(self, process_id: str) -> Process:
        process = self.processes().get(process_id)
        if process is None:
            raise _fail(404, f"process {process_id!r} does not exist; expected one of /processes", "no-such-process")
        return process

    def _description(self, process: Process) -> dict:
        return {**process.description, "mutable": process.mutable,
                "jobControlOptions": ["async-execute", "sync-execute", "dismiss"]}

    async def get_capabilities(self, request: fastapi.Request, **kwargs) -> Capabilities:
        def link(name: str, rel: str, media: str = "application/json") -> Link:
            return Link(href=self.get_url(request, name), rel=rel, type=media)
        return Capabilities(title=self.title, description=self.description, links=[
            link("/", "self"), link("/openapi.json", "service-desc", "application/vnd.oai.openapi+json;version=3.0"),
            link("/docs", "service-doc", "text/html"), link("/conformance", f"{OGC_REL}conformance"),
            link("/processes", f"{OGC_REL}processes"), link("/jobs", f"{OGC_REL}job-list")])

    async def get_conformance(self, **kwargs) -> ConformanceDeclaration:
        return ConformanceDeclaration(conformsTo=DEFAULT_CONFORMS_TO + (PART2 if isinstance(self, DruService) else []))

    async def get_processes(self, request: fastapi.Request, **kwargs) -> ProcessList:
        summaries = []
        for process in self.processes().values():
            description = self._description(process)
            description.pop("inputs", None)
            description.pop("outputs", None)
            description["links"] = [Link(href=str(request.url_for("get_process", processID=process.id)),
                                         rel="self", type="application/json")]
            summaries.append(ProcessSummary.model_validate(description))
        return ProcessList(processes=summaries, links=[self.get_self_link(request, "get_processes")])

    async def get_process(self, process_id: str, **kwargs) -> ProcessDescription:
        return ProcessDescription.model_validate(self._description(self._process(process_id)))

    async def execute_process(self, process_id: str, process_request, request: fastapi.Request,
                              response: fastapi.Response, **kwargs):
        process = self._process(process_id)
        inputs = dict(process_request.inputs or {})
        declared = process.description.get("inputs", {})
        unknown = sorted(set(inputs) - set(declared))
        missing = sorted(name for name, spec in declared.items() if spec.get("minOccurs", 1) > 0 and name not in inputs)
        if unknown or missing:
            raise _fail(400, f"process {process_id!r} has no input(s) {', '.join(unknown)}" if unknown else
                        f"process {process_id!r} needs the input(s) {', '.join(missing)}", "invalid-parameter")
        model = process.model
        if model and self.models_root is not None and not is_url(model):
            model = str(request.url_for("model_file", path=Path(model).relative_to(self.models_root).as_posix()))
        job = self.jobs.create(process.id, process.package, inputs, model=model)
        self._queue.put(job.id)
        location = str(request.url_for("get_job", jobId=job.id))
        if "respond-async" not in request.headers.get("Prefer", ""):  # Part 1: synchronous unless asked otherwise
            while (job := self.jobs.get(job.id)).status not in FINISHED:
                await asyncio.sleep(_POLL_S)
            if job.status != SUCCESSFUL:
                raise _fail(500, f"job {job.id} {job.status}: {job.message}", "internal-server-error")
            return JSONResponse(self._results(request, job), status_code=200, headers={"Location": location})
        response.headers["Location"] = location
        return self._job_info(request, job)

    async def get_jobs(self, request: fastapi.Request, **kwargs) -> JobList:
        return JobList(jobs=[self._job_info(request, job) for job in self.jobs.all()],
                       links=[self.get_self_link(request, "get_jobs")])

    async def get_job(self, job_id: str, request: fastapi.Request, **kwargs) -> JobInfo:
        return self._job_info(request, self._job(job_id))

    async def dismiss_job(self, job_id: str, request: fastapi.Request, **kwargs) -> JobInfo:
        job = self._job(job_id)
        if job.status in (ACCEPTED, RUNNING):
            job.status, job.message = DISMISSED, "dismissed by a client"
            self.jobs.save(job)  # a queued job is never started
            worker = self._workers.get(job_id)
            if worker is not None:
                worker.terminate()
                await asyncio.to_thread(worker.wait)
        info = self._job_info(request, job)
        info.status, info.links = JobStatus.dismissed, []
        self.jobs.remove(job_id)
        return info

    async def get_job_results(self, job_id: str, request: fastapi.Request, **kwargs):
        job = self._job(job_id)
        if job.status in (ACCEPTED, RUNNING):
            raise _fail(404, f"job {job_id} is {job.status}; its results are not ready", "result-not-ready")
        if job.status != SUCCESSFUL:
            raise _fail(500, f"job {job_id} {job.status}: {job.message} (log: /jobs/{job_id}/log)",
                        "internal-server-error")
        return JSONResponse(self._results(request, job))

    def output_file(self, job_id: str, path: str) -> Path:
        job = self._job(job_id)
        root = self.jobs.folder(job.id) / "outputs"
        file = root / path
        if job.status != SUCCESSFUL or not is_within(file, root) or not file.is_file():
            raise _fail(404, f"job {job_id} has no output file {path!r}", "no-such-job")
        return file

    def model_file(self, path: str) -> Path:
        file = (self.models_root or Path("/nonexistent")) / path
        if self.models_root is None or not is_within(file, self.models_root) or not file.is_file():
            raise _fail(404, f"no model file {path!r}", "no-such-process")
        return file

    def log_text(self, job_id: str) -> str:
        folder = self.jobs.folder(self._job(job_id).id)
        parts = [folder / name for name in ("job.log", "worker.log") if (folder / name).is_file()]
        return "".join(part.read_text(encoding="utf-8", errors="replace") for part in parts)


class MlmkitDruService(MlmkitService, DruService):
    """Part 2 as well: deploy, replace and undeploy CWL packages, for holders of the operator's token."""

    def __init__(self, *args, token: str, max_body: int = MAX_BODY, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._token, self._max_body = token, max_body

    def _authorize(self, request: fastapi.Request) -> None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token.encode()):
            raise _fail(401, "deploy, replace and undeploy need 'Authorization: Bearer <token>' with the operator's "
                             "token", "unauthorized")

    async def _body(self, request: fastapi.Request) -> bytes:
        declared = request.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self._max_body:
            raise _fail(413, f"the request body has {declared} bytes; at most {self._max_body}", "payload-too-large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self._max_body:
                raise _fail(413, f"the request body exceeds {self._max_body} bytes", "payload-too-large")
        return bytes(body)

    def _fetch_unit(self, href: str) -> str:
        if not href.startswith(("http://", "https://")):
            raise _fail(400, f"executionUnit href {href!r} is not an http(s) URL", "bad-request")
        try:
            with requests.get(href, timeout=30, stream=True) as answer:
                answer.raise_for_status()
                data = b""
                for chunk in answer.iter_content(1 << 16):
                    data += chunk
                    if len(data) > self._max_body:
                        raise _fail(413, f"the package at {href} exceeds {self._max_body} bytes", "payload-too-large")
        except requests.RequestException as exc:
            raise _fail(400, f"cannot fetch the executionUnit {href}: {exc}", "bad-request") from exc
        return data.decode("utf-8", "replace")

    async def _package_text(self, request: fastapi.Request) -> str:
        media = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        body = await self._body(request)
        if media in CWL_TYPES:
            return body.decode("utf-8", "replace")
        if media != APP_PKG:
            raise _fail(415, f"Content-Type {media or 'none'} is not accepted; expected one of "
                             f"{', '.join(CWL_TYPES)} or {APP_PKG}", "unsupported-media-type")
        try:
            document = json.loads(body)
            units = document["executionUnit"]
        except (ValueError, KeyError, TypeError):
            raise _fail(400, f"an {APP_PKG} body needs an executionUnit", "bad-request") from None
        unit = units[0] if isinstance(units, list) and len(units) == 1 else units
        if not isinstance(unit, dict):
            raise _fail(400, "expected one executionUnit (an object with href or value)", "bad-request")
        if isinstance(unit.get("href"), str):
            return await asyncio.to_thread(self._fetch_unit, unit["href"])
        value = unit.get("value", unit.get("unit"))
        if isinstance(value, dict):
            return yaml.safe_dump(value, sort_keys=False)
        if isinstance(value, str):
            return value
        raise _fail(400, "the executionUnit has neither an href nor a CWL value", "bad-request")

    async def _save(self, request: fastapi.Request, w: str | None, replace: str | None) -> Process:
        text = await self._package_text(request)
        try:
            return await asyncio.to_thread(self.deployed.save, text, w, replace)
        except InvalidInput as exc:
            raise _fail(400, str(exc), "bad-request") from None

    def _mutable(self, process_id: str) -> Process:
        process = self._process(process_id)
        if not process.mutable:
            raise _fail(403, f"process {process_id!r} comes from the model catalog and cannot be changed",
                        "immutable-process")
        return process

    async def deploy_process(self, request: fastapi.Request, response: fastapi.Response, w: str | None = None,
                             **kwargs):
        self._authorize(request)
        text = await self._package_text(request)
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError:
            document = None
        ids = [str(p.get("id", "")).lstrip("#") for p in (document or {}).get("$graph", [document or {}])
               if isinstance(p, dict) and p.get("class") == "Workflow"]
        chosen = w or (ids[0] if len(ids) == 1 else None)
        if chosen and chosen in self.processes():
            raise _fail(409, f"process {chosen!r} exists; replace it with PUT /processes/{chosen}",
                        "duplicated-process")
        try:
            process = await asyncio.to_thread(self.deployed.save, text, w, None)
        except InvalidInput as exc:
            raise _fail(400, str(exc), "bad-request") from None
        response.headers["Location"] = str(request.url_for("get_process", processID=process.id))
        return ProcessSummary.model_validate({k: v for k, v in self._description(process).items()
                                              if k not in ("inputs", "outputs")})

    async def replace_process(self, process_id: str, request: fastapi.Request, response: fastapi.Response,
                              w: str | None = None, **kwargs):
        self._authorize(request)
        self._mutable(process_id)
        await self._save(request, w or process_id, process_id)
        return Response(status_code=204)

    async def undeploy_process(self, process_id: str, request: fastapi.Request, response: fastapi.Response,
                               **kwargs) -> None:
        self._authorize(request)
        self._mutable(process_id)
        self.deployed.remove(process_id)

    async def get_formal_description(self, process_id: str, **kwargs) -> OgcApplicationPackage:
        process = self._process(process_id)
        path = process.package.partition("#")[0]
        return OgcApplicationPackage(
            processDescription=OgcApplicationPackageProcessDescription(
                process=ProcessDescription.model_validate(self._description(process))),
            executionUnit=CwlDescription(mediaType="application/cwl",
                                         value=yaml.safe_load(Path(path).read_text(encoding="utf-8"))))


def install_routes(app: fastapi.FastAPI, service: MlmkitService) -> None:
    """The routes wraptile lacks: job outputs as files (the result catalogs by URL) and job logs."""

    @app.get("/jobs/{job_id}/outputs/{path:path}", name="job_output")
    async def job_output(job_id: str, path: str) -> FileResponse:
        file = service.output_file(job_id, path)
        media = "application/json" if file.suffix == ".json" else None
        return FileResponse(file, media_type=media)

    @app.get("/models/{path:path}", name="model_file")
    async def model_file(path: str) -> FileResponse:
        file = service.model_file(path)
        return FileResponse(file, media_type="application/json" if file.suffix == ".json" else None)

    @app.get("/jobs/{job_id}/log", name="job_log")
    async def job_log(job_id: str) -> PlainTextResponse:
        return PlainTextResponse(service.log_text(job_id))


def serve(host: str, port: int, state: Path, models: str | None = None, engine: str = "cwltool",
          container: bool = True, batch_system: str | None = None, max_jobs: int = 2,
          pages: Sequence[Callable[[fastapi.FastAPI], object]] = ()) -> None:
    """Run the server until stopped (Part 2 only when MLMKIT_DEPLOY_TOKEN is set); `pages` add routes of the wings
    above this one to the app (the describe form of `mlmkit.web`)."""
    import uvicorn
    from wraptile.dru_routes import dru_router
    from wraptile.main import app
    from wraptile.provider import ServiceProvider

    token = os.environ.get(TOKEN_ENV)
    options = dict(models=models, engine=engine, container=container, batch_system=batch_system, max_jobs=max_jobs)
    if token:
        max_body = int(os.environ.get(MAX_BODY_ENV) or MAX_BODY)
        service: MlmkitService = MlmkitDruService(state, token=token, max_body=max_body, **options)
        app.include_router(dru_router)
    else:
        service = MlmkitService(state, **options)
    ServiceProvider.set_instance(service)
    install_routes(app, service)
    for add in pages:
        add(app)
    uvicorn.run(app, host=host, port=port, log_level="warning")
