"""Run a model through the CWL package its MLM Item names, on any engine: no code of the model's author.

`mlmkit search` finds a model, `run_model` reads its `mlm:inference-runtime` (or `mlm:training-runtime`) asset,
gives the engine the job (`model` = the MLM Item, the package's Directory input = the `--input` catalogs, one
scattered job each, as paths or URLs) and the engine puts the result catalog at OUTDIR/<output name>, the way
cwltool lays out its outputs. Everything written on this machine lives in a hidden scratch directory inside
OUTDIR (on a cluster, a file system every node shares), removed at the end; a failed run keeps only the log.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mlmkit.stac.atomic import atomic_output_dir, check_output_dir, claimed_tempdir, remove_stale
from mlmkit.packages.engines import CatalogRef, EngineJob, EngineOptions, get_engine
from mlmkit.packages.engines.base import REMOTE_TIMEOUT_S
from mlmkit.errors import InvalidArgument, InvalidInput
from mlmkit.matching import decide, pair_up, read_imagery
from mlmkit.mlm.spec import ModelSpec, read_model
from mlmkit.packages.cwl import INFERENCE, TRAINING, Package, fetch_package
from mlmkit.stac.read import document_href, is_url, iter_items, node_files, walk

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
    engine_url: str | None = None          # remote engines: the server
    engine_process: str | None = None      # remote engines: a process deployed there, instead of deploying one
    engine_timeout: float = REMOTE_TIMEOUT_S


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


def _job_inputs(package: Package, model: str | None, inputs: Sequence[str],
                params: Sequence[tuple[str, str]]) -> dict:
    """The package's inputs: the MLM Item as `model`, the --input catalogs as its Directory input, the params."""
    data = package.data_input()
    order: dict = {}
    if model is not None:
        order["model"] = CatalogRef(model, model=True)
    catalogs = [CatalogRef(source) for source in inputs]
    if data.accepts("Directory[]"):
        order[data.name] = catalogs
    elif len(catalogs) == 1:
        order[data.name] = catalogs[0]
    else:
        raise InvalidArgument(f"{package.process} takes one catalog as {data.name!r}; got {len(catalogs)} inputs")
    for name, text in params:
        if name in order:
            raise InvalidArgument(f"input {name!r} is set by the model and inputs arguments; "
                                  "expected params for the other inputs")
        if name not in package.inputs:
            raise InvalidArgument(f"{package.process} has no input {name!r}; "
                                  f"expected one of {', '.join(package.inputs)}")
        order[name] = package.inputs[name].value(text)
    return order


def _package_url(spec: ModelSpec, role: str) -> str | None:
    """Where the runtime package is published, when its href is a URL."""
    asset = spec.runtime(role)
    return asset.href if asset is not None and is_url(asset.href) else None


def _lineage_inputs(package: Package, model: str | None, inputs: Sequence[str]) -> dict:
    """`file:` URIs of the local model and inputs for the package's optional href inputs: an engine stages them
    (Toil into its cache, containers under /var/lib/cwl), so the tools cannot tell where they came from."""
    order: dict = {}
    if "model_href" in package.inputs and model is not None and not is_url(model):
        order["model_href"] = Path(document_href(model)).absolute().as_uri()
    local = [source for source in inputs if not is_url(source)]
    if "source_hrefs" in package.inputs and local:
        order["source_hrefs"] = [Path(item.get_self_href()).absolute().as_uri()
                                 for source in local for item in iter_items(source)]
    if "training_data_href" in package.inputs and len(inputs) == 1 and local:
        order["training_data_href"] = Path(document_href(inputs[0])).absolute().as_uri()
    return order


def run_model(model: str, inputs: Sequence[str], outdir: str | Path = ".", options: RunOptions | None = None) -> Path:
    """Run the MLM Item's runtime package over `inputs`; returns OUTDIR/<output name>/catalog.json."""
    options = options or RunOptions()
    if not inputs:
        raise InvalidArgument("no inputs; expected one or more STAC Items or catalogs (paths or URLs)")
    engine = get_engine(options.engine)
    spec = read_model(model)
    if not options.train:  # refused pairs are refused here, as predict inside the package would refuse them
        decide(pair for source in inputs for pair in pair_up(spec, read_imagery(source)))
    outdir = Path(outdir).absolute()
    scratch = _scratch(outdir)
    try:
        role = TRAINING if options.train else INFERENCE
        package = fetch_package(spec, role, scratch / "runtime")
        result_name = package.result_output().name
        files_read = _files_read([model, *inputs])
        check_output_dir(outdir / result_name, options.overwrite, files_read)
        engine_options = EngineOptions(container=options.container, batch_system=options.batch_system,
                                       extra_args=options.engine_args, url=options.engine_url,
                                       process=options.engine_process, timeout_s=options.engine_timeout)
        model_input = model if "model" in package.inputs else None
        job_inputs = _job_inputs(package, model_input, inputs, options.params)
        for name, value in _lineage_inputs(package, model_input, inputs).items():
            job_inputs.setdefault(name, value)  # what the user gave with --param wins
        job = EngineJob(package=package, inputs=job_inputs, result=result_name, outdir=outdir / result_name,
                        workdir=scratch, log=options.log or outdir / f"{result_name}.log",
                        package_url=_package_url(spec, role), options=engine_options)
        engine.check(job)  # an unusable engine or option fails here, before anything is copied or sent
        with atomic_output_dir(job.outdir, options.overwrite, files_read) as work:
            engine.run(replace(job, outdir=work))
        if options.log is None:
            job.log.unlink(missing_ok=True)  # kept only when asked for or when the run failed
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return outdir / result_name / "catalog.json"
