"""`mlmkit search`: find models in a STAC API or a local catalog."""

from __future__ import annotations

import json

import click

from mlmkit import api
from mlmkit.catalog.publish import TOKEN_ENV, parse_header
from mlmkit.catalog.search import SERVER_MODES, ModelMatch

COLUMNS = ("id", "collection", "name", "tasks", "framework", "bands", "href")


def _bbox(ctx: click.Context, option: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    """`--bbox WEST,SOUTH,EAST,NORTH` as numbers; their order is the verb's to check."""
    if value is None:
        return None
    try:
        return tuple(float(part) for part in value.split(","))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not four numbers; expected WEST,SOUTH,EAST,NORTH", ctx, option) from exc


def _row(match: ModelMatch) -> tuple[str, ...]:
    spec = match.spec
    bands = ",".join(dict.fromkeys(band.name for model_input in spec.inputs for band in model_input.bands))
    return (str(match.item.get("id")), match.collection_id or "", spec.name, ",".join(spec.tasks),
            spec.framework or "", bands, match.href or "")


def _table(matches: list[ModelMatch]) -> str:
    rows = [COLUMNS] + [_row(match) for match in matches]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("catalog", required=False, type=click.Path(exists=True))
@click.option("--api", "api_url", default=None, help="Root URL of a STAC API to search (instead of CATALOG).")
@click.option("--task", default=None, help="MLM task the model performs, e.g. classification.")
@click.option("--bands", default=None, help="Comma-separated band names or common names the model must use.")
@click.option("--framework", default=None, help="mlm:framework, case-insensitive, e.g. pytorch.")
@click.option("--bbox", default=None, callback=_bbox,
              help="WEST,SOUTH,EAST,NORTH the model's extent must intersect.")
@click.option("--datetime", "when", default=None, help="RFC 3339 instant or START/END interval ('..' open).")
@click.option("--text", default=None, help="Words that must all appear in id, name, title, description, keywords.")
@click.option("--collection", "collections", multiple=True, help="Only these collections (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Most models listed.")
@click.option("--json", "as_json", is_flag=True, help="Print the matching Items as a GeoJSON FeatureCollection.")
@click.option("--token", default=None, envvar=TOKEN_ENV, show_envvar=True, help="Bearer token for the API.")
@click.option("--header", "header_values", multiple=True, metavar="'NAME: VALUE'", help="Extra request header.")
@click.option("--server-filter", type=click.Choice(SERVER_MODES), default="auto", show_default=True,
              help="What the API filters: CQL2 'filter', 'query' extension, or 'client' only; auto picks.")
def search(catalog: str | None, api_url: str | None, task: str | None, bands: str | None, framework: str | None,
           bbox: tuple[float, ...] | None, when: str | None, text: str | None, collections: tuple[str, ...], limit: int,
           as_json: bool, token: str | None, header_values: tuple[str, ...], server_filter: str) -> None:
    """Find MLM models by task, bands, framework, area, time or text in a local CATALOG or a STAC API.

    \b
    Examples:
      mlmkit search models/ --task classification --bands red,nir
      mlmkit search --api http://localhost:8080 --task semantic-segmentation --bbox 5,45,10,48 --json
    """
    if (catalog is None) == (api_url is None):
        raise click.UsageError("give either a local CATALOG or --api URL; expected exactly one place to search")
    matches = api.search(catalog, api=api_url, task=task, bands=[b.strip() for b in (bands or "").split(",") if b.strip()],
                         framework=framework, bbox=bbox, datetime=when, text=text, collections=collections, limit=limit,
                         token=token, headers=dict(parse_header(value) for value in header_values),
                         server_filter=server_filter)
    if as_json:
        click.echo(json.dumps({"type": "FeatureCollection", "features": [m.item for m in matches]}, indent=2))
    elif matches:
        click.echo(_table(matches))
    else:
        click.echo("no matching models", err=True)
