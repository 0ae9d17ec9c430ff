"""`predict_xarray`: the model an MLM Item describes, over an xarray DataArray or Dataset, lazily with Dask.

For notebook users (odc-stac, stackstac, xarray-eopf): bands are a dimension (its coordinate names them; a
`common_name` coordinate along it, as stackstac gives, adds common names) or the Dataset's variables (their
`common_name` attribute likewise); they are matched to the model's bands by name and common name exactly as
`predict` matches an Item's (a synthetic Item with one asset per band goes through the same binding).

The result is a Dask-backed DataArray (or a Dataset: class map and class scores) on the data's own
coordinates, computed where and when the user computes it: on threads, or on any dask.distributed cluster, a
mosaic larger than one machine included. Each output block is computed from the tiles that `predict` lays
over the whole grid and that touch the block: the block's region of the data, widened to those tiles, runs
through predict's own reader thread, tile loop and raster sink (pipeline._Producer, pipeline._run_tiles,
outputs.raster.PixelSink with its blend weights), so the blend is predict's and the results are predict's on the
same pixels. A tile on a block boundary is run for both blocks (one tile row or column per boundary).

Memory stays flat in scene size: a block is whole chunks of the data, read inside its own task (no scheduler
reads data ahead of the block that needs it), plus copies of the edges (a tile or two wide) of the blocks
above and to the left; it gives the output up to the first tile that reaches past its chunks and passes its
own edges on. The blocks thus run as a wave from the top left, and the output is rechunked like the data.
"""

from __future__ import annotations

import datetime
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pystac
from affine import Affine
from rasterio.windows import Window

from mlmkit.errors import InvalidArgument, InvalidInput, NotRunnable, ResamplingWarning, warn
from mlmkit.inference.bands import BandRef
from mlmkit.inference.binding import bind_inputs, bind_item, input_geometry, stack_depth
from mlmkit.inference.feeders import Feeder, make_feeder
from mlmkit.inference.geometry import tile_sizes
from mlmkit.inference.pipeline import PredictOptions, _accepts, _fit, _Producer, _run_tiles, choose_plans
from mlmkit.inference.outputs import Plan, SinkContext
from mlmkit.inference.outputs.raster import OutputPlan, PixelSink, classes_field
from mlmkit.inference.reader import Grid, in_metres
from mlmkit.inference.runtime import ModelRunner, RuntimeOptions, open_runtime
from mlmkit.inference.tiler import TileLayout
from mlmkit.mlm.lint import enforce, lint_model
from mlmkit.mlm.spec import ModelSpec, read_model
from mlmkit.progress import QUIET, Progress

if TYPE_CHECKING:
    import xarray as xr

# PredictOptions fields that mean the same on an array; the others concern files, Items or regridding
OPTIONS = ("tile_size", "overlap", "blend", "batch_size", "threads", "providers", "probabilities", "allow_python",
           "device", "model_asset", "model_cache", "allow_native_code")
_BAND_DIMS = ("band", "bands", "variable", "channel", "channels")
_Y_DIMS, _X_DIMS = ("y", "latitude", "lat"), ("x", "longitude", "lon")
_COMMON = ("common_name", "eo:common_name")
BLOCK = 2048  # output block side for data that is not chunked yet


@dataclass(frozen=True)
class _Band:
    name: str
    common_name: str | None
    nodata: float | None


@dataclass(frozen=True)
class _Setup:
    """Everything a worker needs to rebuild the run: plain values, so that a task pickles and a worker caches."""

    model: str
    bands: tuple[_Band, ...]
    options: tuple[tuple[str, Any], ...]
    tile: tuple[int, int] | None = None


def _import_xarray():
    try:
        import dask.array  # noqa: F401
        import xarray
    except ImportError as exc:
        raise InvalidInput("predict_xarray needs xarray and dask, which are not installed; expected "
                           "`pip install 'mlmkit[xarray]'`") from exc
    return xarray


def _options(given: dict[str, Any]) -> PredictOptions:
    unknown = sorted(set(given) - set(OPTIONS))
    if unknown:
        raise InvalidArgument(f"option(s) {', '.join(unknown)} do not apply to predict_xarray; expected any of "
                              f"{', '.join(OPTIONS)} (regrid or select dates with xarray/odc-stac first)")
    options = PredictOptions(**given)
    if options.blend not in ("smooth", "crop"):
        raise InvalidArgument(f"blend mode {options.blend!r} is unknown; expected smooth or crop")
    return options


