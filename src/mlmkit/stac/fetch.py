"""Model files from where models live: local paths, http(s) URLs and s3/gs/az objects, with a download cache.

A remote file with a `file:checksum` is kept in `$XDG_CACHE_HOME/mlmkit/models/<checksum>/<name>` (default
`~/.cache/mlmkit/models`) and reused while it still hashes to that checksum; a cached copy that does not is
dropped and fetched again. Downloads stream to disk in chunks, resume a failed `.part` file with a
range request, and are verified before use. Without a checksum, or with the cache turned off, the file goes
to a temporary directory that is removed when the caller is done, also on errors and interrupts.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests
import urllib3

from mlmkit.stac.checksum import verify_checksum
from mlmkit.errors import CacheWarning, InvalidInput, InvalidMetadata, RemoteFailure, Terminated, warn
from mlmkit.stac.objstore import is_object_store, open_store
from mlmkit.stac.safepath import safe_name
from mlmkit.stac.read import HTTP_TIMEOUT_S, is_url

ProgressHook = Callable[[int, int | None], None]
"""Called with (bytes done, total bytes or None) as a download proceeds."""

CHUNK = 1 << 20
ATTEMPTS = 4  # a dropped connection is resumed this many times before the download fails
BACKOFF_S = 0.25  # then 0.5 s, 1 s: a pause before each retry
LOCK_NAME = ".lock"


def cache_root() -> Path:
    """Where downloaded model files are kept (XDG base directory specification)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlmkit" / "models"


def cached_files(root: Path | None = None) -> list[Path]:
    """The model files in the cache (whole or partly downloaded), without lock files."""
    root = root or cache_root()
    return sorted(path for path in root.glob("*/*") if path.is_file() and path.name != ".lock") \
        if root.is_dir() else []


def cache_size(root: Path | None = None) -> int:
    """Bytes held by the model cache."""
    return sum(path.stat().st_size for path in cached_files(root))


def clear_cache(root: Path | None = None) -> None:
    """Delete every cached model file."""
    shutil.rmtree(root or cache_root(), ignore_errors=True)


def size_text(size: int | None) -> str:
    """1234567 -> '1.2 MB'."""
    if size is None:
        return "size unknown"
    if size < 1000:
        return f"{size} B"
    exponent = min(len(str(size)) - 1, 9) // 3
    return f"{size / 1000 ** exponent:.1f} {('KB', 'MB', 'GB')[exponent - 1]}"


class _Transient(Exception):
    """A dropped connection: the download resumes where it stopped."""


@dataclass
class _Response:
    chunks: Iterator[bytes]
    start: int            # offset of the first byte the source sends
    total: int | None


def _http_refusal(href: str, status: int, reason: str) -> str:
    if status in (401, 403):
        return f"access to {href} was denied (HTTP {status}); expected a URL these credentials may read"
    if status == 404:
        return f"{href} does not exist (HTTP 404); expected an href to a readable file"
    return f"cannot download {href}: HTTP {status} {reason}"


def _http_open(href: str, offset: int) -> _Response:
    headers = {"Accept-Encoding": "identity"}  # byte ranges count the file's own bytes
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = requests.get(href, stream=True, timeout=HTTP_TIMEOUT_S, headers=headers)
    except requests.ConnectionError as exc:
        raise _Transient(str(exc)) from exc
    except requests.RequestException as exc:
        raise RemoteFailure(f"cannot download {href}: {exc}") from exc
    if response.status_code == 416 and offset:  # the partial file is already whole (or stale): start over
        response.close()
        return _http_open(href, 0)
    if response.status_code >= 400:
        response.close()
        raise RemoteFailure(_http_refusal(href, response.status_code, response.reason))
    start = 0
    if response.status_code == 206:
        content_range = response.headers.get("Content-Range", "")
        match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", content_range)
        start = int(match.group(1)) if match else 0
        total = int(match.group(2)) if match and match.group(2) != "*" else None
    else:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None

    def chunks() -> Iterator[bytes]:
        try:  # read1: what has arrived is kept even when the connection then drops
            while chunk := response.raw.read1(CHUNK):
                yield chunk
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise _Transient(str(exc)) from exc
        finally:
            response.close()
    return _Response(chunks(), start, total)


def _store_open(href: str, offset: int) -> _Response:
    import obstore
    from obstore.exceptions import GenericError, PermissionDeniedError, UnauthenticatedError

    store, key = open_store(href)
    try:
        result = obstore.get(store, key, options={"range": {"offset": offset}} if offset else None)
    except FileNotFoundError as exc:
        raise RemoteFailure(f"{href} does not exist (no such bucket or object); expected an href to a stored "
                           "object") from exc
    except (PermissionDeniedError, UnauthenticatedError) as exc:
        raise RemoteFailure(f"access to {href} was denied; expected credentials that may read it (or "
                           "*_NO_SIGN_REQUEST=YES for public data)") from exc
    except GenericError as exc:
        raise _Transient(str(exc).splitlines()[0]) from exc

    def chunks() -> Iterator[bytes]:
        try:
            yield from result.stream(min_chunk_size=CHUNK)
        except GenericError as exc:
            raise _Transient(str(exc).splitlines()[0]) from exc
    return _Response(chunks(), result.range[0], int(result.meta["size"]))


