"""Read windows of many bands, from assets of different resolutions or CRSs, on one common grid.

Each asset is opened once. An asset already on the grid is read directly; any other is wrapped in a
WarpedVRT onto the grid, so 20 m and 60 m Sentinel-2 bands are resampled window by window and the
scene is never held in memory. An array in a Zarr store (EOPF Sentinel products) is opened by GDAL's Zarr
driver and read the same way, chunk by chunk; its CRS comes from its Zarr attributes where GDAL finds none
(mlmkit.stac.zarr_arrays).
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from mlmkit.errors import InvalidInput, InvalidMetadata, NotRunnable
from mlmkit.stac.objstore import gdal_config, gdal_path
from mlmkit.stac.zarr_arrays import gdal_zarr_path, is_zarr, zarr_crs, zarr_transform
from mlmkit.inference.bands import BandRef


@dataclass(frozen=True)
class Grid:
    """The pixel grid every band is read on and the output is written on."""

    crs: rasterio.crs.CRS
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> float:
        return abs(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform.c, self.transform.f
        right, bottom = self.transform @ (self.width, self.height)
        return min(left, right), min(top, bottom), max(left, right), max(top, bottom)

    def same_as(self, other: Grid) -> bool:
        return (other.crs == self.crs and other.width == self.width and other.height == self.height
                and other.transform.almost_equals(self.transform))


def _remote_env(hrefs: list[str]) -> contextlib.AbstractContextManager:
    """GDAL settings for s3/gs/az imagery (see mlmkit.stac.objstore); nothing for local and http files."""
    config = gdal_config(hrefs)
    return rasterio.Env(**config) if config else contextlib.nullcontext()


def open_raster(href: str):
    """The rasterio dataset of an imagery href (a file, a URL, an s3/gs/az object, an array in a Zarr store)."""
    try:
        return rasterio.open(gdal_zarr_path(href) if is_zarr(href) else gdal_path(href))
    except (RasterioIOError, OSError) as exc:
        raise InvalidInput(f"cannot read imagery asset {href}: {exc}; expected a raster GDAL can open") from exc


def _zarr_georeference(dataset, href: str) -> tuple[CRS | None, Affine]:
    """CRS and transform of a Zarr array: GDAL's, else what its Zarr attributes declare."""
    crs, transform = dataset.crs, dataset.transform
    if crs is None:
        declared = zarr_crs(href)
        try:
            crs = CRS.from_user_input(declared) if declared else None
        except CRSError as exc:
            raise InvalidMetadata(f"imagery asset {href} declares CRS {declared!r}, which is not one; expected e.g. "
                                  "EPSG:32632 or WKT2") from exc
    if transform == Affine.identity():
        declared_transform = zarr_transform(href)
        transform = Affine(*declared_transform) if declared_transform else transform
    return crs, transform


def own_grid(dataset, href: str) -> Grid:
    """The grid an opened asset lies on; refused without a (north-up) georeference."""
    crs, transform = _zarr_georeference(dataset, href) if is_zarr(href) else (dataset.crs, dataset.transform)
    if crs is None or transform == Affine.identity():
        raise NotRunnable(f"imagery asset {href} has no georeference (CRS and geotransform); "
                          "expected a georeferenced raster")
    if transform.b or transform.d:
        raise NotRunnable(f"imagery asset {href} has a rotated geotransform; expected a north-up raster")
    return Grid(crs, transform, dataset.width, dataset.height)


def _check_overlap(own: Grid, grid: Grid, href: str) -> None:
    left, bottom, right, top = transform_bounds(own.crs, grid.crs, *own.bounds)
    g_left, g_bottom, g_right, g_top = grid.bounds
    if left >= g_right or right <= g_left or bottom >= g_top or top <= g_bottom:
        raise NotRunnable(f"imagery asset {href} ({own.crs}) does not overlap the grid of the other bands "
                          f"({grid.crs}, bounds {[round(v, 3) for v in grid.bounds]}); expected all bands to cover "
                          "the same area (is its CRS right?)")


def choose_grid(hrefs: list[str], resolution: float | None = None, known: dict[str, Grid] | None = None) -> Grid:
    """The finest grid among the assets (or the finest's extent at `resolution`).

    `known`: each asset's own grid by href, from assets opened before in the same run; the assets not in it
    are opened (remote ones cost requests) and added to it.
    """
    known = {} if known is None else known
    missing = [href for href in hrefs if href not in known]
    with _remote_env(missing):
        for href in missing:
            with open_raster(href) as dataset:
                known[href] = own_grid(dataset, href)
    finest = min((known[href] for href in hrefs), key=lambda grid: grid.resolution)
    return finest if resolution is None else regrid(finest, resolution)


def regrid(grid: Grid, resolution: float) -> Grid:
    """The same extent at another resolution (the grid itself when it already has it)."""
    if math.isclose(resolution, grid.resolution):
        return grid
    left, bottom, right, top = grid.bounds
    width, height = math.ceil((right - left) / resolution), math.ceil((top - bottom) / resolution)
    return Grid(grid.crs, Affine(resolution, 0, left, 0, -resolution, top), width, height)


