"""Checks a JSON schema cannot make: the files an Item points at and the model they hold.

An MLM Item can be schema-valid and still lie: a checksum of another file, a band list longer
than the input's channel dimension, an output shape the model file does not produce. Each
check yields `(JSON path, message)` findings; `mlmkit.catalog.validate` turns them into Problems.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import pystac

from mlmkit.stac.checksum import verify_checksum
from mlmkit.errors import InvalidInput
from mlmkit.runtimes.artifacts import PT2_KINDS, ArtifactKind, declared_kind, file_kind
from mlmkit.mlm.spec import (SUPPORTED_VERSIONS, DimRole, ModelAsset, ModelSpec, is_container_asset, mlm_version,
                        spec_from_item)
from mlmkit.runtimes.base import TensorInfo
from mlmkit.runtimes.info import ModelFileInfo, read_model_file
from mlmkit.runtimes.registry import RUNTIMES
from mlmkit.mlm.lint import lint_model
from mlmkit.mlm.shapes import TIME, detection_layout, detection_outputs, input_axes, is_pixelwise
from mlmkit.stac.read import is_url, json_path, resolve_href, stac_from_dict

Finding = tuple[str, str]


def _local_file(href: object, base: str | None) -> str | None:
    """The local path an asset href designates, or None for URLs and unresolvable relative hrefs."""
    if not isinstance(href, str) or is_url(href) or (base is None and not os.path.isabs(href)):
        return None
    path = resolve_href(href, base)
    return None if is_url(path) else path


def asset_file_findings(data: dict, href: str | None) -> Iterator[Finding]:
    """Local asset files must exist and match their `file:size` and `file:checksum`."""
    assets = data.get("assets")
    if not isinstance(assets, dict):  # the schema check reports it
        return
    for key, asset in assets.items():
        if not isinstance(asset, dict) or is_container_asset(asset):
            continue
        path = _local_file(asset.get("href"), href)
        if path is None:
            continue
        if not os.path.isfile(path):
            yield json_path("assets", key, "href"), f"file {path} does not exist; expected the asset's file there"
            continue
        size = asset.get("file:size")
        if isinstance(size, int) and size != os.path.getsize(path):
            yield (json_path("assets", key, "file:size"),
                   f"file:size is {size} but {path} has {os.path.getsize(path)} bytes")
        checksum = asset.get("file:checksum")
        if isinstance(checksum, str):
            try:
                verify_checksum(path, checksum)
            except InvalidInput as exc:
                yield json_path("assets", key, "file:checksum"), str(exc)


def _rank_findings(props: dict) -> Iterator[Finding]:
    for field, key in (("mlm:input", "input"), ("mlm:output", "result")):
        for index, entry in enumerate(props.get(field) or []):
            structure = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(structure, dict):
                continue
            shape, order = structure.get("shape") or [], structure.get("dim_order") or []
            if len(shape) != len(order):
                yield (json_path("properties", field, index, key, "dim_order"),
                       f"names {len(order)} dimensions but shape {shape} has {len(shape)}; expected one name per dimension")


def _band_findings(spec: ModelSpec) -> Iterator[Finding]:
    for index, model_input in enumerate(spec.inputs):
        where = ("properties", "mlm:input", index)
        count = len(model_input.bands)
        size = model_input.size(DimRole.BANDS)
        # a pre-processing function may combine bands (e.g. two bands -> one NDVI channel)
        combined = size is not None and size < count and model_input.pre_processing_function
        if count and size is not None and size != count and not combined:
            axis = model_input.axis(DimRole.BANDS)
            yield (json_path(*where, "input", "shape", axis),
                   f"the {model_input.dim_order[axis]!r} dimension has size {size} but bands lists {count} bands; "
                   "expected one band per channel")
        scaling = model_input.value_scaling or ()
        channels = count or size
        if len(scaling) > 1 and channels and len(scaling) != channels:
            yield (json_path(*where, "value_scaling"),
                   f"has {len(scaling)} entries for {channels} channels; expected one entry, or one per channel")


def _scaling_findings(spec: ModelSpec) -> Iterator[Finding]:
    """Scalings that would divide by zero or invert a range."""
    for index, model_input in enumerate(spec.inputs):
        for entry_index, scaling in enumerate(model_input.value_scaling or ()):
            where = ("properties", "mlm:input", index, "value_scaling", entry_index)
            if scaling.type == "z-score" and scaling.stddev is not None and scaling.stddev <= 0:
                yield json_path(*where, "stddev"), f"is {scaling.stddev}; expected > 0 (z-score divides by it)"
            ranged = scaling.type in ("min-max", "clip") and None not in (scaling.minimum, scaling.maximum)
            if ranged and scaling.maximum <= scaling.minimum:
                yield (json_path(*where, "maximum"),
                       f"is {scaling.maximum}, not above minimum {scaling.minimum}; expected minimum < maximum")


def _class_findings(spec: ModelSpec) -> Iterator[Finding]:
    for index, output in enumerate(spec.outputs):
        size = output.size(DimRole.CLASSES)
        if output.classes and size is not None and size not in (1, len(output.classes)):
            yield (json_path("properties", "mlm:output", index, "result", "shape", output.axis(DimRole.CLASSES)),
                   f"the class dimension has size {size} but classification:classes lists {len(output.classes)} "
                   "classes; expected one score per class (or 1 for a class index)")


def _pairs(declared: Sequence, actual: Sequence[TensorInfo]) -> list[tuple[int, object, TensorInfo]] | None:
    """Match MLM tensors to graph tensors by name, else by position; None when neither works."""
    by_name = {tensor.name: tensor for tensor in actual}
    if all(entry.name in by_name for entry in declared):
        return [(i, entry, by_name[entry.name]) for i, entry in enumerate(declared)]
    if len(declared) == len(actual):
        return [(i, entry, tensor) for i, (entry, tensor) in enumerate(zip(declared, actual))]
    return None


def _tensor_findings(field: str, key: str, declared: Sequence, actual: Sequence[TensorInfo],
                     label: str) -> Iterator[Finding]:
    pairs = _pairs(declared, actual)
    if pairs is None:
        yield (json_path("properties", field),
               f"lists {len(declared)} tensors but the {label} model has {len(actual)} ({[t.name for t in actual]}); "
               "expected one entry per graph tensor")
        return
    for index, entry, tensor in pairs:
        where = ("properties", field, index, key)
        if len(entry.shape) != len(tensor.shape):
            yield (json_path(*where, "shape"),
                   f"{list(entry.shape)} has {len(entry.shape)} dimensions but the {label} tensor {tensor.name!r} has "
                   f"{len(tensor.shape)} ({list(tensor.shape)})")
            continue
        for axis, (want, got) in enumerate(zip(entry.shape, tensor.shape)):
            if want > 0 and got > 0 and want != got:
                yield (json_path(*where, "shape", axis),
                       f"is {want} ({entry.dim_order[axis]}) but the {label} tensor {tensor.name!r} has {got} there "
                       f"(shape {list(tensor.shape)})")
        if entry.data_type != tensor.data_type:
            yield (json_path(*where, "data_type"),
                   f"is {entry.data_type} but the {label} tensor {tensor.name!r} holds {tensor.data_type}")


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'AEIOUaeiou' else 'a'} {noun}"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)


def _unreadable(kind: ArtifactKind) -> bool:
    """Formats whose tensors cannot be told without unpickling (torch.save: no runtime), running untrusted
    native code (AOTInductor) or a runtime's package (torch) that is not installed."""
    return kind not in RUNTIMES or kind.native_code or not RUNTIMES[kind].installed()


