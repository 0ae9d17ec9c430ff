"""Which tile sizes a model accepts, and how a window smaller than the tile is brought to it and back.

A fixed model height/width is the tile. A dynamic one must often be a multiple of the network's total
stride (a U-Net with four poolings takes 16, 32, 48, ... but fails inside the graph on 100): the MLM input
may declare it (`mlmkit:size_multiple`), otherwise it is found once by probing the model on zeros of
sizes 3·m for m = 1, 2, 4, ... (3·m is a multiple of m but of no larger power of two). Scenes smaller than
the tile are padded (or resized) to it as the input's `resize_type` says, and results are cropped back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mlmkit.errors import InvalidArgument, ModelRefused, ModelRunError, OptionAdjusted, TileSizeError, warn
from mlmkit.inference.outputs.boxes import Detections

DEFAULT_TILE = 256
PROBE_MULTIPLES = (1, 2, 4, 8, 16, 32, 64, 128)
_INTERPOLATION = {"interpolation-nearest": Image.Resampling.NEAREST, "interpolation-linear": Image.Resampling.BILINEAR,
                  "interpolation-cubic": Image.Resampling.BICUBIC, "interpolation-area": Image.Resampling.BOX,
                  "interpolation-lanczos4": Image.Resampling.LANCZOS, "interpolation-max": Image.Resampling.NEAREST}
Accepts = Callable[[tuple[int, int]], bool]


@dataclass(frozen=True)
class InputGeometry:
    """What one model input says about its height and width."""

    name: str
    fixed: tuple[int | None, int | None]  # static (height, width) from the graph or the Item; None = dynamic
    multiple: int | None                  # declared size multiple of the dynamic dims, if any


@dataclass(frozen=True)
class TileSizes:
    """The sizes a model takes: fixed dims, or multiples of `multiple`, starting from `preferred`."""

    fixed: tuple[int | None, int | None]
    multiple: int
    preferred: int

    def tile_for(self, height: int, width: int) -> tuple[int, int]:
        """The tile for a scene: fixed dims as they are; dynamic ones the preferred size, or the smallest
        valid size that holds the scene when it is smaller."""
        return self._axis(self.fixed[0], height), self._axis(self.fixed[1], width)

    def _axis(self, fixed: int | None, length: int) -> int:
        if fixed is not None:
            return fixed
        return min(self.preferred, math.ceil(length / self.multiple) * self.multiple)


def _common_fixed(inputs: Sequence[InputGeometry]) -> tuple[int | None, int | None]:
    fixed = []
    for axis, edge in ((0, "height"), (1, "width")):
        sizes = {entry.fixed[axis] for entry in inputs if entry.fixed[axis] is not None}
        if len(sizes) > 1:
            raise ModelRefused(f"model inputs have different fixed {edge}s {sorted(sizes)}; expected one tile size")
        fixed.append(sizes.pop() if sizes else None)
    return fixed[0], fixed[1]


def _probe_tile(fixed: tuple[int | None, int | None], size: int) -> tuple[int, int]:
    return fixed[0] or size, fixed[1] or size


def probe_multiple(fixed: tuple[int | None, int | None], accepts: Accepts, names: str) -> int:
    """The smallest power of two m whose odd multiple 3·m the model takes (and gives back at that size).

    `accepts` says no by returning False or by raising ModelRunError / TileSizeError; when no size is taken,
    the first such error is quoted, so a model that fails for another reason than its size says which.
    """
    tried, first = [], ""
    for multiple in PROBE_MULTIPLES:
        tile = _probe_tile(fixed, 3 * multiple)
        tried.append(tile)
        try:
            if accepts(tile):
                return multiple
        except (ModelRunError, TileSizeError) as exc:
            first = first or f"; at {tile[1]}×{tile[0]} px: {(str(exc).strip().splitlines() or [''])[0]}"
    shown = ", ".join(f"{w}×{h}" for h, w in tried)
    raise ModelRunError(f"input {names}: the model took none of the tile sizes tried ({shown} px{first}); "
                        "expected a model that runs on some height/width (declare its size multiple as "
                        "'mlmkit:size_multiple' on the MLM input if it needs a larger one)")


def _round(requested: int, multiple: int) -> int:
    """The multiple of `multiple` nearest to `requested` (ties up), at least `multiple`."""
    return max(multiple, math.floor(requested / multiple + 0.5) * multiple)


def tile_sizes(inputs: Sequence[InputGeometry], requested: int | None, accepts: Accepts) -> TileSizes:
    """Decide the model's tile sizes once: fixed dims win, dynamic ones are kept a multiple of what the model
    needs (declared, else probed); --tile-size is rounded to the nearest such size, with a note."""
    fixed = _common_fixed(inputs)
    names = ", ".join(repr(entry.name) for entry in inputs)
    for axis, edge in ((0, "height"), (1, "width")):
        if fixed[axis] is not None and requested is not None and fixed[axis] != requested:
            raise InvalidArgument(f"input {names} has a fixed {edge} of {fixed[axis]} px; the tile_size argument "
                                  f"{requested} cannot be used (omit it or give {fixed[axis]})")
    if None not in fixed:
        return TileSizes(fixed, 1, max(fixed))
    declared = {entry.multiple for entry in inputs if entry.multiple}
    multiple = math.lcm(*declared) if declared else probe_multiple(fixed, accepts, names)
    preferred = _round(requested or DEFAULT_TILE, multiple)
    if requested is not None and preferred != requested:
        warn(f"tile size {requested} is not a multiple of {multiple}, which the model needs; using {preferred}",
             OptionAdjusted)
    return TileSizes(fixed, multiple, preferred)


def _pad_mode(resize_type: str | None) -> str:
    return "constant" if resize_type == "pad" else "reflect"


def _pad(array: np.ndarray, tile: tuple[int, int], mode: str) -> np.ndarray:
    """(C, h, w) padded at the bottom and right to (C, *tile); reflect falls back to edge on 1-px axes."""
    pad_h, pad_w = tile[0] - array.shape[1], tile[1] - array.shape[2]
    if mode == "reflect" and min(array.shape[1:]) < 2:
        mode = "edge"
    return np.pad(array, ((0, 0), (0, pad_h), (0, pad_w)), mode=mode)


def _resize(array: np.ndarray, shape: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    """(C, h, w) → (C, *shape), channel by channel as 32-bit float images."""
    out = np.empty((array.shape[0], *shape), dtype=np.float32)
    for channel, plane in enumerate(array):
        resized = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F").resize(
            (shape[1], shape[0]), method)
        out[channel] = np.asarray(resized)
    return out


@dataclass(frozen=True)
class TileFit:
    """Bring a (C, h, w) window to the model tile and its (K, H, W) result back to the window.

    `resize_type` of the MLM input decides: 'pad' pads with zeros, an interpolation resizes (results come
    back by nearest neighbour, so class scores and labels stay what the model said), anything else
    ('crop', none) pads by reflection. Results are cropped to the window; nothing is padded when the window
    is the tile, which it is everywhere but in scenes smaller than one tile.
    """

    window: tuple[int, int]
    tile: tuple[int, int]
    resize_type: str | None = None

    @property
    def identity(self) -> bool:
        return self.window == self.tile

    @property
    def resizes(self) -> bool:
        return self.resize_type in _INTERPOLATION

    def to_tile(self, array: np.ndarray) -> np.ndarray:
        if self.identity:
            return array
        if self.resizes:
            return _resize(array, self.tile, _INTERPOLATION[self.resize_type])
        return _pad(array, self.tile, _pad_mode(self.resize_type))

    def from_tile(self, result):
        """(K, *tile) → (K, *window); boxes scaled to the window where it was resized (a padded window's boxes
        stay: the sink clips them to the window); results without height/width (scene classes) pass through."""
        if self.identity:
            return result
        if isinstance(result, Detections):
            return result.scaled(self.window[0] / self.tile[0], self.window[1] / self.tile[1]) if self.resizes \
                else result
        if not isinstance(result, np.ndarray) or result.ndim != 3:
            return result
        array = result
        if self.resizes:
            return _resize(array, self.window, Image.Resampling.NEAREST)
        return array[:, : self.window[0], : self.window[1]]
