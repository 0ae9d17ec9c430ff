"""The describe form as a spec editor: each field is one `mlmkit describe` spec key (docs/describe-spec.example.yaml),
each row of the band, value scaling and class tables one entry of that spec list.

Pure functions: form data -> spec (with a message beside each field that does not parse), spec -> what each field
shows, and a finding's JSON path -> the field it is about, so every check speaks beside the field it concerns.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field as dataclass_field
from typing import Any

from mlmkit.mlm.shapes import BOX_FORMATS, DETECTION_TASK
from mlmkit.stac.read import is_url

TASKS = ("semantic-segmentation", "classification", "scene-classification", "object-detection", "regression",
         "instance-segmentation", "panoptic-segmentation", "segmentation", "detection", "super-resolution",
         "downscaling", "similarity-search", "generative", "image-captioning")
ACCELERATORS = ("amd64", "cuda", "xla", "amd-rocm", "intel-ipex-cpu", "intel-ipex-gpu", "macos-arm")
RESIZE_TYPES = ("crop", "pad", "interpolation-nearest", "interpolation-linear", "interpolation-cubic",
                "interpolation-area", "interpolation-lanczos4", "interpolation-max", "wrap-fill-outliers",
                "wrap-inverse-map")
DATA_TYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float16", "float32",
              "float64")
COMMON_NAMES = ("coastal", "blue", "green", "red", "rededge", "yellow", "pan", "nir", "nir08", "nir09", "cirrus",
                "swir16", "swir22", "lwir", "lwir11", "lwir12")
# MLM value_scaling types the form writes, with what each does to a pixel x (the direction, spelled out)
SCALINGS = {
    "scale": "x / value (divides: uint16 reflectance 0-10000 to 0-1 is value 10000)",
    "offset": "x - value (subtracts)",
    "min-max": "(x - minimum) / (maximum - minimum)",
    "z-score": "(x - mean) / stddev",
    "clip": "x limited to [minimum, maximum]",
    "clip-min": "x raised to at least minimum",
    "clip-max": "x lowered to at most maximum",
}
_SCALING_FIELDS = {"scale": ("value",), "offset": ("value",), "min-max": ("minimum", "maximum"),
                   "z-score": ("mean", "stddev"), "clip": ("minimum", "maximum"), "clip-min": ("minimum",),
                   "clip-max": ("maximum",)}
MAX_ROWS = 512  # rows per table a form may send
_COLOUR = re.compile(r"#?[0-9A-Fa-f]{6}")


@dataclass(frozen=True)
class Field:
    """One form field: its spec key (also its form name and id), label, help and how its text is read."""

    key: str
    label: str
    help: str = ""
    kind: str = "text"  # text | textarea | number | integer | select | tasks | list | numbers | json | url | colour
    choices: tuple[str, ...] = ()
    required: bool = False
    when_task: str = ""  # shown (and read) only for models with this task


@dataclass(frozen=True)
class Group:
    """A fieldset of scalar fields."""

    legend: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Table:
    """A list-valued spec key edited as rows: cell `<prefix>-<row>-<column>`; a row counts once `filled_by` is set."""

    key: str
    prefix: str
    legend: str
    help: str
    columns: tuple[Field, ...]
    filled_by: str


@dataclass(frozen=True)
class Message:
    """A check's message and the form field it belongs beside ("" for the form as a whole)."""

    field: str
    text: str
    severity: str = "error"  # error | warning


