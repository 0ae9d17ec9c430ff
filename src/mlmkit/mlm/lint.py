"""Metadata that is valid but probably wrong: the mistakes that make a model give a confident wrong answer.

A schema cannot see that `value_scaling` `scale` 0.0001 multiplies Sentinel-2 digital numbers by 10 000 (MLM's
`scale` divides, raster's `scale` multiplies), that a YOLO tensor of 22 values per box with 17 classes listed
is also 4 + 18 classes, or that a graph holding weights in Constant nodes does not have 0 parameters. Each rule
here is a pure function of the Item (as `ModelSpec`) and, where given, of what the model file declares; each
finding names the field (JSON path) and the likely fix. `validate` reports them as warnings, `describe` runs
them before it writes, `predict` before it runs (`enforce`): a refusal stops both, a warning is said.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mlmkit.errors import InvalidInput, InvalidMetadata, MetadataWarning, warn
from mlmkit.mlm.shapes import (DETECTION_TASK, detection_layout, detection_outputs, stated_objectness,
                               yolo_attribute_axis, yolo_objectness)
from mlmkit.mlm.spec import DimRole, ModelInput, ModelOutput, ModelSpec, ValueScaling
from mlmkit.runtimes.info import ModelFileInfo
from mlmkit.runtimes.onnx_info import TensorInfo
from mlmkit.stac.read import json_path

PIXEL_TASKS = {"segmentation", "semantic-segmentation", "instance-segmentation", "panoptic-segmentation"}
_UNSIGNED_MAX = {"uint8": 255, "uint16": 65535, "uint32": 4294967295}
_FLOATS = {"float16", "float32", "float64"}


@dataclass(frozen=True)
class LintFinding:
    """One field that is probably wrong: where (JSON path), why and the likely fix, and whether a run with it
    would be wrong for certain (`refuse`) rather than only suspicious."""

    path: str
    message: str
    refuse: bool = False


def lint_model(spec: ModelSpec, model: ModelFileInfo | None = None) -> list[LintFinding]:
    """Every rule over an MLM Item; `model`: what its model file declares, when it is at hand."""
    return [*_scaling_findings(spec), *_detection_findings(spec, model), *_dim_findings(spec),
            *_parameter_findings(spec, model), *_class_findings(spec)]


def enforce(findings: list[LintFinding], what: str) -> None:
    """Refuse on the first refusal (one line naming the field), else say each warning (MetadataWarning)."""
    refused = [finding for finding in findings if finding.refuse]
    if refused:
        raise InvalidMetadata(f"{what}: {refused[0].path}: {refused[0].message}")
    for finding in findings:
        warn(f"{what}: {finding.path}: {finding.message}", MetadataWarning)


# --- value_scaling -------------------------------------------------------------------------------------------

def _source_type(spec: ModelSpec, model_input: ModelInput) -> str | None:
    """The data type the imagery stores the input's bands in (raster `data_type` of the band definitions)."""
    types = {spec.band_info.get(band.name, {}).get("data_type") for band in model_input.bands if not band.is_derived}
    types.discard(None)
    return types.pop() if len(types) == 1 else None


def _raster_scales(spec: ModelSpec, model_input: ModelInput) -> set[float]:
    return {float(scale) for band in model_input.bands
            if isinstance(scale := spec.band_info.get(band.name, {}).get("scale"), (int, float))}


def _scaling_message(scaling: ValueScaling, dtype: str | None, raster_scales: set[float]) -> tuple[str, str] | None:
    """(field, message) for one value_scaling entry that looks inverted for the imagery's data type and range."""
    data = f"{dtype} data" if dtype else "the imagery's values"
    top = _UNSIGNED_MAX.get(dtype or "")
    if scaling.type == "scale" and scaling.value is not None and 0 < scaling.value < 1 and dtype not in _FLOATS:
        value, inverse = scaling.value, 1 / scaling.value
        same = (f"; raster:bands scale {value:g} multiplies (DN × scale), value_scaling scale divides"
                if any(abs(scale - value) <= 1e-12 for scale in raster_scales) else "")
        return "value", (f"value_scaling scale {value:g} divides (x / {value:g} = x × {inverse:g}), which makes "
                         f"{data} {inverse:g} times larger{same}; expected value {inverse:g} if the model takes "
                         f"x × {value:g}")
    if scaling.type == "offset" and scaling.value is not None and scaling.value < 0 and top:
        value = scaling.value
        return "value", (f"value_scaling offset {value:g} subtracts (x - ({value:g}) = x + {-value:g}) from {data}, "
                         f"which holds no negative values; expected value {-value:g} if the model takes "
                         f"x - {-value:g} (Sentinel-2 L2A's BOA_ADD_OFFSET -1000 is written value: 1000)")
    if scaling.type == "min-max" and scaling.maximum is not None and top and scaling.maximum <= 1:
        return "maximum", (f"value_scaling min-max maximum {scaling.maximum:g} is below one step of {data} "
                           f"(0 to {top}), so every value above it ends above 1; expected the range in the "
                           "imagery's own values (e.g. maximum 10000 for reflectance x 10000, 255 for 8-bit images)")
    if scaling.type == "z-score" and top and None not in (scaling.mean, scaling.stddev) \
            and abs(scaling.mean) <= 1 and 0 < scaling.stddev <= 1:
        return "mean", (f"value_scaling z-score mean {scaling.mean:g} and stddev {scaling.stddev:g} are statistics "
                        f"of values in 0..1, but the input is {data} (0 to {top}); expected them in the imagery's "
                        f"own values (for statistics of x / {top}: mean {scaling.mean * top:g}, stddev "
                        f"{scaling.stddev * top:g})")
    return None


