"""`predict`: run the model an MLM Item describes over STAC imagery, tile by tile, into COGs and a catalog.

A reader thread reads and pre-processes windows into preallocated batch buffers while the main
thread runs onnxruntime and streams results to disk, so reading overlaps inference and memory is
bounded by a strip of tiles, whatever the scene size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pystac
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from mlmkit.atomic import atomic_output_dir
from mlmkit.errors import InvalidInput
from mlmkit.mlm import ModelSpec, read_model
from mlmkit.predict.binding import BoundInput, batch_size, bind_inputs, bind_item, fixed_batch, tile_shape
from mlmkit.predict.catalog import RasterResult, result_item, slug, write_catalog
from mlmkit.predict.postprocess import OutputPlan, classes_field, plan_output
from mlmkit.predict.reader import WindowReader, choose_grid
from mlmkit.predict.runtime import ModelRunner
from mlmkit.predict.sinks import PixelSink, Sink, TileSink
from mlmkit.predict.tiler import TileLayout
from mlmkit.predict.writer import quicklook, to_cog
from mlmkit.provenance import reference
from mlmkit.stacio import document_href, iter_items

QUEUE_DEPTH = 2
_RESIZE = {"interpolation-nearest": Resampling.nearest, "interpolation-linear": Resampling.bilinear,
           "interpolation-cubic": Resampling.cubic, "interpolation-area": Resampling.average,
           "interpolation-lanczos4": Resampling.lanczos, "interpolation-max": Resampling.max}
GDAL_CACHE_BYTES = 96 * 2**20  # rasterio hands the number to GDALSetCacheMax: bytes, not MB


@dataclass
class PredictOptions:
    """Knobs of a run; every default comes from the MLM Item or is safe for any model."""

    tile_size: int | None = None        # for dynamic height/width only
    overlap: int = 0                    # pixels shared by neighbouring tiles
    blend: str = "smooth"               # "smooth" ramps or "crop" (centre only) where tiles overlap
    batch_size: int = 8
    threads: int | None = None          # onnxruntime intra-op threads (default: all cores)
    providers: tuple[str, ...] | None = None
    probabilities: bool = False         # also write the class scores
    resolution: float | None = None     # grid resolution (default: the finest band's)
    resampling: str | None = None       # default: from the inputs' resize_type, else bilinear
    allow_python: bool = False          # trust `python` expressions in the MLM Item
    overwrite: bool = False
    source_href: str | None = None      # URL the input (Item or catalog) is published at, for derived_from
    model_href: str | None = None       # URL the model (MLM Item or its catalog) is published at


@dataclass
class _Tile:
    row: int
    col: int
    y: int
    x: int
    valid: np.ndarray | None  # None: all nodata, not run


@dataclass
class _Batch:
    tiles: list[_Tile] = field(default_factory=list)
    count: int = 0
    buffers: dict[str, np.ndarray] = field(default_factory=dict)


class _Producer(threading.Thread):
    """Reads windows and fills batch buffers ahead of inference."""

    def __init__(self, reader: WindowReader, layout: TileLayout, bound: list[BoundInput], batch: int) -> None:
        super().__init__(daemon=True, name="mlmkit-reader")
        self.reader, self.layout, self.bound, self.batch = reader, layout, bound, batch
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self.stop = threading.Event()
        shape = (layout.tile_h, layout.tile_w)
        self._ring = [
            {entry.name: np.zeros((batch, entry.channels, *shape), dtype=entry.tensor.dtype) for entry in bound}
            for _ in range(QUEUE_DEPTH + 2)
        ]
        self._window = np.empty((len(reader.refs), *shape), dtype=np.float32)

    def _put(self, payload) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(payload, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
                self._fill()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)

    def _fill(self) -> None:
        names = [ref.name for ref in self.reader.refs]
        ring = 0
        batch = _Batch(buffers=self._ring[ring])
        for row, col, y, x in self.layout:
            data, valid = self.reader.read(Window(x, y, self.layout.tile_w, self.layout.tile_h), self._window)
            if not valid.any():
                batch.tiles.append(_Tile(row, col, y, x, None))
                continue
            sources = dict(zip(names, data))
            for entry in self.bound:
                batch.buffers[entry.name][batch.count] = entry.plan.build(sources)
            batch.tiles.append(_Tile(row, col, y, x, valid))
            batch.count += 1
            if batch.count == self.batch:
                if not self._put(batch):
                    return
                ring = (ring + 1) % len(self._ring)
                batch = _Batch(buffers=self._ring[ring])
        if batch.tiles and not self._put(batch):
            return
        self._put(None)

    def batches(self) -> Iterator[_Batch]:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def _resampling(options: PredictOptions, bound: list[BoundInput]) -> Resampling:
    """--resampling, else the MLM resize_type's interpolation (e.g. interpolation-cubic), else bilinear."""
    if options.resampling:
        return Resampling[options.resampling]
    for entry in bound:
        method = _RESIZE.get(entry.plan.model_input.resize_type or "")
        if method is not None:
            return method
    return Resampling.bilinear


