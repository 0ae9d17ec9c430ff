"""What every engine is given and gives back, whether it runs on this machine or on a server far away.

An `EngineJob` says what the job IS: the package (a local, verified copy, and its URL where known), the
workflow's inputs as CWL values with the STAC catalogs as references (`CatalogRef`, a path or a URL), the
output that holds the result catalog, where that catalog must end up, and hints on how to run. Nothing in it
assumes a local command line or a file system shared with the engine: a local engine stages the catalogs
into its own work directory, a remote one sends their URLs. Either way the result comes back as a STAC catalog
placed in `outdir`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mlmkit.errors import MlmkitError
from mlmkit.packages.cwl import Package

# Toil's batch systems (toil.batchSystems.registry), here so that --help lists them without importing Toil.
BATCH_SYSTEMS = ("single_machine", "slurm", "kubernetes", "aws_batch", "grid_engine", "lsf", "torque", "htcondor",
                 "mesos")
REMOTE_TIMEOUT_S = 24 * 3600.0  # how long a remote engine waits for its job by default


class EngineFailed(MlmkitError):
    """The engine ran and failed; the message names the log (or the remote job) that says why."""


@dataclass(frozen=True)
class CatalogRef:
    """A Directory input given as a STAC Item or catalog, by local path or URL; `model`: an MLM Item, of which
    the package needs the model files (mlm:model, mlm:weights), not the checkpoint."""

    href: str
    model: bool = False


@dataclass(frozen=True)
class EngineOptions:
    """How to run: each engine honours what applies to it and refuses, in one line, what it cannot honour."""

    container: bool = True                 # local engines: the tools in their images, not the mlmkit on PATH
    batch_system: str | None = None        # Toil's batch system
    extra_args: tuple[str, ...] = ()       # passed to a local engine's command line as they are
    url: str | None = None                 # remote engines: the server
    process: str | None = None             # remote engines: a process already deployed there (else deploy it)
    timeout_s: float = REMOTE_TIMEOUT_S    # remote engines: how long to wait for the job


@dataclass(frozen=True)
class EngineJob:
    """One run of a CWL package: `inputs` maps input names to CWL values, `CatalogRef`s or lists of them."""

    package: Package                       # the verified local copy, its workflow id and interface
    inputs: dict[str, Any]
    result: str                            # the Directory output that holds the result catalog
    outdir: Path                           # an existing directory the result catalog's files go into
    workdir: Path                          # a private directory on this machine for the engine's own files
    log: Path                              # what the engine did; kept by the caller when the run fails
    package_url: str | None = None         # where the package is published, when it is
    options: EngineOptions = EngineOptions()


class Engine(Protocol):
    """A CWL runner, local or remote."""

    name: str

    def check(self, job: EngineJob) -> None:
        """Refuse, before anything is staged or sent, a job this engine cannot run (one line naming why)."""
        ...

    def run(self, job: EngineJob) -> None:
        """Run `job` and put its result catalog (catalog.json and its files) into `job.outdir`; raise
        EngineFailed naming the log or the remote job when it fails."""
        ...


def place(result: Path, outdir: Path) -> None:
    """Move the files of the catalog directory `result` into `outdir` (on the same file system)."""
    for child in result.iterdir():
        child.rename(outdir / child.name)
