"""`mlmkit publish`: upsert a local catalog into a STAC API."""

from __future__ import annotations

from pathlib import Path

import click

from mlmkit import api
from mlmkit.cli.options import progress_options, schema_dir_option
from mlmkit.progress import Progress
from mlmkit.catalog.publish import TOKEN_ENV, parse_header


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("catalog", type=click.Path(exists=True, dir_okay=True))
@click.option("--api", "api_url", required=True, help="Root URL of the STAC API (Transactions extension).")
@click.option("--collection", default=None,
              help="Publish every item into this collection (created from the items' extent if the API lacks it).")
@click.option("--base-href", default=None, help="URL where the catalog directory's files are served; "
                                                "local asset hrefs are rewritten under it.")
@click.option("--token", default=None, envvar=TOKEN_ENV, show_envvar=True,
              help="Bearer token sent as 'Authorization: Bearer TOKEN'.")
@click.option("--header", "header_values", multiple=True, metavar="'NAME: VALUE'",
              help="Extra request header, repeatable (e.g. an API key).")
@schema_dir_option
@progress_options
def publish(catalog: str, api_url: str, collection: str | None, base_href: str | None, token: str | None,
            header_values: tuple[str, ...], schema_dir: Path | None, progress: Progress) -> None:
    """Validate CATALOG (a catalog directory, catalog.json or Item) and upsert it into a STAC API.

    Collections are created or updated first, then items; re-publishing updates in place. Nothing is
    uploaded when any document fails validation.

    \b
    Example:
      mlmkit publish model/ --api http://localhost:8080 \\
          --base-href https://models.example.org/resnet/ --token "$MLMKIT_API_TOKEN"
    """
    summary = api.publish(catalog, api=api_url, collection=collection, base_href=base_href, token=token,
                          headers=dict(parse_header(value) for value in header_values), schema_dir=schema_dir,
                          progress=progress)
    for line in summary.lines():
        click.echo(line)
