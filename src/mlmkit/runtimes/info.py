"""What a model file declares about itself, whatever its format: one view for `describe` and `validate`.

ONNX graphs and ExportedPrograms record names, shapes and types. TorchScript records input names only
and AOTInductor packages nothing readable, so for those the input shapes must be declared (by the user
of `describe`, or by the MLM Item under `validate`) and outputs are found by running the model on zeros.
Each format's runtime reads it (`registry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlmkit.runtimes.artifacts import ArtifactKind, file_kind, refuse_pickle
from mlmkit.runtimes.base import ModelFileInfo, TensorInfo
from mlmkit.runtimes.registry import runtime_for

__all__ = ["ModelFileInfo", "read_model_file"]


def read_model_file(path: str | Path, declared: ArtifactKind | None = None,
                    inputs: Sequence[TensorInfo] | None = None, allow_native_code: bool = False,
                    load: bool = False) -> ModelFileInfo:
    """The tensors of a local model file; `inputs` stand in where the file does not record its input shapes;
    `load`: also load the model as a run would, so that a file that does not load is refused."""
    path = Path(path)
    kind = file_kind(path, declared)
    refuse_pickle(kind, path.name)
    return runtime_for(kind).inspect(path, kind, tuple(inputs or ()), allow_native_code, load)