def in_metres(grid: Grid) -> bool:
    """Whether the grid's CRS is projected in metres, so that a ground sample distance applies to it."""
    return bool(grid.crs.is_projected) and (grid.crs.linear_units or "").lower() in ("metre", "meter", "m")


class WindowReader:
    """Read a window of every band on the grid: (bands, h, w) float32 plus a validity mask."""

    def __init__(self, refs: list[BandRef], grid: Grid, resampling: Resampling = Resampling.bilinear) -> None:
        self.refs = refs
        self.grid = grid
        self._datasets: dict[str, rasterio.DatasetReader] = {}
        self._sources: dict[str, object] = {}
        self._nodata: list[float | None] = []
        self._alpha: set[str] = set()  # warped sources without nodata: their alpha band says what they cover
        # reads (the reader thread) and close (the main thread, also on SIGINT/SIGTERM) never overlap:
        # GDAL crashes when a dataset is closed under a read
        self._lock = threading.Lock()
        self._env = contextlib.ExitStack()  # remote settings last as long as the reader: reads happen later
        try:
            self._env.enter_context(_remote_env([ref.href for ref in refs]))
            for ref in refs:
                source = self._source(ref.href, resampling)
                if ref.index > source.count:
                    raise InvalidMetadata(f"band {ref.name!r} is band {ref.index} of {ref.href}, which has "
                                          f"{source.count} band(s); expected the asset's band list to match the file")
                nodata = self._datasets[ref.href].nodatavals[ref.index - 1]
                self._nodata.append(ref.nodata if ref.nodata is not None else nodata)
        except BaseException:
            self.close()
            raise
        # one read per asset: asset href -> (positions in refs, band indexes)
        self._plan: dict[str, tuple[list[int], list[int]]] = {}
        for position, ref in enumerate(refs):
            positions, indexes = self._plan.setdefault(ref.href, ([], []))
            positions.append(position)
            indexes.append(ref.index)

    def _source(self, href: str, resampling: Resampling):
        if href not in self._sources:
            dataset = open_raster(href)
            self._datasets[href] = dataset
            own = own_grid(dataset, href)
            if self.grid.same_as(own):
                self._sources[href] = dataset
            else:
                _check_overlap(own, self.grid, href)
                masked = all(value is None for value in dataset.nodatavals)
                if masked:
                    self._alpha.add(href)
                self._sources[href] = WarpedVRT(dataset, src_crs=own.crs, src_transform=own.transform,
                                                crs=self.grid.crs, transform=self.grid.transform,
                                                width=self.grid.width, height=self.grid.height,
                                                resampling=resampling, add_alpha=masked)
        return self._sources[href]

    @property
    def dtype(self) -> np.dtype:
        """A data type that holds every band as stored: reads into it lose nothing."""
        return np.result_type(*(self._datasets[ref.href].dtypes[ref.index - 1] for ref in self.refs))

    def read(self, window: Window, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Bands of a window (into `out`, in its data type, if given; else float32), True where every band has data."""
        with self._lock:
            if not self._sources:
                raise InvalidInput(f"cannot read window {window}: the imagery was closed (the run was stopped)")
            return self._read(window, out)

    def _read(self, window: Window, out: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        height, width = int(window.height), int(window.width)
        if out is None:
            out = np.empty((len(self.refs), height, width), dtype=np.float32)
        valid = np.ones((height, width), dtype=bool)
        for href, (positions, indexes) in self._plan.items():
            first = positions[0]
            contiguous = positions == list(range(first, first + len(positions)))
            target = out[first:first + len(positions)] if contiguous else None
            try:
                data = self._sources[href].read(indexes, window=window, out=target)
            except (RasterioIOError, OSError) as exc:
                raise InvalidInput(f"cannot read window {window} of imagery asset {href}: {exc}") from exc
            for slot, position in enumerate(positions):
                if not contiguous:
                    out[position] = data[slot]
                nodata = self._nodata[position]
                if nodata is not None:
                    valid &= ~np.isnan(out[position]) if math.isnan(nodata) else out[position] != nodata
            if href in self._alpha:
                valid &= self._sources[href].read_masks(indexes[0], window=window) > 0
        return out, valid

    def preview(self, names: list[str], shape: tuple[int, int]) -> np.ndarray:
        """Bands `names` of the whole grid read at (rows, cols) `shape`, float32 with NaN for nodata (quicklooks)."""
        out = np.empty((len(names), *shape), dtype=np.float32)
        positions = {ref.name: position for position, ref in enumerate(self.refs)}
        for slot, name in enumerate(names):
            ref = self.refs[positions[name]]
            out[slot] = self._sources[ref.href].read(ref.index, out_shape=shape, resampling=Resampling.average)
            nodata = self._nodata[positions[name]]
            if nodata is not None and not math.isnan(nodata):
                out[slot][out[slot] == nodata] = np.nan
        return out

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        for source in self._sources.values():
            if isinstance(source, WarpedVRT):
                source.close()
        for dataset in self._datasets.values():
            dataset.close()
        self._sources.clear()
        self._datasets.clear()
        self._env.close()

    def __enter__(self) -> WindowReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
