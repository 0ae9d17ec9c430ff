"""Run a model through the CWL package its MLM Item names, on any engine: no code of the model's author.

`mlmkit search` finds a model, `run_model` reads its `mlm:inference-runtime` (or `mlm:training-runtime`) asset,
writes the job order (`model` = the MLM catalog directory, the package's Directory input = the `--input`
catalogs, one scattered job each), runs the engine and puts the result catalog at OUTDIR/<output name>, the
way cwltool lays out its outputs. Everything the engine writes lives in a hidden scratch directory inside
OUTDIR (on a cluster, a file system every node shares), removed at the end; a failed run keeps only the log.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlmkit.stac.atomic import atomic_output_dir, check_output_dir, claimed_tempdir, remove_stale
from mlmkit.packages.engines import EngineFailed, EngineJob, get_engine
from mlmkit.errors import InvalidInput
from mlmkit.mlm.spec import ModelSpec, read_model
from mlmkit.packages.cwl import INFERENCE, TRAINING, Package, fetch_package
from mlmkit.stac.safepath import is_within
from mlmkit.stac.read import document_href, is_url, iter_items, node_files, resolve_href, walk
from mlmkit.packages.stage import stage_in

# What a model's catalog must carry into the package: the model and its external weights, not its checkpoint.
MODEL_ROLES = ("mlm:model", "mlm:weights")
# The scratch directories of runs into OUTDIR are `OUTDIR/.mlmkit-run-scratch.<random>.partial`, owner-marked
# as mlmkit.stac.atomic marks its work directories, so that the next run removes what a killed one left.
SCRATCH_NAME = "mlmkit-run-scratch"


@dataclass(frozen=True)
class RunOptions:
    engine: str = "cwltool"
    batch_system: str | None = None
    container: bool = True
    train: bool = False
    params: tuple[tuple[str, str], ...] = ()
    engine_args: tuple[str, ...] = ()
    log: Path | None = None
    overwrite: bool = False


def _directory(path: Path) -> dict:
    return {"class": "Directory", "path": str(path)}


def _self_contained(directory: Path) -> bool:
    """Whether every document and local asset of the catalog in `directory` lies inside it (what a container sees)."""
    return all(is_within(path, directory) for path in node_files(walk(directory)))


def _files_read(sources: Sequence[str]) -> list[str]:
    """The local files of the model and input catalogs (documents and assets): a result must not replace them."""
    return node_files(node for source in sources if not is_url(source) for node in walk(source))


def _scratch(outdir: Path) -> Path:
    """A new owner-marked scratch directory in `outdir`, after removing those of killed runs."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        remove_stale(outdir / SCRATCH_NAME)
        # `.partial`: a temporary directory to mlmkit.catalog.provenance, so results name inputs where they stay
        return claimed_tempdir(outdir / SCRATCH_NAME)
    except OSError as exc:
        raise InvalidInput(f"cannot write into {outdir}: {exc.strerror}; expected a writable directory") from exc


def _catalog_dir(source: str) -> Path | None:
    """The directory a local input already is, when it is a self-contained catalog directory."""
    if is_url(source):
        return None
    path = Path(source)
    directory = path if path.is_dir() else path.parent if path.name == "catalog.json" else None
    if directory is None or not (directory / "catalog.json").is_file() or not _self_contained(directory):
        return None
    return directory.absolute()


def _stage(inputs: Sequence[str], root: Path) -> list[Path]:
    """One catalog directory per input (an Item or catalog, path or URL), Items and assets copied into it with a
    canonical link to where each came from (what results name as their source)."""
    return [stage_in([source], root / f"input-{n}") for n, source in enumerate(inputs)]


def _input_dirs(inputs: Sequence[str], scratch: Path) -> list[Path]:
    """The --input catalogs as Directories: self-contained local catalog directories as they are, others staged."""
    given = [_catalog_dir(source) for source in inputs]
    staged = iter(_stage([s for s, d in zip(inputs, given) if d is None], scratch / "inputs"))
    return [directory if directory is not None else next(staged) for directory in given]


def model_directory(source: str, spec: ModelSpec, scratch: Path) -> Path:
    """The directory holding the MLM Item's catalog; a copy when the Item is remote or not in a catalog of its own."""
    root = spec.item.get_single_link("root")
    if spec.self_href and not is_url(spec.self_href) and root is not None:
        catalog = Path(resolve_href(root.href, spec.self_href))
        directory = catalog.parent
        if catalog.name == "catalog.json" and catalog.is_file() and _self_contained(directory):
            try:
                if read_model(directory).item.id == spec.item.id:
                    return directory.absolute()
            except InvalidInput:
                pass  # the root catalog holds other MLM Items too: copy this one
    keys = [key for key, asset in spec.item.assets.items() if set(asset.roles or ()) & set(MODEL_ROLES)]
    return stage_in([spec.self_href or source], scratch / "model", keys)