def _dry_run(runner: ModelRunner, bound: list[BoundInput], tile: tuple[int, int]) -> list[np.ndarray]:
    """One call on zeros: tells what the outputs look like before any file is created."""
    size = fixed_batch(bound) or 1
    feeds = {entry.name: entry.feed(np.zeros((size, entry.channels, *tile), dtype=entry.tensor.dtype))
             for entry in bound}
    return runner.run(feeds)


def _output_plans(spec: ModelSpec, runner: ModelRunner, raw: list[np.ndarray], tile: tuple[int, int],
                  allow_python: bool) -> list[OutputPlan]:
    names = [tensor.name for tensor in runner.outputs]
    if all(output.name in names for output in spec.outputs):
        indexes = [names.index(output.name) for output in spec.outputs]
    elif len(spec.outputs) <= len(names):
        indexes = list(range(len(spec.outputs)))
    else:
        raise InvalidInput(f"the MLM Item declares {len(spec.outputs)} outputs but the ONNX model has {len(names)} "
                           f"({', '.join(names)}); expected at most as many")
    return [plan_output(output, index, raw[index], tile, allow_python) for output, index in zip(spec.outputs, indexes)]


def _run_tiles(producer: _Producer, runner: ModelRunner, bound: list[BoundInput], plans: list[OutputPlan],
               sinks: list[Sink]) -> None:
    last_col = len(producer.layout.cols) - 1
    fixed = fixed_batch(bound)  # a model with a fixed batch size gets full (partly stale) buffers
    for batch in producer.batches():
        scores: list[np.ndarray | None] = [None] * len(plans)
        if batch.count:
            size = fixed or batch.count
            raw = runner.run({entry.name: entry.feed(batch.buffers[entry.name][:size]) for entry in bound})
            scores = [plan.scores(raw[plan.index]) for plan in plans]
        slot = 0
        for tile in batch.tiles:
            for plan_scores, sink in zip(scores, sinks):
                tile_scores = plan_scores[slot] if tile.valid is not None else None
                sink.add(tile.row, tile.col, tile.y, tile.x, tile_scores, tile.valid)
            slot += tile.valid is not None
            if tile.col == last_col:
                for sink in sinks:
                    sink.end_row(tile.row)