def _open_model(spec: ModelSpec, path: str, kind: ArtifactKind) -> ModelFileInfo:
    return read_model_file(path, kind, [TensorInfo(i.name, i.shape, i.data_type) for i in spec.inputs], load=True)


def _model_file_findings(spec: ModelSpec, asset: ModelAsset, opened: list[ModelFileInfo]) -> Iterator[Finding]:
    where = json_path("assets", asset.key, "href")
    try:
        kind = file_kind(asset.href, declared_kind(asset.href, asset.media_type, asset.artifact_type))
    except InvalidInput as exc:
        yield where, str(exc)
        return
    stated = declared_kind("", None, asset.artifact_type)
    if stated is not None and kind not in (stated, *(PT2_KINDS if stated is ArtifactKind.PT2 else ())):
        yield (json_path("assets", asset.key, "mlm:artifact_type"),
               f"is {asset.artifact_type!r} but {os.path.basename(asset.href)} is {_a(kind.label)} "
               f"(expected {kind.value!r})")
    if _unreadable(kind):
        return
    try:
        info = _open_model(spec, asset.href, kind)
    except Exception as exc:  # any failure to open is the finding itself
        yield where, f"{asset.href} does not open as {_a(kind.label)} model: {_first_line(exc)}"
        return
    opened.append(info)
    yield from _tensor_findings("mlm:input", "input", spec.inputs, info.inputs, kind.label)
    yield from _tensor_findings("mlm:output", "result", spec.outputs, info.outputs, kind.label)


