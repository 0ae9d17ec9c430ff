"""Which tensor layouts mlmkit runs, decided from MLM `dim_order` names (and sizes) alone.

`predict` binds inputs and plans outputs with these rules, and `validate` warns with the same rules
when an Item describes a layout `predict` cannot run, so the two never disagree.

Inputs map onto one canonical view of a window batch, (N, T, C, H, W): tiles, dates, channels, rows,
columns. An input without height/width is a pixel-wise model (one row per pixel, e.g. [batch, bands]);
one without `time` takes a single date. Detection outputs follow the convention in docs/model-shapes.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mlmkit.errors import InvalidMetadata, ModelRefused
from mlmkit.mlm.spec import DimRole, ModelOutput, dim_role

BATCH, TIME, BANDS, HEIGHT, WIDTH = range(5)  # axes of the canonical (N, T, C, H, W) view
CANONICAL = {DimRole.BATCH: BATCH, DimRole.TIME: TIME, DimRole.BANDS: BANDS, DimRole.HEIGHT: HEIGHT,
             DimRole.WIDTH: WIDTH}
_FALLBACK = {4: (BATCH, BANDS, HEIGHT, WIDTH), 3: (BATCH, HEIGHT, WIDTH), 2: (BATCH, BANDS)}

DETECTION_TASK = "object-detection"
BOX_FORMATS = ("cxcywh", "xyxy", "yxyx", "xywh")
DETECTION_DIMS = {"detection", "detections", "box", "boxes", "bbox", "bboxes", "anchor", "anchors", "prediction",
                  "predictions", "object", "objects", "instance", "instances"}
_BOX_DIMS = {"coordinate", "coordinates", "coords", "corner", "corners"} | set(BOX_FORMATS)
# Tokens of a YOLO tensor's per-box dim name (`cxcywh-class`, `cxcywh-obj-class`; `-`, `_` or `+` between them)
_CLASS_TOKENS = {"class", "classes", "cls"}
_OBJECTNESS_TOKENS = {"obj", "objectness", "conf", "confidence"}


def input_axes(name: str, dim_order: Sequence[str], rank: int) -> tuple[int, ...]:
    """Model axis i takes canonical axis axes[i]; absent canonical axes have size 1.

    One unrecognised name stands for the channels when no dim is called bands/channel. A dim_order that
    does not match the tensor's rank falls back to (batch, bands, height, width), (batch, height, width)
    or (batch, bands) by rank, as most exports are laid out.
    """
    if len(dim_order) == rank:
        roles = [dim_role(dim) for dim in dim_order]
        unknown = [i for i, role in enumerate(roles) if role not in CANONICAL]
        if len(unknown) == 1 and DimRole.BANDS not in roles:
            roles[unknown[0]] = DimRole.BANDS
        if all(role in CANONICAL for role in roles) and len(set(roles)) == rank:
            axes = tuple(CANONICAL[role] for role in roles)
            if (HEIGHT in axes) != (WIDTH in axes):
                raise InvalidMetadata(f"input {name!r} has dim_order {list(dim_order)}: one of height/width without "
                                      "the other; expected both (a raster) or neither (one row per pixel)")
            return axes
    if rank in _FALLBACK:
        return _FALLBACK[rank]
    raise ModelRefused(f"input {name!r} has rank {rank} and dim_order {list(dim_order)}; expected some order of "
                       "batch, time, bands, height, width (height/width absent for a pixel-wise model)")


def is_pixelwise(axes: Sequence[int]) -> bool:
    """A model input with no height/width takes one row per pixel."""
    return HEIGHT not in axes


def detection_outputs(outputs: Sequence[ModelOutput]) -> list[int]:
    """Positions of the outputs that take part in object detection."""
    return [i for i, output in enumerate(outputs) if DETECTION_TASK in output.tasks]


def _dims(output: ModelOutput) -> list[str]:
    return [dim.lower() for dim in output.dim_order]


def _tokens(dim: str) -> set[str]:
    return set(re.split(r"[-_+]", dim.lower()))


def box_format(output: ModelOutput, default: str) -> str:
    """The box coordinate order a dim name spells (e.g. 'xyxy', 'cxcywh-class'), else `default`."""
    for dim in _dims(output):
        for token in BOX_FORMATS:
            if token in _tokens(dim):
                return token
    return default


def layout_objectness(dim: str) -> bool | None:
    """Whether a dim name states a YOLO layout with an objectness score after the box (`cxcywh-obj-class`:
    True, `cxcywh-class`: False); None when it states none (it needs a box format and `class`)."""
    tokens = _tokens(dim)
    if tokens & set(BOX_FORMATS) and tokens & _CLASS_TOKENS:
        return bool(tokens & _OBJECTNESS_TOKENS)
    return None


def stated_objectness(output: ModelOutput) -> bool | None:
    """The YOLO layout the output's dim names state (see `layout_objectness`), if any."""
    stated = [layout_objectness(dim) for dim in _dims(output)]
    return next((value for value in stated if value is not None), None)


