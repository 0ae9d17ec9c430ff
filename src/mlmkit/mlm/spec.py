"""The MLM parts as typed objects, and the read-only view of an MLM Item built from them: what a processor
needs to run the model it describes.

The objects (band, value scaling, class, processing expression, input, output) mirror the MLM extension (v1.3–v1.6.0,
the version stac-model 0.7.0 writes) the way pystac's objects mirror core STAC: `from_dict` reads an MLM field,
`to_dict` writes it. `read_model` reads an Item through them, and `mlm.build` writes an Item with them, so every
command that reads or writes an MLM Item agrees on its meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import pystac

from mlmkit.errors import InvalidInput, InvalidMetadata
from mlmkit.stac.read import MALFORMED_STAC, iter_items, json_type, resolve_href

MLM_SCHEMA_VERSION = "1.5.2"
MLM_SCHEMA_URL = f"https://stac-extensions.github.io/mlm/v{MLM_SCHEMA_VERSION}/schema.json"
SUPPORTED_VERSIONS = ("1.3.0", "1.4.0", "1.5.0", "1.5.1", "1.5.2", "1.6.0")  # 1.6.0: stac-model 0.7.0
KNOWN_VERSIONS = ("1.0.0", "1.1.0", "1.2.0", *SUPPORTED_VERSIONS)
RUNTIME_ROLES = ("mlm:training-runtime", "mlm:inference-runtime", "mlm:source_code", "mlm:container")
_MLM_URL = re.compile(r"/mlm(?:-extension)?/v(\d+\.\d+\.\d+)/schema\.json$")
_BAND_LISTS = ("bands", "eo:bands", "raster:bands")
SIZE_MULTIPLE = "mlmkit:size_multiple"
_RESOLUTION_KEYS = ("gsd", "spatial_resolution", "raster:spatial_resolution", "eo:gsd")
# A container asset's href is an image reference (REGISTRY/IMAGE:TAG or IMAGE@sha256:...), not a file.
OCI_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


class DimRole(str, Enum):
    """What a named dimension of a tensor means, whatever spelling the Item uses."""

    BATCH = "batch"
    BANDS = "bands"
    HEIGHT = "height"
    WIDTH = "width"
    TIME = "time"
    CLASSES = "classes"
    OTHER = "other"


_DIM_ROLES = {
    "batch": DimRole.BATCH,
    "bands": DimRole.BANDS, "band": DimRole.BANDS, "channel": DimRole.BANDS, "channels": DimRole.BANDS,
    "height": DimRole.HEIGHT, "y": DimRole.HEIGHT, "lat": DimRole.HEIGHT,
    "width": DimRole.WIDTH, "x": DimRole.WIDTH, "lon": DimRole.WIDTH,
    "time": DimRole.TIME,
    "class": DimRole.CLASSES, "classes": DimRole.CLASSES,
}


def dim_role(name: str) -> DimRole:
    """The role of a dim_order entry; unknown names are OTHER."""
    return _DIM_ROLES.get(name.lower(), DimRole.OTHER)


@dataclass(frozen=True)
class Band:
    """A band the model consumes: a name to look up, or a derived band computed by an expression."""

    name: str
    format: str | None = None
    expression: Any = None

    @property
    def is_derived(self) -> bool:
        return self.expression is not None

    @classmethod
    def from_dict(cls, entry: Any, where: str) -> Band:
        """A `bands`/`variables` entry: a band name, or a {name, format?, expression?} object."""
        if isinstance(entry, str):
            return cls(name=entry)
        if isinstance(entry, dict) and "name" in entry:
            return cls(name=_text(entry["name"], f"{where} name"), format=entry.get("format"),
                       expression=entry.get("expression"))
        raise InvalidMetadata(f"{where} entries must be band names or {{name, format, expression}}; got {entry!r}")

    def to_dict(self) -> str | dict[str, Any]:
        """The band's name alone, or an object when it is computed by an expression."""
        if self.format is None and self.expression is None:
            return self.name
        return {"name": self.name, **_set({"format": self.format, "expression": self.expression})}


