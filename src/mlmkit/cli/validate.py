"""`mlmkit validate`: schema and MLM consistency checks over STAC documents."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mlmkit import api
from mlmkit.cli.options import progress_options, schema_dir_option
from mlmkit.errors import MlmkitError
from mlmkit.progress import Progress

EXIT_INVALID = 1


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@click.command()
@click.argument("sources", nargs=-1, required=True, metavar="PATH_OR_URL...")
@schema_dir_option
@click.option("--no-semantic", is_flag=True, help="Check the schemas only, not files, checksums and the model.")
@click.option("--against", metavar="STAC", help="Also run the model (one MLM Item or its catalog) through predict "
              "on a few tiles of this imagery (Item or catalog) and report what came out.")
@click.option("--tiles", type=click.IntRange(min=1), default=4, show_default=True,
              help="With --against: tiles run per Item, spread over the scene.")
@progress_options
def validate(sources: tuple[str, ...], schema_dir: Path | None, no_semantic: bool, against: str | None, tiles: int,
             progress: Progress) -> None:
    """Validate STAC Items, Collections and Catalogs (children followed) against every declared schema.

    Beyond the schemas: local asset files exist and match file:size and file:checksum, the ONNX
    model opens and its inputs/outputs agree with mlm:input/mlm:output, band and class counts
    agree with the tensor shapes. Each problem is one line: DOCUMENT: JSON-PATH: MESSAGE; then a
    summary on stderr (documents checked, how many invalid) unless --quiet. Model shapes `mlmkit predict`
    cannot run are warnings (DOCUMENT: JSON-PATH: warning: MESSAGE); they do not make a document invalid.
    Metadata that is probably wrong (a value_scaling that looks inverted, a YOLO layout that fits two readings,
    dim names that contradict the output, zero parameters) is a warning naming the field and the likely fix.
    With --against, the model is then run by the predict pipeline on a few tiles of real imagery: one line per
    output (class histogram, score range, boxes per tile, NaNs; DOCUMENT: smoke: ...), and a warning where it
    looks degenerate (one class everywhere, every score >= 0.5 on every tile, NaN, no box on any tile).
    The schemas ship with mlmkit: validation needs no network.
    Exit status: 0 valid, 1 invalid (or the model failed on the imagery), 2 unusable arguments (a missing path,
    a schema that can be had nowhere).

    \b
    Example:
      mlmkit validate model/catalog.json
      mlmkit validate model/catalog.json --against scene/item.json
    """
    if against is not None and len(sources) != 1:
        raise click.UsageError(f"--against runs one model; got {len(sources)} sources")
    report = api.validate(sources, schema_dir=schema_dir, semantic=not no_semantic, progress=progress)
    for problem in report.problems:
        click.echo(str(problem))
    problems = [problem for problem in report.problems if not problem.warning]
    where = f" in {len(sources)} sources" if len(sources) > 1 else ""
    if problems:
        invalid = len({problem.document for problem in problems})
        progress.info(f"validate: {invalid} of {_count(report.documents, 'document')}{where} invalid, "
                      f"{_count(len(problems), 'problem')}")
    else:
        progress.info(f"validate: {_count(report.documents, 'document')}{where} valid")
    failed = against is not None and not problems and not _smoke(sources[0], against, tiles, progress)
    sys.exit(EXIT_INVALID if problems or failed else 0)


def _smoke(model: str, imagery: str, tiles: int, progress: Progress) -> bool:
    """Print what the model gave on a few tiles of `imagery`; False when it failed there."""
    from mlmkit.inference import PredictOptions
    from mlmkit.inference.smoke import smoke_run

    try:
        report = smoke_run(model, imagery, tiles, PredictOptions(progress=progress))
    except MlmkitError as exc:
        click.echo(f"{model}: smoke: the model failed on {imagery}: {exc}")
        return False
    for line in report.lines():
        click.echo(f"{model}: smoke: {line}")
    for warning in report.warnings:
        click.echo(f"{model}: smoke: warning: {warning}")
    return True
