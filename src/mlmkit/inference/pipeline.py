"""`predict`: run the model an MLM Item describes over STAC imagery, tile by tile, into files and a catalog.

A reader thread reads and pre-processes windows into preallocated batch buffers while the main
thread runs the model and streams results to disk, so reading overlaps inference and memory is
bounded by a strip of tiles, whatever the scene size. What differs between model shapes lives behind
three interfaces: the feeder (how windows become model calls: tiles or pixel rows), the output plans
and their sinks (rasters, one class per tile, boxes), and the stacking of Items (one, or T dates).
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pystac
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from mlmkit.stac.atomic import atomic_output_dir
from mlmkit.errors import InvalidArgument, InvalidInput, InvalidMetadata, ResamplingWarning, warn
from mlmkit.mlm.lint import enforce, lint_model
from mlmkit.mlm.spec import ModelOutput, ModelSpec, read_model
from mlmkit.inference.bands import BandRef
from mlmkit.inference.binding import BoundInput, bind_inputs, bind_item, input_geometry, preview_sources, stack_depth
from mlmkit.inference.catalog import Result, result_item, slug, stack_id, write_catalog
from mlmkit.inference.feeders import Feeder, make_feeder
from mlmkit.inference.direct import direct_input, in_input_order, scaled_in_place
from mlmkit.inference.folding import FoldedRunners
from mlmkit.inference.geometry import TileFit, TileSizes, tile_sizes
from mlmkit.inference.outputs import Plan, PlanRequest, Sink, SinkContext, plan_outputs
from mlmkit.inference.outputs.base import quicklook_shape
from mlmkit.inference.reader import Grid, WindowReader, choose_grid, in_metres, regrid
from mlmkit.inference.runtime import ModelRunner, RuntimeOptions, open_runtime
from mlmkit.inference.tiler import TileLayout
from mlmkit.progress import QUIET, Progress, Task
from mlmkit.catalog.provenance import reference
from mlmkit.matching import decide, pair_up
from mlmkit.stac.safepath import safe_name
from mlmkit.stac.read import asset_href, document_href, iter_items, local_files

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
    batch_size: int = 4                 # measured (bench/session_bench.py): as fast as 8, 100–200 MiB less
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
    source_href: str | None = None      # URL the input (Item or catalog) is published at, for derived_from
    source_item_hrefs: tuple[str, ...] = ()  # URLs of input Items, each matched to the Item its path names
    model_href: str | None = None       # URL the model (MLM Item or its catalog) is published at
    sample_tiles: int | None = None     # run only this many tiles, spread over each scene (a smoke run)
    observe: Callable[[Plan, object, np.ndarray], None] | None = None  # (plan, window result, valid) per tile run


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
                 fit: TileFit, direct: BoundInput | None = None, raw: np.dtype | None = None,
                 sample: set[int] | None = None) -> None:
        """`direct`: the input whose windows are read straight into its batch buffer (direct.py) and scaled
        there, or, with `raw`, left as read in that data type for a model with the scaling folded in;
        `sample`: the positions of the only tiles to read and run (the others count as nodata)."""
        super().__init__(daemon=True, name="mlmkit-reader")
        self.reader, self.layout, self.bound, self.batch, self.fit = reader, layout, bound, batch, fit
        self.direct, self.raw, self.sample = direct, raw, sample
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self.stop = threading.Event()
        self._ring = [
            {entry.name: np.zeros((batch, entry.depth, *fit.tile), dtype=raw or entry.tensor.dtype)
             for entry in bound}
            for _ in range(QUEUE_DEPTH + 2)
        ]
        self._window = np.empty((len(reader.refs), *fit.window), dtype=np.float32)

    @property
    def buffers(self) -> list[np.ndarray]:
        """Every batch buffer of the ring (what a device runner may page-lock)."""
        return [array for slot in self._ring for array in slot.values()]

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

    def _load(self, window: Window, buffers: dict[str, np.ndarray], slot: int) -> np.ndarray | None:
        """Read a window into batch slot `slot` of every input; where any band has data, or None."""
        if self.direct is not None:
            target = buffers[self.direct.name][slot]
            _, valid = self.reader.read(window, target)
            if not valid.any():
                return None
            if self.raw is None:
                self.direct.plan.scale_in_place(target)
            return valid
        data, valid = self.reader.read(window, self._window)
        if not valid.any():
            return None
        sources = dict(zip([ref.name for ref in self.reader.refs], data))
        for entry in self.bound:
            buffers[entry.name][slot] = self.fit.to_tile(entry.build(sources))
        return valid

    def _fill(self) -> None:
        ring = 0
        batch = _Batch(buffers=self._ring[ring])
        for position, (row, col, y, x) in enumerate(self.layout):
            valid = None if self.sample is not None and position not in self.sample else \
                self._load(Window(x, y, self.layout.window_w, self.layout.window_h), batch.buffers, batch.count)
            batch.tiles.append(_Tile(row, col, y, x, valid))
            if valid is None:
                continue
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
               sinks: list[Sink], task: Task, observe: Callable[[Plan, object, np.ndarray], None] | None) -> None:
    last_col = len(producer.layout.cols) - 1
    fit = producer.fit
    for batch in producer.batches():
        results: list = [None] * len(plans)
        if batch.count:
            raw = feeder.run(runner, batch.buffers, [tile.valid for tile in batch.tiles if tile.valid is not None])
            results = [plan.results(raw) for plan in plans]
        slot = 0
        for tile in batch.tiles:
            for plan, plan_results, sink in zip(plans, results, sinks):
                result = fit.from_tile(plan_results[slot]) if tile.valid is not None else None
                if observe is not None and result is not None:
                    observe(plan, result, tile.valid)
                sink.add(tile.row, tile.col, tile.y, tile.x, result, tile.valid)
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


def _grid(hrefs: list[str], requested: float | None, model_resolution: float | None, known: dict[str, Grid]) -> Grid:
    """--resolution, else the resolution the MLM Item says the model expects (on metric grids), else the finest band's;
    `known`: the assets' grids read so far in this run (reader.choose_grid)."""
    grid = choose_grid(hrefs, requested, known)
    if requested is None and model_resolution is not None and in_metres(grid) \
            and not math.isclose(model_resolution, grid.resolution):
        warn(f"the model expects {model_resolution:g} m pixels and the imagery's finest are {grid.resolution:g} m; "
             f"resampling onto a {model_resolution:g} m grid (the resolution option overrides)", ResamplingWarning)
        grid = regrid(grid, model_resolution)
    return grid


