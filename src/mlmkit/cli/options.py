"""Options several commands share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mlmkit.progress import NORMAL, QUIET, VERBOSE, Progress
from mlmkit.stac.schemas import SCHEMA_DIR_ENV


def progress_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`-q/--quiet` and `-v/--verbose`, handed to the command as one `progress: Progress` argument."""

    @functools.wraps(command)
    def wrapper(*args: Any, quiet: bool, verbose: int, **kwargs: Any) -> Any:
        level = QUIET if quiet else min(NORMAL + verbose, VERBOSE)
        return command(*args, progress=Progress(level), **kwargs)

    wrapper = click.option("-v", "--verbose", count=True,
                           help="Also print details (predict: bands matched, grid, tile layout, providers).")(wrapper)
    return click.option("-q", "--quiet", is_flag=True,
                        help="No progress or summary on stderr (else: bars on a terminal, one line per item otherwise).")(wrapper)


def schema_dir_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--schema-dir`, the same on every command that validates."""
    return click.option(
        "--schema-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), envvar=SCHEMA_DIR_ENV,
        help=f"STAC schema mirror laid out <host>/<path> to validate against instead of the schemas mlmkit ships "
             f"(default: ${SCHEMA_DIR_ENV}; without either, a schema mlmkit does not ship is downloaded once and "
             "cached).")(command)


def overwrite_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--overwrite`, the same on every command that writes an output directory."""
    return click.option("--overwrite", is_flag=True,
                        help="Replace a non-empty output directory (never one that holds an input).")(command)