MODEL = Group("The model", (
    Field("name", "Name", "mlm:name, e.g. Sentinel-2 water segmenter.", required=True),
    Field("id", "Item id", "Letters, digits, '-', '_' and '.'; default: from the name."),
    Field("architecture", "Architecture", "mlm:architecture, e.g. U-Net or ResNet-18.", required=True),
    Field("tasks", "Tasks", "What the model does (mlm:tasks).", "tasks", TASKS, required=True),
    Field("description", "Description", "What the model is for and how it was trained.", "textarea"),
    Field("keywords", "Keywords", "Comma-separated, e.g. water, sentinel-2.", "list"),
    Field("license", "License", "SPDX id of the model's license, e.g. Apache-2.0 or CC-BY-4.0; or proprietary."),
    Field("version", "Model version", "The model's own version, e.g. 1.0.0."),
    Field("framework", "Framework", "What it was trained with; default: ONNX, or PyTorch for PyTorch files."),
    Field("framework_version", "Framework version", "e.g. 2.3.0."),
    Field("accelerator", "Accelerator", "Hardware the model runs on (mlm:accelerator).", "select", ACCELERATORS),
    Field("hyperparameters", "Hyperparameters", 'A JSON object, e.g. {"learning_rate": 0.001}.', "json"),
))
INPUT = Group("The input", (
    Field("input_name", "Input tensor", "The model input this Item describes.", "select"),
    Field("input_shape", "Input shape (native tile size)",
          "Comma-separated, -1 for a free dimension, e.g. -1,4,256,256. Files that do not record their shapes "
          "(TorchScript) need it; read the file again after changing it.", "numbers"),
    Field("input_data_type", "Input data type", "With the input shape of a TorchScript file.", "select", DATA_TYPES),
    Field("input_dim_order", "Input dimension names", "Comma-separated, one per dimension, e.g. "
          "batch, bands, height, width.", "list"),
    Field("resize_type", "Resize type", "How imagery is fitted to a fixed input size (mlm:resize_type).", "select",
          RESIZE_TYPES),
    Field("processing_level", "Product level", "Of the imagery the model expects, e.g. L1C or L2A."),
    Field("processing_lineage", "Processing lineage", "How that imagery was processed, e.g. Sen2Cor surface "
          "reflectance."),
))
BANDS = Table("bands", "band", "Input bands, in channel order",
              "One row per input channel. Data type, nodata, scale and offset say how the imagery stores values "
              "(raster extension: physical value = stored value x scale + offset, a multiplication); the model's own "
              "scaling is the next table.",
              (Field("name", "Name", "e.g. B04"), Field("common_name", "Common name", "", "select", COMMON_NAMES),
               Field("center_wavelength", "Wavelength (µm)", "", "number"),
               Field("data_type", "Data type", "", "select", DATA_TYPES), Field("nodata", "Nodata", "", "number"),
               Field("scale", "Raster scale", "multiplies", "number"),
               Field("offset", "Raster offset", "adds", "number")),
              "name")
SCALING = Table("value_scaling", "scaling", "Value scaling: how pixels become the model's input",
                "One row for all bands, or one per band (MLM value_scaling). " +
                "; ".join(f"{kind}: {effect}" for kind, effect in SCALINGS.items()) + ".",
                (Field("type", "Type", "", "select", tuple(SCALINGS)), Field("value", "Value", "", "number"),
                 Field("minimum", "Minimum", "", "number"), Field("maximum", "Maximum", "", "number"),
                 Field("mean", "Mean", "", "number"), Field("stddev", "Std. dev.", "", "number")),
                "type")
# A YOLO tensor's values per box (MLM names them in the output's dim_order): the box, [objectness,] class scores
DETECTION_LAYOUTS = tuple(f"{box}-{rest}" for box in BOX_FORMATS for rest in ("class", "obj-class"))
OUTPUT = Group("The output", (
    Field("output_name", "Output tensor", "The model output this Item describes.", "select"),
    Field("output_dim_order", "Output dimension names",
          "Comma-separated, one per dimension, e.g. batch, class, height, width (see docs/model-shapes.md).", "list"),
    Field("detection_layout", "Detection layout",
          "A YOLO tensor's values per box: cxcywh-class = 4 box values, then one score per class (YOLOv8); "
          "cxcywh-obj-class = box, objectness, then class scores (YOLOv5).", "select", DETECTION_LAYOUTS,
          when_task=DETECTION_TASK),
    Field("post_processing", "Post-processing",
          "The output's post_processing_function: a gdal-calc expression over its channels A, B, ..., e.g. A > 0.3 "
          "(applied where tiles are blended, before the class decision)."),
))
CLASSES = Table("classes", "class", "Classes", "One row per class the output scores; the value is the class index.",
                (Field("value", "Value", "", "integer"), Field("name", "Name", "e.g. water"),
                 Field("description", "Description"), Field("color_hint", "Colour", "RRGGBB, e.g. 0000FF", "colour")),
                "name")
