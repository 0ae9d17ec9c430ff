"""One job, run in a process of its own: inputs staged, the package run by an mlmkit engine, outputs kept.

`python -m mlmkit.packages.serve.worker STATE JOB ENGINE CONTAINER [BATCH_SYSTEM]`. SIGTERM (a dismissal) stops
the engine and its containers. Directory inputs arrive as STAC URLs and are staged as an ADES stages them; the
job's scratch directory is removed at the end, its log and outputs stay.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import traceback
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlmkit.errors import InvalidArgument, MlmkitError, Terminated
from mlmkit.mlm.spec import read_model
from mlmkit.packages.cwl import Package, read_package
from mlmkit.packages.engines import LOCAL_ENGINES, CommandJob
from mlmkit.packages.engines.staging import model_directory
from mlmkit.packages.serve.jobs import DISMISSED, FAILED, RUNNING, SUCCESSFUL, Job, JobStore, now
from mlmkit.packages.stage import stage_in


def _href(value: object, name: str) -> str:
    href = value.get("href") or value.get("value") if isinstance(value, dict) else value
    if not isinstance(href, str) or not href:
        raise InvalidArgument(f"input {name!r} is {str(value)[:80]}; expected the URL of a STAC Item or Catalog")
    return href


def _directory(value: object, name: str, folder: Path) -> dict:
    return {"class": "Directory", "path": str(stage_in([_href(value, name)], folder))}


def job_order(package: Package, job: Job, inputs: dict, work: Path) -> dict:
    """The CWL job order: Directory inputs staged from their URLs, the model process's MLM Item as `model`."""
    order: dict = {}
    for name, value in inputs.items():
        parameter = package.inputs[name]
        if parameter.accepts("Directory[]") and isinstance(value, list):
            order[name] = [_directory(v, name, work / "inputs" / f"{name}-{n}") for n, v in enumerate(value)]
        elif parameter.accepts("Directory"):
            order[name] = _directory(value, name, work / "inputs" / name)
        else:
            order[name] = value
    if job.model:
        order["model"] = {"class": "Directory", "path": str(model_directory(job.model, read_model(job.model), work))}
    return order


def _keep_outputs(outputs: dict, folder: Path) -> dict:
    """Move File/Directory outputs into the job's outputs/ folder; the rest are values."""
    kept = {}
    for name, value in outputs.items():
        if isinstance(value, dict) and value.get("class") in ("File", "Directory"):
            path = Path(value.get("path") or url2pathname(urlparse(value["location"]).path))
            target = folder / name
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), target / path.name)
            kept[name] = {"path": f"{name}/{path.name}", "class": value["class"]}
        else:
            kept[name] = {"value": value}
    return kept


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


def run(state: Path, job_id: str, engine: str, container: bool, batch_system: str | None) -> None:
    store = JobStore(state)
    job = store.get(job_id)
    folder = store.folder(job_id)
    job.status, job.started = RUNNING, now()
    store.save(job)
    scratch = folder / "scratch"
    try:
        path, _, fragment = job.package.partition("#")
        package = read_package(Path(path), fragment or None)
        inputs = json.loads((folder / "request.json").read_text(encoding="utf-8"))
        scratch.mkdir(exist_ok=True)
        order = job_order(package, job, inputs, scratch)
        (scratch / "job.json").write_text(json.dumps(order, indent=2), encoding="utf-8")
        engine_job = CommandJob(process=package.process, job_order=scratch / "job.json", scratch=scratch,
                               log=folder / "job.log", container=container, batch_system=batch_system)
        outputs = LOCAL_ENGINES[engine].outputs(engine_job)
        job.outputs = _keep_outputs(outputs, folder / "outputs")
        job.status, job.message = SUCCESSFUL, "done"
    except Terminated:
        job.status, job.message = DISMISSED, "dismissed by a client; the engine was stopped"
    except MlmkitError as exc:
        job.status, job.message = FAILED, str(exc)
    except Exception as exc:  # noqa: BLE001 - a job fails with its cause recorded, never silently
        job.status, job.message = FAILED, f"{type(exc).__name__}: {exc}"
        with open(folder / "job.log", "a", encoding="utf-8") as log:
            log.write(traceback.format_exc())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        job.finished = now()
        store.save(job)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    state, job_id, engine, container = sys.argv[1:5]
    run(Path(state), job_id, engine, container == "1", sys.argv[5] if len(sys.argv) > 5 else None)


if __name__ == "__main__":
    main()
