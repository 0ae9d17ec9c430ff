"""Which output plans a model gets: one raster plan per output, and one detection plan for the outputs that
together describe boxes (object detection needs boxes, labels and scores at once).

Every plan offers the same interface to the tile loop: `key`, `allows_overlap`, `results(raw)` (the batch's
tile-form raw outputs → one result per tile) and `sink(context)` (where those results go).
"""

from __future__ import annotations

from typing import Protocol

from mlmkit.errors import InvalidInput
from mlmkit.mlm.spec import ModelOutput, ModelSpec
from mlmkit.inference.detection import DetectionPlan, thresholds
from mlmkit.inference.feeders import Feeder
from mlmkit.inference.postprocess import OutputPlan, plan_output
from mlmkit.inference.runtime import ModelRunner
from mlmkit.inference.sinks import Sink, SinkContext
from mlmkit.mlm.shapes import detection_outputs


class Plan(Protocol):
    key: str
    allows_overlap: bool

    def results(self, raw: list) -> list:
        """One result per tile of the batch, from the tile-form raw outputs."""

    def sink(self, context: SinkContext) -> Sink:
        """Where this plan's results are written."""


def pair_outputs(spec: ModelSpec, runner: ModelRunner) -> dict[int, ModelOutput]:
    """Runtime output position → MLM output, matched by name, else by order."""
    names = [tensor.name for tensor in runner.outputs]
    if all(output.name in names for output in spec.outputs):
        return {names.index(output.name): output for output in spec.outputs}
    if len(spec.outputs) <= len(names):
        return dict(enumerate(spec.outputs))
    raise InvalidInput(f"the MLM Item declares {len(spec.outputs)} outputs but the ONNX model has {len(names)} "
                       f"({', '.join(names)}); expected at most as many")


def plan_outputs(spec: ModelSpec, runner: ModelRunner, feeder: Feeder, tile: tuple[int, int], allow_python: bool,
                 score_threshold: float | None = None, iou_threshold: float | None = None) -> list[Plan]:
    """Plans for every MLM output, decided from one all-zero tile run through the feeder."""
    paired = pair_outputs(spec, runner)
    probe = feeder.probe(runner, paired, tile)
    described = {index: feeder.tile_output(output, index) for index, output in paired.items()}
    indexes = list(described)
    boxes = [indexes[i] for i in detection_outputs(list(described.values()))]
    plans: list[Plan] = []
    if boxes:
        score, iou = thresholds(spec.item.properties.get("mlm:hyperparameters"), score_threshold, iou_threshold)
        plans.append(DetectionPlan([described[i] for i in boxes], boxes, probe, score, iou))
    plans += [plan_output(output, index, probe[index], tile, allow_python)
              for index, output in described.items() if index not in boxes]
    for plan in plans:
        if isinstance(plan, OutputPlan):
            plan.alone = len(plans) == 1
    return plans
