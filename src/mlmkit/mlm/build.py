"""Build the MLM v1.5.2 Item of a model file (ONNX, TorchScript, ExportedProgram) and write it as a
self-contained STAC catalog.

`describe` (an existing model) and `train` (a model it just exported) both end here, so every
model mlmkit hands out carries shapes, data types and checksums read from the file itself.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pystac
from pystac.utils import str_to_datetime

from mlmkit.runtimes.artifacts import ArtifactKind, declared_kind, file_kind
from mlmkit.stac.atomic import atomic_output_dir
from mlmkit.stac.bands import EO_SCHEMA_URL, RASTER_SCHEMA_URL, eo_band_fields, raster_bands
from mlmkit.stac.checksum import file_checksum
from mlmkit.stac.classes import class_objects
from mlmkit.errors import InvalidArgument, InvalidInput
from mlmkit.mlm.spec import MLM_SCHEMA_URL, OCI_MEDIA_TYPE
from mlmkit.mlm.shapes import DETECTION_TASK, layout_objectness
from mlmkit.runtimes.info import ModelFileInfo, fix_onnx_input, read_model_file
from mlmkit.runtimes.onnx_info import TensorInfo, read_graph
from mlmkit.stac.safepath import layout_catalog, local_file_inside
from mlmkit.stac.read import is_url
from mlmkit.stac.write import save_catalog
from mlmkit.catalog.validate import validate_source

FILE_SCHEMA_URL = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
CLASSIFICATION_SCHEMA_URL = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
PROCESSING_SCHEMA_URL = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
SCIENTIFIC_SCHEMA_URL = "https://stac-extensions.github.io/scientific/v1.0.0/schema.json"
VERSION_SCHEMA_URL = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
ITEM_ASSETS_SCHEMA_URL = "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json"
CWL_MEDIA_TYPE = "application/cwl+yaml"
RUNTIME_ROLES = ("mlm:training-runtime", "mlm:inference-runtime")
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


@dataclass
class ModelMetadata:
    """What the model file cannot tell: names, bands, scaling, classes, extent, license."""

    id: str
    name: str
    architecture: str
    tasks: list[str]
    bands: list[dict] = field(default_factory=list)
    value_scaling: list[dict] | None = None
    classes: list[dict] = field(default_factory=list)
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
    post_processing: dict | str | None = None  # the described output's post_processing_function ({format, expression})
    detection_layout: str | None = None    # a YOLO tensor's per-box values, e.g. cxcywh-class, cxcywh-obj-class


def _pick(tensors: tuple[TensorInfo, ...], name: str | None, kind: str) -> TensorInfo:
    if name is not None:
        for tensor in tensors:
            if tensor.name == name:
                return tensor
        raise InvalidInput(f"the model has no {kind} named {name!r}; expected one of {[t.name for t in tensors]}")
    if len(tensors) != 1:
        raise InvalidInput(f"the model has {len(tensors)} {kind}s {[t.name for t in tensors]}; "
                           f"expected one, or name the one to describe (--{kind}-name)")
    return tensors[0]


def _dim_order(tensor: TensorInfo, given: list[str] | None, defaults: dict, kind: str, has_bands: bool) -> list[str]:
    if given is not None:
        order = list(given)
    elif len(tensor.shape) in defaults:
        order = list(defaults[len(tensor.shape)])
    else:
        raise InvalidInput(f"cannot infer the dim_order of the {len(tensor.shape)}-D {kind} {tensor.name!r}; "
                           f"expected a {kind} dim order to be given")
    if len(order) != len(tensor.shape):
        raise InvalidInput(f"{kind} dim_order {order} names {len(order)} dims but {tensor.name!r} has shape "
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
        raise InvalidInput(f"color_hint {value!r} is not a colour; expected RRGGBB hex (quoted in YAML) or [r, g, b]")
    return text.upper()


def _classes(classes: list[dict]) -> list[dict]:
    given = []
    for entry in classes:
        if "value" not in entry or "name" not in entry:
            raise InvalidInput(f"class {entry!r} needs a value and a name; "
                               "expected {value, name, title?, description?, color_hint?}")
        given.append({"value": int(entry["value"]), "name": str(entry["name"]), "title": entry.get("title"),
                      "description": entry.get("description"), "color_hint": _color_hex(entry.get("color_hint"))})
    return class_objects(given, "classes", InvalidArgument)


def _static_size(structure: dict, dim: str) -> int | None:
    """Size of the named dimension when the graph fixes it."""
    order = structure["dim_order"]
    size = structure["shape"][order.index(dim)] if dim in order else -1
    return size if size > 0 else None


def _check_layout_name(name: str | None) -> None:
    if name is not None and (not _DIM_NAME.fullmatch(name) or layout_objectness(name) is None):
        raise InvalidInput(f"detection_layout {name!r} does not name a YOLO layout; expected a box format and "
                           "'class' joined by '-' (dim names match ^[a-z-_]+$), e.g. cxcywh-class (4 + K values per "
                           "box) or cxcywh-obj-class (5 + K, with an objectness score)")


def _check_counts(meta: ModelMetadata, model_input: dict, outputs: list[dict]) -> None:
    """Catch metadata that contradicts the graph before it becomes an Item."""
    channels = _static_size(model_input["input"], "bands")
    if meta.bands and channels is not None and channels != len(meta.bands):
        raise InvalidInput(f"{len(meta.bands)} bands given but the model input {model_input['name']!r} has "
                           f"{channels} channels; expected one band per channel")
    n_scaling = len(meta.value_scaling or [])
    per_channel = len(meta.bands) or channels or _static_size(model_input["input"], "channel")
    if n_scaling > 1 and per_channel is not None and n_scaling != per_channel:
        unit = "bands" if meta.bands else "channels"
        raise InvalidInput(f"{n_scaling} value_scaling entries for {per_channel} {unit}; "
                           f"expected one, or one per {unit[:-1]}")
    for output in outputs:
        scores = _static_size(output["result"], "class")
        if meta.classes and scores not in (None, 1, len(meta.classes)):
            raise InvalidInput(f"{len(meta.classes)} classes given but the model output {output['name']!r} has "
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


def _post_processing(value: dict | str) -> dict:
    if isinstance(value, str):
        return {"format": "gdal-calc", "expression": value}
    if not isinstance(value, dict) or not {"format", "expression"} <= value.keys():
        raise InvalidInput(f"post_processing {value!r} is not an expression; expected {{format, expression}} "
                           "or a gdal-calc expression such as 'A > 0.3'")
    return {"format": value["format"], "expression": value["expression"]}


def _mlm_output(tensor: TensorInfo, meta: ModelMetadata, defaults: dict, given: list[str] | None) -> dict:
    output = {
        "name": tensor.name,
        "tasks": list(meta.tasks),
        "result": {"shape": list(tensor.shape),
                   "dim_order": _dim_order(tensor, given or _yolo_dims(tensor, meta), defaults, "output", False),
                   "data_type": tensor.data_type},
    }
    if meta.classes:
        output["classification:classes"] = _classes(meta.classes)
    if meta.post_processing is not None:
        output["post_processing_function"] = _post_processing(meta.post_processing)
    return output


def _mlm_io(graph: ModelFileInfo, meta: ModelMetadata) -> tuple[dict, list[dict]]:
    tensor_in = _pick(graph.inputs, meta.input_name, "input")
    tensors_out = _described_outputs(graph, meta)
    model_input = {
        "name": tensor_in.name,
        **({"description": description} if (description := _input_description(meta)) else {}),
        "bands": [band["name"] for band in meta.bands],
        "input": {"shape": list(tensor_in.shape),
                  "dim_order": _dim_order(tensor_in, meta.input_dim_order, _INPUT_DIMS, "input", bool(meta.bands)),
                  "data_type": tensor_in.data_type},
        "value_scaling": meta.value_scaling,
        "resize_type": meta.resize_type,
    }
    defaults = _PIXEL_OUTPUT_DIMS if graph.onnx_ml else _OUTPUT_DIMS
    given = meta.output_dim_order if len(tensors_out) == 1 else None
    outputs = [_mlm_output(tensor, meta, defaults, given) for tensor in tensors_out]
    _check_counts(meta, model_input, outputs)
    return model_input, outputs


def _input_description(meta: ModelMetadata) -> str | None:
    parts = [part for part in (meta.processing_level and f"{meta.processing_level} imagery",
                               meta.processing_lineage) if part]
    return ": ".join(parts) or None


def _datetime(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return str_to_datetime(value)
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not a date-time; expected ISO 8601 like 2020-01-01T00:00:00Z") from exc


def _geometry(meta: ModelMetadata) -> dict:
    if meta.geometry is not None:
        return meta.geometry
    if len(meta.bbox) != 4:
        raise InvalidInput(f"bbox {meta.bbox} must have 4 numbers; expected [west, south, east, north]")
    west, south, east, north = map(float, meta.bbox)
    return {"type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]}


def _framework(given: str | None, kind: ArtifactKind) -> str:
    if given is None:
        return "PyTorch" if kind.needs_torch else "ONNX"
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
        "mlm:input": [model_input],
        "mlm:output": outputs,
    }
    if graph.total_parameters is not None:
        props.update({"mlm:total_parameters": graph.total_parameters, "mlm:memory_size": graph.memory_size})
    if meta.framework_version:
        props["mlm:framework_version"] = meta.framework_version
    if meta.hyperparameters:
        props["mlm:hyperparameters"] = dict(meta.hyperparameters)
    return props


def _described_kind(model_path: Path) -> ArtifactKind:
    """By extension; a file that is neither a PyTorch archive nor a pickle is read as ONNX."""
    return declared_kind(str(model_path), None, None) or ArtifactKind.ONNX


def read_described_file(model_path: Path, meta: ModelMetadata) -> ModelFileInfo:
    """The model file's own description; a declared input shape stands in where the file records none, and
    fixes an ONNX input's dynamic dimensions (checked by running the model once)."""
    declared = [TensorInfo(meta.input_name or "input", tuple(meta.input_shape), meta.input_data_type)] \
        if meta.input_shape else None
    # the user describes a file of their own: loading an AOTInductor package's native code is theirs to trust
    info = read_model_file(model_path, _described_kind(model_path), declared, allow_native_code=True)
    if meta.input_shape and info.kind is ArtifactKind.ONNX:
        name = _pick(info.inputs, meta.input_name, "input").name
        info = fix_onnx_input(model_path, info, name, meta.input_shape)
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
        raise InvalidInput(f"model {model_path} does not exist; expected an ONNX, TorchScript or .pt2 file")
    _check_layout_name(meta.detection_layout)
    graph = graph or read_described_file(model_path, meta)
    return item_for_model(graph, meta, model_asset(model_path, meta, graph.kind))


