"""Command-line entry point: a thin click layer over the library.

Sub-commands are imported only when invoked, so `mlmkit --help` stays fast and
the inference image does not need the training dependencies.
"""

from __future__ import annotations

import importlib
import sys

import click

from mlmkit import __version__
from mlmkit.errors import MlmkitError

COMMANDS: dict[str, str] = {
    "validate": "mlmkit.cli.validate:validate",
    "describe": "mlmkit.cli.describe:describe",
    "predict": "mlmkit.cli.predict:predict",
    "chips": "mlmkit.cli.train:chips",
    "train": "mlmkit.cli.train:train",
    "demo": "mlmkit.cli.demo:demo",
    "release": "mlmkit.cli.release:release",
    "publish": "mlmkit.cli.publish:publish",
    "search": "mlmkit.cli.search:search",
}


class LazyGroup(click.Group):
    """A group whose commands live in their own modules, loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MlmkitError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlmkit")
def main() -> None:
    """Train, describe, validate, run and publish EO models described by STAC MLM.

    \b
    Example:
      mlmkit predict --model model/catalog.json --input scene/catalog.json --output out/
    """
