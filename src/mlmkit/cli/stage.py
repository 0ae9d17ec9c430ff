"""`mlmkit stage-in` / `mlmkit stage-out`: the staging steps of an ADES run, as the CWL tools in cwl/stage/ call them."""

from __future__ import annotations

from pathlib import Path

import click

from mlmkit import api
from mlmkit.cli.options import overwrite_option


@click.command("stage-in")
@click.argument("hrefs", nargs=-1, required=True, metavar="URL...")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to create; gets catalog.json, the documents and their assets.")
@click.option("--asset", "assets", multiple=True, metavar="KEY",
              help="Download only these asset keys (repeatable); the others keep absolute hrefs.")
@overwrite_option
def stage_in(hrefs: tuple[str, ...], output: Path, assets: tuple[str, ...], overwrite: bool) -> None:
    """Copy STAC Items or catalogs (URLs or paths) and their assets into a local catalog directory.

    Each staged document keeps a `canonical` link to its URL, which results derived from it name.

    \b
    Example:
      mlmkit stage-in https://example.org/items/S2A_1.json https://example.org/items/S2B_2.json -o staged/
    """
    click.echo(str(api.stage_in(hrefs, output=output, assets=assets, overwrite=overwrite)))


@click.command("stage-out")
@click.argument("catalog", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--s3-url", required=True, metavar="s3://BUCKET/PREFIX", help="Where the catalog goes.")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", metavar="URL",
              help="S3 endpoint other than AWS (MinIO, a test server); default $AWS_ENDPOINT_URL.")
def stage_out(catalog: Path, s3_url: str, endpoint_url: str | None) -> None:
    """Upload a self-contained STAC catalog directory to S3; print the URL of its catalog.json.

    Credentials and region come from the usual AWS environment variables or config files.

    \b
    Example:
      mlmkit stage-out results/ --s3-url s3://my-bucket/runs/42
    """
    click.echo(api.stage_out(catalog, s3_url=s3_url, endpoint_url=endpoint_url))