EXTENT = Group("Where and when", (
    Field("bbox", "Bounding box", "west, south, east, north in degrees; default: the world.", "numbers"),
    Field("start_datetime", "Valid from", "ISO 8601, e.g. 2015-06-23T00:00:00Z."),
    Field("end_datetime", "Valid until", "ISO 8601, e.g. 2030-01-01T00:00:00Z."),
))
SOURCES = Group("Code, container, runtimes and citation", (
    Field("source_code", "Source code URL", "A repository at a tag or commit, or a script.", "url"),
    Field("entrypoint", "Entrypoint", "The function in that code that runs the model, e.g. package.module:predict."),
    Field("container", "Container image", "e.g. ghcr.io/org/model@sha256:<digest>."),
    Field("inference_runtime", "Inference CWL URL", "An application package that runs the model "
          "(mlm:inference-runtime).", "url"),
    Field("training_runtime", "Training CWL URL", "An application package that trains it.", "url"),
    Field("citation", "Citation", "How to cite the model."),
    Field("doi", "DOI", "Of the model's publication, e.g. 10.5281/zenodo.1234."),
))
GROUPS = (MODEL, INPUT, OUTPUT, EXTENT, SOURCES)
TABLES = (BANDS, SCALING, CLASSES)
_FIELDS = {field.key: field for group in GROUPS for field in group.fields}
_CELL = re.compile(r"^(band|scaling|class)-(\d{1,4})-([a-z_]+)$")
_TABLES = {table.prefix: table for table in TABLES}

FormData = Mapping[str, Sequence[str]]


def _words(text: str) -> list[str]:
    return [word.strip() for word in text.split(",") if word.strip()]


def _number(text: str, integer: bool = False) -> float | int:
    value = float(text)  # ValueError for text that is no number
    if not math.isfinite(value) or (integer and not value.is_integer()):
        raise ValueError(text)
    return int(value) if value.is_integer() and (integer or "." not in text and "e" not in text.lower()) else value


def _scalar(field: Field, text: str) -> Any:
    """A field's text as its spec value; ValueError carries the message shown beside the field."""
    if field.kind == "list":
        return _words(text)
    if field.kind == "numbers":
        try:
            return [_number(word) for word in _words(text)]
        except ValueError:
            raise ValueError(f"{text!r} is not comma-separated numbers; expected e.g. -1,4,256,256") from None
    if field.kind == "json":
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"is not JSON ({exc}); expected a JSON object") from None
        if not isinstance(value, dict):
            raise ValueError(f"is a JSON {type(value).__name__}; expected a JSON object")
        return value
    if field.kind == "colour" and not _COLOUR.fullmatch(text):
        raise ValueError(f"colour {text!r} is not RRGGBB hex; expected e.g. 0000FF")
    if field.kind == "url" and not is_url(text):
        raise ValueError(f"{text!r} is not an http(s) URL; expected e.g. https://example.org/{field.key}")
    if field.kind == "select" and field.choices and text not in field.choices:
        raise ValueError(f"{text!r} is not one of {', '.join(field.choices)}")
    return text


def _cell(field: Field, text: str) -> Any:
    if field.kind in ("number", "integer"):
        try:
            return _number(text, integer=field.kind == "integer")
        except ValueError:
            kind = "an integer" if field.kind == "integer" else "a number"
            raise ValueError(f"{field.label.lower()} {text!r} is not {kind}") from None
    return _scalar(field, text)


def _first(form: FormData, key: str) -> str:
    values = form.get(key) or [""]
    return str(values[0]).strip()


def _rows(form: FormData, table: Table) -> tuple[list[dict], list[int], list[Message]]:
    """The table's filled rows in row order (empty rows dropped), the form's number of each, and messages."""
    columns = {column.key: column for column in table.columns}
    rows, numbers, messages = [], [], []
    for number, cells in _sent_rows(form, table):
        texts = {key: text for key, text in cells.items() if key in columns and text}
        if not texts.get(table.filled_by):
            continue
        entry, problems = {}, []
        for key, text in texts.items():
            try:
                entry[key] = _cell(columns[key], text)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            messages.append(Message(f"{table.prefix}-{number}", "; ".join(problems)))
        if table.filled_by not in entry:  # e.g. a scaling type the form does not know
            continue
        rows.append(entry)
        numbers.append(number)
    return rows, numbers, messages


def _scaling_entry(entry: dict) -> dict:
    """Only the fields the scaling type reads: a stale 'value' left in a min-max row is no part of it."""
    return {"type": entry["type"], **{key: entry[key] for key in _SCALING_FIELDS[entry["type"]] if key in entry}}


