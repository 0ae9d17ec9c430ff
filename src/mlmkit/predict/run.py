"""`predict`: run the model an MLM Item describes over STAC imagery, tile by tile, into files and a catalog.

A reader thread reads and pre-processes windows into preallocated batch buffers while the main
thread runs the model and streams results to disk, so reading overlaps inference and memory is
bounded by a strip of tiles, whatever the scene size. What differs between model shapes lives behind
three interfaces: the feeder (how windows become model calls: tiles or pixel rows), the output plans
and their sinks (rasters, one class per tile, boxes), and the stacking of Items (one, or T dates).
"""

from __future__ import annotations

import logging
import math
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
from mlmkit.errors import InvalidInput, ModelRunError, TileSizeError
from mlmkit.mlm import ModelSpec, read_model
from mlmkit.predict.bands import BandRef
from mlmkit.predict.binding import BoundInput, bind_inputs, bind_item, input_geometry, preview_sources, stack_depth
from mlmkit.predict.catalog import Result, result_item, slug, stack_id, write_catalog
from mlmkit.predict.feeders import Feeder, make_feeder
from mlmkit.predict.geometry import TileFit, TileSizes, tile_sizes
from mlmkit.predict.plans import Plan, plan_outputs
from mlmkit.predict.reader import Grid, WindowReader, choose_grid, in_metres, regrid
from mlmkit.predict.runtime import ModelRunner, RuntimeOptions, open_runtime
from mlmkit.predict.sinks import Sink, SinkContext
from mlmkit.predict.stacks import stack_items
from mlmkit.predict.tiler import TileLayout
from mlmkit.predict.writer import quicklook_shape
from mlmkit.safepath import safe_name
from mlmkit.stacio import iter_items, local_files
from mlmkit.progress import QUIET, Progress, Task

QUEUE_DEPTH = 2
_RESIZE = {"interpolation-nearest": Resampling.nearest, "interpolation-linear": Resampling.bilinear,
           "interpolation-cubic": Resampling.cubic, "interpolation-area": Resampling.average,
           "interpolation-lanczos4": Resampling.lanczos, "interpolation-max": Resampling.max}
GDAL_CACHE_BYTES = 96 * 2**20  # rasterio hands the number to GDALSetCacheMax: bytes, not MB
log = logging.getLogger(__name__)


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
    time_steps: int | None = None       # dates per stack, for models whose time dimension is dynamic
    score_threshold: float | None = None  # object detection: boxes scored lower are dropped (default: Item, 0.25)
    iou_threshold: float | None = None    # object detection: same-class boxes overlapping more merge (default: 0.5)
    device: str = "auto"                # cpu, cuda, or auto (mlm:accelerator, then what is available)
    model_asset: str | None = None      # which mlm:model asset to run (default: ONNX first)
    model_cache: bool = True            # keep downloaded models in the cache (keyed by file:checksum)
    allow_native_code: bool = False     # load AOTInductor packages (compiled shared libraries)
    progress: Progress = field(default_factory=lambda: Progress(QUIET))  # tiles per item, -v details


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

    def __init__(self, reader: WindowReader, layout: TileLayout, bound: list[BoundInput], batch: int,
                 fit: TileFit) -> None:
        super().__init__(daemon=True, name="mlmkit-reader")
        self.reader, self.layout, self.bound, self.batch, self.fit = reader, layout, bound, batch, fit
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self.stop = threading.Event()
        self._ring = [
            {entry.name: np.zeros((batch, entry.depth, *fit.tile), dtype=entry.tensor.dtype) for entry in bound}
            for _ in range(QUEUE_DEPTH + 2)
        ]
        self._window = np.empty((len(reader.refs), *fit.window), dtype=np.float32)

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
            data, valid = self.reader.read(Window(x, y, self.layout.window_w, self.layout.window_h), self._window)
            if not valid.any():
                batch.tiles.append(_Tile(row, col, y, x, None))
                continue
            sources = dict(zip(names, data))
            for entry in self.bound:
                batch.buffers[entry.name][batch.count] = self.fit.to_tile(entry.build(sources))
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


def _run_tiles(producer: _Producer, runner: ModelRunner, feeder: Feeder, plans: list[Plan],
               sinks: list[Sink], task: Task) -> None:
    last_col = len(producer.layout.cols) - 1
    fit = producer.fit
    for batch in producer.batches():
        results: list = [None] * len(plans)
        if batch.count:
            raw = feeder.run(runner, batch.buffers, [tile.valid for tile in batch.tiles if tile.valid is not None])
            results = [plan.results(raw) for plan in plans]
        slot = 0
        for tile in batch.tiles:
            for plan_results, sink in zip(results, sinks):
                sink.add(tile.row, tile.col, tile.y, tile.x,
                         fit.from_tile(plan_results[slot]) if tile.valid is not None else None, tile.valid)
            slot += tile.valid is not None
            if tile.col == last_col:
                for sink in sinks:
                    sink.end_row(tile.row)
        task.advance(len(batch.tiles))


def _finish(sinks: list[Sink]) -> tuple[list[Result], Path | None]:
    results, preview = [], None
    for sink in sinks:
        files, look = sink.finish(preview is None)
        results += files
        preview = preview or look
    return results, preview


def _describe_run(progress: Progress, name: str, refs: list[BandRef], grid: Grid, layout: TileLayout) -> None:
    """The -v details of one item: which asset band feeds each model band, the grid, the tiles."""
    progress.detail(f"{name}: bands " + ", ".join(f"{ref.name} <- {ref.asset}[{ref.index}]" for ref in refs))
    progress.detail(f"{name}: grid {grid.width}x{grid.height} px, resolution {grid.resolution:g}, {grid.crs}")
    progress.detail(f"{name}: {len(layout.rows)}x{len(layout.cols)} tiles of {layout.tile_w}x{layout.tile_h} px, "
                    f"overlap {layout.overlap}")


