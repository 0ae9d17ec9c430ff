"""All-or-nothing output directories.

A run that fails or is interrupted must leave no half-written catalog behind:
work happens in a temporary sibling directory that is renamed into place last.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlmkit.errors import InvalidInput


def check_output_dir(outdir: str | Path, overwrite: bool) -> None:
    """Fail early when `outdir` cannot receive new output: a file, or a non-empty directory without overwrite."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InvalidInput(f"output {outdir} exists and is not a directory; expected a directory path")
    if outdir.is_dir() and any(outdir.iterdir()) and not overwrite:
        raise InvalidInput(f"output directory {outdir} is not empty; expected a new or empty directory (or --overwrite)")


@contextmanager
def atomic_output_dir(outdir: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes `outdir` only if the block succeeds."""
    outdir = Path(outdir).absolute()
    check_output_dir(outdir, overwrite)
    parent = outdir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".partial", dir=parent))
    except OSError as exc:
        raise InvalidInput(f"cannot write into {parent}: {exc.strerror}; expected a writable directory") from exc
    try:
        yield workdir
        workdir.chmod(0o755)
        if outdir.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".old", dir=parent))
            outdir.rename(trash / outdir.name)
            workdir.rename(outdir)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            workdir.rename(outdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt, so that a terminated run cleans up as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