def _spatial_dims(array: xr.DataArray) -> tuple[str, str]:
    found = [next((dim for dim in names if dim in array.dims), None) for names in (_Y_DIMS, _X_DIMS)]
    if None in found:
        raise InvalidArgument(f"the data has dimensions {list(array.dims)}; expected y/x (or latitude/longitude)")
    return found[0], found[1]


def _single_date(array: xr.DataArray, keep: tuple[str, ...]) -> xr.DataArray:
    """Drop dimensions of length 1 (an odc-stac `time` of one date); refuse longer ones."""
    for dim in array.dims:
        if dim not in keep:
            if array.sizes[dim] != 1:
                raise InvalidArgument(f"dimension {dim!r} has {array.sizes[dim]} entries; expected one date per call "
                                      f"(select one, e.g. data.isel({dim}=0))")
            array = array.isel({dim: 0}, drop=True)
    return array


def _nodata(attrs: dict) -> float | None:
    for key in ("nodata", "_FillValue"):
        value = attrs.get(key)
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            return float(value)
    return None


def _dataset_bands(data: xr.Dataset, xr) -> tuple[xr.DataArray, list[_Band]]:
    """A Dataset's variables over y/x as (band, y, x), each variable a band named like it."""
    variables = [name for name, variable in data.data_vars.items()
                 if any(dim in variable.dims for dim in _Y_DIMS) and any(dim in variable.dims for dim in _X_DIMS)]
    if not variables:
        raise InvalidArgument("the Dataset has no data variables over y/x; expected one variable per band")
    bands = [_Band(str(name), _common(data[name].attrs), _nodata(data[name].attrs)) for name in variables]
    arrays = [_single_date(data[name], _spatial_dims(data[name])) for name in variables]
    try:
        array = xr.concat(arrays, dim="band", coords="minimal", compat="override", join="exact")
    except ValueError as exc:
        raise InvalidArgument(f"the Dataset's variables {variables} are not on one grid ({exc}); expected bands on "
                              "the same y/x coordinates") from exc
    return array.transpose("band", *_spatial_dims(array)), bands


def _dataarray_bands(data: xr.DataArray) -> tuple[xr.DataArray, list[_Band]]:
    """A DataArray as (band, y, x): its band dimension, named by its coordinate (common names from a
    `common_name` coordinate along it), or the array itself as one band named like it."""
    y, x = _spatial_dims(data)
    band_dim = next((dim for dim in _BAND_DIMS if dim in data.dims), None)
    if band_dim is None:
        if data.name is None:
            raise InvalidArgument("the DataArray has no band dimension and no name; expected a band dimension "
                                  f"({', '.join(_BAND_DIMS)}) or a DataArray named like its band")
        data, band_dim = data.expand_dims(band=[str(data.name)]), "band"
    array = _single_date(data, (band_dim, y, x)).transpose(band_dim, y, x)
    count = array.sizes[band_dim]
    names = [str(value) for value in array[band_dim].values] if band_dim in array.coords else \
        [str(index + 1) for index in range(count)]
    commons = next((list(array[key].values) for key in _COMMON
                    if key in array.coords and array[key].dims == (band_dim,)), [None] * count)
    nodata = _nodata(array.attrs)
    return array, [_Band(name, str(common) if common else None, nodata) for name, common in zip(names, commons)]


def _as_bands(data: xr.DataArray | xr.Dataset, xr) -> tuple[xr.DataArray, list[_Band]]:
    """(band, y, x) and what each band is called; band names must not repeat."""
    if isinstance(data, xr.Dataset):
        array, bands = _dataset_bands(data, xr)
    elif isinstance(data, xr.DataArray):
        array, bands = _dataarray_bands(data)
    else:
        raise InvalidArgument(f"data is a {type(data).__name__}; expected an xarray DataArray or Dataset")
    if len({band.name for band in bands}) != len(bands):
        raise InvalidArgument(f"band names {[band.name for band in bands]} repeat; expected each band named once")
    return array, bands


def _common(attrs: dict) -> str | None:
    value = next((attrs[key] for key in _COMMON if attrs.get(key)), None)
    return str(value) if value is not None else None


def _item(bands: tuple[_Band, ...]) -> pystac.Item:
    """The data as predict sees imagery: one single-band asset per band, named and common-named."""
    item = pystac.Item("the xarray data", None, None, datetime.datetime(2000, 1, 1), {})  # the date is never read
    for position, band in enumerate(bands):
        entry = {"name": band.name, **({"common_name": band.common_name} if band.common_name else {})}
        extra = {"eo:bands": [entry], **({"raster:bands": [{"nodata": band.nodata}]} if band.nodata is not None else {})}
        item.add_asset(band.name, pystac.Asset(f"band-{position}", media_type="image/tiff", roles=["data"],
                                               extra_fields=extra))
    return item


