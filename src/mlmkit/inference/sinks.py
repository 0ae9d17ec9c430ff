"""Where an output plan's tile results go: per-pixel strips, one value per tile, or vector features.

A sink receives every tile in row-major order and is told when a tile row ends; at that point what no
later tile can touch is final and is written out, so memory stays at one strip. `finish` turns what was
written into the result Item's files (COGs, GeoParquet, ...) and, on request, its quicklook.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from affine import Affine

from mlmkit.inference.catalog import RasterResult, Result
from mlmkit.inference.classes import class_entries, class_table
from mlmkit.inference.reader import Grid
from mlmkit.inference.tiler import FinalStrip, Strip, TileLayout, blend_weights, edge_weights
from mlmkit.inference.writer import StripWriter, quicklook, to_cog

if TYPE_CHECKING:
    from mlmkit.inference.postprocess import OutputPlan


@dataclass(frozen=True)
class SinkContext:
    """What every sink of one result Item shares."""

    grid: Grid
    layout: TileLayout
    directory: Path
    scores: bool                    # --probabilities: also write the class scores
    blend: str                      # --blend
    background: Callable[[], np.ndarray] | None = None  # (bands, h, w) quicklook-sized preview of the imagery
    title: str = ""                 # the quicklooks' title: the source Item and the model


class Sink(ABC):
    """Takes one plan's per-tile results and writes them."""

    key: str

    @abstractmethod
    def add(self, row: int, col: int, y: int, x: int, result, valid: np.ndarray | None) -> None:
        """Take one tile's result (None: the tile was all nodata and not run)."""

    @abstractmethod
    def end_row(self, row: int) -> None:
        """Tile row `row` is complete: write what no later tile can change."""

    @abstractmethod
    def close(self) -> None:
        """Release open files (also after a failure)."""

    @abstractmethod
    def finish(self, preview: bool) -> tuple[list[Result], Path | None]:
        """The result files, described, and a quicklook PNG when `preview` is asked for."""


def colormap(plan: OutputPlan) -> dict[int, tuple[int, int, int, int]]:
    """Class value → RGBA, for the COG's colour table and the quicklook."""
    table = {int(model_class.value): (*rgb, 255)
             for model_class, rgb in class_table(plan.output.classes, plan.class_values)}
    table[int(plan.nodata)] = (0, 0, 0, 0)
    return table


def classes_field(plan: OutputPlan) -> list[dict]:
    """`classification:classes` for a class output, with its nodata value flagged."""
    entries = class_entries(class_table(plan.output.classes, plan.class_values))
    entries.append({"value": int(plan.nodata), "name": "nodata", "description": "no data", "nodata": True})
    return entries


class RasterSink(Sink):
    """Common part: the class/value raster and, on request, the class scores raster."""

    def __init__(self, plan: OutputPlan, grid: Grid, context: SinkContext) -> None:
        self.plan = plan
        self.grid = grid
        self.key = plan.key
        self.directory = context.directory
        self.title = context.title
        self.colormap = colormap(plan) if plan.is_classes else None
        self.writer = self._writer(f"{self.key}.tmp.tif", plan.bands, plan.dtype, plan.nodata, self.colormap)
        self.scores_writer = None
        if context.scores and plan.kind in ("classes", "binary"):  # labels carry no scores
            self.scores_writer = self._writer(f"{self.key}-scores.tmp.tif", plan.channels, np.dtype(np.float32),
                                              float("nan"))

    def _writer(self, name: str, count: int, dtype: np.dtype, nodata: float, colormap: dict | None = None):
        """Where the finished rows of one raster go: a tiled GeoTIFF `name` in the result directory."""
        grid = self.grid
        return StripWriter(self.directory / name, crs=grid.crs, transform=grid.transform, width=grid.width,
                           height=grid.height, count=count, dtype=dtype, nodata=nodata, colormap=colormap)

    def _write(self, row: int, scores: np.ndarray, covered: np.ndarray) -> None:
        if self.scores_writer is not None:
            raw = scores.copy()
            raw[:, ~covered] = np.nan
            self.scores_writer.write(row, raw)
        self.writer.write(row, self.plan.finalize(scores, covered))

    def close(self) -> None:
        self.writer.close()
        if self.scores_writer is not None:
            self.scores_writer.close()

    def finish(self, preview: bool) -> tuple[list[Result], Path | None]:
        self.close()
        plan, name = self.plan, self.plan.output.name
        cog = to_cog(self.writer.path, self.directory / f"{self.key}.tif", categorical=plan.is_classes)
        bands = [name] if plan.bands == 1 else [f"{name}-{i}" for i in range(plan.bands)]
        results: list[Result] = [RasterResult(self.key, cog, f"{name} ({', '.join(plan.output.tasks) or 'output'})",
                                              self.grid, plan.dtype.name, plan.nodata, bands,
                                              classes_field(plan) if plan.is_classes else None)]
        names = {c["value"]: c["name"] for c in classes_field(plan)[:-1]} if plan.is_classes else None
        if self.scores_writer is not None:
            scores = to_cog(self.scores_writer.path, self.directory / f"{plan.scores_key}.tif", categorical=False)
            results.append(RasterResult(plan.scores_key, scores, f"{name} class scores", self.grid,
                                        "float32", float("nan"), list(names.values())))
        look = quicklook(cog, self.directory / "quicklook.png", self.colormap, names,
                         f"{self.title}, {name}") if preview else None
        return results, look


class PixelSink(RasterSink):
    """Per-pixel outputs: tiles blend (or overwrite) into a rolling strip on the input grid."""

    def __init__(self, plan: OutputPlan, context: SinkContext) -> None:
        super().__init__(plan, context.grid, context)
        layout = context.layout
        self.layout = layout
        self.rows = layout.rows
        self.cols = layout.cols
        blend = layout.overlap > 0 and plan.kind != "labels"
        width = context.grid.width
        # tiles that overwrite and no scores to keep: finalise each tile, hold raster values only
        self.final = FinalStrip(plan.bands, layout.window_h, width, plan.dtype, plan.nodata) \
            if not blend and self.scores_writer is None else None
        self.strip = Strip(plan.channels, layout.window_h, width, blend) if self.final is None else None
        self.base = blend_weights(layout.window_h, layout.window_w, layout.overlap, context.blend)

    def add(self, row: int, col: int, y: int, x: int, result, valid: np.ndarray | None) -> None:
        if result is None:
            return
        weights = edge_weights(self.base, self.layout.overlap, row == 0, row == len(self.rows) - 1,
                               col == 0, col == len(self.cols) - 1) * valid
        if self.final is not None:
            self.final.add(y, x, self.plan.finalize(result, weights > 0))
        else:
            self.strip.add(y, x, result, weights)

    def end_row(self, row: int) -> None:
        until = self.rows[row + 1] if row + 1 < len(self.rows) else self.grid.height
        if self.final is not None:
            top = self.final.top
            self.writer.write(top, self.final.flush(until))
            return
        top = self.strip.top
        self._write(top, *self.strip.flush(until))


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