def _grid(hrefs: list[str], requested: float | None, model_resolution: float | None) -> Grid:
    """--resolution, else the resolution the MLM Item says the model expects (on metric grids), else the finest band's."""
    grid = choose_grid(hrefs, requested)
    if requested is None and model_resolution is not None and in_metres(grid) \
            and not math.isclose(model_resolution, grid.resolution):
        log.warning("note: the model expects %g m pixels and the imagery's finest are %g m; resampling onto a "
                    "%g m grid (--resolution overrides)", model_resolution, grid.resolution, model_resolution)
        grid = regrid(grid, model_resolution)
    return grid


def _accepts(spec: ModelSpec, runner: ModelRunner, feeder: Feeder, options: PredictOptions):
    """Whether the model runs on a tile size and gives its per-pixel outputs back at that size."""
    def accepts(tile: tuple[int, int]) -> bool:
        try:
            plan_outputs(spec, runner, feeder, tile, options.allow_python, options.score_threshold,
                         options.iou_threshold)
        except (ModelRunError, TileSizeError):
            return False
        return True
    return accepts


def _fit(bound: list[BoundInput], layout: TileLayout) -> TileFit:
    resize = next((entry.plan.model_input.resize_type for entry in bound if entry.plan.model_input.resize_type), None)
    return TileFit((layout.window_h, layout.window_w), (layout.tile_h, layout.tile_w), resize)


def predict_item(stack: tuple[pystac.Item, ...], spec: ModelSpec, runner: ModelRunner, bound: list[BoundInput],
                 sizes: TileSizes, workdir: Path, options: PredictOptions, model_href: str) -> pystac.Item:
    """Run the model over one imagery Item (or a stack of dated Items); its files go to workdir/<result id>/."""
    refs, bound = bind_item(bound, stack, spec)  # this stack's copies: the shared inputs stay as they are
    grid = _grid(sorted({ref.href for ref in refs}), options.resolution, spec.resolution)
    tile = sizes.tile_for(grid.height, grid.width)
    feeder = make_feeder(bound)
    plans = plan_outputs(spec, runner, feeder, tile, options.allow_python, options.score_threshold,
                         options.iou_threshold)
    overlap = options.overlap if all(plan.allows_overlap for plan in plans) else 0
    layout = TileLayout(grid.height, grid.width, tile[0], tile[1], overlap)
    item_dir = workdir / safe_name(f"{stack_id(stack)}-{slug(spec.name)}")  # the real ids stay in the JSON
    item_dir.mkdir(parents=True, exist_ok=True)
    _describe_run(options.progress, stack_id(stack), refs, grid, layout)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), \
            WindowReader(refs, grid, _resampling(options, bound)) as reader:
        names = preview_sources(bound, spec.band_info)
        context = SinkContext(grid, layout, item_dir, options.probabilities, options.blend,
                              lambda: reader.preview(names, quicklook_shape(grid.width, grid.height)))
        sinks = [plan.sink(context) for plan in plans]
        producer = _Producer(reader, layout, bound, feeder.tiles_per_batch(options.batch_size), _fit(bound, layout))
        tiles = len(layout.rows) * len(layout.cols)
        # the item's summary line comes once its files are written, not when its last tile is computed
        with options.progress.task(f"predict {stack_id(stack)}", tiles, "tiles", grid.width * grid.height) as task:
            producer.start()
            try:
                _run_tiles(producer, runner, feeder, plans, sinks, task)
            except BaseException:
                for sink in sinks:
                    sink.close()
                raise
            finally:
                producer.stop.set()
                producer.join()
            results, preview = _finish(sinks)
    return result_item(stack, spec, model_href, grid, results, preview, item_dir)


def _grid_key(bound: list[BoundInput], spec: ModelSpec, options: PredictOptions):
    """The grid an Item is read on, as a key: Items of one time stack must share it."""
    def key(item: pystac.Item) -> tuple:
        refs, _ = bind_item(bound, (item,), spec)
        grid = choose_grid(sorted({ref.href for ref in refs}), options.resolution)  # Items on one grid share any regrid
        return grid.crs.to_wkt(), tuple(grid.transform)[:6], grid.width, grid.height
    return key


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
    model_href = spec.self_href or str(model)
    runner = open_runtime(spec, RuntimeOptions(options.threads, options.providers, options.device, options.model_asset,
                                               options.model_cache, options.allow_native_code,
                                               options.progress.download_hook("download model")))
    options.progress.detail(f"model {spec.name}: {runner.description}")
    try:
        bound = bind_inputs(spec, runner, options.allow_python, options.time_steps)
        stacks = stack_items(items, stack_depth(bound), _grid_key(bound, spec, options))
        _, first = bind_item(bound, stacks[0], spec)  # channel counts as Items give them (band-less inputs)
        sizes = tile_sizes(input_geometry(first), options.tile_size, _accepts(spec, runner, make_feeder(first), options))
        inputs_read = [model, inputs, spec.model_asset.href, *local_files(items)]
        with atomic_output_dir(output, options.overwrite, inputs_read) as workdir:
            results = [predict_item(stack, spec, runner, bound, sizes, workdir, options, model_href)
                       for stack in stacks]
            write_catalog(workdir, results, spec)
    finally:
        runner.close()
    return Path(output).absolute() / "catalog.json"