class _Engine:
    """One model bound to the data's bands, with its tile and output plans: built once per process.

    `shape`: the data's (height, width), to choose the tile as predict chooses it for a scene of that size;
    a worker gets the tile chosen in its setup."""

    def __init__(self, setup: _Setup, shape: tuple[int, int] | None = None, spec: ModelSpec | None = None) -> None:
        options = self.options = PredictOptions(**dict(setup.options))
        self.spec: ModelSpec = spec or read_model(setup.model)
        self.runner: ModelRunner = open_runtime(self.spec, RuntimeOptions(
            options.threads, options.providers, options.device, options.model_asset, options.model_cache,
            options.allow_native_code))
        try:
            self._bind(setup, shape or (0, 0))
        except BaseException:
            self.runner.close()
            raise

    def _bind(self, setup: _Setup, shape: tuple[int, int]) -> None:
        """Bands, tile and output plans, found as predict finds them for one Item."""
        options = self.options
        bound = bind_inputs(self.spec, self.runner, options.allow_python)
        if stack_depth(bound) != 1:
            raise NotRunnable("the model takes a time series of Items; predict_xarray runs models of one date "
                              "(use predict with dated Items)")
        self.refs, self.bound = bind_item(bound, (_item(setup.bands),), self.spec)
        self.feeder: Feeder = make_feeder(self.bound)
        self.tile = setup.tile or tile_sizes(input_geometry(self.bound), options.tile_size,
                                             _accepts(self.spec, self.runner, self.feeder, options)).tile_for(*shape)
        self.plans: list[Plan] = choose_plans(self.spec, self.runner, self.feeder, self.tile, options.allow_python)
        flat = [plan for plan in self.plans if not (isinstance(plan, OutputPlan) and plan.spatial)]
        if flat:
            raise NotRunnable(f"output {flat[0].key!r} is not a per-pixel raster (one value per tile, or boxes); "
                              "predict_xarray returns rasters on the data's grid (use predict for this model)")

    def layout(self, height: int, width: int) -> TileLayout:
        """The tiles predict lays over a height × width grid (every output here is per-pixel: overlap applies)."""
        return TileLayout(height, width, self.tile[0], self.tile[1], self.options.overlap)

    def outputs(self) -> list[_Output]:
        """Every raster a block returns, in order: each plan's, and its class scores when asked for."""
        outputs = []
        for plan in self.plans:
            outputs.append(_Output(plan.key, plan.bands, plan.dtype, plan.nodata, plan, False))
            if self.options.probabilities and plan.kind in ("classes", "binary"):
                outputs.append(_Output(plan.scores_key, plan.channels, np.dtype(np.float32), float("nan"), plan, True))
        return outputs


@dataclass(frozen=True)
class _Output:
    name: str
    bands: int
    dtype: np.dtype
    nodata: float
    plan: OutputPlan
    scores: bool


_ENGINES: OrderedDict[str, _Engine] = OrderedDict()  # by repr(setup): a NaN nodata equals itself there
_ENGINES_LOCK = threading.Lock()
_KEPT = 4


def _engine(setup: _Setup, built: _Engine | None = None) -> _Engine:
    """The engine of a setup, built once per process and kept for its later blocks (`built`: one to keep)."""
    key = repr(setup)
    with _ENGINES_LOCK:  # blocks on threads of one worker wait for the first to build it
        if key not in _ENGINES:
            _ENGINES[key] = built or _Engine(setup)
            while len(_ENGINES) > _KEPT:
                _ENGINES.popitem(last=False)
        _ENGINES.move_to_end(key)
        return _ENGINES[key]


