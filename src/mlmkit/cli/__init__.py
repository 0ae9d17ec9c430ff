"""Command-line entry point: a thin click layer over the library.

Sub-commands are imported only when invoked, so `mlmkit --help` stays fast and
the inference image does not need the training dependencies.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import click

from mlmkit import __version__
from mlmkit.errors import MlmkitError, MlmkitWarning

# name -> ("module:attribute", one-line summary shown by `mlmkit --help` without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("mlmkit.cli.validate:validate", "Validate STAC Items/Catalogs and MLM semantics."),
    "describe": ("mlmkit.cli.describe:describe", "Give an existing ONNX model an MLM Item catalog."),
    "predict": ("mlmkit.cli.predict:predict", "Run any MLM model on STAC imagery; COGs + STAC out."),
    "chips": ("mlmkit.cli.train:chips", "Build a STAC training catalog of chips and labels."),
    "train": ("mlmkit.cli.train:train", "Train on a STAC catalog; ONNX + MLM Item out."),
    "demo": ("mlmkit.cli.demo:demo", "End-to-end demo on a real Sentinel-2 scene."),
    "release": ("mlmkit.cli.release:release", "Write release copies of the CWL packages."),
    "publish": ("mlmkit.cli.publish:publish", "Upsert a catalog into a STAC API."),
    "search": ("mlmkit.cli.search:search", "Find models in a STAC API or a local catalog."),
    "merge": ("mlmkit.cli.merge:merge", "Merge several STAC catalogs into one (scattered CWL runs)."),
    "stage-in": ("mlmkit.cli.stage:stage_in", "Copy STAC Items/catalogs by URL into a local catalog."),
    "stage-out": ("mlmkit.cli.stage:stage_out", "Upload a result catalog to S3."),
}


class LazyGroup(click.Group):
    """A group whose commands live in their own modules, loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[cmd_name][0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in sorted(COMMANDS.items())])

    def invoke(self, ctx: click.Context):
        warnings.showwarning = _show_warning
        try:
            return super().invoke(ctx)
        except MlmkitError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """mlmkit's own warnings as one line on stderr; others as Python shows them."""
    if issubclass(category, MlmkitWarning):
        click.echo(f"Warning: {message}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlmkit")
def main() -> None:
    """Train, describe, validate, run and publish EO models described by STAC MLM.

    \b
    Example:
      mlmkit predict --model model/catalog.json --input scene/catalog.json --output out/
    """