def item_for_model(graph: ModelFileInfo, meta: ModelMetadata, asset: pystac.Asset) -> pystac.Item:
    """The MLM Item of a model file read before (`graph`), with `asset` as its model asset: the describe form
    checks metadata as it is typed from what the file declared, without the file."""
    stray = sorted(key for key in meta.extra_properties if key.startswith("mlm:"))
    if stray:
        raise InvalidInput(f"extra properties {stray} use the mlm: prefix; expected ModelMetadata fields for MLM keys")
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
    start, end = _datetime(meta.start_datetime), _datetime(meta.end_datetime)
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


def _file_fields(path: Path) -> dict:
    return {"file:size": path.stat().st_size, "file:checksum": file_checksum(path)}


def _model_asset_fields(model_path: Path, meta: ModelMetadata, kind: ArtifactKind,
                        file_fields: dict | None) -> dict:
    return {"mlm:artifact_type": kind.value, **(file_fields or _file_fields(model_path)), **model_asset_bands(meta)}


def _add_side_car_assets(item: pystac.Item, meta: ModelMetadata) -> None:
    """The MLM side-car assets: the model's source code and the container image that runs it."""
    if meta.source_code:
        fields = {"mlm:entrypoint": meta.entrypoint} if meta.entrypoint else {}
        item.add_asset("source-code", pystac.Asset(
            href=meta.source_code, title=f"Source code of {meta.name}",
            media_type="text/x-python" if meta.source_code.endswith(".py") else "text/html",
            roles=["mlm:source_code", "code", "metadata"], extra_fields=fields))
    elif meta.entrypoint:
        raise InvalidInput(f"entrypoint {meta.entrypoint!r} given without source_code; expected the code's URL too")
    if meta.container:
        item.add_asset("container", pystac.Asset(
            href=meta.container, title=f"Container image that runs {meta.name}", media_type=OCI_MEDIA_TYPE,
            roles=["mlm:container", "runtime"]))


