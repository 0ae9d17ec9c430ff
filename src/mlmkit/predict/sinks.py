"""Where a model output's tile results go: per-pixel strips or one value per tile, then to disk.

A sink receives every tile in row-major order and is told when a tile row ends; at that point the
rows no later tile can touch are final and are written out, so memory stays at one strip.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from affine import Affine

from mlmkit.predict.postprocess import OutputPlan, colormap
from mlmkit.predict.reader import Grid
from mlmkit.predict.tiler import Strip, TileLayout, blend_weights, edge_weights
from mlmkit.predict.writer import StripWriter


class Sink(ABC):
    """Common part: the class/value raster and, on request, the class scores raster."""

    def __init__(self, plan: OutputPlan, grid: Grid, directory: Path, key: str, scores: bool) -> None:
        self.plan = plan
        self.grid = grid
        self.key = key
        self.colormap = colormap(plan) if plan.is_classes else None
        self.writer = StripWriter(directory / f"{key}.tmp.tif", crs=grid.crs, transform=grid.transform,
                                  width=grid.width, height=grid.height, count=plan.bands, dtype=plan.dtype,
                                  nodata=plan.nodata, colormap=self.colormap)
        self.scores_writer = None
        if scores and plan.is_classes:
            self.scores_writer = StripWriter(directory / f"{key}-scores.tmp.tif", crs=grid.crs,
                                             transform=grid.transform, width=grid.width, height=grid.height,
                                             count=plan.channels, dtype=np.dtype(np.float32), nodata=float("nan"))

    def _write(self, row: int, scores: np.ndarray, covered: np.ndarray) -> None:
        if self.scores_writer is not None:
            raw = scores.copy()
            raw[:, ~covered] = np.nan
            self.scores_writer.write(row, raw)
        self.writer.write(row, self.plan.finalize(scores, covered))

    @abstractmethod
    def add(self, row: int, col: int, y: int, x: int, scores: np.ndarray | None, valid: np.ndarray | None) -> None:
        """Take one tile's scores (None: the tile was all nodata and not run)."""

    @abstractmethod
    def end_row(self, row: int) -> None:
        """Tile row `row` is complete: write what no later tile can change."""

    def close(self) -> list[Path]:
        """Close the files; the paths written (raster first, then scores)."""
        self.writer.close()
        paths = [self.writer.path]
        if self.scores_writer is not None:
            self.scores_writer.close()
            paths.append(self.scores_writer.path)
        return paths


class PixelSink(Sink):
    """Per-pixel outputs: tiles blend (or overwrite) into a rolling strip on the input grid."""

    def __init__(self, plan: OutputPlan, grid: Grid, layout: TileLayout, directory: Path, key: str,
                 scores: bool, blend_mode: str) -> None:
        super().__init__(plan, grid, directory, key, scores)
        self.layout = layout
        self.rows = layout.rows
        self.cols = layout.cols
        blend = layout.overlap > 0 and plan.kind != "labels"
        self.strip = Strip(plan.channels, layout.window_h, grid.width, blend)
        self.base = blend_weights(layout.window_h, layout.window_w, layout.overlap, blend_mode)

    def add(self, row: int, col: int, y: int, x: int, scores: np.ndarray | None, valid: np.ndarray | None) -> None:
        if scores is None:
            return
        weights = edge_weights(self.base, self.layout.overlap, row == 0, row == len(self.rows) - 1,
                               col == 0, col == len(self.cols) - 1)
        self.strip.add(y, x, scores, weights * valid)

    def end_row(self, row: int) -> None:
        until = self.rows[row + 1] if row + 1 < len(self.rows) else self.grid.height
        top = self.strip.top
        self._write(top, *self.strip.flush(until))


class TileSink(Sink):
    """Scene-classification outputs: one value per tile on a grid of tile-sized pixels."""

    def __init__(self, plan: OutputPlan, grid: Grid, layout: TileLayout, directory: Path, key: str,
                 scores: bool) -> None:
        cols, rows = len(layout.cols), len(layout.rows)
        coarse = Grid(grid.crs, grid.transform @ Affine.scale(layout.window_w, layout.window_h), cols, rows)
        super().__init__(plan, coarse, directory, key, scores)
        self.row_values = np.full((plan.channels, 1, cols), np.nan, dtype=np.float32)

    def add(self, row: int, col: int, y: int, x: int, scores: np.ndarray | None, valid: np.ndarray | None) -> None:
        self.row_values[:, 0, col] = np.nan if scores is None else scores

    def end_row(self, row: int) -> None:
        covered = ~np.isnan(self.row_values[0])
        self._write(row, np.nan_to_num(self.row_values), covered)
        self.row_values[:] = np.nan
