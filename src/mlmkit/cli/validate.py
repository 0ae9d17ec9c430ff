"""`mlmkit validate`: schema and MLM consistency checks over STAC documents."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mlmkit.errors import MlmkitError
from mlmkit.schemas import SCHEMA_DIR_ENV
from mlmkit.validate import validate_source

EXIT_INVALID = 1
EXIT_UNUSABLE = 2


@click.command()
@click.argument("sources", nargs=-1, required=True, metavar="PATH_OR_URL...")
@click.option("--schema-dir", type=click.Path(file_okay=False, path_type=Path), envvar=SCHEMA_DIR_ENV,
              help=f"Offline schema mirror laid out <host>/<path> (default: ${SCHEMA_DIR_ENV}, else download "
                   "and cache in ~/.cache/mlmkit/schemas).")
@click.option("--no-semantic", is_flag=True, help="Check the schemas only, not files, checksums and the model.")
@click.option("-q", "--quiet", is_flag=True, help="Print problems only, no summary.")
def validate(sources: tuple[str, ...], schema_dir: Path | None, no_semantic: bool, quiet: bool) -> None:
    """Validate STAC Items, Collections and Catalogs (children followed) against every declared schema.

    Beyond the schemas: local asset files exist and match file:size and file:checksum, the ONNX
    model opens and its inputs/outputs agree with mlm:input/mlm:output, band and class counts
    agree with the tensor shapes. Each problem is one line: DOCUMENT: JSON-PATH: MESSAGE. Model
    shapes `mlmkit predict` cannot run are warnings (DOCUMENT: JSON-PATH: warning: MESSAGE); they
    do not make a document invalid.
    Exit status: 0 valid, 1 invalid, 2 unusable arguments (missing file, schema unavailable).

    \b
    Example:
      mlmkit validate --schema-dir ../shared/stac-schemas model/catalog.json
    """
    invalid = 0
    total = 0
    for source in sources:
        try:
            problems = validate_source(source, schema_dir, semantic=not no_semantic, warnings=True)
        except MlmkitError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_UNUSABLE)
        for problem in problems:
            click.echo(str(problem))
        errors = [problem for problem in problems if not problem.warning]
        total += len(errors)
        invalid += bool(errors)
    if not quiet:
        verdict = f"{invalid} of {len(sources)} invalid, {total} problems" if invalid else f"{len(sources)} valid"
        click.echo(f"validate: {verdict}", err=True)
    sys.exit(EXIT_INVALID if invalid else 0)
