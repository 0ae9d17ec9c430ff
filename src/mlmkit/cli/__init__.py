"""Command-line entry point: a thin click layer over the library.

Each command converts its options and calls the verb of `mlmkit.api` (or the library function) that does the
work. Sub-commands are imported only when invoked, so `mlmkit --help` stays fast and the inference image does
not need the training dependencies. Every failure ends as one `Error: ...` line on stderr with a non-zero
exit, its status taken from one table (`EXIT_STATUS`): usage errors exit 2, every other failure 1 (a full
disk names the path), Ctrl-C (SIGINT) exits 130 and SIGTERM (what cwltool, Toil, Slurm and Kubernetes send on
cancel) 143, both after the temporary output is removed. Warnings (Python's and mlmkit's own, GDAL messages, what C libraries write to stderr) are held
back: shown after a success, dropped before an error. A native crash (segfault, abort) still prints
faulthandler's trace on stderr.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import io
import logging
import os
import signal
import sys
import tempfile
import threading
import typing
import warnings
from collections.abc import Iterator

import click

from mlmkit import __version__
from mlmkit.errors import (InvalidArgument, MlmkitError, MlmkitWarning, NotFound, SchemaUnavailable, Terminated,
                           is_disk_full, no_space)

EXIT_FAILURE = 1  # the work failed: invalid data or metadata, a refused model, a remote failure, a full disk, ...
EXIT_USAGE = 2    # the command cannot start as called (click's usage errors exit 2 too)
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM
# The exit status of an mlmkit error, by class: the first row the error is an instance of decides. Documented
# in docs/reference/errors.md; `mlmkit validate` exits 1 for invalid documents, so that what stops it is a 2.
EXIT_STATUS: tuple[tuple[type[MlmkitError], int], ...] = (
    (NotFound, EXIT_USAGE),            # a path argument that does not exist, a folder without its catalog.json
    (InvalidArgument, EXIT_USAGE),     # an argument of the wrong form, out of range, or contradicting another
    (SchemaUnavailable, EXIT_USAGE),   # a schema neither shipped, nor in the mirror given, nor downloadable
    (MlmkitError, EXIT_FAILURE),
)
MAX_NATIVE_BYTES = 1 << 20  # of what C libraries wrote to stderr during a run, shown after a success

# name -> ("module:attribute", one-line summary shown by `mlmkit --help` without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("mlmkit.cli.validate:validate", "Validate STAC Items/Catalogs and MLM semantics."),
    "describe": ("mlmkit.cli.describe:describe", "Give an existing model file an MLM Item catalog."),
    "predict": ("mlmkit.cli.predict:predict", "Run any MLM model on STAC imagery; COGs + STAC out."),
    "quantize": ("mlmkit.cli.quantize:quantize", "Make an int8 copy of an MLM model, calibrated on imagery."),
    "chips": ("mlmkit.cli.train:chips", "Build a STAC training catalog of chips and labels."),
    "train": ("mlmkit.cli.train:train", "Train on a STAC catalog; ONNX + MLM Item out."),
    "demo": ("mlmkit.cli.demo:demo", "End-to-end demo on a real Sentinel-2 scene."),
    "release": ("mlmkit.cli.release:release", "Write release copies of the CWL packages."),
    "publish": ("mlmkit.cli.publish:publish", "Upsert a catalog into a STAC API."),
    "search": ("mlmkit.cli.search:search", "Find models in a STAC API or a local catalog."),
    "match": ("mlmkit.cli.match:match", "Which models can run on which imagery (metadata only)."),
    "run": ("mlmkit.cli.run:run", "Run a model through the CWL package its MLM Item names."),
    "serve": ("mlmkit.cli.serve:serve", "Serve MLM models and CWL packages as OGC API - Processes."),
    "merge": ("mlmkit.cli.merge:merge", "Merge several STAC catalogs into one (scattered CWL runs)."),
    "cache": ("mlmkit.cli.cache:cache", "Show or clear the model download cache."),
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
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # past click, which would print a blank line and "Aborted!"
            raise Terminated(signal.SIGINT) from exc

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode: bool = True, **extra):
        """click's main, with every failure reported as one line (see the module docstring)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        with _signals_raise(), _held_warnings() as held:
            try:
                result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except BaseException as exc:  # noqa: BLE001 - each kind becomes its line and exit status, or re-raises
                _fail(exc, held)
            held.show()
        sys.exit(result if isinstance(result, int) else 0)


