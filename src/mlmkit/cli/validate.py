"""`mlmkit validate`: schema and MLM consistency checks over STAC documents."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mlmkit import api
from mlmkit.cli.options import progress_options, schema_dir_option
from mlmkit.progress import Progress

EXIT_INVALID = 1


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@click.command()
@click.argument("sources", nargs=-1, required=True, metavar="PATH_OR_URL...")
@schema_dir_option
@click.option("--no-semantic", is_flag=True, help="Check the schemas only, not files, checksums and the model.")
@progress_options
def validate(sources: tuple[str, ...], schema_dir: Path | None, no_semantic: bool, progress: Progress) -> None:
    """Validate STAC Items, Collections and Catalogs (children followed) against every declared schema.

    Beyond the schemas: local asset files exist and match file:size and file:checksum, the ONNX
    model opens and its inputs/outputs agree with mlm:input/mlm:output, band and class counts
    agree with the tensor shapes. Each problem is one line: DOCUMENT: JSON-PATH: MESSAGE; then a
    summary on stderr (documents checked, how many invalid) unless --quiet. Model shapes `mlmkit predict`
    cannot run are warnings (DOCUMENT: JSON-PATH: warning: MESSAGE); they do not make a document invalid.
    The schemas ship with mlmkit: validation needs no network.
    Exit status: 0 valid, 1 invalid, 2 unusable arguments (a missing path, a schema that can be had nowhere).

    \b
    Example:
      mlmkit validate model/catalog.json
    """
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
    sys.exit(EXIT_INVALID if problems else 0)