def _scaling_findings(spec: ModelSpec) -> Iterator[LintFinding]:
    for index, model_input in enumerate(spec.inputs):
        dtype, raster_scales = _source_type(spec, model_input), _raster_scales(spec, model_input)
        for position, scaling in enumerate(model_input.value_scaling or ()):
            found = _scaling_message(scaling, dtype, raster_scales)
            if found:
                field, message = found
                yield LintFinding(json_path("properties", "mlm:input", index, "value_scaling", position, field),
                                  message)


# --- object detection ----------------------------------------------------------------------------------------

def _file_tensor(model: ModelFileInfo | None, output: ModelOutput, index: int, count: int) -> TensorInfo | None:
    """The model file's tensor for an MLM output: by name, else by position when the counts agree."""
    if model is None:
        return None
    named = [tensor for tensor in model.outputs if tensor.name == output.name]
    if named:
        return named[0]
    return model.outputs[index] if len(model.outputs) == count else None


def _per_tile_shape(output: ModelOutput, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(size for size, role in zip(shape, output.roles) if role != DimRole.BATCH)


def _yolo_width(output: ModelOutput, tensor: TensorInfo | None, classes: int) -> int | None:
    """The number of values per box of a YOLO tensor, from the Item's shape, else from the model file's."""
    for shape in (output.shape, tensor.shape if tensor is not None else None):
        if shape is None or len(shape) != len(output.dim_order):
            continue
        per_tile = _per_tile_shape(output, tuple(shape))
        if len(per_tile) != 2:
            return None
        axis = yolo_attribute_axis(output, per_tile, classes)
        if axis is not None and per_tile[axis] > 0:
            return per_tile[axis]
    return None


def _detection_findings(spec: ModelSpec, model: ModelFileInfo | None) -> Iterator[LintFinding]:
    indexes = detection_outputs(spec.outputs)
    if not indexes:
        return
    try:
        layout = detection_layout([spec.outputs[i] for i in indexes])
    except InvalidInput:  # `semantic` reports outputs that fit no layout
        return
    if layout.yolo is None:
        return
    index = indexes[layout.yolo]
    output = spec.outputs[index]
    classes = len([c for c in output.classes if not c.nodata])
    width = _yolo_width(output, _file_tensor(model, output, index, len(spec.outputs)), classes)
    where = json_path("properties", "mlm:output", index, "result", "dim_order")
    if width is None:
        if stated_objectness(output) is None:
            yield LintFinding(where, "a YOLO tensor whose values per box are not known (dynamic) and whose dim_order "
                                     "does not state its layout; expected a dim named 'cxcywh-class' (4 + K) or "
                                     "'cxcywh-obj-class' (5 + K), so that predict does not have to guess")
        return
    try:
        yolo_objectness(output, width, classes)
    except InvalidMetadata as exc:
        yield LintFinding(where, str(exc), refuse=True)


# --- dimension names -----------------------------------------------------------------------------------------

def _dim_findings(spec: ModelSpec) -> Iterator[LintFinding]:
    for index, output in enumerate(spec.outputs):
        where = json_path("properties", "mlm:output", index, "result", "dim_order")
        spatial = {DimRole.HEIGHT, DimRole.WIDTH} & set(output.roles)
        if DETECTION_TASK in output.tasks and spatial:
            yield LintFinding(where, f"{list(output.dim_order)} names height/width, but an object-detection output "
                                     "holds boxes, not pixels; expected e.g. [batch, cxcywh-class, detection] "
                                     "(one YOLO tensor) or [detection, xyxy] (a boxes output)")
        elif set(output.tasks) & PIXEL_TASKS and len(output.dim_order) >= 3 and not spatial:
            yield LintFinding(where, f"{list(output.dim_order)} names no height/width, but the tasks "
                                     f"{list(output.tasks)} give a value per pixel; expected e.g. "
                                     "[batch, class, height, width]")


# --- parameters ----------------------------------------------------------------------------------------------

def _parameter_findings(spec: ModelSpec, model: ModelFileInfo | None) -> Iterator[LintFinding]:
    props = spec.item.properties
    held = model.total_parameters if model is not None else None
    for key in ("mlm:total_parameters", "mlm:memory_size"):
        if props.get(key) != 0:
            continue
        found = f"the model file holds {held} weights (initializers and Constant nodes)" if held else \
            "a model with weights has more"
        yield LintFinding(json_path("properties", key),
                          f"is 0, but {found}; expected the count the file holds (mlmkit describe counts them)")


# --- classes -------------------------------------------------------------------------------------------------

def _class_findings(spec: ModelSpec) -> Iterator[LintFinding]:
    for index, output in enumerate(spec.outputs):
        real = [c for c in output.classes if not c.nodata]
        one_score = output.size(DimRole.CLASSES) == 1 and output.data_type in _FLOATS
        if one_score and len(real) > 2 and DETECTION_TASK not in output.tasks:
            yield LintFinding(json_path("properties", "mlm:output", index, "classification:classes"),
                              f"lists {len(real)} classes, but the output has one score channel, which predict "
                              "reads as two classes (score > 0.5 or not); expected 2 classes, or one score per "
                              "class in the class dimension")