def pair_outputs(spec: ModelSpec, runner: ModelRunner) -> dict[int, ModelOutput]:
    """Runtime output position → MLM output, matched by name, else by order."""
    names = [tensor.name for tensor in runner.outputs]
    if all(output.name in names for output in spec.outputs):
        return {names.index(output.name): output for output in spec.outputs}
    if len(spec.outputs) <= len(names):
        return dict(enumerate(spec.outputs))
    raise InvalidMetadata(f"the MLM Item declares {len(spec.outputs)} outputs (mlm:output) but the ONNX model has "
                          f"{len(names)} ({', '.join(names)}); expected at most as many")


def choose_plans(spec: ModelSpec, runner: ModelRunner, feeder: Feeder, tile: tuple[int, int], allow_python: bool,
                 score_threshold: float | None = None, iou_threshold: float | None = None) -> list[Plan]:
    """Plans for every MLM output, decided by the output kinds from one all-zero tile run through the feeder."""
    paired = pair_outputs(spec, runner)
    probe = feeder.probe(runner, paired, tile)
    described = {index: feeder.tile_output(output, index) for index, output in paired.items()}
    return plan_outputs(PlanRequest(described, probe, tile, allow_python,
                                    spec.item.properties.get("mlm:hyperparameters"), score_threshold, iou_threshold))


def _accepts(spec: ModelSpec, runner: ModelRunner, feeder: Feeder, options: PredictOptions):
    """Whether the model runs on a tile size and gives its per-pixel outputs back at that size: True, or the
    ModelRunError / TileSizeError saying why not (geometry.probe_multiple counts it as a no and quotes it)."""
    def accepts(tile: tuple[int, int]) -> bool:
        choose_plans(spec, runner, feeder, tile, options.allow_python, options.score_threshold,
                     options.iou_threshold)
        return True
    return accepts