def _finish(sinks: list[Sink], item_dir: Path) -> tuple[list[RasterResult], Path | None]:
    results, preview = [], None
    for sink in sinks:
        paths = sink.close()
        plan = sink.plan
        cog = to_cog(paths[0], item_dir / f"{sink.key}.tif", categorical=plan.is_classes)
        bands = [plan.output.name] if plan.bands == 1 else [f"{plan.output.name}-{i}" for i in range(plan.bands)]
        results.append(RasterResult(sink.key, cog, f"{plan.output.name} ({', '.join(plan.output.tasks) or 'output'})",
                                    sink.grid, plan.dtype.name, plan.nodata, bands,
                                    classes_field(plan) if plan.is_classes else None))
        if len(paths) > 1:
            scores = to_cog(paths[1], item_dir / f"{sink.key}-scores.tif", categorical=False)
            names = [c["name"] for c in classes_field(plan)[:-1]]
            results.append(RasterResult(f"{sink.key}-scores", scores, f"{plan.output.name} class scores", sink.grid,
                                        "float32", float("nan"), names))
        if preview is None:
            preview = quicklook(cog, item_dir / "quicklook.png", sink.colormap)
    return results, preview


def predict_item(item: pystac.Item, spec: ModelSpec, runner: ModelRunner, bound: list[BoundInput],
                 workdir: Path, options: PredictOptions, model_href: str, source_href: str | None = None) -> pystac.Item:
    """Run the model over one imagery Item; its files go to workdir/<result id>/."""
    refs, bound = bind_item(bound, item, spec)  # this Item's copies: the shared inputs stay as they are
    grid = choose_grid(sorted({ref.href for ref in refs}), options.resolution)
    tile = tile_shape(bound, options.tile_size, grid.height, grid.width)
    plans = _output_plans(spec, runner, _dry_run(runner, bound, tile), tile, options.allow_python)
    overlap = options.overlap if all(plan.spatial for plan in plans) else 0
    layout = TileLayout(grid.height, grid.width, tile[0], tile[1], overlap)
    item_dir = workdir / f"{item.id}-{slug(spec.name)}"
    item_dir.mkdir(parents=True, exist_ok=True)
    keys = [slug(plan.output.name) for plan in plans]
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), \
            WindowReader(refs, grid, _resampling(options, bound)) as reader:
        sinks: list[Sink] = [
            PixelSink(plan, grid, layout, item_dir, key, options.probabilities, options.blend) if plan.spatial
            else TileSink(plan, grid, layout, item_dir, key, options.probabilities)
            for plan, key in zip(plans, keys)
        ]
        producer = _Producer(reader, layout, bound, batch_size(bound, options.batch_size))
        producer.start()
        try:
            _run_tiles(producer, runner, bound, plans, sinks)
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
        finally:
            producer.stop.set()
            producer.join()
        results, preview = _finish(sinks, item_dir)
    return result_item(item, spec, model_href, grid, results, preview, item_dir, source_href)


def predict(model: str, inputs: str, output: Path, options: PredictOptions | None = None) -> Path:
    """Run an MLM model over every Item of `inputs`; returns OUTDIR/catalog.json."""
    options = options or PredictOptions()
    if options.blend not in ("smooth", "crop"):
        raise InvalidInput(f"blend mode {options.blend!r} is unknown; expected smooth or crop")
    if options.resampling is not None and options.resampling not in Resampling.__members__:
        raise InvalidInput(f"resampling {options.resampling!r} is unknown; expected e.g. nearest, bilinear, cubic")
    spec = read_model(model)
    items = list(iter_items(inputs))
    if not items:
        raise InvalidInput(f"{inputs} holds no STAC Items; expected an Item or a catalog with Items")
    model_href = reference(spec.item, document_href(model), options.model_href) or str(model)
    input_href = document_href(inputs)
    runner = ModelRunner(spec.model_asset, options.threads, options.providers)
    try:
        bound = bind_inputs(spec, runner, options.allow_python)
        with atomic_output_dir(output, options.overwrite) as workdir:
            results = [predict_item(item, spec, runner, bound, workdir, options, model_href,
                                    reference(item, input_href, options.source_href)) for item in items]
            write_catalog(workdir, results, spec, Path(output).absolute())
    finally:
        runner.close()
    return Path(output).absolute() / "catalog.json"
