"""Command-line entry point: a thin click layer over the library.

Sub-commands are imported only when invoked, so `mlmkit --help` stays fast and the inference image does
not need the training dependencies. Every failure ends as one `Error: ...` line on stderr with a non-zero
exit: library errors and usage errors exit 1 and 2, a full disk names the path, Ctrl-C (SIGINT) exits 130
and SIGTERM (what cwltool, Toil, Slurm and Kubernetes send on cancel) 143, both after the temporary output
is removed. Warnings from GDAL/rasterio are held back: shown after a success, dropped before an error.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Iterator

import click

from mlmkit import __version__
from mlmkit.errors import MlmkitError, Terminated, is_disk_full, no_space

EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM

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

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode: bool = True, **extra):
        """click's main, with every failure reported as one line (see the module docstring)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        with _signals_raise(), _held_warnings() as held:
            try:
                result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except BaseException as exc:  # noqa: BLE001 - each kind becomes its line and exit status, or re-raises
                _fail(exc)
            held.show()
        sys.exit(result if isinstance(result, int) else 0)


def _fail(exc: BaseException) -> None:
    """Report `exc` as one `Error:` line and exit with its status; anything unforeseen propagates."""
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, click.Abort) and isinstance(exc.__cause__, KeyboardInterrupt):
        exc = exc.__cause__
    if isinstance(exc, KeyboardInterrupt):
        line, status = "interrupted (SIGINT); temporary output removed", EXIT_SIGINT
    elif isinstance(exc, Terminated):
        line, status = "terminated (SIGTERM); temporary output removed", EXIT_SIGTERM
    elif isinstance(exc, click.ClickException):
        line, status = _usage_line(exc), exc.exit_code
    elif isinstance(exc, click.Abort):
        line, status = "aborted", 1
    elif is_disk_full(exc) and not isinstance(exc, MlmkitError):
        line, status = str(no_space(getattr(exc, "filename", None) or "the output", exc)), 1
    elif isinstance(exc, MlmkitError):
        line, status = str(exc), 1
    elif isinstance(exc, OSError):
        line, status = f"{exc.strerror or exc}: {exc.filename}; expected a readable input and a writable output", 1
    else:
        raise exc
    click.echo("Error: " + " ".join(line.split()), err=True)
    sys.exit(status)


def _usage_line(exc: click.ClickException) -> str:
    message = exc.format_message().rstrip(".")
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return message
    return f"{message}; expected: {ctx.get_usage().removeprefix('Usage: ')} (see {ctx.command_path} --help)"


def _raise_for_signal(signum: int, frame) -> None:
    for kind in (signal.SIGINT, signal.SIGTERM):  # the cleanup that follows runs once, undisturbed
        signal.signal(kind, signal.SIG_IGN)
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated()


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise in the main thread, so temporary output and downloads are removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {kind: signal.signal(kind, _raise_for_signal) for kind in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)


class _HeldWarnings(logging.Handler):
    """Python warnings and GDAL messages (rasterio logs them) of a run, kept until it is known to succeed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: dict[str, None] = {}
        self.recorded: list[warnings.WarningMessage] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines[" ".join(record.getMessage().split())] = None

    def show(self) -> None:
        for message in self.recorded:
            self.lines[f"{message.category.__name__}: {' '.join(str(message.message).split())}"] = None
        for line in self.lines:
            click.echo(f"Warning: {line}", err=True)


@contextlib.contextmanager
def _held_warnings() -> Iterator[_HeldWarnings]:
    held = _HeldWarnings()
    logger = logging.getLogger("rasterio")
    propagate = logger.propagate
    logger.addHandler(held)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as recorded:
            held.recorded = recorded
            yield held
    finally:
        logger.removeHandler(held)
        logger.propagate = propagate


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlmkit")
def main() -> None:
    """Train, describe, validate, run and publish EO models described by STAC MLM.

    \b
    Example:
      mlmkit predict --model model/catalog.json --input scene/item.json --output out/
    """