@dataclass
class ParsedForm:
    """The describe spec a form holds, a message beside each field whose text does not parse, and the form's
    row number of each table entry (empty rows are no entries, so Item indexes and row numbers may differ)."""

    spec: dict[str, Any]
    messages: list[Message]
    rows: dict[str, list[int]] = dataclass_field(default_factory=dict)
    missing: list[Message] = dataclass_field(default_factory=list)  # required fields left empty

    def field_for(self, path: str) -> str:
        """The form field (row numbers as the form has them) a finding at this Item path is about."""
        field = field_for_path(path)
        if field == "output_dim_order" and "output_dim_order" not in self.spec \
                and DETECTION_TASK in self.spec.get("tasks", []):
            return "detection_layout"  # a detector's dim_order is what its detection layout writes
        prefix, _, row = field.partition("-")
        if prefix in _TABLES and row.isdigit():
            numbers = self.rows.get(prefix, [])
            return f"{prefix}-{numbers[int(row)]}" if int(row) < len(numbers) else _TABLES[prefix].key
        return field


def applies(field: Field, tasks: Sequence[str]) -> bool:
    """Whether a field is about this model: a detection layout only for an object detector."""
    return not field.when_task or field.when_task in tasks


def spec_from_form(form: FormData) -> ParsedForm:
    """The describe spec the form holds; a field that does not parse is left out and gets a message."""
    parsed = ParsedForm({}, [])
    for key, field in _FIELDS.items():
        if field.kind == "tasks":
            chosen = [str(task) for task in form.get(key) or [] if str(task) in TASKS]
            if chosen:
                parsed.spec[key] = chosen
            continue
        text = _first(form, key)
        if not text or not applies(field, form.get("tasks") or []):
            continue
        try:
            parsed.spec[key] = _scalar(field, text)
        except ValueError as exc:
            parsed.messages.append(Message(key, str(exc)))
    for table in TABLES:
        rows, numbers, problems = _rows(form, table)
        parsed.messages += problems
        parsed.rows[table.prefix] = numbers
        if rows:
            parsed.spec[table.key] = [_scaling_entry(row) for row in rows] if table is SCALING else rows
    flagged = {message.field for message in parsed.messages}
    parsed.missing = [Message(field.key, f"{field.label} is required") for field in _FIELDS.values()
                      if field.required and field.key not in parsed.spec and field.key not in flagged]
    return parsed


def _shown(field: Field, value: Any) -> Any:
    if value is None:
        return ""
    if field.kind == "tasks":
        return list(value)
    if field.kind in ("list", "numbers"):
        return ", ".join(str(v) for v in value)
    if field.kind == "json":
        return json.dumps(value)
    if isinstance(value, Mapping) and value.get("format") == "gdal-calc":  # post_processing as {format, expression}
        return str(value.get("expression", ""))
    return str(value)


def _sent_rows(form: FormData, table: Table) -> list[tuple[int, dict[str, str]]]:
    cells: dict[int, dict[str, str]] = {}
    for key in form:
        match = _CELL.match(key)
        if match and match.group(1) == table.prefix and int(match.group(2)) < MAX_ROWS:
            cells.setdefault(int(match.group(2)), {})[match.group(3)] = _first(form, key)
    return [(number, cells[number]) for number in sorted(cells) if any(cells[number].values())]


