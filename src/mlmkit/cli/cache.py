"""`mlmkit cache`: where downloaded models are kept, how much they take, and emptying it."""

from __future__ import annotations

import click

from mlmkit.runtimes.optimized import cached_graphs, optimized_root
from mlmkit.stac.fetch import cache_root, cache_size, cached_files, clear_cache, size_text


@click.command()
@click.option("--clear", is_flag=True, help="Delete every cached model file and optimized graph.")
def cache(clear: bool) -> None:
    """Show the model download cache ($XDG_CACHE_HOME/mlmkit/models), or clear it.

    Remote model files with a file:checksum are kept there, one folder per checksum, and reused
    while they still match it; `predict --no-cache` bypasses it. Beside them, onnxruntime's optimized
    graph of each model run on this CPU ($XDG_CACHE_HOME/mlmkit/onnxruntime) spares later runs that work.

    \b
    Example:
      mlmkit cache
      mlmkit cache --clear
    """
    if clear:
        clear_cache()
        clear_cache(optimized_root())
    files = cached_files()
    click.echo(f"{cache_root()}: {len(files)} file(s), {size_text(cache_size())}")
    for path in files:
        click.echo(f"  {path.parent.name[:16]}…/{path.name}  {size_text(path.stat().st_size)}")
    graphs = cached_graphs()
    if graphs:
        click.echo(f"{optimized_root()}: {len(graphs)} optimized graph(s), "
                   f"{size_text(sum(path.stat().st_size for path in graphs))}")