def _sample(layout: TileLayout, count: int | None) -> set[int] | None:
    """`count` tile positions spread evenly over the layout (row-major), or None for every tile."""
    total = len(layout.rows) * len(layout.cols)
    if count is None or count >= total:
        return None
    return {int(position) for position in np.linspace(0, total - 1, max(count, 1)).round()}


def _fit(bound: list[BoundInput], layout: TileLayout) -> TileFit:
    resize = next((entry.plan.model_input.resize_type for entry in bound if entry.plan.model_input.resize_type), None)
    return TileFit((layout.window_h, layout.window_w), (layout.tile_h, layout.tile_w), resize)


class _ItemRun:
    """One Item (or stack of dated Items) in flight: opened and its reader thread filling batches, then run
    and written to workdir/<result id>/.

    `predict` opens the next Item before it writes the files of the current one (COG, quicklook), so the
    next Item's reads overlap that work and the cores stay busy across Item boundaries.
    """

    def __init__(self, stack: tuple[pystac.Item, ...], spec: ModelSpec, runner: ModelRunner,
                 bound: list[BoundInput], sizes: TileSizes, workdir: Path | None, options: PredictOptions,
                 folds: FoldedRunners, grids: dict[str, Grid]) -> None:
        """`workdir` None: read only, nothing written (read_batches takes the batches from `producer`)."""
        self.stack, self.spec = stack, spec
        refs, bound = bind_item(bound, stack, spec)  # this stack's copies: the shared inputs stay as they are
        refs = in_input_order(refs, bound)
        self.grid = grid = _grid(sorted({ref.href for ref in refs}), options.resolution, spec.resolution, grids)
        tile = sizes.tile_for(grid.height, grid.width)
        self.feeder = make_feeder(bound)
        self.plans = choose_plans(spec, runner, self.feeder, tile, options.allow_python, options.score_threshold,
                                  options.iou_threshold)
        overlap = options.overlap if all(plan.allows_overlap for plan in self.plans) else 0
        layout = TileLayout(grid.height, grid.width, tile[0], tile[1], overlap)
        self._describe = lambda: _describe_run(options.progress, stack_id(stack), refs, grid, layout)
        self._observe = options.observe
        self._started = False
        self.sinks: list[Sink] = []
        self._open = contextlib.ExitStack()
        if workdir is not None:
            self.item_dir = workdir / safe_name(f"{stack_id(stack)}-{slug(spec.name)}")  # real ids stay in the JSON
            self.item_dir.mkdir(parents=True, exist_ok=True)
            # the item's summary line comes once its files are written, not when its last tile is computed
            self.task = options.progress.task(f"predict {stack_id(stack)}", len(layout.rows) * len(layout.cols),
                                              "tiles", grid.width * grid.height)
        try:
            reader = self._open.enter_context(WindowReader(refs, grid, _resampling(options, bound)))
            if workdir is not None:
                names = preview_sources(bound, spec.band_info)
                context = SinkContext(grid, layout, self.item_dir, options.probabilities, options.blend,
                                      lambda: reader.preview(names, quicklook_shape(grid.width, grid.height)),
                                      title=f"{stack_id(stack)}: {spec.name}")
                for plan in self.plans:  # one by one: a sink that fails to open leaves the earlier ones to close()
                    self.sinks.append(plan.sink(context))
            fit = _fit(bound, layout)
            direct = direct_input(bound, fit, self.feeder)
            folded = folds.for_input(direct, reader.dtype) if direct is not None else None
            direct = direct if folded is not None else scaled_in_place(direct)
            self.producer = _Producer(reader, layout, bound, self.feeder.tiles_per_batch(options.batch_size), fit,
                                      direct, reader.dtype if folded else None, _sample(layout, options.sample_tiles))
            self.runner = folded or runner
            self._open.enter_context(_pinned(self.runner, self.producer.buffers))
            self._open.callback(self._stop)  # before start: an interruption inside start() still stops it
            self.producer.start()
        except BaseException:
            self.close()
            raise

    def _stop(self) -> None:
        self.producer.stop.set()
        if self.producer.ident is not None:  # started; an unstarted thread has nothing to join
            self.producer.join()

    def run(self) -> None:
        """Run the model over every tile, streaming results into the sinks."""
        self._describe()  # the -v details of this Item come after the previous Item's summary
        self.task.started, self._started = time.perf_counter(), True
        try:
            _run_tiles(self.producer, self.runner, self.feeder, self.plans, self.sinks, self.task, self._observe)
        except BaseException:
            self.close()
            raise

    def finish(self, model_href: str, source_href: Callable[[pystac.Item], str | None]) -> pystac.Item:
        """Write the result files (COGs, quicklook) and describe them."""
        try:
            results, preview = _finish(self.sinks)
        except BaseException:
            self.close()
            raise
        self._open.close()
        self._started = False
        self.task.finish()
        return result_item(self.stack, self.spec, model_href, self.grid, results, preview, self.item_dir,
                           [source_href(item) for item in self.stack])

    def close(self) -> None:
        """Stop reading and release files after a failure (safe to call twice). The reader thread is stopped
        first, whatever a sink's close raises, so no read is in flight while the imagery is closed."""
        try:
            self._open.close()
        finally:
            for sink in self.sinks:
                sink.close()
        if self._started:
            self._started = False
            self.task.finish(failed=True)


