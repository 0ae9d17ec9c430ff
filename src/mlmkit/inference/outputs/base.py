"""What every output kind shares: the plan and sink protocols the tile loop drives, the context of one result
Item's sinks, class colours and the PNG helpers of the quicklooks.

A plan says how a model's raw outputs become one product (`results(raw)`: one result per tile) and opens the
sink that writes it (`sink(context)`). A sink receives every tile in row-major order and is told when a tile
row ends; at that point what no later tile can touch is final and is written out, so memory stays at one
strip. `finish` turns what was written into the result Item's files and, on request, its quicklook.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from mlmkit.inference.catalog import Result
from mlmkit.inference.reader import Grid
from mlmkit.inference.tiler import TileLayout
from mlmkit.mlm.spec import ModelClass, ModelOutput
from mlmkit.stac.classes import class_objects

QUICKLOOK_SIZE = 512
_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


@dataclass(frozen=True)
class PlanRequest:
    """What an output kind is shown when it claims outputs: the model's outputs in tile form (runtime
    position → MLM output, see `feeders`), their raw values for one all-zero tile, and the run's options."""

    outputs: dict[int, ModelOutput]
    probe: list
    tile: tuple[int, int]
    allow_python: bool
    hyperparameters: dict | None = None   # the Item's mlm:hyperparameters
    score_threshold: float | None = None  # object detection: as given, else from the hyperparameters
    iou_threshold: float | None = None


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


class Plan(Protocol):
    key: str
    allows_overlap: bool
    alone: bool                 # the model's only plan: its files may take plain names

    @property
    def reads(self) -> tuple[int, ...]:
        """The runtime output positions this plan turns into its product."""

    def results(self, raw: list) -> list:
        """One result per tile of the batch, from the tile-form raw outputs."""

    def sink(self, context: SinkContext) -> Sink:
        """Where this plan's results are written."""


def color_of(model_class: ModelClass, position: int) -> tuple[int, int, int]:
    """A class's colour_hint (hex string or RGB list), else a fixed palette colour."""
    hint = model_class.color_hint
    if isinstance(hint, str) and len(hint.lstrip("#")) >= 6:
        text = hint.lstrip("#")
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    if isinstance(hint, (list, tuple)) and len(hint) >= 3:
        return int(hint[0]), int(hint[1]), int(hint[2])
    return _PALETTE[position % len(_PALETTE)]


def class_table(declared: Sequence[ModelClass], values: Sequence) -> list[tuple[ModelClass, tuple[int, int, int]]]:
    """The declared class of each value (a placeholder `class-N` for undeclared ones) with its colour."""
    by_value = {c.value: c for c in declared}
    found = [by_value.get(value, ModelClass(value=int(value), name=f"class-{value}")) for value in values]
    return [(model_class, color_of(model_class, position)) for position, model_class in enumerate(found)]


def class_entries(table: list[tuple[ModelClass, tuple[int, int, int]]]) -> list[dict]:
    """`classification:classes` entries (value, machine name, title, description, color_hint) of a class table."""
    return class_objects(({"value": int(model_class.value), "name": model_class.name, "title": model_class.title,
                           "description": model_class.description, "color_hint": "%02X%02X%02X" % rgb}
                          for model_class, rgb in table), "the model's classification:classes")


def quicklook_shape(width: int, height: int) -> tuple[int, int]:
    """(rows, cols) of a quicklook: the longer side at most QUICKLOOK_SIZE."""
    scale = max(width, height) / QUICKLOOK_SIZE
    if scale <= 1:
        return height, width
    return max(1, math.ceil(height / scale)), max(1, math.ceil(width / scale))


def grey_stretch(values: np.ndarray) -> np.ndarray:
    """8-bit grey of `values`: a 2–98 % stretch over the finite ones (NaN → 0 before stretching)."""
    finite = values[np.isfinite(values)]
    low, high = np.percentile(finite, (2, 98)) if finite.size else (0.0, 1.0)
    return np.clip((np.nan_to_num(values) - low) / ((high - low) or 1.0) * 255, 0, 255).astype(np.uint8)


def save_png(picture: Image.Image, target: Path) -> Path:
    """Every quicklook's PNG settings: zlib level 6, not optimize=True (level 9 + filter search), which is 5×
    slower for 5 % smaller files."""
    picture.save(target, format="PNG", compress_level=6)
    return target
