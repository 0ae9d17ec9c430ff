"""`mlmkit cache`: where downloaded models are kept, how much they take, and emptying it."""

from __future__ import annotations

import click

from mlmkit.stac.fetch import cache_root, cache_size, cached_files, clear_cache, size_text


@click.command()
@click.option("--clear", is_flag=True, help="Delete every cached model file.")
def cache(clear: bool) -> None:
    """Show the model download cache ($XDG_CACHE_HOME/mlmkit/models), or clear it.

    Remote model files with a file:checksum are kept there, one folder per checksum, and reused
    while they still match it; `predict --no-cache` bypasses it.

    \b
    Example:
      mlmkit cache
      mlmkit cache --clear
    """
    if clear:
        clear_cache()
    files = cached_files()
    click.echo(f"{cache_root()}: {len(files)} file(s), {size_text(cache_size())}")
    for path in files:
        click.echo(f"  {path.parent.name[:16]}…/{path.name}  {size_text(path.stat().st_size)}")
