"""The model runtimes, found by the artifact kind of a model file: the one place that dispatches on it.

A runtime (`base.Runtime`) names the artifact kinds it handles and the optional package it needs (torch),
reads what a model file declares (`inspect`: inputs, outputs, parameters, for `describe` and `validate`) and
loads it to run (`open`: a `ModelRunner`, for `predict`). A new runtime is one module that defines such a
`RUNTIME`, plus one registry line: its name in `_MODULES` below (and in the import above it); nothing else
dispatches on the kind. (A new file format also adds its `ArtifactKind`, and how its files are recognised, in
`artifacts`.) Importing this module imports onnxruntime (a core dependency); onnx and torch are
imported only when a file of theirs is read or run, and `import mlmkit` imports none of them.
"""

from __future__ import annotations

from mlmkit.errors import ModelRefused
from mlmkit.runtimes import onnx, pytorch
from mlmkit.runtimes.artifacts import SUPPORTED, ArtifactKind
from mlmkit.runtimes.base import Runtime

_MODULES = (onnx, pytorch)  # in the order predict prefers them: ONNX needs no torch
RUNTIMES: dict[ArtifactKind, Runtime] = {kind: module.RUNTIME for module in _MODULES for kind in module.RUNTIME.kinds}


def runtime_for(kind: ArtifactKind) -> Runtime:
    """The runtime that handles `kind`."""
    if kind not in RUNTIMES:
        raise ModelRefused(f"{kind.label} files are run by no runtime of mlmkit; expected {SUPPORTED}")
    return RUNTIMES[kind]
