"""Engines that run on this machine through a command line: cwltool and toil-cwl-runner (and their batch systems).

Both follow the same conventions: the CWL output object as JSON on stdout, the log on stderr, a non-zero exit on
failure. Everything they write lies in the job's work directory (on a cluster, a file system every node
shares); the log goes to a file, and a failure becomes one line that quotes the most telling line of the log
and names the file.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlmkit.errors import InvalidArgument, InvalidInput
from mlmkit.packages.engines.base import EngineFailed, EngineJob, place
from mlmkit.packages.engines.staging import local_job_order

_STOP_WAIT_S = 60
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TAIL_BYTES = 1 << 16


@dataclass(frozen=True)
class CommandJob:
    """One command-line run: `process` is `file.cwl` or `file.cwl#id`; everything the engine writes goes under
    `scratch`."""

    process: str
    job_order: Path
    scratch: Path
    log: Path
    container: bool = True
    batch_system: str | None = None
    extra_args: tuple[str, ...] = ()

    @property
    def outdir(self) -> Path:
        """Where the engine puts the workflow's outputs."""
        return self.scratch / "out"


def executable(name: str, requirement: str) -> str:
    """The engine's program: beside this Python first (the same virtualenv), then on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        raise InvalidInput(f"{name} is not installed; expected it on PATH (pip install '{requirement}')")
    return found


def telling_line(log: Path) -> str:
    """The line of an engine log that best says what failed: the tool's own one-line error, else the last ERROR."""
    with open(log, "rb") as stream:
        stream.seek(0, 2)
        stream.seek(max(0, stream.tell() - _TAIL_BYTES))
        lines = [_ANSI.sub("", line).strip() for line in stream.read().decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    for pattern in (r"\bError: ", r"\bERROR\b|\berror\b|Exception"):
        hits = [n for n, line in enumerate(lines) if re.search(pattern, line)]
        if hits:
            line = lines[hits[-1]]
            # "Workflow error, try again with --debug for more information:" leads in; the cause is the next line
            if line.endswith(":") and hits[-1] + 1 < len(lines):
                line = f"{line} {lines[hits[-1] + 1]}"
            return line[:400]
    return lines[-1][:300] if lines else "no output"


def _stop(process: subprocess.Popen) -> None:
    """Ask the engine to stop (it stops its jobs and containers), then make sure it has."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(_STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _result_dir(outputs: dict, name: str, log: Path) -> Path:
    value = outputs.get(name)
    path = None
    if isinstance(value, dict) and (value.get("path") or str(value.get("location", "")).startswith("file://")):
        path = Path(value.get("path") or url2pathname(urlparse(value["location"]).path))
    if path is None or not (path / "catalog.json").is_file():
        raise EngineFailed(f"the run's output {name!r} holds no catalog.json; the full log is {log}")
    return path


class CwlRunner:
    """An engine with cwltool's conventions; subclasses say how the command line is built."""

    name = "cwl"

    def command(self, job: CommandJob) -> list[str]:
        raise NotImplementedError

    def _command_job(self, job: EngineJob) -> CommandJob:
        if job.options.url or job.options.process:
            raise InvalidArgument(f"{self.name} runs on this machine; a server URL or deployed process needs the "
                                  "ogcapi engine")
        return CommandJob(process=job.package.process, job_order=job.workdir / "job.json", scratch=job.workdir,
                          log=job.log, container=job.options.container, batch_system=job.options.batch_system,
                          extra_args=job.options.extra_args)

    def check(self, job: EngineJob) -> None:
        self.command(self._command_job(job))

    def run(self, job: EngineJob) -> None:
        command_job = self._command_job(job)
        order = local_job_order(job.inputs, job.workdir)
        command_job.job_order.write_text(json.dumps(order, indent=2), encoding="utf-8")
        place(_result_dir(self.outputs(command_job), job.result, job.log), job.outdir)

    def outputs(self, job: CommandJob) -> dict:
        """Run the command; the CWL output object (output name -> value)."""
        command = self.command(job)
        job.outdir.mkdir(parents=True, exist_ok=True)
        try:
            job.log.parent.mkdir(parents=True, exist_ok=True)
            log = open(job.log, "w", encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write the log {job.log}: {exc.strerror}; expected a writable path") from exc
        with log:
            log.write(f"$ {shlex.join(command)}\n")
            log.flush()
            try:
                process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, cwd=job.scratch, text=True)
            except OSError as exc:
                raise EngineFailed(f"{self.name} could not be started ({command[0]}): {exc.strerror}") from exc
            try:
                stdout, _ = process.communicate()
            except BaseException:
                _stop(process)
                raise
        if process.returncode != 0:
            raise EngineFailed(f"{self.name} failed (exit {process.returncode}) running {job.process}: "
                               f"{telling_line(job.log)}; the full log is {job.log}")
        try:
            outputs = json.loads(stdout)
        except ValueError:
            outputs = None
        if not isinstance(outputs, dict):
            raise EngineFailed(f"{self.name} printed no CWL output object for {job.process}; the full log is {job.log}")
        return outputs
