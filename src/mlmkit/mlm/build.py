"""Build the MLM v1.5.2 Item of a model file (ONNX, TorchScript, ExportedProgram) from the `mlm.spec` objects.

`describe` (an existing model) and `train` (a model it just exported) both end here, so every
model mlmkit hands out carries shapes, data types and checksums read from the file itself;
`mlmkit.catalog.model_catalog` writes the Item as a self-contained, validated STAC catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pystac
from pystac.utils import str_to_datetime

from mlmkit.runtimes.artifacts import ArtifactKind, declared_kind
from mlmkit.stac.bands import EO_SCHEMA_URL, RASTER_SCHEMA_URL, eo_band_fields, raster_bands
from mlmkit.stac.checksum import file_checksum
from mlmkit.errors import InvalidMetadata, NotFound
from mlmkit.mlm.spec import (MLM_SCHEMA_URL, OCI_MEDIA_TYPE, Band, ModelClass, ModelInput, ModelOutput, ModelSpec,
                             ProcessingExpression, ValueScaling)
from mlmkit.mlm.shapes import DETECTION_TASK, layout_objectness
from mlmkit.runtimes.info import ModelFileInfo, read_model_file
from mlmkit.runtimes.base import TensorInfo
from mlmkit.runtimes.registry import runtime_for

FILE_SCHEMA_URL = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
CLASSIFICATION_SCHEMA_URL = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
PROCESSING_SCHEMA_URL = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
SCIENTIFIC_SCHEMA_URL = "https://stac-extensions.github.io/scientific/v1.0.0/schema.json"
VERSION_SCHEMA_URL = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
WORLD_BBOX = (-180.0, -90.0, 180.0, 90.0)
_HEX_COLOUR = re.compile(r"[0-9A-Fa-f]{6}")
_DIM_NAME = re.compile(r"[a-z-_]+")  # the MLM schema's pattern for dim_order names
# The MLM spelling of well-known frameworks (the schema's enum); others pass through.
_FRAMEWORKS = {name.lower(): name for name in ("PyTorch", "TensorFlow", "scikit-learn", "Keras", "ONNX", "JAX")}
_INPUT_DIMS = {2: ("batch", "bands"), 3: ("bands", "height", "width"), 4: ("batch", "bands", "height", "width"),
               5: ("batch", "time", "bands", "height", "width")}
_OUTPUT_DIMS = {1: ("class",), 2: ("batch", "class"), 3: ("batch", "height", "width"),
                4: ("batch", "class", "height", "width")}
_PIXEL_OUTPUT_DIMS = {1: ("batch",), 2: ("batch", "class")}  # ONNX-ML classifiers: label [batch], probabilities
# Item properties build_model_item writes from ModelMetadata fields (besides mlm:, sci: and processing: ones)
_BUILT_PROPERTIES = ("description", "keywords", "license", "eo:bands", "version", "experimental", "datetime",
                     "start_datetime", "end_datetime")


@dataclass
class ModelMetadata:
    """What the model file cannot tell: names, bands, scaling, classes, extent, license.

    Value scaling, classes and the post-processing function are the MLM objects of `mlm.spec` (the ones
    `read_model` reads); JSON-like dicts given for them (a describe spec) are read into those objects."""

    id: str
    name: str
    architecture: str
    tasks: list[str]
    bands: list[dict] = field(default_factory=list)
    value_scaling: tuple[ValueScaling, ...] | None = None
    classes: tuple[ModelClass, ...] = ()
    bbox: list[float] = field(default_factory=lambda: list(WORLD_BBOX))
    geometry: dict | None = None
    start_datetime: str | datetime | None = "1900-01-01T00:00:00Z"
    end_datetime: str | datetime | None = "9999-12-31T23:59:59Z"
    license: str = "proprietary"
    framework: str | None = None            # default: ONNX or PyTorch, from the model file
    framework_version: str | None = None
    accelerator: str | None = "amd64"
    hyperparameters: dict | None = None
    pretrained: bool = False
    pretrained_source: str | None = None
    input_name: str | None = None
    output_name: str | None = None
    resize_type: str | None = None
    description: str | None = None
    keywords: list[str] = field(default_factory=list)
    extra_properties: dict[str, Any] = field(default_factory=dict)
    input_dim_order: list[str] | None = None
    output_dim_order: list[str] | None = None
    input_shape: list[int] | None = None    # TorchScript/AOTInductor: the shape; ONNX: fixes dynamic dims
    input_data_type: str = "float32"
    processing_level: str | None = None    # product level of the imagery the model expects, e.g. L1C, L2A
    processing_lineage: str | None = None  # how that imagery was processed before the model's own scaling
    source_code: str | None = None         # URL of the model's code: a repository at a tag/commit, or a script
    entrypoint: str | None = None          # mlm:entrypoint in that code, e.g. package.module:predict
    container: str | None = None           # image that runs the model: REGISTRY/IMAGE:TAG or IMAGE@sha256:...
    citation: str | None = None            # sci:citation, how to cite the model
    doi: str | None = None                 # sci:doi of the model's own publication
    publications: list[dict] = field(default_factory=list)  # sci:publications [{doi, citation}], e.g. the architecture's
    version: str | None = None             # the model's version (version extension)
    experimental: bool | None = None       # a model for trials or teaching, not for production
    post_processing: ProcessingExpression | None = None  # the described output's post_processing_function
    detection_layout: str | None = None    # a YOLO tensor's per-box values, e.g. cxcywh-class, cxcywh-obj-class

    def __post_init__(self) -> None:
        if self.value_scaling is not None:
            self.value_scaling = tuple(_value_scaling(entry, index) for index, entry in enumerate(self.value_scaling))
        self.classes = tuple(_model_class(entry) for entry in self.classes)
        if self.post_processing is not None:
            self.post_processing = _post_processing(self.post_processing)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ModelMetadata:
        """The metadata an MLM Item (read by `read_model`) was built from, to build it again for its model file
        (the file's own shapes stand: no input_shape). Its first input and, when it has one, its only output."""
        item, props = spec.item, spec.item.properties
        model_input = spec.inputs[0]
        output = spec.outputs[0] if len(spec.outputs) == 1 else None
        common = item.common_metadata
        start, end = common.start_datetime, common.end_datetime
        source_code = next((a for a in item.assets.values() if "mlm:source_code" in (a.roles or [])), None)
        container = next((a for a in item.assets.values() if "mlm:container" in (a.roles or [])), None)
        return cls(
            id=item.id, name=spec.name, architecture=spec.architecture or "", tasks=list(spec.tasks),
            bands=[{"name": band.name, **spec.band_info.get(band.name, {})} for band in model_input.bands],
            value_scaling=model_input.value_scaling, classes=output.classes if output else (),
            bbox=list(item.bbox or WORLD_BBOX), geometry=item.geometry,
            start_datetime=start if start and end else item.datetime, end_datetime=end if start and end else None,
            license=props.get("license", "proprietary"), framework=spec.framework,
            framework_version=spec.framework_version, accelerator=spec.accelerator,
            hyperparameters=props.get("mlm:hyperparameters"), pretrained=bool(props.get("mlm:pretrained", False)),
            pretrained_source=props.get("mlm:pretrained_source"), input_name=model_input.name,
            output_name=output.name if output else None, resize_type=model_input.resize_type,
            description=props.get("description"), keywords=list(props.get("keywords") or []),
            extra_properties={key: value for key, value in props.items() if key not in _BUILT_PROPERTIES
                              and not key.startswith(("mlm:", "sci:", "processing:"))},
            input_dim_order=list(model_input.dim_order), output_dim_order=list(output.dim_order) if output else None,
            input_data_type=model_input.data_type, processing_level=props.get("processing:level"),
            processing_lineage=props.get("processing:lineage"),
            source_code=source_code.href if source_code else None,
            entrypoint=source_code.extra_fields.get("mlm:entrypoint") if source_code else None,
            container=container.href if container else None, citation=props.get("sci:citation"),
            doi=props.get("sci:doi"), publications=list(props.get("sci:publications") or []),
            version=props.get("version"), experimental=props.get("experimental"),
            post_processing=output.post_processing_function[0] if output and output.post_processing_function else None,
        )


def _pick(tensors: tuple[TensorInfo, ...], name: str | None, kind: str) -> TensorInfo:
    if name is not None:
        for tensor in tensors:
            if tensor.name == name:
                return tensor
        raise InvalidMetadata(f"the model has no {kind} named {name!r}; expected one of {[t.name for t in tensors]}")
    if len(tensors) != 1:
        raise InvalidMetadata(f"the model has {len(tensors)} {kind}s {[t.name for t in tensors]}; "
                              f"expected one, or {kind}_name naming the one to describe")
    return tensors[0]


def _dim_order(tensor: TensorInfo, given: list[str] | None, defaults: dict, kind: str, has_bands: bool) -> list[str]:
    if given is not None:
        order = list(given)
    elif len(tensor.shape) in defaults:
        order = list(defaults[len(tensor.shape)])
    else:
        raise InvalidMetadata(f"cannot infer the dim_order of the {len(tensor.shape)}-D {kind} {tensor.name!r}; "
                              f"expected {kind}_dim_order to be given")
    if len(order) != len(tensor.shape):
        raise InvalidMetadata(f"{kind}_dim_order {order} names {len(order)} dims but {tensor.name!r} has shape "
                              f"{list(tensor.shape)}; expected one name per dimension")
    if not has_bands:  # MLM forbids a `bands` dim when no bands are listed
        order = ["channel" if dim == "bands" else dim for dim in order]
    return order


def _color_hex(value: Any) -> str | None:
    """`classification` wants RRGGBB; accept [r, g, b] and '#rrggbb' too."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return "".join(f"{int(c):02X}" for c in value)
    text = str(value).lstrip("#")
    if not _HEX_COLOUR.fullmatch(text):
        raise InvalidMetadata(f"color_hint {value!r} is not a colour; expected RRGGBB hex (quoted in YAML) or "
                              "[r, g, b]")
    return text.upper()


def _model_class(entry: ModelClass | dict) -> ModelClass:
    """A class as MLM's classification extension wants it: an integer value, a name, a description (the name
    when none is given) and an RRGGBB colour."""
    if isinstance(entry, ModelClass):
        entry = entry.to_dict()
    if not isinstance(entry, dict) or "value" not in entry or "name" not in entry:
        raise InvalidMetadata(f"class {entry!r} needs a value and a name; expected {{value, name, description?, "
                              "color_hint?}}")
    try:
        value = int(entry["value"])
    except (TypeError, ValueError) as exc:
        raise InvalidMetadata(f"class value {entry['value']!r} is not a number; expected an integer") from exc
    return ModelClass(value=value, name=str(entry["name"]), description=str(entry.get("description") or entry["name"]),
                      color_hint=_color_hex(entry.get("color_hint")), nodata=bool(entry.get("nodata", False)))


def _value_scaling(entry: ValueScaling | dict, index: int) -> ValueScaling:
    """One value_scaling object; a field MLM does not define is refused, not dropped."""
    if isinstance(entry, ValueScaling):
        return entry
    unknown = sorted(set(entry) - set(ValueScaling.__dataclass_fields__)) if isinstance(entry, dict) else []
    if unknown:
        raise InvalidMetadata(f"value_scaling[{index}] has unknown fields {unknown}; expected type and some of "
                              f"{[name for name in ValueScaling.__dataclass_fields__ if name != 'type']}")
    return ValueScaling.from_dict(entry, "value_scaling")


def _check_layout_name(name: str | None) -> None:
    if name is not None and (not _DIM_NAME.fullmatch(name) or layout_objectness(name) is None):
        raise InvalidMetadata(f"detection_layout {name!r} does not name a YOLO layout; expected a box format and "
                              "'class' joined by '-' (dim names match ^[a-z-_]+$), e.g. cxcywh-class (4 + K values "
                              "per box) or cxcywh-obj-class (5 + K, with an objectness score)")


def _static_size(tensor: ModelInput | ModelOutput, dim: str) -> int | None:
    """Size of the named dimension when the graph fixes it."""
    size = tensor.shape[tensor.dim_order.index(dim)] if dim in tensor.dim_order else -1
    return size if size > 0 else None


def _check_counts(meta: ModelMetadata, model_input: ModelInput, outputs: list[ModelOutput]) -> None:
    """Catch metadata that contradicts the graph before it becomes an Item."""
    channels = _static_size(model_input, "bands")
    if meta.bands and channels is not None and channels != len(meta.bands):
        raise InvalidMetadata(f"{len(meta.bands)} bands given but the model input {model_input.name!r} has "
                              f"{channels} channels; expected one band per channel")
    n_scaling = len(meta.value_scaling or [])
    per_channel = len(meta.bands) or channels or _static_size(model_input, "channel")
    if n_scaling > 1 and per_channel is not None and n_scaling != per_channel:
        unit = "bands" if meta.bands else "channels"
        raise InvalidMetadata(f"{n_scaling} value_scaling entries for {per_channel} {unit}; "
                              f"expected one, or one per {unit[:-1]}")
    for output in outputs:
        scores = _static_size(output, "class")
        if meta.classes and scores not in (None, 1, len(meta.classes)):
            raise InvalidMetadata(f"{len(meta.classes)} classes given but the model output {output.name!r} has "
                                  f"{scores} class scores; expected one class per score")


def _described_outputs(graph: ModelFileInfo, meta: ModelMetadata) -> list[TensorInfo]:
    """The output named, the only one, or every output of an ONNX-ML classifier (label and probabilities)."""
    if meta.output_name is None and graph.onnx_ml and len(graph.outputs) > 1:
        return list(graph.outputs)
    return [_pick(graph.outputs, meta.output_name, "output")]


def _yolo_dims(tensor: TensorInfo, meta: ModelMetadata) -> list[str] | None:
    """[batch, per-box values, detection] for a rank-3 object-detection output (the two swapped when the file
    shows more values on axis 1), its values named by detection_layout, else `cxcywh-class` when the file's
    sizes fit 4 + K and no other layout, else `values` (then lint asks for the layout)."""
    if DETECTION_TASK not in meta.tasks or len(tensor.shape) != 3:
        return None
    first, second = tensor.shape[1:]
    swapped = (first > 0 and second > 0 and first > second) or (first < 0 < second)
    width = second if swapped else first
    classes = len(meta.classes)
    if meta.detection_layout:
        name = meta.detection_layout
    elif classes and width == classes + 4:
        name = "cxcywh-class"
    else:
        name = "values"
    return ["batch", "detection", name] if swapped else ["batch", name, "detection"]


def _post_processing(value: ProcessingExpression | dict | str) -> ProcessingExpression:
    if isinstance(value, ProcessingExpression):
        return value
    if isinstance(value, str):
        return ProcessingExpression(format="gdal-calc", expression=value)
    if not isinstance(value, dict) or not {"format", "expression"} <= value.keys():
        raise InvalidMetadata(f"post_processing {value!r} is not an expression; expected {{format, expression}} "
                              "or a gdal-calc expression such as 'A > 0.3'")
    return ProcessingExpression.from_dict(value, "post_processing")


def _mlm_output(tensor: TensorInfo, meta: ModelMetadata, defaults: dict, given: list[str] | None) -> ModelOutput:
    return ModelOutput(
        name=tensor.name, shape=tuple(tensor.shape),
        dim_order=tuple(_dim_order(tensor, given or _yolo_dims(tensor, meta), defaults, "output", False)),
        data_type=tensor.data_type, tasks=tuple(meta.tasks), classes=meta.classes,
        post_processing_function=(meta.post_processing,) if meta.post_processing is not None else (),
    )


def _mlm_io(graph: ModelFileInfo, meta: ModelMetadata) -> tuple[ModelInput, list[ModelOutput]]:
    tensor_in = _pick(graph.inputs, meta.input_name, "input")
    tensors_out = _described_outputs(graph, meta)
    model_input = ModelInput(
        name=tensor_in.name, description=_input_description(meta),
        bands=tuple(Band(name=band["name"]) for band in meta.bands), shape=tuple(tensor_in.shape),
        dim_order=tuple(_dim_order(tensor_in, meta.input_dim_order, _INPUT_DIMS, "input", bool(meta.bands))),
        data_type=tensor_in.data_type, value_scaling=meta.value_scaling, resize_type=meta.resize_type,
    )
    defaults = _PIXEL_OUTPUT_DIMS if graph.onnx_ml else _OUTPUT_DIMS
    given = meta.output_dim_order if len(tensors_out) == 1 else None
    outputs = [_mlm_output(tensor, meta, defaults, given) for tensor in tensors_out]
    _check_counts(meta, model_input, outputs)
    return model_input, outputs


def _input_description(meta: ModelMetadata) -> str | None:
    parts = [part for part in (meta.processing_level and f"{meta.processing_level} imagery",
                               meta.processing_lineage) if part]
    return ": ".join(parts) or None


def _datetime(value: str | datetime | None, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return str_to_datetime(value)
    except ValueError as exc:
        raise InvalidMetadata(f"{name} {value!r} is not a date-time; expected ISO 8601 like 2020-01-01T00:00:00Z") \
            from exc


def _geometry(meta: ModelMetadata) -> dict:
    if meta.geometry is not None:
        return meta.geometry
    if len(meta.bbox) != 4:
        raise InvalidMetadata(f"bbox {meta.bbox} must have 4 numbers; expected [west, south, east, north]")
    west, south, east, north = map(float, meta.bbox)
    return {"type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]}


def _framework(given: str | None, kind: ArtifactKind) -> str:
    if given is None:
        return runtime_for(kind).framework
    return _FRAMEWORKS.get(given.lower(), given)


def _mlm_properties(graph: ModelFileInfo, meta: ModelMetadata) -> dict:
    model_input, outputs = _mlm_io(graph, meta)
    props: dict[str, Any] = {
        "mlm:name": meta.name,
        "mlm:architecture": meta.architecture,
        "mlm:tasks": list(meta.tasks),
        "mlm:framework": _framework(meta.framework, graph.kind),
        "mlm:accelerator": meta.accelerator,
        "mlm:accelerator_constrained": False,
        "mlm:pretrained": meta.pretrained,
        "mlm:pretrained_source": meta.pretrained_source if meta.pretrained else None,
        "mlm:input": [model_input.to_dict()],
        "mlm:output": [output.to_dict() for output in outputs],
    }
    if graph.total_parameters is not None:
        props.update({"mlm:total_parameters": graph.total_parameters, "mlm:memory_size": graph.memory_size})
    if meta.framework_version:
        props["mlm:framework_version"] = meta.framework_version
    if meta.hyperparameters:
        props["mlm:hyperparameters"] = dict(meta.hyperparameters)
    return props


def described_kind(model_path: Path) -> ArtifactKind:
    """By extension; a file that is neither a PyTorch archive nor a pickle is read as ONNX."""
    return declared_kind(str(model_path), None, None) or ArtifactKind.ONNX


def read_described_file(model_path: Path, meta: ModelMetadata) -> ModelFileInfo:
    """The model file's own description; a declared input shape stands in where the file records none, and
    fixes an ONNX input's dynamic dimensions (checked by running the model once)."""
    declared = [TensorInfo(meta.input_name or "input", tuple(meta.input_shape), meta.input_data_type)] \
        if meta.input_shape else None
    # the user describes a file of their own: loading an AOTInductor package's native code is theirs to trust
    info = read_model_file(model_path, described_kind(model_path), declared, allow_native_code=True)
    if meta.input_shape:
        name = _pick(info.inputs, meta.input_name, "input").name
        info = runtime_for(info.kind).with_input_shape(model_path, info, name, meta.input_shape)
    return info


