"""Tiny real ONNX models and MLM metadata for the describe/validate tests (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mlmkit.catalog.model_catalog import write_model_catalog
from mlmkit.mlm.build import ModelMetadata, build_model_item

S2_BANDS = [
    {"name": "B04", "common_name": "red", "center_wavelength": 0.665},
    {"name": "B03", "common_name": "green", "center_wavelength": 0.56},
    {"name": "B02", "common_name": "blue", "center_wavelength": 0.49},
]
CLASSES = [
    {"value": 0, "name": "background", "color_hint": [0, 0, 0]},
    {"value": 1, "name": "water", "description": "open water", "color_hint": "#0000FF"},
]


def make_segmenter(path: Path, channels: int = 3, classes: int = 2, size: int | None = None,
                   elem_type: int = TensorProto.FLOAT) -> Path:
    """A 1x1 Conv + Softmax: [batch, channels, H, W] -> [batch, classes, H, W]."""
    spatial = [size, size] if size else ["height", "width"]
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(classes, channels, 1, 1)).astype(np.float32), "weight")
    bias = numpy_helper.from_array(np.zeros(classes, np.float32), "bias")
    nodes = [helper.make_node("Conv", ["image", "weight", "bias"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["scores"], axis=1)]
    graph = helper.make_graph(
        nodes, "segmenter",
        [helper.make_tensor_value_info("image", elem_type, ["batch", channels, *spatial])],
        [helper.make_tensor_value_info("scores", elem_type, ["batch", classes, *spatial])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_classifier(path: Path, channels: int = 3, classes: int = 2, size: int = 16) -> Path:
    """Conv + GlobalAveragePool + Flatten + Softmax: [batch, channels, size, size] -> [batch, classes]."""
    rng = np.random.default_rng(1)
    weight = numpy_helper.from_array(rng.normal(size=(classes, channels, 1, 1)).astype(np.float32), "weight")
    nodes = [helper.make_node("Conv", ["image", "weight"], ["logits"]),
             helper.make_node("GlobalAveragePool", ["logits"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("Softmax", ["flat"], ["scores"], axis=1)]
    graph = helper.make_graph(
        nodes, "classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", channels, size, size])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", classes])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def water_metadata(**changes) -> ModelMetadata:
    """Metadata that fits `make_segmenter` with 3 channels and 2 classes."""
    fields = dict(id="water-seg", name="Water segmenter", architecture="1x1 conv", tasks=["semantic-segmentation"],
                  bands=[dict(b) for b in S2_BANDS], classes=[dict(c) for c in CLASSES],
                  value_scaling=[{"type": "scale", "value": 10000}], bbox=[-75.0, 40.0, -74.0, 41.0],
                  license="Apache-2.0")
    fields.update(changes)
    return ModelMetadata(**fields)


def write_water_catalog(tmp_path: Path, **changes) -> Path:
    """A described segmenter: the catalog.json of a valid MLM catalog under tmp_path/catalog."""
    model = make_segmenter(tmp_path / "water.onnx")
    return write_model_catalog(build_model_item(model, water_metadata(**changes)), model, tmp_path / "catalog")


def item_path(catalog: Path) -> Path:
    """The one MLM Item file in a catalog written by write_model_catalog."""
    (path,) = [p for p in catalog.parent.rglob("*.json") if json.loads(p.read_text()).get("type") == "Feature"]
    return path
