"""Tiny synthetic but real training inputs: a georeferenced 4-band scene whose classes are a known
function of its bands, label rasters/vectors, and a EuroSAT-style folder of GeoTIFF chips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.warp
from rasterio.transform import from_origin

from mlmkit.training.chips import ChipOptions, build_chips
from mlmkit.training.layout import parse_classes

CRS = "EPSG:32618"
ORIGIN = (435730.0, 4179460.0)
BANDS = [{"name": "B02", "common_name": "blue"}, {"name": "B03", "common_name": "green"},
         {"name": "B04", "common_name": "red"}, {"name": "B08", "common_name": "nir"}]
CLASSES_SPEC = "0=water,1=forest,2=field"
CHIP_OPTIONS = ChipOptions(chip_size=16, block_size=2, fractions=(0.5, 0.25, 0.25), name="synthetic")


def scene_arrays(size: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(4, size, size) uint16 imagery and (size, size) uint8 classes: class drives the NIR/red levels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    labels = ((xx // 6 + yy // 10) % 3).astype("uint8")
    levels = np.array([[900, 700, 500, 300], [800, 900, 600, 3000], [1200, 1300, 1500, 2000]], dtype=float)
    image = levels[labels].transpose(2, 0, 1) + rng.normal(0, 60, (4, size, size))
    return np.clip(image, 1, None).astype("uint16"), labels


def write_raster(path: Path, array: np.ndarray, res: float = 10.0, origin=ORIGIN, nodata=None) -> Path:
    array = array[None] if array.ndim == 2 else array
    with rasterio.open(path, "w", driver="GTiff", count=array.shape[0], height=array.shape[1], width=array.shape[2],
                       dtype=array.dtype.name, crs=CRS, transform=from_origin(*origin, res, res), nodata=nodata) as dst:
        dst.write(array)
    return path


def write_scene(folder: Path, size: int = 96, bands: list[dict] = BANDS) -> tuple[Path, Path]:
    """A STAC Item (one multi-band asset with eo:bands) and a label raster; returns (item, labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    image, labels = scene_arrays(size)
    write_raster(folder / "image.tif", image)
    write_raster(folder / "labels.tif", labels)
    with rasterio.open(folder / "image.tif") as src:
        bounds = rasterio.warp.transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    west, south, east, north = bounds
    geometry = {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                    [west, south]]]}
    item = pystac.Item("synthetic-scene", geometry, list(bounds), None,
                       {"start_datetime": "2021-06-01T00:00:00Z", "end_datetime": "2021-06-01T00:00:00Z"},
                       stac_extensions=["https://stac-extensions.github.io/eo/v1.1.0/schema.json"])
    item.add_asset("image", pystac.Asset("./image.tif", media_type="image/tiff; application=geotiff",
                                         roles=["data"], extra_fields={"eo:bands": bands}))
    item.set_self_href(str(folder / "item.json"))
    item.save_object(include_self_link=False)
    return folder / "item.json", folder / "labels.tif"


def write_vector_labels(path: Path, size: int = 96) -> Path:
    """Three vertical bands of classes water | forest | field as WGS84 polygons over the scene."""
    third = size * 10 / 3
    features = []
    for index, name in enumerate(("water", "forest", "field")):
        x0, x1 = ORIGIN[0] + index * third, ORIGIN[0] + (index + 1) * third
        y0, y1 = ORIGIN[1] - size * 10, ORIGIN[1]
        ring = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
        xs, ys = rasterio.warp.transform(CRS, "EPSG:4326", [p[0] for p in ring], [p[1] for p in ring])
        features.append({"type": "Feature", "properties": {"kind": name},
                         "geometry": {"type": "Polygon", "coordinates": [list(map(list, zip(xs, ys)))]}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def write_eurosat_folder(folder: Path, per_class: int = 8, size: int = 16, bands: int = 13,
                         classes: tuple[str, ...] = ("Forest", "River", "SeaLake")) -> Path:
    """One sub-folder per class of georeferenced chips spread over a few km, like EuroSAT MS."""
    rng = np.random.default_rng(1)
    for value, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            chip = (rng.normal(1000 + 400 * value, 50, (bands, size, size))).clip(1).astype("uint16")
            origin = (ORIGIN[0] + (index % 4) * 6000.0, ORIGIN[1] - (index // 4) * 6000.0 - value * 600.0)
            write_raster(folder / name / f"{name}_{index + 1}.tif", chip, origin=origin)
    return folder


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[Path, Path]:
    """(imagery Item, label raster) of the synthetic 96x96 scene."""
    return write_scene(tmp_path_factory.mktemp("scene"))


@pytest.fixture(scope="module")
def training_catalog(scene, tmp_path_factory) -> Path:
    """36 chips of 16x16 in train/validate/test blocks of 2x2 chips."""
    out = tmp_path_factory.mktemp("training") / "catalog"
    build_chips(str(scene[0]), str(scene[1]), parse_classes(CLASSES_SPEC), out, CHIP_OPTIONS)
    return out
