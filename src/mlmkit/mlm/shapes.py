"""Which tensor layouts mlmkit runs, decided from MLM `dim_order` names (and sizes) alone.

`predict` binds inputs and plans outputs with these rules, and `validate` warns with the same rules
when an Item describes a layout `predict` cannot run, so the two never disagree.

Inputs map onto one canonical view of a window batch, (N, T, C, H, W): tiles, dates, channels, rows,
columns. An input without height/width is a pixel-wise model (one row per pixel, e.g. [batch, bands]);
one without `time` takes a single date. Detection outputs follow the convention in docs/model-shapes.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlmkit.errors import InvalidInput
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
                raise InvalidInput(f"input {name!r} has dim_order {list(dim_order)}: one of height/width without the "
                                   "other; expected both (a raster) or neither (one row per pixel)")
            return axes
    if rank in _FALLBACK:
        return _FALLBACK[rank]
    raise InvalidInput(f"input {name!r} has rank {rank} and dim_order {list(dim_order)}; expected some order of "
                       "batch, time, bands, height, width (height/width absent for a pixel-wise model)")


def is_pixelwise(axes: Sequence[int]) -> bool:
    """A model input with no height/width takes one row per pixel."""
    return HEIGHT not in axes


def detection_outputs(outputs: Sequence[ModelOutput]) -> list[int]:
    """Positions of the outputs that take part in object detection."""
    return [i for i, output in enumerate(outputs) if DETECTION_TASK in output.tasks]


def _dims(output: ModelOutput) -> list[str]:
    return [dim.lower() for dim in output.dim_order]


def box_format(output: ModelOutput, default: str) -> str:
    """The box coordinate order a dim name spells (e.g. 'xyxy', 'cxcywh+classes'), else `default`."""
    for dim in _dims(output):
        for token in BOX_FORMATS:
            if token in dim.replace("-", "+").split("+") or dim == token:
                return token
    return default


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
    raise InvalidInput(f"object-detection output(s) {names} hold no boxes; expected a boxes output ([N, 4] or "
                       "[batch, N, 4], named with 'box' or a dim named e.g. 'xyxy') with labels/scores outputs, "
                       "or one [batch, 4 + classes, N] tensor (YOLO)")
