"""What the form can fill in before the user types: what the model file implies, and what other tools already
stored in it.

From the file: a name from the file name, the framework, the input and output tensors (when there are several),
tasks from the output's rank. From other ecosystems: what `mlmkit describe` reads too (mlm/foreign.py: GeoDeep's
and Deepness's ONNX metadata_props: task, classes, a detector's layout, thresholds, scaling).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mlmkit.mlm.foreign import foreign_spec
from mlmkit.runtimes.artifacts import ArtifactKind
from mlmkit.runtimes.onnx_info import TensorInfo
from mlmkit.runtimes.registry import runtime_for
from mlmkit.web.uploads import UploadedModel


def _tasks(output: TensorInfo) -> list[str]:
    """A guess the user confirms: a per-pixel score map is a segmentation, a score vector a classification."""
    return {4: ["semantic-segmentation"], 2: ["classification"]}.get(len(output.shape), [])


def _title(filename: str) -> str:
    return re.sub(r"[-_.]+", " ", Path(filename).stem).strip().capitalize() or "Model"


def file_spec(model: UploadedModel) -> dict[str, Any]:
    """Spec values the file itself implies."""
    info = model.info
    spec: dict[str, Any] = {"name": _title(model.filename),
                            "framework": runtime_for(info.kind).framework}
    if len(info.inputs) > 1:
        spec["input_name"] = info.inputs[0].name
    if len(info.outputs) > 1 and not info.onnx_ml:
        spec["output_name"] = info.outputs[0].name
    if len(info.outputs) == 1 or info.onnx_ml:
        spec["tasks"] = _tasks(info.outputs[-1])
    return spec


def ecosystem_spec(path: Path, kind: ArtifactKind) -> dict[str, Any]:
    """Spec values another tool stored in the model file (empty when it holds none mlmkit reads): `describe`'s
    own reader (mlm/foreign.py: GeoDeep's task, classes, detection layout, thresholds and 8-bit scaling)."""
    return foreign_spec(path) if kind is ArtifactKind.ONNX else {}


def prefill(path: Path, model: UploadedModel) -> dict[str, Any]:
    """Everything the form can fill in for this file: other tools' metadata over what the file implies."""
    return {**file_spec(model), **ecosystem_spec(path, model.info.kind)}
