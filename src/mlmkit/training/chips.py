"""Imagery Item + label raster (or vector labels) -> a training catalog of N x N chip COGs.

The scene is read in strips of one chip row, so memory follows the scene width, not its area.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pystac
import rasterio
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from mlmkit.stac.atomic import atomic_output_dir
from mlmkit.stac.bands import eo_band_fields, raster_fields
from mlmkit.stac.objstore import gdal_config
from mlmkit.errors import InvalidArgument, InvalidInput
from mlmkit.inference.bands import BandRef, BandResolver, imagery_bands
from mlmkit.inference.reader import Grid, WindowReader, choose_grid, in_metres, open_raster
from mlmkit.progress import QUIET, Progress, Task
from mlmkit.catalog.provenance import reference
from mlmkit.stac.read import asset_href, document_href, iter_items, local_files, read_json
from mlmkit.training.layout import (LABEL_NODATA, PROCESSING_FIELDS, SEGMENTATION, ChipInfo, LabelClass,
                                   TrainingCatalogWriter)
from mlmkit.training.splits import assign_splits

LabelStrips = Callable[[int, int], np.ndarray]


@dataclass(frozen=True)
class ChipOptions:
    """How to cut and split: chip size, bands, split fractions, block size (in chips), seed."""

    chip_size: int = 64
    bands: tuple[str, ...] = ()
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    block_size: int = 4
    seed: int = 0
    min_labelled: float = 0.5
    name: str = "training-data"
    description: str = "Training chips"
    source_href: str | None = None  # the URL the imagery Item is published at, for the chips' source links


@dataclass(frozen=True)
class _Stored:
    """How a band's file (or Zarr array) says its values are stored."""

    scale: float
    offset: float
    nodata: float | None


def _imagery_item(source: str) -> pystac.Item:
    items = list(iter_items(source))
    if len(items) != 1:
        raise InvalidArgument(f"{source} holds {len(items)} items; expected one imagery Item")
    return items[0]


def _listed(item: pystac.Item, asset_key: str, lists: Sequence[str], index: int) -> dict:
    """Entry `index` (1-based) of the first of the asset's band `lists` it has, or {} where that list has no
    such entry or it is not an object (the metadata is untrusted: such entries are skipped, as predict does)."""
    fields = item.assets[asset_key].extra_fields
    entries = next((fields[name] for name in lists if fields.get(name)), [])
    entry = entries[index - 1] if isinstance(entries, list) and index <= len(entries) else {}
    return entry if isinstance(entry, dict) else {}


def _band_entry(item: pystac.Item, asset_key: str, index: int) -> dict:
    """The eo:bands/bands entry of band `index` (1-based) of an asset, or {}; STAC 1.1 `bands` spell the eo fields
    `eo:common_name`, ..., as EOPF Items do."""
    entry = _listed(item, asset_key, ("eo:bands", "bands"), index)
    return {key.removeprefix("eo:"): value for key, value in entry.items()}


def _chip_band(item: pystac.Item, ref: BandRef, dtype: np.dtype, grid: Grid, stored: _Stored) -> dict:
    """The band as the chips hold it: name, common name, wavelength, and (when the imagery says: its Item, else its
    file's or Zarr array's own metadata) nodata, scale and offset, with the chips' own data type and resolution
    (every band is resampled onto `grid`)."""
    entry = _band_entry(item, ref.asset, ref.index)
    band = eo_band_fields({**entry, "name": entry.get("name") or ref.name})
    raster = raster_fields(_listed(item, ref.asset, ("raster:bands",), ref.index))
    nodata = ref.nodata if ref.nodata is not None else stored.nodata
    if nodata is not None:
        raster.setdefault("nodata", nodata)
    if (stored.scale, stored.offset) != (1.0, 0.0) and "scale" not in raster and "offset" not in raster:
        raster.update(scale=stored.scale, offset=stored.offset)
    if raster:
        raster["data_type"] = dtype.name
    if "spatial_resolution" in raster:  # the source band's own resolution is not the chips'
        if in_metres(grid):
            raster["spatial_resolution"] = grid.resolution
        else:
            del raster["spatial_resolution"]
    return {**band, **raster}


