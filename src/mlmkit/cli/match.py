"""`mlmkit match`: which models can run on which imagery, from metadata alone."""

from __future__ import annotations

import json

import click

from mlmkit import api
from mlmkit.catalog.publish import TOKEN_ENV, parse_header
from mlmkit.cli.search import _bbox
from mlmkit.matching import Match

VERDICTS = {True: "runnable", False: "refused"}
_WAYS = (("name", "name"), ("common name", "common name"), ("centre wavelength", "wavelength"), ("asset", "asset key"))


def _summary(pair: Match) -> str:
    """The first reason, or the plan in a few words."""
    if not pair.runnable:
        return pair.problems[0]
    plan = pair.plan
    ways: dict[str, int] = {}
    for entry in plan["bands"]:
        way = next(way for prefix, way in _WAYS if entry["why"].startswith(prefix))
        ways[way] = ways.get(way, 0) + 1
    bands = ", ".join(f"{count} by {way}" for way, count in ways.items())
    grid = plan.get("grid") or {}
    resolution = f"{grid['resolution']:g} m" if grid.get("resolution") else "the files' resolution"
    text = f"bands {bands}; grid {resolution}, {grid.get('resampling', 'bilinear')}"
    if plan.get("dates"):
        text += f"; dates {', '.join(date[:10] for date in plan['dates'])}"
    return text + (f"; {len(pair.warnings)} warning(s)" if pair.warnings else "")


def _table(pairs: list[Match]) -> str:
    rows = [("verdict", "model", "items", "why")] + [
        (VERDICTS[pair.runnable], pair.model, ",".join(item.id for item in pair.items), _summary(pair)) for pair in pairs]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[3]]) for row in rows)


def _collections(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", "-m", "models", multiple=True, metavar="MLM",
              help="MLM Item or catalog of MLM Items (path or URL); repeatable.")
@click.option("--model-api", default=None, metavar="URL", help="STAC API to take the MLM Items from.")
@click.option("--model-collections", multiple=True, help="Collections of --model-api (comma-separated or repeated).")
@click.option("--input", "-i", "inputs", multiple=True, metavar="STAC",
              help="Imagery Item or catalog (path or URL); repeatable.")
@click.option("--api", "api_url", default=None, metavar="URL", help="STAC API to search for imagery.")
@click.option("--collections", multiple=True, help="Imagery collections of --api (comma-separated or repeated).")
@click.option("--bbox", default=None, callback=_bbox, help="WEST,SOUTH,EAST,NORTH that the searched Items must intersect.")
@click.option("--datetime", "when", default=None, help="RFC 3339 instant or START/END interval ('..' open) to search.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Most Items read from each API search.")
@click.option("--time-steps", type=click.IntRange(min=1), help="Dates per stack, for models with a dynamic time dimension.")
@click.option("--json", "as_json", is_flag=True, help='Print one JSON object {"pairs": [...]}.')
@click.option("--token", default=None, envvar=TOKEN_ENV, show_envvar=True, help="Bearer token for the APIs.")
@click.option("--header", "header_values", multiple=True, metavar="'NAME: VALUE'", help="Extra request header.")
def match(models: tuple[str, ...], model_api: str | None, model_collections: tuple[str, ...], inputs: tuple[str, ...],
          api_url: str | None, collections: tuple[str, ...], bbox: tuple[float, ...] | None, when: str | None, limit: int,
          time_steps: int | None, as_json: bool, token: str | None, header_values: tuple[str, ...]) -> None:
    """Which models can run on which imagery: every (model, Item) pair, runnable ones first, with the first
    reason a pair is refused or how it would run. Reads metadata only; exits 0 whatever the verdicts.

    \b
    Examples:
      mlmkit match --model models/ --input scene/catalog.json
      mlmkit match --model model.json --api https://stac.example.org --collections sentinel-2-l1c --limit 50 --json
      mlmkit match --model-api https://models.example.org --input scene.json
    """
    if not models and model_api is None:
        raise click.UsageError("no models; expected --model MLM (repeatable) or --model-api URL")
    if not inputs and api_url is None:
        raise click.UsageError("no imagery; expected --input STAC (repeatable) or --api URL")
    pairs = api.match(models, inputs, model_api=model_api, model_collections=_collections(model_collections),
                      api=api_url, collections=_collections(collections), bbox=bbox, datetime=when, limit=limit,
                      time_steps=time_steps, token=token, headers=dict(parse_header(value) for value in header_values))
    if as_json:
        click.echo(json.dumps({"pairs": [pair.to_json() for pair in pairs]}, indent=2, ensure_ascii=False))
    elif pairs:
        click.echo(_table(pairs))
    else:
        click.echo("no pairs: no models or no imagery Items found", err=True)
