"""CWL engines behind one interface: what `mlmkit run` hands a CWL application package to.

Every engine takes the same `EngineJob` (a process, a job order, a scratch directory, a log file), builds its
own command line, runs it and returns the CWL output object. Adding an engine (Calrissian, StreamFlow, ...) is
one module with a `command` method, registered in `ENGINES`.
"""

from __future__ import annotations

from mlmkit.packages.engines.base import BATCH_SYSTEMS, Engine, EngineFailed, EngineJob
from mlmkit.packages.engines.cwltool import Cwltool
from mlmkit.packages.engines.toil import Toil
from mlmkit.errors import InvalidInput

ENGINES: dict[str, Engine] = {"cwltool": Cwltool(), "toil": Toil()}

__all__ = ["BATCH_SYSTEMS", "ENGINES", "Engine", "EngineFailed", "EngineJob", "get_engine"]


def get_engine(name: str) -> Engine:
    """The engine called `name`."""
    if name not in ENGINES:
        raise InvalidInput(f"engine {name!r} is unknown; expected one of {', '.join(ENGINES)}")
    return ENGINES[name]