@dataclass(frozen=True)
class ProcessingExpression:
    format: str
    expression: Any

    @classmethod
    def from_dict(cls, entry: Any, where: str) -> ProcessingExpression:
        try:
            return cls(format=entry["format"], expression=entry["expression"])
        except (KeyError, TypeError) as exc:
            raise InvalidMetadata(f"{where} must be {{format, expression}} objects; got {entry!r}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "expression": self.expression}


@dataclass(frozen=True)
class ValueScaling:
    """One `value_scaling` entry; which fields are set depends on `type`."""

    type: str
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    stddev: float | None = None
    value: float | None = None
    format: str | None = None
    expression: Any = None

    @classmethod
    def from_dict(cls, entry: Any, where: str) -> ValueScaling:
        """A `value_scaling` object; fields this version of mlmkit does not know are left out."""
        try:
            return cls(**{key: entry[key] for key in entry if key in cls.__dataclass_fields__})
        except (TypeError, KeyError) as exc:
            raise InvalidMetadata(f"{where} entries must be objects with a 'type'; got {entry!r}") from exc

    def to_dict(self) -> dict[str, Any]:
        return _set({name: getattr(self, name) for name in self.__dataclass_fields__})


@dataclass(frozen=True)
class _Tensor:
    """Shape and dimension names shared by inputs and outputs."""

    name: str
    shape: tuple[int, ...]
    dim_order: tuple[str, ...]
    data_type: str

    @property
    def roles(self) -> tuple[DimRole, ...]:
        return tuple(dim_role(name) for name in self.dim_order)

    def axis(self, role: DimRole) -> int | None:
        """Index of the first dimension with this role, or None."""
        return self.roles.index(role) if role in self.roles else None

    def size(self, role: DimRole) -> int | None:
        """Static size of the dimension with this role; None when absent or dynamic (-1)."""
        axis = self.axis(role)
        if axis is None or axis >= len(self.shape) or self.shape[axis] < 0:
            return None
        return self.shape[axis]

    def _structure(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dim_order": list(self.dim_order), "data_type": self.data_type}


@dataclass(frozen=True)
class ModelInput(_Tensor):
    bands: tuple[Band, ...] = ()
    variables: tuple[Band, ...] = ()
    value_scaling: tuple[ValueScaling, ...] | None = None
    resize_type: str | None = None
    pre_processing_function: tuple[ProcessingExpression, ...] = ()
    description: str | None = None
    size_multiple: int | None = None  # `mlmkit:size_multiple`: dynamic height/width must be multiples of it

    @classmethod
    def from_dict(cls, entry: Any, index: int, version: str = MLM_SCHEMA_VERSION) -> ModelInput:
        """The `mlm:input[index]` object of an Item declaring MLM `version` (1.3 `norm_type` is read as scaling)."""
        where = f"mlm:input[{index}]"
        if not isinstance(entry, dict) or "name" not in entry:
            raise InvalidMetadata(f"{where} must be an object with a name; got {entry!r}")
        shape, dim_order, data_type = _structure(entry, "input", where)
        scaling = _legacy_scaling(entry, where) if version == "1.3.0" else _value_scaling(
            entry.get("value_scaling"), f"{where}.value_scaling")
        model_input = cls(
            name=_text(entry["name"], f"{where}.name"), shape=shape, dim_order=dim_order, data_type=data_type,
            bands=_bands(entry.get("bands"), f"{where}.bands"),
            variables=_bands(entry.get("variables"), f"{where}.variables"),
            value_scaling=scaling, resize_type=entry.get("resize_type"),
            pre_processing_function=_expressions(entry.get("pre_processing_function"),
                                                 f"{where}.pre_processing_function"),
            description=entry.get("description"),
            size_multiple=_size_multiple(entry, where),
        )
        _check_rank(model_input, where)
        return model_input

    def to_dict(self) -> dict[str, Any]:
        """The `mlm:input` object (`value_scaling` and `resize_type` are always written: MLM requires them)."""
        return {
            "name": self.name,
            **_set({"description": self.description}),
            "bands": [band.to_dict() for band in self.bands],
            **({"variables": [band.to_dict() for band in self.variables]} if self.variables else {}),
            "input": self._structure(),
            "value_scaling": None if self.value_scaling is None else [s.to_dict() for s in self.value_scaling],
            "resize_type": self.resize_type,
            **_expressions_dict("pre_processing_function", self.pre_processing_function),
            **_set({SIZE_MULTIPLE: self.size_multiple}),
        }


@dataclass(frozen=True)
class ModelClass:
    value: int | float
    name: str
    description: str | None = None
    color_hint: str | None = None
    nodata: bool = False

    @classmethod
    def from_dict(cls, entry: Any, where: str) -> ModelClass:
        """A `classification:classes` object; a class without a name is named by its value."""
        try:
            return cls(value=entry["value"], name=entry.get("name") or str(entry["value"]),
                       description=entry.get("description"), color_hint=entry.get("color_hint"),
                       nodata=bool(entry.get("nodata", False)))
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidMetadata(f"{where} entries need a value; got {entry!r}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "name": self.name,
                **_set({"description": self.description, "color_hint": self.color_hint}),
                **({"nodata": True} if self.nodata else {})}


@dataclass(frozen=True)
class ModelOutput(_Tensor):
    tasks: tuple[str, ...] = ()
    classes: tuple[ModelClass, ...] = ()
    post_processing_function: tuple[ProcessingExpression, ...] = ()
    description: str | None = None

    @classmethod
    def from_dict(cls, entry: Any, index: int) -> ModelOutput:
        """The `mlm:output[index]` object."""
        where = f"mlm:output[{index}]"
        if not isinstance(entry, dict) or "name" not in entry:
            raise InvalidMetadata(f"{where} must be an object with a name; got {entry!r}")
        shape, dim_order, data_type = _structure(entry, "result", where)
        output = cls(
            name=_text(entry["name"], f"{where}.name"), shape=shape, dim_order=dim_order, data_type=data_type,
            tasks=_texts(entry.get("tasks", []), f"{where}.tasks"),
            classes=_read_classes(entry.get("classification:classes"), f"{where}.classification:classes"),
            post_processing_function=_expressions(entry.get("post_processing_function"),
                                                  f"{where}.post_processing_function"),
            description=entry.get("description"),
        )
        _check_rank(output, where)
        return output

    def to_dict(self) -> dict[str, Any]:
        """The `mlm:output` object."""
        return {
            "name": self.name,
            **_set({"description": self.description}),
            "tasks": list(self.tasks),
            "result": self._structure(),
            **({"classification:classes": [c.to_dict() for c in self.classes]} if self.classes else {}),
            **_expressions_dict("post_processing_function", self.post_processing_function),
        }


@dataclass(frozen=True)
class ModelAsset:
    key: str
    href: str
    media_type: str | None
    roles: tuple[str, ...]
    artifact_type: str | None
    file_size: int | None
    file_checksum: str | None
    title: str | None = None


@dataclass(frozen=True)
class RuntimeAsset:
    key: str
    href: str
    roles: tuple[str, ...]
    media_type: str | None
    title: str | None = None
    file_checksum: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Everything an MLM Item says about how to run its model."""

    item: pystac.Item
    self_href: str | None
    mlm_version: str
    name: str
    architecture: str | None
    tasks: tuple[str, ...]
    framework: str | None
    framework_version: str | None
    accelerator: str | None
    inputs: tuple[ModelInput, ...]
    outputs: tuple[ModelOutput, ...]
    model_asset: ModelAsset
    runtime_assets: tuple[RuntimeAsset, ...] = ()
    band_info: dict[str, dict] = field(default_factory=dict)
    resolution: float | None = None  # ground sample distance the model expects, when the Item states it
    model_assets: tuple[ModelAsset, ...] = ()  # every mlm:model asset: alternate formats of one model
    accelerator_constrained: bool = False

    def runtime(self, role: str) -> RuntimeAsset | None:
        """The first runtime asset with the given role (e.g. mlm:inference-runtime)."""
        return next((asset for asset in self.runtime_assets if role in asset.roles), None)


def is_container_asset(asset: dict) -> bool:
    """Whether an asset (as JSON) names a container image rather than a file."""
    return "mlm:container" in (asset.get("roles") or []) or str(asset.get("type", "")).startswith(
        "application/vnd.oci.image")


def mlm_version(data: dict) -> str | None:
    """The MLM version an Item declares in `stac_extensions`, or None if it declares none."""
    extensions = data.get("stac_extensions")
    for url in extensions if isinstance(extensions, list) else []:
        match = _MLM_URL.search(url) if isinstance(url, str) else None
        if match:
            return match.group(1)
    return None


def _set(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields that are set (not None), in order."""
    return {key: value for key, value in fields.items() if value is not None}


def _expressions(value: Any, where: str) -> tuple[ProcessingExpression, ...]:
    if value is None:
        return ()
    return tuple(ProcessingExpression.from_dict(entry, where) for entry in (value if isinstance(value, list) else [value]))


def _expressions_dict(key: str, expressions: tuple[ProcessingExpression, ...]) -> dict[str, Any]:
    """A processing function field: one object (as MLM v1.5 writes it), a list of several, or nothing."""
    if not expressions:
        return {}
    return {key: expressions[0].to_dict() if len(expressions) == 1 else [e.to_dict() for e in expressions]}


def _bands(value: Any, where: str) -> tuple[Band, ...]:
    return tuple(Band.from_dict(entry, where) for entry in value or [])


def _value_scaling(value: Any, where: str) -> tuple[ValueScaling, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidMetadata(f"{where} must be a list of scaling objects (MLM >= 1.4); got {type(value).__name__}")
    return tuple(ValueScaling.from_dict(entry, where) for entry in value)


def _legacy_scaling(entry: dict, where: str) -> tuple[ValueScaling, ...] | None:
    """MLM 1.3 `norm_type` + `statistics` expressed as the value_scaling of later versions."""
    norm_type = entry.get("norm_type")
    if norm_type is None:
        return None
    stats = entry.get("statistics") or []
    if norm_type == "z-score" and stats and all("mean" in s and "stddev" in s for s in stats):
        return tuple(ValueScaling(type="z-score", mean=s["mean"], stddev=s["stddev"]) for s in stats)
    if norm_type == "min-max" and stats and all("minimum" in s and "maximum" in s for s in stats):
        return tuple(ValueScaling(type="min-max", minimum=s["minimum"], maximum=s["maximum"]) for s in stats)
    raise InvalidMetadata(
        f"{where}.norm_type {norm_type!r} (MLM 1.3) is not supported with the given statistics; "
        "expected z-score (mean, stddev) or min-max (minimum, maximum)"
    )


def _structure(entry: dict, key: str, where: str) -> tuple[tuple[int, ...], tuple[str, ...], str]:
    structure = entry.get(key)
    try:
        return tuple(int(n) for n in structure["shape"]), tuple(structure["dim_order"]), structure["data_type"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidMetadata(f"{where}.{key} must have shape, dim_order and data_type; got {structure!r}") from exc


def _check_rank(tensor: _Tensor, where: str) -> None:
    if len(tensor.shape) != len(tensor.dim_order):
        raise InvalidMetadata(
            f"{where}: shape {list(tensor.shape)} has {len(tensor.shape)} dims but dim_order "
            f"{list(tensor.dim_order)} names {len(tensor.dim_order)}; expected one name per dimension"
        )


def _size_multiple(entry: dict, where: str) -> int | None:
    value = entry.get(SIZE_MULTIPLE)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise InvalidMetadata(f"{where}.{SIZE_MULTIPLE} is {value!r}; expected a whole number of pixels from 1 to 4096")
    return value


def _read_classes(value: Any, where: str) -> tuple[ModelClass, ...]:
    if value is not None and not isinstance(value, list):
        raise InvalidMetadata(f"{where} is a JSON {json_type(value)}; expected an array of class objects")
    return tuple(ModelClass.from_dict(entry, where) for entry in value or [])


def _band_info(item: pystac.Item, model_asset: dict) -> dict[str, dict]:
    """Band name -> merged band object from the item's and the model asset's band lists."""
    info: dict[str, dict] = {}
    for holder in (item.properties, model_asset):
        lists = [holder.get(key) or [] for key in _BAND_LISTS]
        for position in range(max(map(len, lists), default=0)):
            entries = [lst[position] for lst in lists if position < len(lst) and isinstance(lst[position], dict)]
            name = next((e["name"] for e in entries if e.get("name")), None)
            if name is None:
                continue
            merged = info.setdefault(name, {})
            for entry in entries:
                merged.update({k: v for k, v in entry.items() if k not in merged})
    return info


def _resolution(inputs: tuple[ModelInput, ...], band_info: dict[str, dict], props: dict) -> float | None:
    """The finest ground sample distance stated for the input bands (`gsd`, raster `spatial_resolution`),
    else the Item's `gsd`: the resolution the model was trained at."""
    names = {band.name for model_input in inputs for band in model_input.bands}
    stated = [info.get(key) for name, info in band_info.items() if name in names for key in _RESOLUTION_KEYS]
    stated = [float(value) for value in stated if isinstance(value, (int, float)) and not isinstance(value, bool)
              and value > 0]
    if stated:
        return min(stated)
    gsd = props.get("gsd")
    return float(gsd) if isinstance(gsd, (int, float)) and not isinstance(gsd, bool) and gsd > 0 else None


def is_onnx_asset(href: str, media_type: str | None, artifact_type: str | None) -> bool:
    """Whether an MLM model asset designates an ONNX file."""
    hints = " ".join(filter(None, (media_type, artifact_type))).lower()
    return "onnx" in hints or href.lower().endswith(".onnx")


def _model_assets(item: pystac.Item, base: str | None) -> tuple[tuple[ModelAsset, ...], dict]:
    """Every asset with the mlm:model role, ONNX ones first (MLM allows alternate formats of the same model,
    e.g. ONNX, an ExportedProgram and the torch.save checkpoint, told apart by mlm:artifact_type), and the
    first one's fields, which hold the model's band definitions."""
    models = [(key, asset) for key, asset in item.assets.items() if "mlm:model" in (asset.roles or [])]
    models.sort(key=lambda entry: not is_onnx_asset(entry[1].href.split("?")[0], entry[1].media_type,
                                                    entry[1].extra_fields.get("mlm:artifact_type")))
    assets = tuple(
        ModelAsset(
            key=key, href=resolve_href(asset.href, base), media_type=asset.media_type,
            roles=tuple(asset.roles or ()), artifact_type=asset.extra_fields.get("mlm:artifact_type"),
            file_size=asset.extra_fields.get("file:size"), file_checksum=asset.extra_fields.get("file:checksum"),
            title=asset.title,
        )
        for key, asset in models
    )
    if not assets:
        raise InvalidMetadata(f"item {item.id!r} has no asset with role 'mlm:model'; expected one model asset")
    return assets, item.assets[assets[0].key].extra_fields


def _runtime_assets(item: pystac.Item, base: str | None) -> tuple[RuntimeAsset, ...]:
    return tuple(
        RuntimeAsset(key=key, href=resolve_href(asset.href, base), roles=tuple(asset.roles or ()),
                     media_type=asset.media_type, title=asset.title,
                     file_checksum=asset.extra_fields.get("file:checksum"))
        for key, asset in item.assets.items()
        if set(asset.roles or ()) & set(RUNTIME_ROLES)
    )


def _declared(item: pystac.Item) -> dict:
    return {"stac_extensions": item.stac_extensions}


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidMetadata(f"{where} is a JSON {json_type(value)}; expected a string")
    return value


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidMetadata(f"{where} is a JSON {json_type(value)}; expected an array of strings")
    return tuple(_text(entry, f"{where} entry") for entry in value)


def spec_from_item(item: pystac.Item) -> ModelSpec:
    """Read the MLM fields of a pystac Item (loaded without migration) into a ModelSpec; fields of the
    wrong JSON type are refused with one line."""
    try:
        return _spec_from_item(item)
    except MALFORMED_STAC as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InvalidMetadata(f"item {item.id!r} has MLM fields of the wrong shape ({reason}); expected MLM "
                           "v1.5.2 objects and arrays") from exc


def _spec_from_item(item: pystac.Item) -> ModelSpec:
    version = mlm_version(_declared(item))
    if version is None:
        raise InvalidMetadata(f"item {item.id!r} does not declare the MLM extension in stac_extensions; expected an MLM Item")
    if version not in SUPPORTED_VERSIONS:
        raise InvalidMetadata(
            f"item {item.id!r} uses MLM v{version}, which mlmkit does not read; expected one of "
            + ", ".join(f"v{v}" for v in SUPPORTED_VERSIONS)
        )
    props = item.properties
    if not props.get("mlm:name"):
        raise InvalidMetadata(f"item {item.id!r} has no mlm:name; expected the model's name")
    inputs = props.get("mlm:input")
    outputs = props.get("mlm:output")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidMetadata(f"item {item.id!r} has no mlm:input list; expected at least one model input")
    if not isinstance(outputs, list) or not outputs:
        raise InvalidMetadata(f"item {item.id!r} has no mlm:output list; expected at least one model output")
    base = item.get_self_href()
    model_assets, model_asset_fields = _model_assets(item, base)
    model_inputs = tuple(ModelInput.from_dict(entry, i, version) for i, entry in enumerate(inputs))
    band_info = _band_info(item, model_asset_fields)
    return ModelSpec(
        item=item, self_href=base, mlm_version=version, name=_text(props["mlm:name"], "mlm:name"),
        architecture=props.get("mlm:architecture"), tasks=_texts(props.get("mlm:tasks", []), "mlm:tasks"),
        framework=props.get("mlm:framework"), framework_version=props.get("mlm:framework_version"),
        accelerator=props.get("mlm:accelerator"),
        inputs=model_inputs,
        outputs=tuple(ModelOutput.from_dict(entry, i) for i, entry in enumerate(outputs)),
        model_asset=model_assets[0], runtime_assets=_runtime_assets(item, base),
        band_info=band_info, resolution=_resolution(model_inputs, band_info, props),
        model_assets=model_assets,
        accelerator_constrained=bool(props.get("mlm:accelerator_constrained", False)),
    )


def load_model_item(source: str | Path) -> pystac.Item:
    """The MLM Item a path, URL or catalog directory designates (a catalog must hold exactly one)."""
    items = list(iter_items(source))
    if len(items) == 1:
        return items[0]
    candidates = [item for item in items if mlm_version(_declared(item))]
    if len(candidates) != 1:
        found = ", ".join(item.id for item in candidates) or "none"
        raise InvalidInput(f"{source} holds {len(candidates)} MLM Items ({found}); expected exactly one")
    return candidates[0]


def read_model(source: str | Path) -> ModelSpec:
    """Read the MLM Item at a path, URL or catalog directory."""
    return spec_from_item(load_model_item(source))