def _runtime_asset(role: str, href: str, item_dir: Path) -> pystac.Asset:
    if role not in RUNTIME_ROLES:
        raise InvalidInput(f"runtime role {role!r} is unknown; expected one of {list(RUNTIME_ROLES)}")
    if not is_url(href):
        source = Path(href)
        if not source.is_file():
            raise InvalidInput(f"CWL file {source} for {role} does not exist; expected a CWL workflow file or URL")
        shutil.copy2(source, item_dir / source.name)
        href = f"./{source.name}"
    kind = role.split(":", 1)[1].split("-")[0]
    return pystac.Asset(href=href, media_type=CWL_MEDIA_TYPE, title=f"CWL {kind} application package",
                        roles=[role, "runtime", "workflow"])


def _external_weights(model_path: Path) -> list[tuple[str, Path]]:
    """The ONNX external-data files (location as written, real path), refused unless each lies in the model's
    directory: the locations come from the file and must not make describe copy e.g. /etc/passwd."""
    files = []
    for name in read_graph(model_path).external_files:
        where = f"ONNX external data location {name!r} of {model_path}"
        if os.path.isabs(name) or ".." in Path(name).parts:
            raise InvalidInput(f"{where} leaves the model's directory; expected a relative path beside the model")
        files.append((name, local_file_inside(model_path.parent / name, model_path.parent, where)))
    return files