def _download(href: str, part: Path, progress: ProgressHook) -> None:
    """Stream `href` into `part`, resuming from what `part` already holds."""
    opener = _store_open if is_object_store(href) else _http_open
    last_error = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        offset = part.stat().st_size if part.exists() else 0
        try:
            response = opener(href, offset)
            with open(part, "r+b" if part.exists() else "wb", buffering=0) as stream:  # on disk as it arrives
                stream.truncate(response.start)  # a source that ignores the range sends everything again
                stream.seek(response.start)
                done = response.start
                progress(done, response.total)
                for chunk in response.chunks:
                    stream.write(chunk)
                    done += len(chunk)
                    progress(done, response.total)
            if response.total is None or done >= response.total:
                return
            last_error = f"the connection closed after {done} of {response.total} bytes"
        except _Transient as exc:
            last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else "the connection failed"
    raise RemoteFailure(f"cannot download {href}: {last_error} ({ATTEMPTS} attempts)")


def _file_name(href: str) -> str:
    """A file name for what `href` names: its last path segment, made safe."""
    return safe_name(Path(href.split("?")[0]).name, "model")


def _quiet(done: int, total: int | None) -> None:
    """No progress report."""


def download(href: str, target: Path, checksum: str | None = None, progress: ProgressHook | None = _quiet) -> Path:
    """Stream `href` (http(s), s3, gs or az) into `target` with retries, resuming a dropped connection, verified
    against `checksum` when given; nothing is left at `target` unless the whole file arrived. Silent unless a
    `progress` hook is given (the CLI's `Progress.download_hook`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        return _fetch_into(href, target, checksum, progress)
    except InvalidInput:
        part.unlink(missing_ok=True)
        raise


def _fetch_into(href: str, target: Path, checksum: str | None, progress: ProgressHook | None) -> Path:
    part = target.with_name(target.name + ".part")
    try:
        _download(href, part, progress or _quiet)
    except (KeyboardInterrupt, Terminated):  # cancelled: nothing is kept (a failed download stays, to resume)
        part.unlink(missing_ok=True)
        raise
    if checksum:
        try:
            verify_checksum(part, checksum)
        except InvalidInput as exc:
            part.unlink()
            raise InvalidMetadata(f"the download of {href} does not match its file:checksum: {exc}") from exc
    part.rename(target)
    return target


def _lock(directory: Path) -> IO[str]:
    """An exclusive lock on a cache entry's lock file, taken on the file that is still there (an entry left
    empty is removed by whoever held it, so a waiter may have locked a file that is gone)."""
    while True:
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / LOCK_NAME, "a")  # noqa: SIM115 - closed by _locked
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if os.fstat(lock.fileno()).st_ino == os.stat(directory / LOCK_NAME).st_ino:
                return lock
        except FileNotFoundError:
            pass
        lock.close()


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One process at a time fills a cache entry; the others wait and then find it there. An entry that ends
    up holding nothing (a cancelled or refused download) is removed, lock file and all."""
    lock = _lock(directory)
    try:
        yield
    finally:
        if all(path.name == LOCK_NAME for path in directory.iterdir()):
            (directory / LOCK_NAME).unlink()
            directory.rmdir()
        lock.close()


def _cached(href: str, checksum: str, progress: ProgressHook | None) -> Path:
    try:
        bytes.fromhex(checksum)  # a hex multihash: safe as a directory name
    except ValueError as exc:
        raise InvalidMetadata(f"file:checksum {checksum!r} of {href} is not a hex multihash") from exc
    entry = cache_root() / checksum.lower()
    target = entry / _file_name(href)
    with _locked(entry):
        if target.exists():
            try:
                verify_checksum(target, checksum)
                return target
            except InvalidInput:
                warn(f"the cached {target} did not match its file:checksum; fetched it again", CacheWarning)
                target.unlink()
        return _fetch_into(href, target, checksum, progress)


@contextmanager
def local_copy(href: str, checksum: str | None = None, *, cache: bool = True,
               progress: ProgressHook | None = None) -> Iterator[Path]:
    """A verified local path for the file at `href`; a temporary copy is removed when the block ends."""
    if not is_url(href) and not is_object_store(href):
        path = Path(href)
        if not path.is_file():
            raise InvalidMetadata(f"model file {href} does not exist; expected the mlm:model asset's href to be readable")
        if checksum:
            verify_checksum(path, checksum)
        yield path
        return
    if cache and checksum:
        yield _cached(href, checksum, progress)
        return
    workdir = Path(tempfile.mkdtemp(prefix="mlmkit-model-"))
    try:
        yield _fetch_into(href, workdir / _file_name(href), checksum, progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
