"""What other tools already store about a model, read as describe spec fields, so `describe` need not ask a
user for what the file or its side-car says.

- GeoDeep (uav4geo/GeoDeep) and the Deepness QGIS plugin write ONNX `metadata_props`, each value JSON:
  `model_type` ("Detector", "Segmentor"), `class_names` ({"0": "car"}), `det_type` (how a detector's output is
  laid out: "YOLO_v5_or_v7_default" [N, 5 + K], "YOLO_v8"/"YOLO_v9" [4 + K, N], "retinanet"), `det_conf`,
  `det_iou_thresh`, `resolution` (centimetres per pixel), `tiles_size`, `tiles_overlap`, and optionally
  `standardization_mean`/`standardization_std`. Their inputs are 8-bit RGB divided by 255.
- geoai (opengeos/geoai) writes a side-car `<model>.onnx.json`: `task`, `input_height`, `input_width`,
  `input_channels`, `id2label`, `model_name`.

A spec file and options override every field read here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx

_GEODEEP_TASKS = {"detector": "object-detection", "segmentor": "semantic-segmentation"}
_GEODEEP_LAYOUTS = {"yolo_v5_or_v7_default": "cxcywh-obj-class", "yolo_v8": "cxcywh-class",
                    "yolo_v9": "cxcywh-class"}
_GEOAI_TASKS = {"semantic-segmentation": "semantic-segmentation", "segmentation": "semantic-segmentation",
                "image-classification": "classification", "classification": "classification",
                "object-detection": "object-detection", "depth-estimation": "regression"}
_EIGHT_BIT = 255.0


def foreign_spec(model_path: str | Path) -> dict[str, Any]:
    """Spec fields from GeoDeep/Deepness ONNX metadata and a geoai side-car, where the model has them."""
    path = Path(model_path)
    spec = _geodeep(path) if path.suffix.lower() == ".onnx" else {}
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        spec.update(_geoai(sidecar))
    return spec


def _json_values(path: Path) -> dict[str, Any]:
    """The ONNX file's metadata_props, each value parsed as JSON where it is JSON."""
    try:
        props = onnx.load(str(path), load_external_data=False).metadata_props
    except Exception:  # not an ONNX file: describe says so when it reads the graph
        return {}
    values = {}
    for entry in props:
        try:
            values[entry.key] = json.loads(entry.value)
        except ValueError:
            values[entry.key] = entry.value
    return values


def _classes(names: Any) -> list[dict]:
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict):
        return []
    try:
        return [{"value": int(value), "name": str(name)} for value, name in sorted(names.items(), key=lambda e: int(e[0]))]
    except (TypeError, ValueError):
        return []


def _geodeep(path: Path) -> dict[str, Any]:
    meta = _json_values(path)
    task = _GEODEEP_TASKS.get(str(meta.get("model_type", "")).lower())
    if task is None:
        return {}
    spec: dict[str, Any] = {"tasks": [task]}
    classes = _classes(meta.get("class_names"))
    if classes:
        spec["classes"] = classes
    layout = _GEODEEP_LAYOUTS.get(str(meta.get("det_type", "")).lower())
    if task == "object-detection" and layout:
        spec["detection_layout"] = layout
    thresholds = {"score_threshold": meta.get("det_conf"), "iou_threshold": meta.get("det_iou_thresh")}
    thresholds = {key: float(value) for key, value in thresholds.items() if isinstance(value, (int, float))}
    if thresholds:
        spec["hyperparameters"] = thresholds
    if isinstance(meta.get("resolution"), (int, float)) and meta["resolution"] > 0:
        spec["extra_properties"] = {"gsd": meta["resolution"] / 100}  # centimetres per pixel -> metres
    spec["value_scaling"] = _eight_bit_scaling(meta.get("standardization_mean"), meta.get("standardization_std"))
    return spec


def _eight_bit_scaling(mean: Any, std: Any) -> list[dict]:
    """GeoDeep divides 8-bit RGB by 255 (then standardises, when the model says so): as MLM value_scaling."""
    if isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) and mean:
        return [{"type": "z-score", "mean": float(m) * _EIGHT_BIT, "stddev": float(s) * _EIGHT_BIT}
                for m, s in zip(mean, std)]
    return [{"type": "scale", "value": _EIGHT_BIT}]


def _geoai(sidecar: Path) -> dict[str, Any]:
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(meta, dict):
        return {}
    spec: dict[str, Any] = {}
    task = _GEOAI_TASKS.get(str(meta.get("task", "")).lower())
    if task:
        spec["tasks"] = [task]
    size = [meta.get(key) for key in ("input_channels", "input_height", "input_width")]
    if all(isinstance(value, int) and value > 0 for value in size):
        spec["input_shape"] = [-1, *size]
    classes = _classes(meta.get("id2label"))
    if classes:
        spec["classes"] = classes
    if isinstance(meta.get("model_name"), str):
        spec.update(pretrained=True, pretrained_source=meta["model_name"])
    return spec
