"""`mlmkit serve`: MLM models and CWL packages as OGC API - Processes."""

from __future__ import annotations

from pathlib import Path

import click

from mlmkit.packages.engines import BATCH_SYSTEMS, LOCAL_ENGINES


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option("--models", metavar="CATALOG|STAC-API-URL",
              help="Catalog (path or URL) or STAC API whose MLM Items with an inference runtime become processes.")
@click.option("--state", type=click.Path(file_okay=False, path_type=Path), default=Path("mlmkit-serve"),
              show_default=True, help="Where deployed processes, jobs, logs and results are kept.")
@click.option("--engine", type=click.Choice(list(LOCAL_ENGINES)), default="cwltool", show_default=True, help="CWL engine.")
@click.option("--batch-system", type=click.Choice(BATCH_SYSTEMS), help="Toil batch system (with --engine toil).")
@click.option("--no-container", is_flag=True, help="Run the tools with the mlmkit on PATH, not in their images.")
@click.option("--jobs", "max_jobs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Jobs run at once; the others wait in order.")
def serve(host: str, port: int, models: str | None, state: Path, engine: str, batch_system: str | None,
          no_container: bool, max_jobs: int) -> None:
    """Serve MLM models and deployed CWL packages over OGC API - Processes (wraptile).

    Part 1 (processes, execution, jobs, results, dismiss) is always on; Part 2 (deploy, replace, undeploy of
    CWL packages) only when MLMKIT_DEPLOY_TOKEN is set, for requests with 'Authorization: Bearer <token>'.
    The describe form (a model file in, a valid MLM Item catalog out) is at /describe.

    \b
    Example:
      MLMKIT_DEPLOY_TOKEN=secret mlmkit serve --port 8080 --models models/catalog.json --state serve-state/
    """
    try:
        from mlmkit.packages.serve.service import serve as run_server
        from mlmkit.web.describe_form import mount_describe_form
    except ImportError as exc:
        raise click.ClickException(f"mlmkit serve needs wraptile and the describe form's packages ({exc.name} is "
                                   "missing); expected `pip install 'mlmkit[serve]'`") from exc
    run_server(host, port, state, models, engine, not no_container, batch_system, max_jobs,
               pages=[mount_describe_form])