def _run_items(stacks: list[tuple[pystac.Item, ...]], start, model_href: str,
               source_href: Callable[[pystac.Item], str | None]) -> list[pystac.Item]:
    """Every stack's result Item; the next stack is opened (its reads begin) before the current one is written."""
    results: list[pystac.Item] = []
    current = start(stacks[0])
    try:
        for upcoming in [*stacks[1:], None]:
            current.run()
            following = start(upcoming) if upcoming is not None else None
            try:
                results.append(current.finish(model_href, source_href))
            except BaseException:
                if following is not None:
                    following.close()
                raise
            current = following
    except BaseException:
        if current is not None:
            current.close()
        raise
    return results


def _pinned(runner: ModelRunner, arrays: list[np.ndarray]) -> contextlib.AbstractContextManager:
    """Runners that copy batches to a device may page-lock the batch buffers while they run (runtimes/onnx.py)."""
    pinned = getattr(runner, "pinned", None)
    return pinned(arrays) if pinned is not None else contextlib.nullcontext()


def _grid_key(spec: ModelSpec, options: PredictOptions, grids: dict[str, Grid]):
    """The grid an Item is read on, as a key: Items of one time stack must share it (the files' grids: `match`
    groups by the grids the metadata states)."""
    def key(item: pystac.Item) -> tuple:
        bound = [entry for pair in pair_up(spec, [item]) for entry in pair.plan["bands"]]
        if not bound:
            return (item.id,)
        grid = choose_grid(sorted({asset_href(item, entry["asset"]) for entry in bound}), options.resolution, grids)
        return grid.crs.to_wkt(), tuple(grid.transform)[:6], grid.width, grid.height
    return key


def _check(options: PredictOptions) -> PredictOptions:
    if options.blend not in ("smooth", "crop"):
        raise InvalidArgument(f"blend mode {options.blend!r} is unknown; expected smooth or crop")
    if options.resampling is not None and options.resampling not in Resampling.__members__:
        raise InvalidArgument(f"resampling {options.resampling!r} is unknown; expected e.g. nearest, bilinear, cubic")
    return options


def _stacks(spec: ModelSpec, inputs: str, options: PredictOptions
            ) -> tuple[list[pystac.Item], list[tuple[pystac.Item, ...]], dict[str, Grid]]:
    """The Items of `inputs`, paired with the model (refused where one cannot run it) into stacks, and the
    imagery grids read for that (each asset's grid is read once in a run: stacking, then each stack)."""
    items = list(iter_items(inputs))
    if not items:
        raise InvalidArgument(f"{inputs} holds no STAC Items; expected an Item or a catalog with Items")
    grids: dict[str, Grid] = {}
    pairs = pair_up(spec, items, options.time_steps, _grid_key(spec, options, grids))
    decide(pairs)
    return items, [pair.items for pair in pairs], grids


