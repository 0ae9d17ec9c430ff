"""What every CWL engine shares: the job it is given, how it is started and stopped, how its failure reads.

cwltool and toil-cwl-runner follow the same conventions: the CWL output object as JSON on stdout, the log on
stderr, a non-zero exit on failure. The log goes to a file; a failure becomes one line that quotes the most
telling line of the log and names the file.
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
from typing import Protocol

from mlmkit.errors import InvalidInput, MlmkitError

# Toil's batch systems (toil.batchSystems.registry), here so that --help lists them without importing Toil.
BATCH_SYSTEMS = ("single_machine", "slurm", "kubernetes", "aws_batch", "grid_engine", "lsf", "torque", "htcondor",
                 "mesos")
_STOP_WAIT_S = 60
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TAIL_BYTES = 1 << 16


class EngineFailed(MlmkitError):
    """The engine ran and failed; the message names the log that says why."""


@dataclass(frozen=True)
class EngineJob:
    """One CWL run: `process` is `file.cwl` or `file.cwl#id`; everything the engine writes goes under `scratch`."""

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


class Engine(Protocol):
    """A CWL runner: builds its command, runs it, returns the CWL output object (output name -> value)."""

    name: str

    def command(self, job: EngineJob) -> list[str]:
        """The full command line that runs `job`."""
        ...

    def run(self, job: EngineJob) -> dict:
        """Run `job`; raise EngineFailed naming the log when it fails."""
        ...


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


class CwlRunner:
    """An engine with cwltool's conventions; subclasses say how the command line is built."""

    name = "cwl"

    def command(self, job: EngineJob) -> list[str]:
        raise NotImplementedError

    def run(self, job: EngineJob) -> dict:
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
