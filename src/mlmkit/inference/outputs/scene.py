"""One class (or value) per tile, for outputs without height and width (EuroSAT-style scene classification):
written at tile resolution, one pixel per tile; the `scene` output kind. Tiles must not overlap here."""

from __future__ import annotations

import numpy as np
from affine import Affine

from mlmkit.inference.outputs.base import Plan, PlanRequest, Sink, SinkContext
from mlmkit.inference.outputs.raster import OutputPlan, RasterSink, is_spatial
from mlmkit.inference.reader import Grid
from mlmkit.mlm.spec import ModelOutput


class ScenePlan(OutputPlan):
    """How an output with no height/width becomes one raster value per tile."""

    spatial = False

    def sink(self, context: SinkContext) -> Sink:
        return TileSink(self, context)


class TileSink(RasterSink):
    """Scene-classification outputs: one value per tile on a grid of tile-sized pixels."""

    def __init__(self, plan: OutputPlan, context: SinkContext) -> None:
        layout, grid = context.layout, context.grid
        cols, rows = len(layout.cols), len(layout.rows)
        coarse = Grid(grid.crs, grid.transform @ Affine.scale(layout.window_w, layout.window_h), cols, rows)
        super().__init__(plan, coarse, context)
        self.row_values = np.full((plan.channels, 1, cols), np.nan, dtype=np.float32)

    def add(self, row: int, col: int, y: int, x: int, result, valid: np.ndarray | None) -> None:
        self.row_values[:, 0, col] = np.nan if result is None else result

    def end_row(self, row: int) -> None:
        covered = ~np.isnan(self.row_values[0])
        self._write(row, np.nan_to_num(self.row_values), covered)
        self.row_values[:] = np.nan


def claim(request: PlanRequest, free: dict[int, ModelOutput]) -> list[Plan]:
    """A scene plan for every output whose values have no height and width."""
    return [ScenePlan.decide(output, index, request.probe[index], request.tile, request.allow_python)
            for index, output in free.items() if not is_spatial(output, request.probe[index])]
