"""What a model output means for the raster written from it, decided from the MLM output entry.

A pixel-wise class score tensor becomes a class map (argmax, then the MLM class values); a tensor
with no height/width (EuroSAT-style scene classification) becomes one class per tile; anything
else (regression) is written as float values. `post_processing_function` expressions run on the
raw channels (A, B, ...) where tiles are blended, before the class decision, so that the class
scores written beside a class map (`--probabilities`) are the model's own, not their post-processed
form. The output arrives in tile form (see `feeders`): a pixel-wise model's rows have already been
scattered back to rasters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlmkit.errors import InvalidInput, TileSizeError
from mlmkit.mlm.spec import DimRole, ModelClass, ModelOutput
from mlmkit.inference.catalog import slug
from mlmkit.inference.expressions import PYTHON_FORMAT, Expression, check_format
from mlmkit.inference.sinks import PixelSink, Sink, SinkContext, TileSink

CLASS_TASKS = {"classification", "scene-classification", "segmentation", "semantic-segmentation",
               "instance-segmentation", "panoptic-segmentation"}


def _to_nkhw(array: np.ndarray, output: ModelOutput) -> np.ndarray:
    """Raw output as (batch, channels, height, width) or (batch, channels) when it has no spatial dims."""
    if len(output.dim_order) == array.ndim:
        roles = output.roles
        order = [roles.index(DimRole.BATCH)] if DimRole.BATCH in roles else []
        channel = [i for i, role in enumerate(roles) if role in (DimRole.CLASSES, DimRole.BANDS, DimRole.OTHER)
                   and i not in order]
        spatial = [roles.index(role) for role in (DimRole.HEIGHT, DimRole.WIDTH) if role in roles]
        if order and len(spatial) in (0, 2) and len(channel) <= 1:
            arranged = array.transpose(order + channel + spatial)
            return arranged[:, None] if not channel else arranged
    if array.ndim == 4:
        return array
    if array.ndim == 3:
        return array[:, None]
    if array.ndim == 2:
        return array
    if array.ndim == 1:
        return array[:, None]
    raise InvalidInput(f"output {output.name!r} has shape {list(array.shape)}; expected (batch, classes[, height, width])")


@dataclass
class OutputPlan:
    """How one ONNX output becomes raster bands."""

    output: ModelOutput
    index: int                  # position among the ONNX session outputs
    kind: str                   # "classes" (argmax), "binary" (threshold 0.5), "labels" (as is), "values"
    spatial: bool
    channels: int               # raw channels (blended, written as the class scores)
    values: int = 0             # channels after post_processing_function
    class_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    functions: list = field(default_factory=list)
    alone: bool = True          # the model's only output plan: its class map is plainly `classes`

    @property
    def key(self) -> str:
        """Asset key and file name, for what it holds: `classes` for a class map (`<output>-classes` beside
        other outputs), else the output's name."""
        if not self.is_classes:
            return slug(self.output.name)
        return "classes" if self.alone else f"{slug(self.output.name)}-classes"

    @property
    def scores_key(self) -> str:
        """The class scores beside a class map: `scores` (`<output>-scores`)."""
        return self.key.removesuffix("classes") + "scores"

    @property
    def allows_overlap(self) -> bool:
        """Per-pixel outputs blend where tiles overlap; one value per tile needs tiles that do not."""
        return self.spatial

    def results(self, raw: list) -> np.ndarray:
        """Per tile of the batch: (channels[, h, w]) raw scores."""
        return self.scores(raw[self.index])

    def sink(self, context: SinkContext) -> Sink:
        return PixelSink(self, context) if self.spatial else TileSink(self, context)

    @property
    def is_classes(self) -> bool:
        return self.kind != "values"

    @property
    def bands(self) -> int:
        return 1 if self.is_classes else self.values

    @property
    def dtype(self) -> np.dtype:
        if not self.is_classes:
            return np.dtype(np.float32)
        values = list(self.class_values) + [c.value for c in self.output.classes]
        high, low = max(values, default=0), min(values, default=0)
        if low >= 0 and high < 255:
            return np.dtype(np.uint8)
        if low >= 0 and high < 65535:
            return np.dtype(np.uint16)
        return np.dtype(np.int32)

    @property
    def nodata(self) -> float:
        if not self.is_classes:
            return float("nan")
        flagged = [c.value for c in self.output.classes if c.nodata]
        return float(flagged[0]) if flagged else float(np.iinfo(self.dtype).max)

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """(batch, channels[, h, w]) float32 raw scores."""
        return _to_nkhw(np.asarray(raw), self.output).astype(np.float32, copy=False)

    def post(self, scores: np.ndarray) -> np.ndarray:
        """(channels, ...) scores after the post-processing functions (on channels A, B, ...)."""
        for function in self.functions:
            channels = {chr(ord("A") + i): scores[i] for i in range(min(scores.shape[0], 26))}
            result = np.asarray(function(channels), dtype=np.float32)
            scores = result[None] if result.ndim == scores.ndim - 1 else result
        return scores

    def finalize(self, scores: np.ndarray, covered: np.ndarray) -> np.ndarray:
        """(channels, ...) blended raw scores → (bands, ...) raster values of `dtype`, nodata where not covered."""
        scores = self.post(scores)
        if self.kind == "values":
            scores[:, ~covered] = np.nan
            return scores
        if self.kind == "classes":
            index = _argmax(scores)
        elif self.kind == "binary":
            index = (scores[0] > 0.5).view(np.uint8)
        else:
            index = None
        table = self.class_values.astype(self.dtype)
        values = np.rint(scores[0]).astype(self.dtype) if index is None else table[index]
        values[~covered] = self.nodata
        return values[None]