class _ArrayReader:
    """What pipeline._Producer reads windows from (reader.WindowReader's interface), over one block in memory."""

    def __init__(self, refs: list[BandRef], region: np.ndarray, nodata: list[float | None]) -> None:
        self.refs, self.region, self.nodata = refs, region, nodata

    @property
    def dtype(self) -> np.dtype:
        return self.region.dtype

    def read(self, window: Window, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        rows = slice(int(window.row_off), int(window.row_off + window.height))
        cols = slice(int(window.col_off), int(window.col_off + window.width))
        data = self.region[:, rows, cols]
        out = data.astype(np.float32) if out is None else out
        out[...] = data
        valid = np.ones(data.shape[1:], dtype=bool)
        for band, nodata in zip(out, self.nodata):
            if np.issubdtype(self.region.dtype, np.floating):
                valid &= ~np.isnan(band)
            if nodata is not None:
                valid &= ~np.isnan(band) if math.isnan(nodata) else band != nodata
        return out, valid


class _MemoryWriter:
    """Rows of one raster of a block, in memory (the StripWriter of a block)."""

    def __init__(self, count: int, height: int, width: int, dtype: np.dtype, nodata: float) -> None:
        self.array = np.full((count, height, width), nodata, dtype=dtype)

    def write(self, row: int, values: np.ndarray) -> None:
        self.array[:, row:row + values.shape[1]] = values

    def close(self) -> None:
        """Nothing to release."""


class _BlockSink(PixelSink):
    """predict's per-pixel sink (strips, blend weights), writing the block's rows into memory."""

    def _writer(self, name: str, count: int, dtype: np.dtype, nodata: float, colormap: dict | None = None):
        return _MemoryWriter(count, self.grid.height, self.grid.width, dtype, nodata)


class _Chunks:
    """A block's own chunks of the data, computed inside the block's task (with the synchronous scheduler) so
    that no scheduler reads them ahead of the block: a worker holds the data of the block it runs, no more."""

    def __init__(self, array: Any) -> None:
        import dask

        (self.array,) = dask.optimize(array)  # the graph of these chunks alone travels with the task

    def __dask_tokenize__(self) -> str:
        return self.array.name

    def compute(self) -> np.ndarray:
        return np.asarray(self.array.compute(scheduler="sync"))


def _run_block(own: _Chunks | np.ndarray, above: np.ndarray | None, left: np.ndarray | None,
               corner: np.ndarray | None, setup: _Setup, rows: _Span, cols: _Span) -> tuple[np.ndarray, ...]:
    """Every output raster over the block's output rows and columns, then copies of the edges of its own data
    that the tiles of the blocks below, to the right and below-right read (those are held, not the data).

    `own`: the block's own chunks; `above`, `left`, `corner`: the edges the blocks before it passed on."""
    own = own.compute() if isinstance(own, _Chunks) else own
    region = np.empty((own.shape[0], rows.end - rows.start, cols.end - cols.start), dtype=own.dtype)
    down, right = rows.own - rows.start, cols.own - cols.start
    top, bottom, before, after = slice(None, down), slice(down, None), slice(None, right), slice(right, None)
    parts = ((above, (top, after)), (left, (bottom, before)), (corner, (top, before)), (own, (bottom, after)))
    for part, where in parts:
        if part is not None:
            region[(slice(None), *where)] = part
    outputs = _predict_region(region[:, :rows.stop - rows.start, :cols.stop - cols.start], setup)
    cut = (slice(None), slice(rows.first - rows.start, rows.last - rows.start),
           slice(cols.first - cols.start, cols.last - cols.start))
    below, beyond = rows.after - rows.own, cols.after - cols.own
    return (*(output[cut].copy() for output in outputs), own[:, below:].copy(), own[:, :, beyond:].copy(),
            own[:, below:, beyond:].copy())


def _predict_region(region: np.ndarray, setup: _Setup) -> list[np.ndarray]:
    """Every output raster over `region` (data that starts and ends on tile edges), as predict gives it."""
    engine = _engine(setup)
    layout = engine.layout(region.shape[1], region.shape[2])
    grid = Grid(None, Affine.identity(), region.shape[2], region.shape[1])
    context = SinkContext(grid, layout, Path("."), engine.options.probabilities, engine.options.blend)
    sinks = [_BlockSink(plan, context) for plan in engine.plans]
    reader = _ArrayReader(engine.refs, region, [band.nodata for band in _used(setup, engine)])
    producer = _Producer(reader, layout, engine.bound, engine.feeder.tiles_per_batch(engine.options.batch_size),
                         _fit(engine.bound, layout))
    producer.start()
    try:
        _run_tiles(producer, engine.runner, engine.feeder, engine.plans, sinks, Progress(QUIET).task("block"), None)
    finally:
        producer.stop.set()
        producer.join()
    arrays = []
    for sink in sinks:  # in engine.outputs() order
        arrays.append(sink.writer.array)
        if sink.scores_writer is not None:
            arrays.append(sink.scores_writer.array)
    return arrays


def _used(setup: _Setup, engine: _Engine) -> list[_Band]:
    """The data's bands the model reads, in the reader's order."""
    by_name = {band.name: band for band in setup.bands}
    return [by_name[ref.asset] for ref in engine.refs]


def _tile_span(origins: list[int], tile: int, start: int, stop: int, length: int) -> tuple[int, int]:
    """The data rows (or columns) that the tiles touching [start, stop) read."""
    touching = [origin for origin in origins if origin < stop and origin + tile > start]
    return touching[0], min(touching[-1] + tile, length)


@dataclass(frozen=True)
class _Span:
    """One axis of a block: its own chunks of the data [own, end); the data its tiles read [start, stop), the
    edge [start, own) passed on by the block before; the output it gives [first, last); and where the data
    that the next block's tiles read begins (`after`: the edge [after, end) it passes on)."""

    own: int
    end: int
    start: int
    stop: int
    first: int
    last: int
    after: int


def _spans(chunks: tuple[int, ...], origins: list[int], tile: int, length: int) -> list[_Span]:
    """The blocks along one axis: whole chunks, grouped to at least two tiles, each block giving the output
    that its own chunks and the edge before them make whole (up to the first tile that reaches past them)."""
    ends, total, group = [], 0, 0
    for size in chunks:
        total, group = total + size, group + size
        if group >= 2 * tile or total == length:
            ends.append(total)
            group = 0
    firsts = [0] + [next(origin for origin in origins if origin + tile > end) for end in ends[:-1]]
    lasts = firsts[1:] + [length]
    reads = [_tile_span(origins, tile, first, last, length) for first, last in zip(firsts, lasts)]
    afters = [start for start, _ in reads[1:]] + [length]
    owns = [0] + ends[:-1]
    return [_Span(*values) for values in zip(owns, ends, [r[0] for r in reads], [r[1] for r in reads], firsts,
                                              lasts, afters)]


def _grid(array: xr.DataArray) -> Grid | None:
    """The data's grid from odc-geo or rioxarray, when either knows it."""
    try:
        import odc.geo.xr  # noqa: F401  (registers the .odc accessor)

        geobox = array.odc.geobox
        if geobox is not None and geobox.crs is not None:
            return Grid(geobox.crs.to_wkt(), geobox.affine, geobox.shape.x, geobox.shape.y)
    except (ImportError, AttributeError, ValueError):
        pass
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)

        if array.rio.crs is not None:
            return Grid(array.rio.crs, array.rio.transform(), array.rio.width, array.rio.height)
    except (ImportError, AttributeError, ValueError):
        pass
    return None


