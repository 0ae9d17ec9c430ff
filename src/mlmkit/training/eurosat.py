"""A EuroSAT-style folder (one sub-folder per class of GeoTIFF chips) -> the training catalog layout.

Chips are grouped into spatial blocks by their centre (in degrees) before splitting, so neighbouring
chips of the same area do not end up on both sides of the train/validate boundary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import rasterio
from rasterio.shutil import copy as rio_copy

from mlmkit.stac.atomic import atomic_output_dir
from mlmkit.errors import InvalidArgument, InvalidInput, NotFound
from mlmkit.progress import QUIET, Progress
from mlmkit.training.layout import (COG_TYPE, SCENE_CLASSIFICATION, ChipInfo, LabelClass, TrainingCatalogWriter,
                                    with_colours)
from mlmkit.training.sentinel2 import EUROSAT_MS_ORDER, eo_band
from mlmkit.training.splits import assign_splits

TIFF_SUFFIXES = (".tif", ".tiff")
# EuroSAT ships no acquisition dates; its scenes were taken 2015-2017 (Helber et al. 2019).
EUROSAT_DATETIME = datetime(2017, 1, 1, tzinfo=timezone.utc)


def scan_folder(folder: Path) -> tuple[list[LabelClass], list[tuple[Path, int]]]:
    """Classes (sub-folders, alphabetical) and (chip path, class value) pairs."""
    if not folder.is_dir():
        raise NotFound(f"{folder} is not a directory; expected a folder with one sub-folder of GeoTIFFs per class")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = with_colours([LabelClass(value, name) for value, name in enumerate(names)])
    chips = [(path, c.value) for c in classes for path in sorted((folder / c.name).iterdir())
             if path.suffix.lower() in TIFF_SUFFIXES]
    if len(classes) < 2 or not chips:
        raise InvalidInput(f"{folder} has {len(classes)} class folders and {len(chips)} GeoTIFF chips; "
                           "expected at least 2 class sub-folders holding .tif chips")
    empty = [c.name for c in classes if not any(v == c.value for _, v in chips)]
    if empty:
        raise InvalidInput(f"class folders {empty} in {folder} hold no .tif chips; "
                           "expected chips in every class folder")
    return classes, chips


def _chip_geometry(path: Path, expected: tuple | None) -> tuple[ChipInfo, tuple]:
    with rasterio.open(path) as src:
        layout = (src.count, src.height, src.width, src.dtypes[0])
        if expected is not None and layout != expected:
            raise InvalidInput(f"chip {path} has {layout[0]} bands of {layout[1]}x{layout[2]} {layout[3]}; expected "
                               f"{expected[0]} bands of {expected[1]}x{expected[2]} {expected[3]} like the first chip")
        if src.crs is None:
            raise InvalidInput(f"chip {path} has no CRS; expected georeferenced GeoTIFF chips")
        info = ChipInfo("", "", src.crs, src.transform, (src.height, src.width), EUROSAT_DATETIME, {})
    return info, layout


def _block(info: ChipInfo, block_deg: float) -> tuple[int, int]:
    west, south, east, north = info.wgs84_bbox()
    return math.floor((west + east) / 2 / block_deg), math.floor((south + north) / 2 / block_deg)


def _band_names(count: int, names: Sequence[str]) -> list[str]:
    if names:
        if len(names) != count:
            raise InvalidArgument(f"{len(names)} band names given for {count}-band chips; expected {count}")
        return list(names)
    return list(EUROSAT_MS_ORDER) if count == len(EUROSAT_MS_ORDER) else [f"band{i}" for i in range(1, count + 1)]


def convert_eurosat(folder: str | Path, outdir: str | Path, fractions: Sequence[float] = (0.7, 0.15, 0.15),
                    block_deg: float = 0.05, seed: int = 0, band_names: Sequence[str] = (),
                    name: str = "eurosat", overwrite: bool = False, progress: Progress | None = None) -> Path:
    """Write the folder's chips as COGs into the training catalog layout at `outdir`."""
    progress = progress or Progress(QUIET)
    classes, chips = scan_folder(Path(folder))
    infos, layout = [], None
    for path, value in chips:
        info, layout = _chip_geometry(path, layout)
        info.class_counts = {value: 1}
        infos.append(info)
    splits = assign_splits([_block(i, block_deg) for i in infos], [set(i.class_counts) for i in infos], fractions, seed)
    bands = [eo_band(n) for n in _band_names(layout[0], band_names)]
    description = f"Scene classification chips converted from the EuroSAT-style folder {Path(folder).name}"
    with progress.task(f"chips {Path(folder).name}", len(chips), "chips") as task, \
            atomic_output_dir(outdir, overwrite, [folder]) as work:
        writer = TrainingCatalogWriter(work, name, SCENE_CLASSIFICATION, classes, bands, description, Path(outdir))
        for (path, value), info, split in zip(chips, infos, splits):
            info.chip_id, info.split = f"{path.parent.name}-{path.stem}".replace(" ", "_"), split
            target = writer.chip_folder(info) / "image.tif"
            rio_copy(str(path), str(target), driver="COG", compress="DEFLATE", overviews="NONE")
            info.source_href, info.source_type = str(target), COG_TYPE  # the labels describe this very chip
            writer.add_scene_chip(info, target, value)
            task.advance()
        writer.finish()
    return Path(outdir)
