"""Jobs on disk: STATE/jobs/<id>/ holds job.json (status), request.json, the engine log and the outputs.

Everything a client can ask about a job is read from these files, so a restarted server loses no job and no
result; a job whose worker was gone when the server started is marked failed, its log kept. Ids are random
UUIDs, never reused.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mlmkit.errors import NotFound

ACCEPTED, RUNNING, SUCCESSFUL, FAILED, DISMISSED = "accepted", "running", "successful", "failed", "dismissed"
FINISHED = (SUCCESSFUL, FAILED, DISMISSED)


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class Job:
    """What job.json says about one job."""

    id: str
    process: str
    package: str          # the CWL file the job runs, `file#workflow`
    status: str = ACCEPTED
    created: str = field(default_factory=now)
    started: str | None = None
    finished: str | None = None
    updated: str | None = None
    message: str | None = None
    model: str | None = None  # the MLM Item href a model process stages as its `model` input
    outputs: dict = field(default_factory=dict)  # output name -> {"path": relative to outputs/} or {"value": ...}


def write_json(path: Path, data: object) -> None:
    """Replace `path` atomically: a reader never sees half a file."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    temp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(temp, path)


class JobStore:
    """The jobs under STATE/jobs."""

    def __init__(self, state: Path) -> None:
        self.root = state / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, job_id: str) -> Path:
        try:
            uuid.UUID(job_id)
        except ValueError:
            raise NotFound(f"job {job_id!r} does not exist; expected a job id from /jobs") from None
        return self.root / job_id

    def create(self, process: str, package: str, inputs: dict, model: str | None = None) -> Job:
        job = Job(id=str(uuid.uuid4()), process=process, package=package, model=model)
        folder = self.root / job.id
        folder.mkdir()
        write_json(folder / "request.json", inputs)
        self.save(job)
        return job

    def save(self, job: Job) -> None:
        job.updated = now()
        write_json(self.root / job.id / "job.json", asdict(job))

    def get(self, job_id: str) -> Job:
        path = self.folder(job_id) / "job.json"
        try:
            return Job(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise NotFound(f"job {job_id!r} does not exist; expected a job id from /jobs") from None

    def all(self) -> list[Job]:
        jobs = []
        for folder in self.root.iterdir():
            if (folder / "job.json").is_file():
                jobs.append(Job(**json.loads((folder / "job.json").read_text(encoding="utf-8"))))
        return sorted(jobs, key=lambda job: job.created)

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def recover(self) -> list[Job]:
        """After a restart: running jobs lost their worker (failed, log kept); accepted ones are returned to run."""
        queued = []
        for job in self.all():
            if job.status == RUNNING:
                job.status, job.finished = FAILED, now()
                job.message = "the server stopped while the job ran; its log is kept"
                self.save(job)
            elif job.status == ACCEPTED:
                queued.append(job)
        return queued