def _fail(exc: BaseException, held: _HeldWarnings) -> None:
    """Report `exc` as one `Error:` line and exit with its status; anything unforeseen propagates."""
    if isinstance(exc, SystemExit):
        if exc.code in (0, None):
            held.show()
        raise exc
    signum = _signal_behind(exc)
    if signum == signal.SIGINT:
        line, status = "interrupted (SIGINT); temporary output removed", EXIT_SIGINT
    elif signum == signal.SIGTERM:
        line, status = "terminated (SIGTERM); temporary output removed", EXIT_SIGTERM
    elif isinstance(exc, click.ClickException):
        line, status = _usage_line(exc), exc.exit_code
    elif isinstance(exc, click.Abort):
        line, status = "aborted", 1
    elif not isinstance(exc, MlmkitError) and (is_disk_full(exc) or held.saw_disk_full()):
        line, status = str(no_space(getattr(exc, "filename", None) or "the output", exc)), 1
    elif isinstance(exc, MlmkitError):
        line, status = str(exc), exit_status(exc)
    elif isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        line, status = f"{exc.strerror or exc}{where}; expected readable inputs and a writable output", 1
    else:
        raise exc
    click.echo("Error: " + " ".join(line.split()), err=True)
    sys.exit(status)


def exit_status(exc: MlmkitError) -> int:
    """The exit status of an mlmkit error (see EXIT_STATUS)."""
    return next(status for kind, status in EXIT_STATUS if isinstance(exc, kind))


def _signal_behind(exc: BaseException | None) -> int | None:
    """The signal that caused `exc`, also when a library wrapped the interruption in its own error."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Terminated):
            return exc.signum
        if isinstance(exc, KeyboardInterrupt):
            return signal.SIGINT
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _usage_line(exc: click.ClickException) -> str:
    message = exc.format_message().rstrip(".")
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return message
    return f"{message}; expected: {ctx.get_usage().removeprefix('Usage: ')} (see {ctx.command_path} --help)"


def _raise_for_signal(signum: int, frame) -> None:
    for kind in (signal.SIGINT, signal.SIGTERM):  # the cleanup that follows runs once, undisturbed
        signal.signal(kind, signal.SIG_IGN)
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)


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
    """What a run says besides its result, kept until it is known to succeed: Python warnings, GDAL messages
    rasterio logs, and what C libraries (libtiff, GDAL) write straight to file descriptor 2."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: dict[str, None] = {}
        self.recorded: list[warnings.WarningMessage] = []
        self.native: typing.IO[bytes] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.lines[" ".join(record.getMessage().split())] = None

    def native_lines(self) -> list[str]:
        if self.native is None:
            return []
        self.native.seek(0)
        text = self.native.read(MAX_NATIVE_BYTES).decode("utf-8", "replace")
        return [" ".join(line.split()) for line in text.splitlines() if line.strip()]

    def saw_disk_full(self) -> bool:
        return any("no space left on device" in line.lower() for line in [*self.lines, *self.native_lines()])

    def show(self) -> None:
        for message in self.recorded:
            text = " ".join(str(message.message).split())  # mlmkit's own warnings need no category name
            self.lines[text if issubclass(message.category, MlmkitWarning) else f"{message.category.__name__}: {text}"] = None
        self.lines.update(dict.fromkeys(self.native_lines()))
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
        with warnings.catch_warnings(record=True) as recorded, _native_stderr_held(held):
            held.recorded = recorded
            yield held
    finally:
        logger.removeHandler(held)
        logger.propagate = propagate


@contextlib.contextmanager
def _native_stderr_held(held: _HeldWarnings) -> Iterator[None]:
    """Point file descriptor 2 at a temporary file for the run; Python's own stderr stays live (progress
    bars, the final line) by writing to a duplicate of the original descriptor."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    held.native = tempfile.TemporaryFile()
    python_stderr = sys.stderr
    if _writes_to_fd2(python_stderr):
        sys.stderr = open(saved, "w", buffering=1, encoding=python_stderr.encoding or "utf-8",  # noqa: SIM115
                          errors="backslashreplace", closefd=False)
    os.dup2(held.native.fileno(), 2)
    try:
        with _fatal_errors_to(saved):
            yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        if sys.stderr is not python_stderr:
            sys.stderr.close()
            sys.stderr = python_stderr
        os.close(saved)
        held.native.close()
        held.native = None


@contextlib.contextmanager
def _fatal_errors_to(fd: int) -> Iterator[None]:
    """A native crash (segfault, abort) during the run prints faulthandler's 'Fatal Python error' and the
    Python stack on `fd`, the real stderr, not into the held file that dies with the process. What C
    libraries wrote before the crash stays held: nothing in the process runs after a fatal signal to show it.
    Afterwards faulthandler is as before (if it was on, it is on again, on sys.__stderr__)."""
    was_enabled = faulthandler.is_enabled()
    faulthandler.enable(file=fd, all_threads=True)
    try:
        yield
    finally:
        faulthandler.disable()
        if was_enabled:
            with contextlib.suppress(AttributeError, ValueError, RuntimeError, io.UnsupportedOperation):
                faulthandler.enable(file=sys.__stderr__)


def _writes_to_fd2(stream: typing.TextIO) -> bool:
    try:
        return stream.fileno() == 2
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlmkit")
def main() -> None:
    """Train, describe, validate, run and publish EO models described by STAC MLM.

    \b
    Example:
      mlmkit predict --model model/catalog.json --input scene/item.json --output out/
    """