def _argmax(scores: np.ndarray) -> np.ndarray:
    """argmax over the first axis, channel by channel (much faster than a strided np.argmax)."""
    best = scores[0].copy()
    index = np.zeros(best.shape, dtype=np.uint8 if scores.shape[0] <= 256 else np.uint16)
    for channel in range(1, scores.shape[0]):
        better = scores[channel] > best
        index[better] = channel
        np.maximum(best, scores[channel], out=best)
    return index


def _class_values(classes: tuple[ModelClass, ...], channels: int, kind: str) -> np.ndarray:
    real = [c.value for c in classes if not c.nodata]
    wanted = 2 if kind == "binary" else channels
    if kind == "labels":
        return np.asarray(real or [0])
    if len(real) == wanted:
        return np.asarray(real)
    if len(classes) == wanted:
        return np.asarray([c.value for c in classes])
    return np.arange(wanted)


def _functions(output: ModelOutput, allow_python: bool) -> list:
    steps = []
    for expr in output.post_processing_function:
        where = f"output {output.name!r} post_processing_function"
        if (expr.format or "").lower() == PYTHON_FORMAT:  # refused whatever --allow-python-expressions says
            raise InvalidInput(f"{where}: python post-processing is not supported; expected gdal-calc arithmetic")
        check_format(expr.format, expr.expression, allow_python, where)
        steps.append(Expression(expr.expression, expr.format))
    return steps


def plan_output(output: ModelOutput, index: int, raw: np.ndarray, tile: tuple[int, int],
                allow_python: bool) -> OutputPlan:
    """Decide the raster for an output from one dry-run result `raw` (batch of one tile)."""
    if not np.issubdtype(np.asarray(raw).dtype, np.number) and np.asarray(raw).dtype != np.bool_:
        raise InvalidInput(f"output {output.name!r} holds {np.asarray(raw).dtype} values (e.g. class names); expected "
                           "numbers: integer class values (train with integer labels) or class scores")
    plan = OutputPlan(output, index, "values", False, 0, functions=_functions(output, allow_python))
    scores = plan.scores(raw)
    plan.spatial = scores.ndim == 4
    plan.channels = scores.shape[1]
    plan.values = plan.post(scores[0]).shape[0]
    if plan.spatial and tuple(scores.shape[2:]) != tile:
        raise TileSizeError(f"output {output.name!r} is {scores.shape[3]}×{scores.shape[2]} px for a "
                           f"{tile[1]}×{tile[0]} tile; expected the same size (or no height/width for scene classes)")
    tasks = set(output.tasks)
    if tasks & CLASS_TASKS or output.classes:
        integers = np.issubdtype(np.asarray(raw).dtype, np.integer) or np.asarray(raw).dtype == np.bool_
        if integers:
            plan.kind = "labels" if plan.values == 1 else "classes"
        else:
            plan.kind = "classes" if plan.values > 1 else "binary"
        plan.class_values = _class_values(output.classes, plan.values, plan.kind)
    return plan