def _check_resolution(spec: ModelSpec, grid: Grid | None) -> None:
    if grid is None or spec.resolution is None:
        return
    from rasterio.crs import CRS

    metric = Grid(CRS.from_user_input(grid.crs), grid.transform, grid.width, grid.height)
    if in_metres(metric) and not math.isclose(spec.resolution, metric.resolution):
        warn(f"the model expects {spec.resolution:g} m pixels and the data has {metric.resolution:g} m; "
             f"predict_xarray runs on the data as it is (load it at {spec.resolution:g} m, e.g. "
             f"odc.stac.load(..., resolution={spec.resolution:g}))", ResamplingWarning)


def _chunks(array: xr.DataArray, axis: int) -> tuple[int, ...]:
    chunks = array.chunks
    if chunks is not None:
        return chunks[axis]
    length = array.shape[axis]
    return (BLOCK,) * (length // BLOCK) + ((length % BLOCK,) if length % BLOCK else ())


def _result(engine: _Engine, array: xr.DataArray, blocks: list[list[list[Any]]], xr):
    """The lazy outputs as DataArrays on the data's y/x coordinates (a Dataset when there are several)."""
    import dask.array as da

    y, x = array.dims[1], array.dims[2]
    coords = {name: coord for name, coord in array.coords.items() if set(coord.dims) <= {y, x}}
    named = {}
    for index, output in enumerate(engine.outputs()):
        data = da.block([[block[index] for block in row] for row in blocks]).rechunk(
            ((output.bands,), _chunks(array, 1), _chunks(array, 2)))  # blocked like the data
        attrs: dict[str, Any] = {"nodata": output.nodata}
        table = classes_field(output.plan)[:-1] if output.plan.is_classes else []
        if table and not output.scores:
            attrs.update(flag_values=[entry["value"] for entry in table],
                         flag_meanings=" ".join(str(entry["name"]).replace(" ", "_") for entry in table))
        if output.bands == 1:
            named[output.name] = xr.DataArray(data[0], coords=coords, dims=(y, x), name=output.name, attrs=attrs)
            continue
        dim, labels = ("class", [entry["name"] for entry in table]) if output.scores else \
            ("band", list(range(output.bands)))
        named[output.name] = xr.DataArray(data, coords={**coords, dim: labels}, dims=(dim, y, x), name=output.name,
                                          attrs=attrs)
    return next(iter(named.values())) if len(named) == 1 else xr.Dataset(named)


def _blocks(engine: _Engine, setup: _Setup, array: xr.DataArray, bands: list[_Band]) -> list[list[list[Any]]]:
    """Per output block (rows of columns): a lazy array per output. A block reads its own chunks of the data
    in its task and takes copies of the edges of the blocks above and to the left, so that each chunk is read
    once, by the block that runs it, and freed when it is done; what is held meanwhile is edges a tile or two
    wide (the blocks run as a wave from the top left)."""
    import dask
    import dask.array as da

    height, width = array.shape[1], array.shape[2]
    layout = engine.layout(height, width)
    positions = [[band.name for band in bands].index(ref.asset) for ref in engine.refs]
    row_chunks, col_chunks = _chunks(array, 1), _chunks(array, 2)
    # data in memory: each block's part goes into the graph as it is (its chunks then need no reading)
    source = array.data[positions] if isinstance(array.data, da.Array) else np.asarray(array.data)[positions]
    outputs = engine.outputs()
    run = dask.delayed(_run_block, pure=True, nout=len(outputs) + 3)
    row_spans = _spans(row_chunks, layout.rows, layout.window_h, height)
    col_spans = _spans(col_chunks, layout.cols, layout.window_w, width)
    held = not isinstance(source, da.Array) or _persisted(source)
    tasks: list[list[Any]] = []
    blocks: list[list[list[Any]]] = []
    for i, rows in enumerate(row_spans):
        tasks.append([])
        blocks.append([])
        for j, cols in enumerate(col_spans):
            own = source[:, rows.own:rows.end, cols.own:cols.end]
            task = run(own if held else _Chunks(own), tasks[i - 1][j][-3] if i else None,
                       tasks[i][j - 1][-2] if j else None, tasks[i - 1][j - 1][-1] if i and j else None,
                       setup, rows, cols)
            tasks[i].append(task)
            blocks[i].append([da.from_delayed(task[index], (output.bands, rows.last - rows.first,
                                                            cols.last - cols.first), dtype=output.dtype)
                              for index, output in enumerate(outputs)])
    return blocks


def _persisted(source: Any) -> bool:
    """Whether the data is held on a dask.distributed cluster (persisted): then blocks take it as it is held."""
    try:
        from distributed import futures_of
    except ImportError:
        return False
    return bool(futures_of(source))


def predict_xarray(model: str | Path, data: xr.DataArray | xr.Dataset, **options: Any) -> xr.DataArray | xr.Dataset:
    """Run the model an MLM Item describes over `data`, lazily, on the data's y/x coordinates: a Dask-backed
    DataArray when the run gives one raster (a class map, or values), else a Dataset of them (`classes` and
    `scores` with `probabilities=True`; one per model output).

    `options`: predict's `tile_size`, `overlap`, `blend`, `batch_size`, `threads`, `providers`, `probabilities`,
    `allow_python`, `device`, `model_asset`, `model_cache`, `allow_native_code`. What is wrong with the model or
    the data is said here; nothing runs until the result is computed (`.compute()`, `.to_zarr()`, ...), on the
    Dask scheduler or cluster active then.
    """
    xr = _import_xarray()
    settings = _options(options)
    array, bands = _as_bands(data, xr)
    chosen = tuple(sorted((field.name, getattr(settings, field.name)) for field in fields(PredictOptions)
                          if field.name in OPTIONS))
    local = Path(str(model))
    href = str(local.resolve()) if local.exists() else str(model)  # workers may run elsewhere: an absolute path
    spec = read_model(href)
    enforce(lint_model(spec), f"model {spec.name!r}")  # as predict refuses or notes what would mislead
    engine = _Engine(_Setup(href, tuple(bands), chosen), (array.shape[1], array.shape[2]), spec)
    _check_resolution(engine.spec, _grid(array))
    setup = _Setup(href, tuple(bands), chosen, engine.tile)
    _engine(setup, engine)  # blocks computed in this process use it
    return _result(engine, array, _blocks(engine, setup, array, bands), xr)
