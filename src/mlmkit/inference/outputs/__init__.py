"""Output kinds behind one registry: what a model's outputs become, each kind with its plan (how raw outputs
become that product, tile by tile) and its sink (how the product is written), on the protocols of `base`.

- `boxes`: object detection: boxes from several outputs at once, NMS across tiles, GeoParquet/GeoJSON.
- `scene`: one class (or value) per tile, written at tile resolution.
- `raster`: per-pixel maps: class maps, class scores, regression values; COG and quicklook.

Each kind's module has `claim(request, free)`: the plans for those of the outputs not yet taken that it makes a
product of. `plan_outputs` asks the kinds in the order of `OUTPUT_KINDS`, so `raster`, which takes every
output left, comes last. Adding an output kind is one module with `claim` (a plan and a sink) and one line here.
"""

from __future__ import annotations

from types import ModuleType

from mlmkit.inference.outputs import boxes, raster, scene
from mlmkit.inference.outputs.base import Plan, PlanRequest, Sink, SinkContext

OUTPUT_KINDS: dict[str, ModuleType] = {"boxes": boxes, "scene": scene, "raster": raster}

__all__ = ["OUTPUT_KINDS", "Plan", "PlanRequest", "Sink", "SinkContext", "plan_outputs"]


def plan_outputs(request: PlanRequest) -> list[Plan]:
    """A plan for every output of `request`: those that join several outputs first, then one per output in the
    order the outputs are given."""
    free = dict(request.outputs)
    plans: list[Plan] = []
    for kind in OUTPUT_KINDS.values():
        for plan in kind.claim(request, free):
            plans.append(plan)
            for index in plan.reads:
                del free[index]
    order = {index: position for position, index in enumerate(request.outputs)}
    plans.sort(key=lambda plan: (len(plan.reads) == 1, min(order[index] for index in plan.reads)))
    for plan in plans:
        plan.alone = len(plans) == 1
    return plans
