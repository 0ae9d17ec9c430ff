"""Sliding windows over the grid, blend weights for overlapping tiles, and the rolling strip they land in.

Tiles are visited row by row; the last row/column is shifted back to end on the image edge so every
pixel is covered without padding. Only an image smaller than the tile has smaller windows (the image
itself along that axis), which `geometry.TileFit` brings to the model tile. A `Strip` holds only the rows
that later tiles can still touch, so memory is bounded by the tile height times the width, never by the
scene height.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mlmkit.errors import InvalidArgument


def starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile origins along one axis; the last one ends exactly on the edge."""
    if length <= tile:
        return [0]
    origins = list(range(0, length - tile, stride))
    origins.append(length - tile)
    return origins


@dataclass(frozen=True)
class TileLayout:
    """Tile size, overlap and the origins that cover a height × width image."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    overlap: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < min(self.tile_h, self.tile_w):
            raise InvalidArgument(f"overlap {self.overlap} must be >= 0 and smaller than the tile "
                                  f"({self.tile_w}×{self.tile_h}); expected e.g. overlap "
                                  f"{min(self.tile_h, self.tile_w) // 4}")

    @property
    def window_h(self) -> int:
        """Height of every window read: the tile's, or the image's when it is smaller."""
        return min(self.tile_h, self.height)

    @property
    def window_w(self) -> int:
        return min(self.tile_w, self.width)

    @property
    def rows(self) -> list[int]:
        return starts(self.height, self.tile_h, self.tile_h - self.overlap)

    @property
    def cols(self) -> list[int]:
        return starts(self.width, self.tile_w, self.tile_w - self.overlap)

    def __iter__(self) -> Iterator[tuple[int, int, int, int]]:
        """(row index, col index, y, x) of every tile, row-major."""
        cols = self.cols
        for row_index, y in enumerate(self.rows):
            for col_index, x in enumerate(cols):
                yield row_index, col_index, y, x


def blend_weights(tile_h: int, tile_w: int, overlap: int, mode: str = "smooth") -> np.ndarray:
    """Per-pixel tile weights: a raised ramp over the overlap ('smooth') or the centre only ('crop').

    Weights never reach zero at the image border because every pixel gets at least one tile whose
    weight there is positive; the edge tiles use `edge_weights`. A ramp is at most half the tile long
    (a window smaller than the overlap is an image smaller than the tile: one tile, no neighbours).
    """
    def axis(size: int) -> np.ndarray:
        weights = np.ones(size, dtype=np.float32)
        ramp_length = min(overlap, size // 2)
        if ramp_length == 0:
            return weights
        if mode == "crop":
            margin = ramp_length // 2
            weights[:margin] = 0
            weights[size - margin:] = 0
            return weights
        ramp = (np.arange(ramp_length, dtype=np.float32) + 0.5) / ramp_length
        weights[:ramp_length] = ramp
        weights[size - ramp_length:] = ramp[::-1]
        return weights

    return np.outer(axis(tile_h), axis(tile_w))


def edge_weights(base: np.ndarray, overlap: int, top: bool, bottom: bool, left: bool, right: bool) -> np.ndarray:
    """Base weights with the ramp removed on sides that touch the image border (nothing else covers them)."""
    if overlap == 0 or not (top or bottom or left or right):
        return base
    weights = base.copy()
    rows, cols = weights.shape
    centre_row, centre_col = weights[rows // 2], weights[:, cols // 2]
    if top:
        weights[: rows // 2] = np.maximum(weights[: rows // 2], centre_row)
    if bottom:
        weights[rows // 2:] = np.maximum(weights[rows // 2:], centre_row)
    if left:
        weights[:, : cols // 2] = np.maximum(weights[:, : cols // 2], centre_col[:, None])
    if right:
        weights[:, cols // 2:] = np.maximum(weights[:, cols // 2:], centre_col[:, None])
    return weights


class Strip:
    """The rows [top, top + tile_h) of a per-pixel output that tiles still write to.

    In 'assign' mode tiles overwrite (no overlap); in 'blend' mode they add weighted values and
    `flush` divides by the summed weights. Pixels no tile covered (or only with nodata) are reported.
    """

    def __init__(self, channels: int, tile_h: int, width: int, blend: bool) -> None:
        self.blend = blend
        self.top = 0
        self.values = np.zeros((channels, tile_h, width), dtype=np.float32)
        self.weights = np.zeros((tile_h, width), dtype=np.float32)

    def add(self, y: int, x: int, values: np.ndarray, weights: np.ndarray) -> None:
        """Put a tile's (channels, h, w) values at image position (y, x) with (h, w) weights (0 = no data)."""
        rows = slice(y - self.top, y - self.top + values.shape[1])
        cols = slice(x, x + values.shape[2])
        if self.blend:
            self.values[:, rows, cols] += values * weights
            self.weights[rows, cols] += weights
        else:
            self.values[:, rows, cols] = values
            self.weights[rows, cols] = weights

    def flush(self, until: int) -> tuple[np.ndarray, np.ndarray]:
        """Finished rows [top, until): (channels, rows, width) values and where any tile covered them.

        Use the values before the next `add`: when the whole strip is finished (tiles without overlap) they
        are the strip itself, not a copy (at 10 classes × 10980 px that copy was 110 MiB).
        """
        count = until - self.top
        covered = self.weights[:count] > 0
        if not self.blend and count == self.values.shape[1]:
            self.weights[:] = 0
            self.top = until
            return self.values, covered
        if self.blend:
            done = self.values[:, :count] / np.where(covered, self.weights[:count], 1.0)
            self.values[:, : self.values.shape[1] - count] = self.values[:, count:].copy()
            self.values[:, self.values.shape[1] - count:] = 0
        else:  # overwritten before being read again; `weights` tells what is stale
            done = self.values[:, :count].copy()
            self.values[:, : self.values.shape[1] - count] = self.values[:, count:].copy()
        self.weights[: self.weights.shape[0] - count] = self.weights[count:].copy()
        self.weights[self.weights.shape[0] - count:] = 0
        self.top = until
        return done, covered


class FinalStrip:
    """The rows [top, top + tile_h) of a raster whose tiles are final as they arrive (tiles overwrite).

    Without blending a pixel's value depends on the last tile over it alone, so each tile is finalised when
    it comes (e.g. argmax to one uint8 class) and the strip holds raster values, not float scores per class:
    at 10 classes × 10980 px that is 2.7 MiB instead of 110 MiB, and no strip-wide copies.
    """

    def __init__(self, bands: int, tile_h: int, width: int, dtype: np.dtype, nodata: float) -> None:
        self.top = 0
        self.nodata = nodata
        self.values = np.full((bands, tile_h, width), nodata, dtype=dtype)

    def add(self, y: int, x: int, values: np.ndarray) -> None:
        """Put a tile's final (bands, h, w) values at image position (y, x)."""
        self.values[:, y - self.top:y - self.top + values.shape[1], x:x + values.shape[2]] = values

    def flush(self, until: int) -> np.ndarray:
        """Finished rows [top, until); rows no tile has reached yet start as nodata."""
        count = until - self.top
        done = self.values[:, :count].copy()
        rest = self.values.shape[1] - count
        self.values[:, :rest] = self.values[:, count:].copy()
        self.values[:, rest:] = self.nodata
        self.top = until
        return done
