"""What every model runtime offers, whatever the model file's format: reading a file, and running it.

A `Runtime` reads what a model file declares about its tensors (`inspect`, for `describe` and `validate`) and
loads it to run (`open`, for `predict`). A loaded model is a `ModelRunner`: it reports its inputs and outputs
(dynamic dimensions None) and maps named input arrays to output arrays in the order of `outputs`; the tiling,
pre- and post-processing around it never change. The runtimes themselves are found in `registry.RUNTIMES`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from mlmkit.errors import ModelRunError
from mlmkit.runtimes.artifacts import ArtifactKind

_NUMPY_TYPES = {"cfloat32": "complex64", "cfloat64": "complex128", "other": "float32"}


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output as its file (or an MLM Item) declares it; dynamic or symbolic dimensions are -1."""

    name: str
    shape: tuple[int, ...]
    data_type: str


@dataclass(frozen=True)
class ModelFileInfo:
    """Inputs and outputs (dynamic dimensions -1) and size of one model file."""

    kind: ArtifactKind
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    total_parameters: int | None
    memory_size: int | None
    onnx_ml: bool = False                 # an ONNX graph of classical ML operators (trees, SVMs, ZipMap)


def numpy_dtype(mlm_type: str) -> np.dtype:
    """The numpy dtype that feeds an MLM data_type."""
    return np.dtype(_NUMPY_TYPES.get(mlm_type, mlm_type))


def root_cause(exc: BaseException) -> str:
    """The line of an error that says why: TorchScript puts its interpreter's traceback first and the cause
    (`RuntimeError: shape '[4, 16]' is invalid ...`) last; other errors say it on their first line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    causes = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception): ", line)]
    return causes[-1].split(": ", 1)[1] if causes else lines[0]


def refused_input(feeds: dict[str, np.ndarray], cause: str) -> ModelRunError:
    """The one-line error of a model that failed on its input: the shapes it was given, and why."""
    shapes = ", ".join(f"{name}{list(array.shape)}" for name, array in feeds.items())
    return ModelRunError(f"the model refused its input ({shapes}): {cause}")


@dataclass(frozen=True)
class TensorSpec:
    """A model input/output as the runtime sees it; dynamic dimensions are None."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype


class ModelRunner(Protocol):
    """A loaded model: what it takes and gives, and one call per batch."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    description: str  # what runs the model and where (onnxruntime providers, torch device), for -v

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs, in the order of `outputs`, for arrays keyed by input name."""

    def close(self) -> None:
        """Release the model (sessions, device memory)."""


@dataclass(frozen=True)
class OpenOptions:
    """How to load a model file to run: each runtime takes what applies to it."""

    device: str = "cpu"                              # "cpu" or "cuda", chosen already
    threads: int | None = None
    providers: tuple[str, ...] | None = None         # onnxruntime execution providers
    allow_native_code: bool = False                  # load compiled native code (AOTInductor packages)
    href: str = ""                                   # where the file came from, for messages
    cache: bool = False                              # keep and reuse derived files (optimized graphs)
    checksum: str | None = None                      # the file's verified file:checksum, their key
    inputs: tuple[TensorInfo, ...] = ()              # the MLM Item's tensors, for files that record none
    outputs: tuple[TensorInfo, ...] = ()


class Runtime(Protocol):
    """One model file format family and the library that reads and runs it."""

    framework: str                     # its mlm:framework ("ONNX", "PyTorch")
    kinds: tuple[ArtifactKind, ...]    # the artifact kinds it handles, in the order predict prefers them
    requires: str | None               # the optional package it needs ("torch"), None when mlmkit's own suffice

    def installed(self) -> bool:
        """Whether what it needs is installed here (checked without importing it)."""

    def inspect(self, path: Path, kind: ArtifactKind, inputs: Sequence[TensorInfo] = (),
                allow_native_code: bool = False, load: bool = False) -> ModelFileInfo:
        """What the file declares; `inputs` stand in where it records no input shapes; `load`: also load the
        model as a run would (raising what loading raises)."""

    def external_files(self, path: Path) -> tuple[str, ...]:
        """Files beside the model file that it loads (ONNX external data), as the file names them."""

    def with_input_shape(self, path: Path, info: ModelFileInfo, name: str, shape: Sequence[int]) -> ModelFileInfo:
        """`info` with the dynamic dimensions of input `name` fixed to `shape` where the file left them open."""

    def cuda_available(self, what: str) -> bool:
        """Whether it can run `what` (a model, for messages) on a CUDA device here."""

    def open(self, path: Path, kind: ArtifactKind, options: OpenOptions) -> ModelRunner:
        """The model loaded to run; the file may be deleted once this returns."""
