"""CWL engines behind one interface: what `mlmkit run` hands a CWL application package to.

An engine is given what the job is (`EngineJob`: the package, its inputs as CWL values with the STAC catalogs
as paths or URLs, the output holding the result catalog, the directory that catalog must end up in, options)
and places the result catalog there (`Engine.run`). How it runs is its own detail:

- `cwltool` and `toil` run a command line on this machine (`local.CwlRunner`): they stage catalog inputs into
  their work directory (`staging`), run, and move the result catalog out; Toil sends the steps to a batch
  system (Slurm, Kubernetes, ...).
- `ogcapi` sends the job to an OGC API - Processes server (an ADES, `mlmkit serve`): deploys the package or
  uses a deployed process, executes it asynchronously, polls the job and fetches the result catalog by URL;
  inputs must be URLs.

Adding an engine (Calrissian, StreamFlow, Argo, ...) is one module with `check` and `run`, registered in
`ENGINES`; a command-line engine is a `CwlRunner` with a `command` method.
"""

from __future__ import annotations

from mlmkit.packages.engines.base import (BATCH_SYSTEMS, CatalogRef, Engine, EngineFailed, EngineJob,
                                          EngineOptions)
from mlmkit.packages.engines.cwltool import Cwltool
from mlmkit.packages.engines.local import CommandJob, CwlRunner
from mlmkit.packages.engines.ogcapi import OgcApi
from mlmkit.packages.engines.toil import Toil
from mlmkit.errors import InvalidArgument

LOCAL_ENGINES: dict[str, CwlRunner] = {"cwltool": Cwltool(), "toil": Toil()}
ENGINES: dict[str, Engine] = {**LOCAL_ENGINES, "ogcapi": OgcApi()}

__all__ = ["BATCH_SYSTEMS", "ENGINES", "LOCAL_ENGINES", "CatalogRef", "CommandJob", "Engine", "EngineFailed",
           "EngineJob", "EngineOptions", "get_engine"]


def get_engine(name: str) -> Engine:
    """The engine called `name`."""
    if name not in ENGINES:
        raise InvalidArgument(f"engine {name!r} is unknown; expected one of {', '.join(ENGINES)}")
    return ENGINES[name]
