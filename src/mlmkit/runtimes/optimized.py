"""onnxruntime's optimized graph of a model, kept in the model cache so that each process does not redo it.

Graph optimization (ORT_ENABLE_ALL) is most of a CPU session's start: 0.30 of 0.38 s for ukis-csmask's U-Net
(bench/README.md), paid again by every `predict` process and every scattered CWL step on the node. The
optimized graph, saved by onnxruntime on the first run, opens with optimization off in 0.08 s and gives
bit-identical outputs (tests/test_optimized_cache.py). It holds layouts chosen for this CPU (NCHWc blocks of
its vector width), so an entry's key is the model's content, the onnxruntime version, the execution providers
and the CPU's model and flags; only CPU sessions use it. Entries live in `$XDG_CACHE_HOME/mlmkit/onnxruntime/`
beside the model downloads (`mlmkit cache` lists them, `--clear` removes them), the least recently used
going first beyond 4 GB; a graph onnxruntime cannot save (a model over protobuf's 2 GiB) is marked and not
tried again. Models under 1 MB are not kept: their graphs optimize in milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path

import onnxruntime as ort

from mlmkit.stac.checksum import file_checksum
from mlmkit.stac.fetch import cache_root

CPU_PROVIDERS = ("CPUExecutionProvider", "AzureExecutionProvider")  # Azure: remote calls only, no kernels
MIN_MODEL_BYTES = 1_000_000
MAX_CACHE_BYTES = 4_000_000_000
_SKIP = ".skip"  # marks a model whose optimized graph onnxruntime could not save


def _cpu_identity() -> str:
    """The CPU's model name and instruction-set flags (what onnxruntime's kernel and layout choices follow)."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            lines = [line for line in cpuinfo.read().split("\n\n")[0].splitlines()
                     if line.split(":")[0].strip() in ("vendor_id", "model name", "flags", "Features", "CPU part")]
            if lines:
                return "\n".join(lines)
    return f"{platform.machine()} {platform.processor()}"


def optimized_root() -> Path:
    """Where optimized graphs are kept: beside the model download cache."""
    return cache_root().parent / "onnxruntime"


def cache_key(checksum: str, providers: Sequence[str]) -> str:
    """What an optimized graph depends on: the model, onnxruntime's version, the providers, the CPU."""
    text = "\n".join([checksum, ort.__version__, ",".join(providers), _cpu_identity()])
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def cached_graphs() -> list[Path]:
    """The optimized graphs kept (for `mlmkit cache`)."""
    root = optimized_root()
    return sorted(root.glob("*.onnx")) if root.is_dir() else []


def open_optimized(path: Path, checksum: str | None, providers: list[str],
                   options: Callable[[], ort.SessionOptions]) -> ort.InferenceSession | None:
    """A CPU session over the cached optimized graph of the model at `path`, saved first where it is missing;
    None where the cache does not apply or cannot be used (the caller then opens the model as usual).

    `checksum`: the model file's verified `file:checksum`, else the file is hashed here; `options`: fresh
    session options at ORT_ENABLE_ALL (those of the optimized graph's session get optimization turned off).
    """
    if "CPUExecutionProvider" not in providers or not set(providers) <= set(CPU_PROVIDERS) \
            or path.stat().st_size < MIN_MODEL_BYTES:
        return None
    folder = optimized_root()
    key = cache_key(checksum or file_checksum(path), providers)
    entry = folder / f"{key}.onnx"
    if entry.is_file():
        cached = options()
        cached.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            session = ort.InferenceSession(str(entry), cached, providers=providers)
            with contextlib.suppress(OSError):
                os.utime(entry)  # recently used: evicted last
            return session
        except Exception:  # noqa: BLE001 - a damaged entry (a disk fault, another version's file) is rebuilt
            entry.unlink(missing_ok=True)
    if (folder / f"{key}{_SKIP}").exists():
        return None
    return _save(path, entry, providers, options())


def _save(path: Path, entry: Path, providers: list[str], options: ort.SessionOptions) -> ort.InferenceSession | None:
    """Open the model with its optimized graph saved to `entry` (written under a temporary name, then moved in)."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only cache: run without it
        return None
    partial = entry.with_name(f".{entry.stem}.{os.getpid()}.tmp")
    options.optimized_model_filepath = str(partial)
    try:
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception:  # noqa: BLE001 - the model itself may be at fault: the caller's plain open says so
            with contextlib.suppress(OSError):
                entry.with_suffix(_SKIP).touch()
            return None
        with contextlib.suppress(OSError):  # a full disk leaves the cache as it was
            os.replace(partial, entry)
            _evict(entry)
        return session
    finally:
        partial.unlink(missing_ok=True)


def _evict(kept: Path) -> None:
    """Remove the least recently used graphs beyond MAX_CACHE_BYTES (never `kept`, the one just saved)."""
    with contextlib.suppress(OSError):
        entries = sorted(((path.stat().st_mtime, path.stat().st_size, path) for path in cached_graphs()),
                         reverse=True)
        total = 0
        for _, size, path in entries:
            total += size
            if total > MAX_CACHE_BYTES and path != kept:
                path.unlink(missing_ok=True)
