"""`mlmkit run`: run a model through the CWL application package its MLM Item names."""

from __future__ import annotations

from pathlib import Path

import click

from mlmkit import api
from mlmkit.cli.options import overwrite_option
from mlmkit.packages.engines import BATCH_SYSTEMS, ENGINES
from mlmkit.packages.engines.base import REMOTE_TIMEOUT_S


def _param(ctx: click.Context, option: click.Parameter, values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", ctx, option)
        pairs.append((name, text))
    return tuple(pairs)


@click.command()
@click.option("--model", "-m", required=True, metavar="MLM",
              help="MLM Item: path, URL, or a directory holding its catalog.json.")
@click.option("--input", "-i", "inputs", required=True, multiple=True, metavar="STAC",
              help="Imagery (training data with --train): a STAC Item or catalog, path or URL; repeat it. "
                   "Each input is one scattered job.")
@click.option("--output", "--outdir", "-o", "outdir", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Where the result catalog goes, as OUTPUT/<output name> (results/ for inference).")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="cwltool", show_default=True,
              help="CWL engine: cwltool or toil on this machine, ogcapi on an OGC API - Processes server.")
@click.option("--batch-system", type=click.Choice(BATCH_SYSTEMS),
              help="Toil batch system the scattered jobs go to (default single_machine; needs --engine toil).")
@click.option("--no-container", is_flag=True,
              help="Run the tools with the mlmkit on PATH instead of the package's Docker image.")
@click.option("--train", is_flag=True, help="Run the mlm:training-runtime package instead of the inference one.")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", callback=_param,
              help="Another input of the package, e.g. -p overlap=32 -p tile_size=256; repeat it.")
@click.option("--engine-arg", "engine_args", multiple=True, metavar="ARG",
              help="An argument passed to the engine as it is, e.g. --engine-arg=--maxCores=8; repeat it.")
@click.option("--engine-url", metavar="URL",
              help="With --engine ogcapi: the server's landing page. The package is deployed there (Part 2, with "
                   "MLMKIT_ENGINE_TOKEN as bearer token) unless --engine-process names a deployed process.")
@click.option("--engine-process", metavar="ID", help="With --engine ogcapi: run this process deployed on the server.")
@click.option("--engine-timeout", type=click.FloatRange(min=0, min_open=True), default=REMOTE_TIMEOUT_S,
              show_default=True, metavar="SECONDS",
              help="With --engine ogcapi: how long to wait for the remote job before dismissing it.")
@click.option("--log", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the engine's log here (default: OUTPUT/<output name>.log, kept only if the run fails).")
@overwrite_option
def run(model: str, inputs: tuple[str, ...], outdir: Path, engine: str, batch_system: str | None, no_container: bool,
        train: bool, params: tuple[tuple[str, str], ...], engine_args: tuple[str, ...], engine_url: str | None,
        engine_process: str | None, engine_timeout: float, log: Path | None, overwrite: bool) -> None:
    """Run a model through the CWL package its MLM Item names (mlm:inference-runtime).

    The package runs as its author shipped it, in its container image, on cwltool or on Toil (this machine,
    Slurm, Kubernetes, ...), or on an OGC API - Processes server (--engine ogcapi; model and inputs by URL).
    Inputs given by URL are staged into local catalogs first on this machine; a server fetches them itself, and
    its result catalog is fetched into OUTPUT. Prints the path of the result catalog.

    \b
    Example:
      mlmkit run --model model/catalog.json --input scenes/a --input scenes/b --output runs/ -p overlap=32
      mlmkit run --model https://example.org/models/unet/item.json --input https://example.org/s2/item.json \\
          --engine toil --batch-system slurm --output /shared/runs
      MLMKIT_ENGINE_TOKEN=secret mlmkit run --engine ogcapi --engine-url https://ades.example.org/ogc-api \\
          --model https://example.org/models/unet/item.json --input https://example.org/s2/item.json
    """
    catalog = api.run(model, inputs, output=outdir, engine=engine, batch_system=batch_system, container=not no_container,
                      train=train, params=params, engine_args=engine_args, engine_url=engine_url,
                      engine_process=engine_process, engine_timeout=engine_timeout, log=log, overwrite=overwrite)
    # SIGTERM raises (cli/__init__): the engine is stopped
    click.echo(str(catalog))
