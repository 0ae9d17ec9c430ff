"""Options several commands share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from mlmkit.progress import NORMAL, QUIET, VERBOSE, Progress


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
