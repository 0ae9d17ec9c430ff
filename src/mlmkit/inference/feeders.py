"""How a batch of windows becomes model calls, and how the raw outputs come back in tile form.

The reader fills canonical (n, T*C, H, W) buffers, one per model input. A feeder turns them into the
model's tensors and gives back, for each model output, an array (or a list when single-tile calls give
differently sized results, e.g. detections) whose axis 0 is the batch's tiles, plus the MLM output
re-described for that tile form, so output plans never need to know how the model was called:

- `TileFeeder`: rasters (any dim order, with or without batch/time axes): tiles are the model's batch.
- `PixelFeeder`: pixel-wise models ([batch, bands] rows): valid pixels only, in bounded chunks, scattered
  back to (n, ..., H, W).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace

import numpy as np

from mlmkit.errors import ModelRefused
from mlmkit.mlm.spec import DimRole, ModelOutput
from mlmkit.inference.binding import BoundInput, fixed_batch
from mlmkit.inference.runtime import ModelRunner

PIXEL_CHUNK = 65536  # rows per call of a pixel-wise model: bounds its working memory, amortises the call


def _batch_axis(output: ModelOutput, rank: int) -> int | None:
    """Where the MLM output puts its batch axis; None when it declares none (for this rank)."""
    if len(output.dim_order) != rank:
        return 0
    return output.axis(DimRole.BATCH)


def _dims_with(output: ModelOutput, shape: tuple[int, ...], dims: tuple[str, ...]) -> ModelOutput:
    return replace(output, shape=tuple(shape), dim_order=tuple(dims))


class Feeder(ABC):
    """One way of running a model over batches of windows (see the module docstring)."""

    def __init__(self, bound: list[BoundInput]) -> None:
        self.bound = bound
        self.fixed = fixed_batch(bound)

    @abstractmethod
    def tiles_per_batch(self, requested: int) -> int:
        """How many tiles the reader puts in one batch."""

    @abstractmethod
    def probe(self, runner: ModelRunner, outputs: dict[int, ModelOutput], tile: tuple[int, int]) -> list:
        """Run one all-zero tile: learn the output layouts; the tile-form results."""

    @abstractmethod
    def run(self, runner: ModelRunner, buffers: dict[str, np.ndarray], valid: list[np.ndarray]) -> list:
        """Tile-form raw outputs of the model over the batch's tiles (`valid`: one mask per tile run)."""

    @abstractmethod
    def tile_output(self, output: ModelOutput, index: int) -> ModelOutput:
        """`output` (the model's `index`-th) as its tile-form results are laid out."""

    def _zeros(self, count: int, tile: tuple[int, int]) -> dict[str, np.ndarray]:
        return {entry.name: np.zeros((count, entry.depth, *tile), dtype=entry.tensor.dtype) for entry in self.bound}


class TileFeeder(Feeder):
    """Tiles are the model's batch: a call per batch (or per fixed-size group, or per tile when outputs have
    no batch axis, as detection exports give boxes [N, 4] for one image)."""

    def __init__(self, bound: list[BoundInput]) -> None:
        super().__init__(bound)
        self.per_call = self.fixed
        self._batch_axes: list[int | None] = []

    def tiles_per_batch(self, requested: int) -> int:
        return self.per_call if self.per_call is not None else max(1, requested)

    def probe(self, runner: ModelRunner, outputs: dict[int, ModelOutput], tile: tuple[int, int]) -> list:
        count = self.per_call or 1
        raw = runner.run(self._feeds(self._zeros(count, tile), 0, count))
        self._batch_axes = [_batch_axis(outputs[i], np.ndim(r)) if i in outputs else 0 for i, r in enumerate(raw)]
        if None in self._batch_axes:
            if count > 1:
                name = outputs[self._batch_axes.index(None)].name
                raise ModelRefused(f"output {name!r} has no batch dimension but the model takes {count} tiles per "
                                   "call; expected a batch dimension in its dim_order, or a model run one tile a call")
            self.per_call = 1
        return self._join([[r] for r in raw], 1)

    def _feeds(self, buffers: dict[str, np.ndarray], start: int, size: int) -> dict[str, np.ndarray]:
        return {entry.name: entry.feed(buffers[entry.name][start:start + size]) for entry in self.bound}

    def run(self, runner: ModelRunner, buffers: dict[str, np.ndarray], valid: list[np.ndarray]) -> list:
        count = len(valid)
        size = self.per_call or count  # a fixed batch gets full (partly stale) buffers
        parts: list[list] = [[] for _ in self._batch_axes]
        for start in range(0, count, size):
            for part, result in zip(parts, runner.run(self._feeds(buffers, start, size))):
                part.append(result)
        return self._join(parts, count)

    def _join(self, parts: list[list], count: int) -> list:
        joined = []
        for axis, results in zip(self._batch_axes, parts):
            if axis is None:  # one tile per call: stack them, or keep a list when their sizes differ
                shapes = {np.shape(result) for result in results}
                joined.append(np.stack(results) if len(shapes) == 1 else list(results))
                continue
            arrays = [np.moveaxis(np.asarray(result), axis, 0) for result in results]
            joined.append((arrays[0] if len(arrays) == 1 else np.concatenate(arrays))[:count])
        return joined

    def tile_output(self, output: ModelOutput, index: int) -> ModelOutput:
        axis = self._batch_axes[index]
        if axis == 0:
            return output
        if axis is None:
            return _dims_with(output, (-1, *output.shape), ("batch", *output.dim_order))
        order = [axis] + [i for i in range(len(output.shape)) if i != axis]
        return _dims_with(output, tuple(output.shape[i] for i in order), tuple(output.dim_order[i] for i in order))