def select_bands(item: pystac.Item, wanted: Sequence[str]) -> list[BandRef]:
    """The bands asked for (by name or common name), or every band of the item."""
    if wanted:
        resolver = BandResolver(item)
        return [resolver.resolve(name, "the bands option of chips") for name in wanted]
    return [BandRef(_band_entry(item, band.asset, band.index).get("name") or band.asset, band.asset,
                    asset_href(item, band.asset), band.index, band.nodata) for band in imagery_bands(item)]


def _vector_strips(path: str, grid: Grid, classes: Sequence[LabelClass], prop: str | None) -> LabelStrips:
    collection = read_json(path)
    try:
        features = collection["features"]
    except (KeyError, TypeError) as exc:
        raise InvalidInput(f"vector labels {path} have no features; expected a GeoJSON FeatureCollection") from exc
    if not prop:
        raise InvalidArgument("vector labels need label_property naming the class property of each feature")
    by_name = {c.name: c.value for c in classes}
    by_value = {c.value for c in classes}
    shapes = []
    for feature in features:
        raw = (feature.get("properties") or {}).get(prop)
        value = by_name.get(raw, raw if raw in by_value else None)
        if value is None:
            raise InvalidInput(f"feature property {prop}={raw!r} in {path} is not a class; "
                               f"expected one of {sorted(by_name)}")
        shapes.append((transform_geom("EPSG:4326", grid.crs, feature["geometry"]), value))

    def strip(row_off: int, rows: int) -> np.ndarray:
        window = Window(0, row_off, grid.width, rows)
        return rasterize(shapes, out_shape=(rows, grid.width), transform=window_transform(window, grid.transform),
                         fill=LABEL_NODATA, dtype="uint8")

    return strip


def _label_values(raw: np.ndarray, valid: np.ndarray, classes: Sequence[LabelClass], where: str) -> np.ndarray:
    labels = np.where(valid, raw, LABEL_NODATA).astype("int64")
    unknown = set(np.unique(labels).tolist()) - {c.value for c in classes} - {LABEL_NODATA}
    if unknown:
        raise InvalidInput(f"label raster {where} holds values {sorted(unknown)} that are not classes; "
                           f"expected only {[c.value for c in classes]} (or nodata)")
    return labels.astype("uint8")


def chip_offsets(length: int, size: int) -> list[int]:
    """Chip origins along one axis: a grid of `size`, plus one chip flush with the far edge where the grid leaves
    a remainder, so that the chips (and the extent of a model trained on them) cover the whole imagery."""
    offsets = list(range(0, length - size + 1, size))
    if offsets[-1] + size < length:
        offsets.append(length - size)
    return offsets