def yolo_attribute_axis(output: ModelOutput, shape: Sequence[int], classes: int) -> int | None:
    """Which of the two per-tile axes of a YOLO tensor (batch dropped) holds each box's values: the other one
    than a dim named `detection` (...), the one whose name states the layout, else the one of size 4 + K or
    5 + K; None when the sizes cannot tell (dynamic, or both or neither fit)."""
    dims = [dim.lower() for dim, role in zip(output.dim_order, output.roles) if role != DimRole.BATCH]
    if len(dims) == 2:
        named = [axis for axis, dim in enumerate(dims) if dim in DETECTION_DIMS or _tokens(dim) & DETECTION_DIMS]
        if len(named) == 1:
            return 1 - named[0]
        stated = [axis for axis, dim in enumerate(dims) if _tokens(dim) & set(BOX_FORMATS)]
        if len(stated) == 1:
            return stated[0]
    fits = [axis for axis in (0, 1) if classes and shape[axis] - 4 in (classes, classes + 1)]
    return fits[0] if len(fits) == 1 else None


def yolo_objectness(output: ModelOutput, width: int, classes: int) -> bool:
    """Whether each box of a YOLO tensor with `width` values and `classes` listed classes has an objectness
    score (5 + K: YOLOv5) or not (4 + K: YOLOv8). A width that fits both readings (5 + K is also 4 + K + 1, a
    forgotten class) must be stated in a dim name; one that fits neither is refused."""
    where = f"mlm:output {output.name!r}"
    stated = stated_objectness(output)
    layouts = "'cxcywh-class' (4 + K: box, class scores) or 'cxcywh-obj-class' (5 + K: box, objectness, class scores)"
    if stated is not None:
        extra = 5 if stated else 4
        if width - extra < 1 or (classes and width != extra + classes):
            listed = f"lists {classes} classes" if classes else "lists no classes"
            raise InvalidMetadata(
                f"{where} has {width} values per box, but its dim_order states {extra} + K and "
                f"classification:classes {listed}; expected {width - extra} classes listed (one per class score)")
        return stated
    if not classes:
        raise InvalidMetadata(f"{where} has {width} values per box and classification:classes lists none, so "
                              f"4 + K and 5 + K both fit; expected the classes listed or the layout named in "
                              f"result.dim_order: {layouts}")
    if width == classes + 4:
        return False
    if width == classes + 5:
        raise InvalidMetadata(
            f"{where} has {width} values per box: 4 + {classes + 1} class scores (one class more than the {classes} "
            f"listed) or 5 + {classes} (an objectness score, YOLOv5) both fit; expected the layout named in "
            f"result.dim_order (describe: the detection_layout key), {layouts}, or every class listed in "
            "classification:classes")
    raise InvalidMetadata(f"{where} has {width} values per box, which fits neither 4 + {classes} nor 5 + {classes} "
                          f"for the {classes} classes of classification:classes; expected one class per class score")


def detection_role(output: ModelOutput) -> str | None:
    """'boxes', 'labels' or 'scores' for one output of the separate layout, by dim names then by name."""
    dims, name = _dims(output), output.name.lower()
    if any(dim in _BOX_DIMS for dim in dims) or "box" in name:
        return "boxes"
    if any(dim in ("score", "scores", "confidence") for dim in dims) or "score" in name or "conf" in name:
        return "scores"
    if "label" in name or "class" in name or output.data_type.startswith(("int", "uint")):
        return "labels"
    return None


@dataclass(frozen=True)
class DetectionLayout:
    """Which outputs (positions among the detection outputs) hold what; `yolo` for one combined tensor."""

    yolo: int | None = None
    boxes: int | None = None
    labels: int | None = None
    scores: int | None = None


def detection_layout(outputs: Sequence[ModelOutput]) -> DetectionLayout:
    """Separate boxes/labels/scores outputs, or one [batch, 4 + K, N] tensor; one line when neither fits."""
    roles: dict[str, int] = {}
    for index, output in enumerate(outputs):
        role = detection_role(output)
        if role is not None and role not in roles:
            roles[role] = index
    if len(outputs) == 1 and len(outputs[0].dim_order) == 3 and "boxes" not in roles:
        return DetectionLayout(yolo=0)
    if "boxes" in roles:
        return DetectionLayout(boxes=roles["boxes"], labels=roles.get("labels"), scores=roles.get("scores"))
    names = ", ".join(repr(o.name) for o in outputs)
    raise ModelRefused(f"object-detection output(s) {names} hold no boxes; expected a boxes output ([N, 4] or "
                       "[batch, N, 4], named with 'box' or a dim named e.g. 'xyxy') with labels/scores outputs, "
                       "or one [batch, 4 + classes, N] tensor (YOLO)")
