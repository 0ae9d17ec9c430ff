"""`mlmkit merge`: several catalogs (e.g. from scattered predict runs) into one."""

from __future__ import annotations

from pathlib import Path

import click

from mlmkit.cli.options import overwrite_option

from mlmkit.catalog.merge import merge_catalogs


@click.command()
@click.argument("catalogs", nargs=-1, required=True, metavar="CATALOG...")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory; gets catalog.json and one folder per Item with its assets.")
@overwrite_option
def merge(catalogs: tuple[str, ...], output: Path, overwrite: bool) -> None:
    """Merge the Items of several STAC catalogs into one self-contained catalog.

    The last step of the scattered inference CWL: stage-out expects one catalog.json.

    \b
    Example:
      mlmkit merge pred-a/ pred-b/catalog.json --output results/
    """
    click.echo(merge_catalogs(list(catalogs), output, overwrite))
