"""All-or-nothing output directories that never destroy their inputs.

A run that fails or is interrupted must leave no half-written catalog behind: work happens in a
temporary sibling directory (`.OUTDIR.<random>.partial`) that is renamed into place last. The
directory carries an ownership mark (this process, this host, this OUTDIR), so that after a `kill -9`
the next run to the same OUTDIR removes the stale directory it recognises as its own, and never
touches anything else. An output directory may not be, contain or lie inside an input: replacing it
would delete the data it is computed from.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlmkit.errors import InvalidArgument, InvalidInput, MlmkitError, UnsafePath, is_disk_full, no_space
from mlmkit.stac.safepath import is_within
from mlmkit.stac.read import is_url

OWNER_MARK = ".mlmkit-owner.json"
PARTIAL_SUFFIX = ".partial"
OLD_SUFFIX = ".old"
FULL_MARGIN_BYTES = 1 << 20  # free space below which an unexplained write failure counts as a full disk


def check_output_dir(outdir: str | Path, overwrite: bool, inputs: Iterable[str | Path | None] = ()) -> None:
    """Fail early when `outdir` cannot receive new output: a file, a non-empty directory without overwrite,
    or a path that is, contains or lies inside one of the `inputs` (local paths; URLs and None are skipped).

    What killed runs to `outdir` left beside it is recovered first (see `remove_stale`): a previous output
    caught mid-replacement is back in place, so it counts as OUTDIR's content here.
    """
    outdir = Path(outdir)
    if outdir.parent.is_dir():
        with _writable(outdir.parent):
            remove_stale(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InvalidArgument(f"output {outdir} exists and is not a directory; expected a directory path")
    for source in inputs:
        if source is None or is_url(str(source)):
            continue
        relation = _relation(outdir, Path(source))
        if relation:
            raise UnsafePath(f"output directory {outdir} {relation} the input {source}; expected an output "
                               "directory apart from every input (replacing it would delete that input)")
    if outdir.is_dir() and any(outdir.iterdir()) and not overwrite:
        raise InvalidInput(f"output directory {outdir} is not empty; expected a new or empty directory (or the overwrite option)")


def _relation(outdir: Path, source: Path) -> str | None:
    if os.path.realpath(outdir) == os.path.realpath(source):
        return "is"
    if is_within(source, outdir):
        return "contains"
    if is_within(outdir, source):
        return "lies inside"
    return None


@contextmanager
def atomic_output_dir(outdir: str | Path, overwrite: bool = False,
                      inputs: Iterable[str | Path | None] = ()) -> Iterator[Path]:
    """Yield a temporary directory that becomes `outdir` only if the block succeeds.

    `inputs` are the local paths the run reads (sources, item files, asset files): `outdir` must keep
    apart from them. A full disk inside the block becomes one NoSpace error naming the path.
    """
    outdir = Path(outdir).absolute()
    check_output_dir(outdir, overwrite, inputs)
    with _writable(outdir.parent):
        outdir.parent.mkdir(parents=True, exist_ok=True)
        workdir = claimed_tempdir(outdir)
    trash = None
    try:
        yield workdir
        workdir.chmod(0o755)
        if outdir.exists():
            trash = claimed_tempdir(outdir, OLD_SUFFIX)
            outdir.rename(trash / outdir.name)
        workdir.rename(outdir)
        (outdir / OWNER_MARK).unlink()
        _put_back(trash, outdir)
    except BaseException as exc:
        full = _disk_full(exc, workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(OSError):  # what cannot be put back stays marked for the next run to recover
            _put_back(trash, outdir)
        if full:
            raise no_space(outdir, exc) from exc
        raise


@contextmanager
def _writable(parent: Path) -> Iterator[None]:
    """A failure to write beside OUTDIR as one error naming the directory."""
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc):
            raise no_space(parent, exc) from exc
        raise InvalidInput(f"cannot write into {parent}: {exc.strerror}; expected a writable directory") from exc


def _put_back(trash: Path | None, outdir: Path) -> None:
    """Remove the `.old` directory `trash`, first moving the previous output it holds back to OUTDIR when
    OUTDIR is missing (a replacement that did not finish)."""
    if trash is None:
        return
    kept = trash / outdir.name
    if kept.is_dir() and not outdir.exists():
        kept.rename(outdir)
    shutil.rmtree(trash, ignore_errors=True)


def _disk_full(exc: BaseException, workdir: Path) -> bool:
    """Whether a failure came from a full disk: said so by the error, or (GDAL and libtiff errors only say
    'IO error') an unexpected error on a file system with next to nothing left."""
    if is_disk_full(exc):
        return True
    if not isinstance(exc, Exception) or isinstance(exc, MlmkitError):
        return False
    try:
        return shutil.disk_usage(workdir).free < FULL_MARGIN_BYTES
    except OSError:
        return False


def claimed_tempdir(outdir: Path, suffix: str = PARTIAL_SUFFIX) -> Path:
    """A new `.OUTDIR.<random><suffix>` beside outdir, marked as this process's own, so that `remove_stale`
    removes it once this process is gone (also for scratch space that is never renamed into place)."""
    path = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=suffix, dir=outdir.parent))
    mark = {"outdir": str(outdir), "host": socket.gethostname(), "pid": os.getpid(), "started": _start_time(os.getpid())}
    (path / OWNER_MARK).write_text(json.dumps(mark), encoding="utf-8")
    return path


def _start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _is_running(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or _start_time(pid) in (None, started)


def _own_stale(path: Path, outdir: Path) -> bool:
    """Whether `path` is a temporary directory a dead mlmkit process on this host made for `outdir`."""
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        mark = json.loads((path / OWNER_MARK).read_text(encoding="utf-8"))
        if mark["outdir"] != str(outdir) or mark["host"] != socket.gethostname():
            return False
        return not _is_running(int(mark["pid"]), mark.get("started"))
    except (OSError, ValueError, KeyError, TypeError):
        return False  # unmarked or unreadable: not ours to delete


def remove_stale(outdir: str | Path) -> list[Path]:
    """Remove what killed runs to `outdir` left beside it; returns what was removed.

    A `.partial` directory is deleted; an `.old` directory (a previous output caught mid-replacement)
    is put back as OUTDIR when OUTDIR is missing, else deleted.
    """
    outdir = Path(outdir).absolute()
    removed = []
    prefix = f".{outdir.name}."
    for path in sorted(outdir.parent.iterdir()):
        name = path.name
        if not name.startswith(prefix) or not name.endswith((PARTIAL_SUFFIX, OLD_SUFFIX)):
            continue
        if not _own_stale(path, outdir):
            continue
        if name.endswith(OLD_SUFFIX):
            _put_back(path, outdir)
        else:
            shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