def shown_values(form: FormData, prefill: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What each field shows: the text the user sent (so a typo stays in view beside its message), and where a
    field or a whole table is empty, the prefill's value. Table rows are (row number, {column: text})."""
    prefill = prefill or {}
    values: dict[str, Any] = {}
    for key, field in _FIELDS.items():
        sent = [str(task) for task in form.get(key) or []] if field.kind == "tasks" else _first(form, key)
        values[key] = sent or _shown(field, prefill.get(key))
    for table in TABLES:
        sent_rows = _sent_rows(form, table)
        if not any(cells.get(table.filled_by) for _, cells in sent_rows):
            sent_rows = [(number, {column.key: _shown(column, row.get(column.key)) for column in table.columns})
                         for number, row in enumerate(prefill.get(table.key) or []) if isinstance(row, dict)]
        values[table.key] = sent_rows
    return values


def as_form(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Shown values back as form data (what the browser would send for them)."""
    form: dict[str, list[str]] = {}
    for key, field in _FIELDS.items():
        value = values.get(key)
        form[key] = list(value) if field.kind == "tasks" else [str(value or "")]
    for table in TABLES:
        for number, cells in values.get(table.key) or []:
            form.update({f"{table.prefix}-{number}-{column}": [text] for column, text in cells.items()})
    return form


def table_rows(table: Table, rows: list[tuple[int, dict[str, str]]], wanted: int = 0,
               extra: int = 1) -> list[tuple[int, dict[str, str]]]:
    """The rows to render: those given, blank ones up to `wanted` (a class row gets its index as value), and
    `extra` blank rows to fill in without scripts."""
    shown = list(rows)
    number = max((n for n, _ in rows), default=-1) + 1
    while len(shown) < wanted or extra > 0:
        if len(shown) >= wanted:
            extra -= 1
        shown.append((number, {"value": str(len(shown))} if table is CLASSES else {}))
        number += 1
    return shown


# Where an Item property comes from in the form (the Item keys build.py writes)
_PROPERTIES = {"mlm:name": "name", "mlm:architecture": "architecture", "mlm:tasks": "tasks",
               "description": "description", "keywords": "keywords", "license": "license",
               "mlm:framework": "framework", "mlm:framework_version": "framework_version",
               "mlm:accelerator": "accelerator", "mlm:hyperparameters": "hyperparameters",
               "processing:level": "processing_level", "processing:lineage": "processing_lineage",
               "sci:citation": "citation", "sci:doi": "doi", "version": "version",
               "start_datetime": "start_datetime", "end_datetime": "end_datetime", "datetime": "start_datetime",
               "eo:bands": "bands"}
_INPUT_KEYS = {"value_scaling": "value_scaling", "bands": "bands", "resize_type": "resize_type",
               "description": "processing_lineage", "name": "input_name"}
_TENSOR_KEYS = {"shape": "input_shape", "dim_order": "input_dim_order", "data_type": "input_data_type"}
_ASSETS = {"source-code": "source_code", "container": "container", "inference-runtime": "inference_runtime",
           "training-runtime": "training_runtime"}
_PATH_PART = re.compile(r"\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]|\.?([^.\[\]]+)")
_ROW_PREFIX = {"value_scaling": "scaling", "bands": "band", "classes": "class"}


def path_parts(path: str) -> list[str | int]:
    """`$.properties['mlm:input'][0].value_scaling[0]` or `properties.mlm:input[0].value_scaling[0]` as parts."""
    parts: list[str | int] = []
    for quoted, index, name in _PATH_PART.findall(path):
        if index:
            parts.append(int(index))
        elif quoted or name != "$":
            parts.append(quoted or name)
    return parts


def _row(table_key: str, parts: Sequence[str | int]) -> str:
    """The row a path below a table points into, or the table itself."""
    if parts and isinstance(parts[0], int):
        return f"{_ROW_PREFIX[table_key]}-{parts[0]}"
    return table_key


def _input_field(rest: Sequence[str | int]) -> str:
    if not rest:
        return "input_name"
    if rest[0] == "input" and len(rest) > 1:
        return _TENSOR_KEYS.get(str(rest[1]), "input_shape")
    key = _INPUT_KEYS.get(str(rest[0]), "")
    return _row(key, rest[1:]) if key in _ROW_PREFIX else key


def _output_field(rest: Sequence[str | int]) -> str:
    if rest and rest[0] == "classification:classes":
        return _row("classes", rest[1:])
    if rest and rest[0] == "post_processing_function":
        return "post_processing"
    if len(rest) > 1 and rest[0] == "result":
        return "output_dim_order" if rest[1] == "dim_order" else "classes"
    return "output_name"


def field_for_path(path: str) -> str:
    """The form field a finding at this JSON path of the built Item is about ("" when none is)."""
    parts = path_parts(path)
    head, rest = (parts[0], parts[1:]) if parts else ("", [])
    if head == "properties" and rest:
        key, below = rest[0], rest[1:]
        if key == "mlm:input":
            return _input_field(below[1:])
        if key == "mlm:output":
            return _output_field(below[1:])
        field = _PROPERTIES.get(str(key), "")
        return _row(field, below) if field in _ROW_PREFIX else field
    if head == "assets" and rest:
        if any(part in ("eo:bands", "raster:bands") for part in rest):
            band = rest.index("eo:bands" if "eo:bands" in rest else "raster:bands")
            return _row("bands", rest[band + 1:])
        if rest[0] == "source-code" and "mlm:entrypoint" in rest:
            return "entrypoint"
        return _ASSETS.get(str(rest[0]), "")
    return {"id": "id", "bbox": "bbox", "geometry": "bbox"}.get(str(head), "")