def model_asset(model_path: Path, meta: ModelMetadata, kind: ArtifactKind,
                file_fields: dict | None = None) -> pystac.Asset:
    """An mlm:model asset for a model file; an Item may hold several, one per format of the same model.
    `file_fields` (file:size, file:checksum) stand in for reading them from a file that is not at hand."""
    return pystac.Asset(href=str(Path(model_path).absolute()), media_type=kind.media_type,
                        title=f"{meta.name} ({kind.label})", roles=["mlm:model", "mlm:compiled"],
                        extra_fields=_model_asset_fields(Path(model_path), meta, kind, file_fields))


def build_model_item(model_path: Path, meta: ModelMetadata, graph: ModelFileInfo | None = None) -> pystac.Item:
    """An MLM Item whose inputs, outputs and file fields come from the model file at `model_path` (`graph`: what
    `read_described_file` read from it, when the caller has it already)."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise NotFound(f"model {model_path} does not exist; expected an ONNX, TorchScript or .pt2 file")
    _check_layout_name(meta.detection_layout)
    graph = graph or read_described_file(model_path, meta)
    return item_for_model(graph, meta, model_asset(model_path, meta, graph.kind))


def item_for_model(graph: ModelFileInfo, meta: ModelMetadata, asset: pystac.Asset) -> pystac.Item:
    """The MLM Item of a model file read before (`graph`), with `asset` as its model asset: the describe form
    checks metadata as it is typed from what the file declared, without the file."""
    stray = sorted(key for key in meta.extra_properties if key.startswith("mlm:"))
    if stray:
        raise InvalidMetadata(f"extra_properties {stray} use the mlm: prefix; expected ModelMetadata fields for MLM "
                              "keys")
    _check_layout_name(meta.detection_layout)
    props: dict[str, Any] = {}
    if meta.description:
        props["description"] = meta.description
    if meta.keywords:
        props["keywords"] = list(meta.keywords)
    props["license"] = meta.license
    props.update(meta.extra_properties)
    props.update(_mlm_properties(graph, meta))
    extensions = [MLM_SCHEMA_URL, FILE_SCHEMA_URL]
    if meta.bands:
        props["eo:bands"] = [eo_band_fields(band) for band in meta.bands]
        extensions.append(EO_SCHEMA_URL)
    if raster_bands(meta.bands):
        extensions.append(RASTER_SCHEMA_URL)
    if meta.classes:
        extensions.append(CLASSIFICATION_SCHEMA_URL)
    extensions += _context_properties(meta, props)
    start, end = _datetime(meta.start_datetime, "start_datetime"), _datetime(meta.end_datetime, "end_datetime")
    item = pystac.Item(
        id=meta.id, geometry=_geometry(meta), bbox=[float(v) for v in meta.bbox],
        datetime=None if start and end else (start or end or datetime.now().astimezone()),
        start_datetime=start if start and end else None, end_datetime=end if start and end else None,
        properties=props, stac_extensions=extensions,
    )
    item.add_asset("model", asset)
    _add_side_car_assets(item, meta)
    return item


def _context_properties(meta: ModelMetadata, props: dict) -> list[str]:
    """What the model expects as input product, how to cite it, its version: fields and their extensions."""
    extensions = []
    processing = {"processing:level": meta.processing_level, "processing:lineage": meta.processing_lineage}
    if any(processing.values()):
        props.update({key: value for key, value in processing.items() if value})
        extensions.append(PROCESSING_SCHEMA_URL)
    science = {"sci:doi": meta.doi, "sci:citation": meta.citation, "sci:publications": meta.publications or None}
    if any(science.values()):
        props.update({key: value for key, value in science.items() if value})
        extensions.append(SCIENTIFIC_SCHEMA_URL)
    if meta.version is not None or meta.experimental is not None:
        props.update({key: value for key, value in (("version", meta.version), ("experimental", meta.experimental))
                      if value is not None})
        extensions.append(VERSION_SCHEMA_URL)
    return extensions


def model_asset_bands(meta: ModelMetadata) -> dict:
    """The band lists an asset holding the model carries: eo:bands, and raster:bands when known."""
    fields: dict[str, Any] = {}
    if meta.bands:  # eo v1.1.0 allows item-level eo:bands only when an asset has them too
        fields["eo:bands"] = [eo_band_fields(band) for band in meta.bands]
    raster = raster_bands(meta.bands)
    if raster:  # MLM reads band nodata, type, scale and offset from the model asset's raster:bands
        fields["raster:bands"] = raster
    return fields


def file_fields(path: Path) -> dict:
    """The file extension's fields of a file: its size and multihash checksum."""
    return {"file:size": path.stat().st_size, "file:checksum": file_checksum(path)}


def _model_asset_fields(model_path: Path, meta: ModelMetadata, kind: ArtifactKind, given: dict | None) -> dict:
    return {"mlm:artifact_type": kind.value, **(given or file_fields(model_path)), **model_asset_bands(meta)}


def _add_side_car_assets(item: pystac.Item, meta: ModelMetadata) -> None:
    """The MLM side-car assets: the model's source code and the container image that runs it."""
    if meta.source_code:
        fields = {"mlm:entrypoint": meta.entrypoint} if meta.entrypoint else {}
        item.add_asset("source-code", pystac.Asset(
            href=meta.source_code, title=f"Source code of {meta.name}",
            media_type="text/x-python" if meta.source_code.endswith(".py") else "text/html",
            roles=["mlm:source_code", "code", "metadata"], extra_fields=fields))
    elif meta.entrypoint:
        raise InvalidMetadata(f"entrypoint {meta.entrypoint!r} given without source_code; expected the code's URL "
                              "too")
    if meta.container:
        item.add_asset("container", pystac.Asset(
            href=meta.container, title=f"Container image that runs {meta.name}", media_type=OCI_MEDIA_TYPE,
            roles=["mlm:container", "runtime"]))