def _rows(result, axis: int) -> np.ndarray:
    """A pixel model's output with the pixel axis first; ONNX-ML ZipMap (a list of {class: score}) as (P, K)."""
    if isinstance(result, list):
        return np.array([list(scores.values()) for scores in result], dtype=np.float32).reshape(len(result), -1)
    return np.moveaxis(np.asarray(result), axis, 0)


class PixelFeeder(Feeder):
    """Pixel-wise models: the valid pixels of a batch of tiles become rows, run in bounded chunks and
    scattered back, so nodata pixels cost nothing and the result is a raster again."""

    def __init__(self, bound: list[BoundInput]) -> None:
        super().__init__(bound)
        self.chunk = self.fixed or PIXEL_CHUNK
        self._pixel_axes: list[int] = []
        self._described: list[bool] = []  # the MLM dim_order matches the output's rank

    def tiles_per_batch(self, requested: int) -> int:
        return max(1, requested)

    def probe(self, runner: ModelRunner, outputs: dict[int, ModelOutput], tile: tuple[int, int]) -> list:
        rows = {entry.name: np.zeros((1, entry.depth), dtype=entry.tensor.dtype) for entry in self.bound}
        raw = runner.run(self._feeds(rows, 0, 1))
        ranks = [2 if isinstance(r, list) else np.ndim(r) for r in raw]  # ZipMap: a (P, K) table
        self._described = [i in outputs and len(outputs[i].dim_order) == rank for i, rank in enumerate(ranks)]
        self._pixel_axes = [(_batch_axis(outputs[i], rank) or 0) if described else 0
                            for i, (rank, described) in enumerate(zip(ranks, self._described))]
        return self.run(runner, self._zeros(1, tile), [np.ones(tile, dtype=bool)])

    def _feeds(self, rows: dict[str, np.ndarray], start: int, size: int) -> dict[str, np.ndarray]:
        feeds = {}
        for entry in self.bound:
            chunk = rows[entry.name][start:start + size]
            if self.fixed is not None and len(chunk) < self.fixed:  # a fixed row count: pad the last chunk
                chunk = np.concatenate([chunk, np.zeros((self.fixed - len(chunk), chunk.shape[1]), chunk.dtype)])
            feeds[entry.name] = entry.feed_rows(chunk)
        return feeds

    def run(self, runner: ModelRunner, buffers: dict[str, np.ndarray], valid: list[np.ndarray]) -> list:
        mask = np.stack(valid)
        count, height, width = mask.shape
        rows = {entry.name: buffers[entry.name][:count].transpose(0, 2, 3, 1)[mask] for entry in self.bound}
        total = int(mask.sum())
        parts: list[list[np.ndarray]] = [[] for _ in self._pixel_axes]
        for start in range(0, total, self.chunk):
            size = min(self.chunk, total - start)
            for part, result, axis in zip(parts, runner.run(self._feeds(rows, start, self.chunk)), self._pixel_axes):
                part.append(_rows(result, axis)[:size])
        scattered = []
        for part in parts:
            values = np.concatenate(part)
            out = np.zeros((count, height, width, *values.shape[1:]), dtype=values.dtype)
            out[mask] = values
            scattered.append(np.moveaxis(out, (1, 2), (-2, -1)))
        return scattered

    def tile_output(self, output: ModelOutput, index: int) -> ModelOutput:
        axis = self._pixel_axes[index]
        if not self._described[index]:
            return output
        keep = [i for i in range(len(output.shape)) if i != axis]
        return _dims_with(output, (-1, *(output.shape[i] for i in keep), -1, -1),
                          ("batch", *(output.dim_order[i] for i in keep), "height", "width"))


def make_feeder(bound: list[BoundInput]) -> Feeder:
    """Pixel rows when the inputs have no height/width, tiles otherwise; never a mix."""
    pixelwise = {entry.pixelwise for entry in bound}
    if len(pixelwise) > 1:
        names = ", ".join(f"{entry.name!r} ({'pixel rows' if entry.pixelwise else 'raster'})" for entry in bound)
        raise ModelRefused(f"model inputs mix pixel rows and rasters ({names}); expected all inputs with height/width, "
                           "or none")
    return PixelFeeder(bound) if pixelwise.pop() else TileFeeder(bound)