def _add_external_weights(item: pystac.Item, model_path: Path, item_dir: Path) -> None:
    """ONNX weights kept outside the .onnx file are copied beside it and listed as assets."""
    if file_kind(model_path, _described_kind(model_path)) is not ArtifactKind.ONNX:
        return
    weights = _external_weights(model_path)
    for index, (name, source) in enumerate(weights):
        target = item_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        key = "model-weights" if len(weights) == 1 else f"model-weights-{index + 1}"
        item.add_asset(key, pystac.Asset(
            href=f"./{name}", media_type="application/octet-stream", title=f"ONNX external data {name}",
            roles=["mlm:weights"],
            extra_fields=_file_fields(target),
        ))


def _collection_for(item: pystac.Item) -> pystac.Collection:
    start = item.common_metadata.start_datetime or item.datetime
    end = item.common_metadata.end_datetime or item.datetime
    return pystac.Collection(
        id=f"{item.id}-collection", description=f"The model {item.properties.get('mlm:name', item.id)} and its files.",
        extent=pystac.Extent(pystac.SpatialExtent([item.bbox]), pystac.TemporalExtent([[start, end]])),
        license=item.properties.get("license", "proprietary"),
    )


_SUMMARISED = ("mlm:name", "mlm:architecture", "mlm:tasks", "mlm:framework", "mlm:framework_version",
               "mlm:accelerator", "eo:bands")
_ASSET_DEFINITION = ("title", "type", "roles", "mlm:artifact_type")


def _summarise(collection: pystac.Collection, item: pystac.Item) -> None:
    """What the collection's items are (summaries) and which assets each has (item_assets), for search and
    for clients that read the collection only."""
    props = item.properties
    summaries = {key: list(props[key]) if isinstance(props[key], list) else [props[key]]
                 for key in _SUMMARISED if props.get(key) is not None}
    collection.summaries = pystac.Summaries(summaries)
    collection.extra_fields["item_assets"] = {
        key: {field: value for field, value in asset.to_dict().items() if field in _ASSET_DEFINITION}
        for key, asset in item.assets.items()}
    # Not declaring MLM here: its v1.5.2 collection schema wants every summary to be an object, which rejects
    # the plain value lists STAC summaries are (the official MLM collection example declares no MLM either).
    collection.stac_extensions = [ITEM_ASSETS_SCHEMA_URL] + ([EO_SCHEMA_URL] if "eo:bands" in summaries else [])


def write_model_catalog(
    item: pystac.Item,
    model_path: Path,
    outdir: Path,
    extra_assets: dict[str, tuple[Path, pystac.Asset]] | None = None,
    runtime: dict[str, str] | None = None,
    overwrite: bool = False,
    schema_dir: Path | None = None,
) -> Path:
    """Write catalog.json -> collection -> item + model copy, validated before it appears at `outdir`.

    `extra_assets` (file, asset) are copied beside the model; an asset without file:size and file:checksum gets
    them (one made by model_asset has them already). `runtime` maps mlm:inference-runtime /
    mlm:training-runtime to a CWL file (copied) or URL.
    """
    item = item.clone()
    inputs = [model_path, *(path for path, _ in (extra_assets or {}).values()), *(runtime or {}).values()]
    with atomic_output_dir(outdir, overwrite, inputs) as work:
        catalog = pystac.Catalog(id=f"{item.id}-catalog", description=f"STAC catalog of the model {item.id}.")
        collection = _collection_for(item)
        catalog.add_child(collection)
        collection.add_item(item)
        layout_catalog(catalog, work)
        item_dir = Path(item.get_self_href()).parent
        item_dir.mkdir(parents=True, exist_ok=True)
        model_key = next((key for key, asset in item.assets.items() if "mlm:model" in (asset.roles or [])), None)
        if model_key is None:
            raise InvalidInput(f"item {item.id!r} has no asset with role mlm:model; expected one from build_model_item")
        shutil.copy2(model_path, item_dir / Path(model_path).name)
        item.assets[model_key].href = f"./{Path(model_path).name}"
        _add_external_weights(item, Path(model_path), item_dir)
        for key, (path, asset) in (extra_assets or {}).items():
            target = item_dir / Path(path).name
            shutil.copy2(path, target)
            copy = asset.clone()
            copy.href = f"./{target.name}"
            if not {"file:size", "file:checksum"} <= copy.extra_fields.keys():  # model_asset() has them already
                copy.extra_fields.update(_file_fields(target))
            item.add_asset(key, copy)
        for role, href in (runtime or {}).items():
            item.add_asset(role.split(":", 1)[1], _runtime_asset(role, href, item_dir))
        _summarise(collection, item)
        save_catalog(catalog)
        problems = validate_source(str(work / "catalog.json"), schema_dir)
        if problems:
            shown = "; ".join(str(p).replace(str(work), str(outdir)) for p in problems[:3])
            raise InvalidInput(f"the model catalog would be invalid ({len(problems)} problems): {shown}")
    return Path(outdir).absolute() / "catalog.json"