def _job_order(package: Package, model_dir: Path | None, input_dirs: list[Path],
               params: Sequence[tuple[str, str]]) -> dict:
    data = package.data_input()
    order: dict = {}
    if model_dir is not None:
        order["model"] = _directory(model_dir)
    if data.accepts("Directory[]"):
        order[data.name] = [_directory(d) for d in input_dirs]
    elif len(input_dirs) == 1:
        order[data.name] = _directory(input_dirs[0])
    else:
        raise InvalidInput(f"{package.process} takes one catalog as {data.name!r}; got {len(input_dirs)} --input")
    for name, text in params:
        if name in order:
            raise InvalidInput(f"input {name!r} is set by --model/--input; expected --param for the other inputs")
        if name not in package.inputs:
            raise InvalidInput(f"{package.process} has no input {name!r}; expected one of {', '.join(package.inputs)}")
        order[name] = package.inputs[name].value(text)
    return order


def _lineage_inputs(package: Package, spec: ModelSpec, model_dir: Path | None, inputs: Sequence[str],
                    input_dirs: list[Path], scratch: Path) -> dict:
    """`file:` URIs of the local model and inputs for the package's optional href inputs: an engine stages them
    (Toil into its cache, containers under /var/lib/cwl), so the tools cannot tell where they came from."""
    order: dict = {}
    if "model_href" in package.inputs and model_dir is not None:
        if not is_within(model_dir, scratch):  # the user's own catalog directory: the Item lies at its place in it
            order["model_href"] = (model_dir / "catalog.json").as_uri()
        elif spec.self_href and not is_url(spec.self_href) and Path(spec.self_href).stem == spec.item.id:
            order["model_href"] = Path(spec.self_href).absolute().as_uri()
    local = [source for source in inputs if not is_url(source)]
    if "source_hrefs" in package.inputs and local:
        order["source_hrefs"] = [Path(item.get_self_href()).absolute().as_uri()
                                 for source in local for item in iter_items(source)]
    if "training_data_href" in package.inputs and len(input_dirs) == 1 and not is_within(input_dirs[0], scratch):
        order["training_data_href"] = Path(document_href(input_dirs[0])).absolute().as_uri()
    return order


def _result_dir(outputs: dict, name: str, job: EngineJob) -> Path:
    value = outputs.get(name)
    path = None
    if isinstance(value, dict) and (value.get("path") or str(value.get("location", "")).startswith("file://")):
        path = Path(value.get("path") or url2pathname(urlparse(value["location"]).path))
    if path is None or not (path / "catalog.json").is_file():
        raise EngineFailed(f"the run's output {name!r} holds no catalog.json; the full log is {job.log}")
    return path


def run_model(model: str, inputs: Sequence[str], outdir: str | Path = ".", options: RunOptions | None = None) -> Path:
    """Run the MLM Item's runtime package over `inputs`; returns OUTDIR/<output name>/catalog.json."""
    options = options or RunOptions()
    if not inputs:
        raise InvalidInput("no inputs; expected one or more STAC Items or catalogs (paths or URLs)")
    engine = get_engine(options.engine)
    spec = read_model(model)
    outdir = Path(outdir).absolute()
    scratch = _scratch(outdir)
    try:
        package = fetch_package(spec, TRAINING if options.train else INFERENCE, scratch / "runtime")
        result_name = package.result_output().name
        files_read = _files_read([model, *inputs])
        check_output_dir(outdir / result_name, options.overwrite, files_read)
        job = EngineJob(process=package.process, job_order=scratch / "job.json", scratch=scratch,
                        log=options.log or outdir / f"{result_name}.log", container=options.container,
                        batch_system=options.batch_system, extra_args=options.engine_args)
        engine.command(job)  # an unusable engine or option fails here, before anything is copied
        model_dir = model_directory(model, spec, scratch) if "model" in package.inputs else None
        input_dirs = _input_dirs(inputs, scratch)
        order = _job_order(package, model_dir, input_dirs, options.params)
        for name, value in _lineage_inputs(package, spec, model_dir, inputs, input_dirs, scratch).items():
            order.setdefault(name, value)  # what the user gave with --param wins
        job.job_order.write_text(json.dumps(order, indent=2), encoding="utf-8")
        result = _result_dir(engine.run(job), result_name, job)
        with atomic_output_dir(outdir / result_name, options.overwrite, files_read) as work:
            for child in result.iterdir():
                child.rename(work / child.name)
        if options.log is None:
            job.log.unlink(missing_ok=True)  # kept only when asked for or when the run failed
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return outdir / result_name / "catalog.json"
