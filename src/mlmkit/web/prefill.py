"""What the form can fill in before the user types: what the model file implies, and what other tools already
stored in it.

From the file: a name from the file name, the framework, the input and output tensors (when there are several),
tasks from the output's rank. From other ecosystems: GeoDeep's ONNX metadata_props (model_type, class_names);
issue 23 adds readers for more of them, which `ecosystem_spec` is the place to call.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import onnx

from mlmkit.runtimes.artifacts import ArtifactKind
from mlmkit.runtimes.onnx_info import TensorInfo
from mlmkit.runtimes.registry import runtime_for
from mlmkit.web.uploads import UploadedModel

# GeoDeep's model_type -> MLM task
_GEODEEP_TASKS = {"detector": "object-detection", "segmenter": "semantic-segmentation",
                  "segmentor": "semantic-segmentation"}


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


def _geodeep(props: dict[str, str]) -> dict[str, Any]:
    """GeoDeep stores JSON-encoded values: model_type "Detector", class_names {"0": "car"}."""
    spec: dict[str, Any] = {}
    try:
        model_type = json.loads(props["model_type"]) if "model_type" in props else None
        names = json.loads(props["class_names"]) if "class_names" in props else {}
    except ValueError:
        return spec
    task = _GEODEEP_TASKS.get(str(model_type).lower())
    if task:
        spec["tasks"] = [task]
    if isinstance(names, dict) and all(str(key).isdigit() for key in names):
        spec["classes"] = [{"value": int(key), "name": str(name)}
                           for key, name in sorted(names.items(), key=lambda pair: int(pair[0]))]
    return spec


def ecosystem_spec(path: Path, kind: ArtifactKind) -> dict[str, Any]:
    """Spec values another tool stored in the model file (empty when it holds none mlmkit reads)."""
    if kind is not ArtifactKind.ONNX:
        return {}
    model = onnx.load(str(path), load_external_data=False)
    return _geodeep({prop.key: prop.value for prop in model.metadata_props})


def prefill(path: Path, model: UploadedModel) -> dict[str, Any]:
    """Everything the form can fill in for this file: other tools' metadata over what the file implies."""
    return {**file_spec(model), **ecosystem_spec(path, model.info.kind)}