def _block(index: int, length: int, size: int, block_size: int) -> int:
    """The split block of the chip at `index`: an edge chip joins its neighbour's block, whose pixels it shares."""
    return min(index, length // size - 1) // block_size


def _chip_counts(labels: np.ndarray, size: int, classes: Sequence[LabelClass],
                 col_offsets: Sequence[int]) -> list[dict[int, int]]:
    counts = []
    for offset in col_offsets:
        chip = labels[:, offset:offset + size]
        histogram = np.bincount(chip.ravel(), minlength=256)
        counts.append({c.value: int(histogram[c.value]) for c in classes if histogram[c.value]})
    return counts


def _stored(bands: Sequence[BandRef]) -> tuple[np.dtype, list[_Stored]]:
    """The imagery's own data type when all bands share it (so chips stay as compact as the source), and each
    band's scale, offset and nodata as its file or Zarr array states them."""
    dtypes, stored = set(), {}
    hrefs = {b.href for b in bands}
    with rasterio.Env(**gdal_config(hrefs)):
        for href in hrefs:
            with open_raster(href) as src:
                dtypes.update(src.dtypes)
                stored[href] = [_Stored(float(scale), float(offset), nodata)
                                for scale, offset, nodata in zip(src.scales, src.offsets, src.nodatavals)]
    dtype = np.dtype(dtypes.pop()) if len(dtypes) == 1 else np.dtype("float32")
    return dtype, [stored[b.href][b.index - 1] for b in bands]


def build_chips(imagery: str, labels: str, classes: Sequence[LabelClass], outdir: str | Path,
                options: ChipOptions = ChipOptions(), label_property: str | None = None,
                overwrite: bool = False, progress: Progress | None = None) -> Path:
    """Cut the imagery and its labels into chips and write the split training catalog at `outdir`."""
    if any(c.value < 0 or c.value >= LABEL_NODATA for c in classes):
        raise InvalidArgument(f"class values must be 0..{LABEL_NODATA - 1} for raster labels")
    item = _imagery_item(imagery)
    source = reference(item, document_href(imagery), options.source_href)
    bands = select_bands(item, options.bands)
    grid = choose_grid(sorted({b.href for b in bands}))
    size = options.chip_size
    if grid.width < size or grid.height < size:
        raise InvalidInput(f"imagery is {grid.width}x{grid.height} px; expected at least one {size}x{size} chip")
    inputs = [imagery, labels, *local_files([item]), *(band.href for band in bands)]
    with (progress or Progress(QUIET)).task(f"chips {item.id}", unit="chips") as task, \
            atomic_output_dir(outdir, overwrite, inputs) as work:
        if labels.lower().endswith((".geojson", ".json")):
            strips = _vector_strips(labels, grid, classes, label_property)
            _write(item, source, bands, grid, strips, classes, options, work, Path(outdir), task)
            return Path(outdir)
        with WindowReader([BandRef("labels", "labels", labels, 1)], grid, Resampling.nearest) as reader:
            def strips(row_off: int, rows: int) -> np.ndarray:
                raw, valid = reader.read(Window(0, row_off, grid.width, rows))
                return _label_values(raw[0], valid, classes, labels)
            _write(item, source, bands, grid, strips, classes, options, work, Path(outdir), task)
    return Path(outdir)


def _write(item: pystac.Item, source: str | None, bands: Sequence[BandRef], grid: Grid, strips: LabelStrips,
           classes: Sequence[LabelClass], options: ChipOptions, work: Path, outdir: Path, task: Task) -> None:
    size = options.chip_size
    row_offsets, col_offsets = chip_offsets(grid.height, size), chip_offsets(grid.width, size)
    keep: list[tuple[int, int, dict[int, int]]] = []
    for row, row_offset in enumerate(row_offsets):
        for col, counts in enumerate(_chip_counts(strips(row_offset, size), size, classes, col_offsets)):
            if sum(counts.values()) >= options.min_labelled * size * size:
                keep.append((row, col, counts))
    if not keep:
        raise InvalidInput(f"no {size}x{size} chip is at least {options.min_labelled:.0%} labelled; "
                           "expected labels over the imagery")
    blocks = [(_block(row, grid.height, size, options.block_size), _block(col, grid.width, size, options.block_size))
              for row, col, _ in keep]
    splits = assign_splits(blocks, [set(counts) for *_, counts in keep], options.fractions, options.seed)
    dtype, scaling = _stored(bands)
    task.total, task.pixels = len(keep), len(keep) * size * size
    writer = TrainingCatalogWriter(work, options.name, SEGMENTATION, classes,
                                   [_chip_band(item, b, dtype, grid, s) for b, s in zip(bands, scaling)],
                                   options.description, outdir)
    when = item.datetime
    carried = {} if when else {k: item.properties[k] for k in ("start_datetime", "end_datetime") if k in item.properties}
    carried.update({k: item.properties[k] for k in PROCESSING_FIELDS if item.properties.get(k)})
    by_row: dict[int, list[tuple[int, dict, str]]] = {}
    for (row, col, counts), split in zip(keep, splits):
        by_row.setdefault(row, []).append((col, counts, split))
    with WindowReader(list(bands), grid) as reader:
        for row, chips in by_row.items():
            image, valid = reader.read(Window(0, row_offsets[row], grid.width, size))
            image = np.rint(image).astype(dtype) if np.issubdtype(dtype, np.integer) else image.astype(dtype)
            labels = strips(row_offsets[row], size)
            labels[~valid] = LABEL_NODATA
            for col, counts, split in chips:
                chip_transform = window_transform(Window(col_offsets[col], row_offsets[row], size, size),
                                                  grid.transform)
                info = ChipInfo(f"chip-{row:04d}-{col:04d}", split, grid.crs, chip_transform, (size, size), when,
                                counts, source, "application/geo+json", carried)
                columns = slice(col_offsets[col], col_offsets[col] + size)
                writer.add_segmentation_chip(info, np.ascontiguousarray(image[:, :, columns]),
                                             np.ascontiguousarray(labels[:, columns]))
            task.advance(len(chips))
    writer.finish()