def _bind(spec: ModelSpec, runner: ModelRunner, stacks: list[tuple[pystac.Item, ...]],
          options: PredictOptions) -> tuple[list[BoundInput], TileSizes]:
    """The model's inputs bound to the imagery, and the tile sizes the model takes."""
    bound = bind_inputs(spec, runner, options.allow_python, options.time_steps)
    if stack_depth(bound) != len(stacks[0]):
        raise InvalidMetadata(f"the model file takes {stack_depth(bound)} date(s) but its MLM Item describes "
                              f"{len(stacks[0])} (mlm:input[].input.shape); expected them to agree")
    _, first = bind_item(bound, stacks[0], spec)  # channel counts as Items give them (band-less inputs)
    return bound, tile_sizes(input_geometry(first), options.tile_size,
                             _accepts(spec, runner, make_feeder(first), options))


@dataclass
class ReadBatch:
    """A batch of tiles as `predict` hands it to the model, not yet run: the feeder that runs it
    (`feeder.run(runner, buffers, valid)` gives the raw outputs), the output plans that read those, the batch
    buffers (reused for later batches: copy what you keep) and one valid-pixel mask per tile with data."""

    feeder: Feeder
    plans: list[Plan]
    buffers: dict[str, np.ndarray]
    valid: list[np.ndarray]


def read_batches(spec: ModelSpec, runner: ModelRunner, inputs: str,
                 options: PredictOptions | None = None) -> Iterator[ReadBatch]:
    """The batches `predict` would run over every Item of `inputs` (only `options.sample_tiles` of each, spread
    over it, when set): bands bound, read, scaled and laid out for `runner`'s model exactly as predict does, for
    calibrating or checking a model on real imagery."""
    options = _check(options or PredictOptions())
    _, stacks, grids = _stacks(spec, inputs, options)
    bound, sizes = _bind(spec, runner, stacks, options)
    folds = FoldedRunners(runner, enabled=False)  # the buffers hold what the model itself takes
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        for stack in stacks:
            run = _ItemRun(stack, spec, runner, bound, sizes, None, options, folds, grids)
            try:
                for batch in run.producer.batches():
                    valid = [tile.valid for tile in batch.tiles if tile.valid is not None]
                    if valid:
                        yield ReadBatch(run.feeder, run.plans, batch.buffers, valid)
            finally:
                run.close()


def predict(model: str, inputs: str, output: Path, options: PredictOptions | None = None) -> Path:
    """Run an MLM model over every Item of `inputs`; returns OUTDIR/catalog.json."""
    options = _check(options or PredictOptions())
    spec = read_model(model)
    enforce(lint_model(spec), f"model {spec.name!r}")
    items, stacks, grids = _stacks(spec, inputs, options)
    model_href = reference(spec.item, document_href(model), options.model_href) or str(model)
    input_href = document_href(inputs)
    runner = open_runtime(spec, RuntimeOptions(options.threads, options.providers, options.device, options.model_asset,
                                               options.model_cache, options.allow_native_code,
                                               options.progress.download_hook("download model")))
    options.progress.detail(f"model {spec.name}: {runner.description}")
    try:
        bound, sizes = _bind(spec, runner, stacks, options)
        models = [asset.href for asset in spec.model_assets or (spec.model_asset,)]  # --model-asset may pick any
        inputs_read = [model, inputs, *models, *local_files(items)]
        with atomic_output_dir(output, options.overwrite, inputs_read) as workdir:
            folds = FoldedRunners(runner)
            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
                results = _run_items(stacks, lambda stack: _ItemRun(stack, spec, runner, bound, sizes, workdir,
                                                                    options, folds, grids), model_href,
                                     lambda item: reference(item, input_href, options.source_href,
                                                            options.source_item_hrefs))
            write_catalog(workdir, results, spec, Path(output).absolute())
    finally:
        runner.close()
    return Path(output).absolute() / "catalog.json"