def _model_findings(spec: ModelSpec, opened: list[ModelFileInfo]) -> Iterator[Finding]:
    """Every local mlm:model file (MLM allows alternate formats) must agree with mlm:input and mlm:output;
    what each declares is added to `opened`."""
    for asset in spec.model_assets or (spec.model_asset,):
        if not is_url(asset.href) and os.path.isfile(asset.href):  # remote models are not downloaded
            yield from _model_file_findings(spec, asset, opened)


def _input_shape_findings(spec: ModelSpec) -> Iterator[Finding]:
    layouts, steps = {}, {}
    for index, model_input in enumerate(spec.inputs):
        try:
            axes = input_axes(model_input.name, model_input.dim_order, len(model_input.dim_order))
        except InvalidInput as exc:
            yield json_path("properties", "mlm:input", index, "input", "dim_order"), str(exc)
            continue
        layouts[model_input.name] = "pixel rows" if is_pixelwise(axes) else "raster"
        if TIME in axes:
            steps[model_input.name] = model_input.size(DimRole.TIME) or -1
    if len(set(layouts.values())) > 1:
        yield (json_path("properties", "mlm:input"),
               f"inputs mix pixel rows and rasters ({layouts}); mlmkit predict runs all-raster or all-pixel inputs")
    if len({size for size in steps.values() if size > 0}) > 1:
        yield (json_path("properties", "mlm:input"),
               f"inputs take different numbers of dates ({steps}); mlmkit predict stacks one number of dates")


def _output_shape_findings(spec: ModelSpec) -> Iterator[Finding]:
    boxes = detection_outputs(spec.outputs)
    if boxes:
        try:
            detection_layout([spec.outputs[i] for i in boxes])
        except InvalidInput as exc:
            yield json_path("properties", "mlm:output", boxes[0]), str(exc)
    for index, output in enumerate(spec.outputs):
        if index not in boxes and len(output.shape) > 4:
            yield (json_path("properties", "mlm:output", index, "result", "shape"),
                   f"has {len(output.shape)} dimensions {list(output.dim_order)}; mlmkit predict writes outputs of "
                   "(batch, channels[, height, width]) or object-detection boxes")


def mlm_findings(data: dict, href: str | None) -> tuple[list[Finding], list[Finding]]:
    """Consistency of an MLM Item's inputs, outputs and model file (errors), and as warnings: the tensor layouts
    it describes that `mlmkit predict` cannot run and the metadata that is probably wrong (`mlm.lint`, with what
    the local model file declares), from one reading of the Item; ([], []) for non-MLM documents. MLM versions
    mlmkit cannot read (< 1.3) get their schema checked only.
    """
    if data.get("type") != "Feature" or mlm_version(data) not in SUPPORTED_VERSIONS:
        return [], []
    ranks = list(_rank_findings(data.get("properties") or {}))
    try:
        spec = spec_from_item(stac_from_dict(data, href))
    except (InvalidInput, KeyError, TypeError, ValueError, pystac.STACError) as exc:
        return ranks or [("$.properties", f"not a readable MLM Item: {exc}")], []
    warnings = [*_input_shape_findings(spec), *_output_shape_findings(spec)]
    if ranks:
        return ranks, warnings
    opened: list[ModelFileInfo] = []
    errors = [*_band_findings(spec), *_scaling_findings(spec), *_class_findings(spec), *_model_findings(spec, opened)]
    lint = [(finding.path, finding.message) for finding in lint_model(spec, opened[0] if opened else None)]
    return errors, warnings + lint
