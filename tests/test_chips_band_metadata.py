"""What `mlmkit chips` says about the bands of its chips: the grid they were resampled onto, and nothing
made up from band entries of the imagery that are not objects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac

from bad_input_helpers import invoke
from mlmkit.training.chips import ChipOptions, build_chips
from mlmkit.training.layout import parse_classes
from train_fixtures import CLASSES_SPEC, scene_arrays, write_raster

OPTIONS = ChipOptions(chip_size=16, block_size=2, fractions=(0.5, 0.25, 0.25))


def _scene(folder: Path, assets: dict[str, tuple[float, dict]]) -> tuple[Path, Path]:
    """An Item with one single-band asset per key (resolution in metres, extra fields) and a 10 m label raster."""
    folder.mkdir(parents=True, exist_ok=True)
    image, labels = scene_arrays(96)
    write_raster(folder / "labels.tif", labels)
    item = pystac.Item("scene", None, None, None, {"start_datetime": "2021-06-01T00:00:00Z",
                                                   "end_datetime": "2021-06-01T00:00:00Z"})
    for index, (key, (res, fields)) in enumerate(assets.items()):
        step = int(res // 10)
        write_raster(folder / f"{key}.tif", np.ascontiguousarray(image[index, ::step, ::step]), res=res)
        item.add_asset(key, pystac.Asset(f"./{key}.tif", media_type="image/tiff; application=geotiff",
                                         roles=["data"], extra_fields=fields))
    path = folder / "item.json"
    path.write_text(json.dumps(item.to_dict(include_self_link=False)))
    return path, folder / "labels.tif"


def _chip_image(catalog: Path) -> dict:
    return json.loads(next(catalog.rglob("chip-*.json")).read_text())["assets"]["image"]


def test_chip_bands_have_the_resolution_of_the_grid_they_were_resampled_onto(tmp_path: Path) -> None:
    scene, labels = _scene(tmp_path / "scene", {
        "B04": (10.0, {"eo:bands": [{"name": "B04", "common_name": "red"}],
                       "raster:bands": [{"spatial_resolution": 10, "nodata": 0}]}),
        "B11": (20.0, {"eo:bands": [{"name": "B11", "common_name": "swir16"}],
                       "raster:bands": [{"spatial_resolution": 20, "nodata": 0}]})})
    out = build_chips(str(scene), str(labels), parse_classes(CLASSES_SPEC), tmp_path / "chips", OPTIONS)
    image = _chip_image(out)
    assert image["eo:bands"] == [{"name": "B04", "common_name": "red"}, {"name": "B11", "common_name": "swir16"}]
    assert [band["spatial_resolution"] for band in image["raster:bands"]] == [10.0, 10.0]
    assert [band["nodata"] for band in image["raster:bands"]] == [0, 0]


def test_band_entries_that_are_not_objects_are_skipped(tmp_path: Path) -> None:
    scene, labels = _scene(tmp_path / "scene", {"red": (10.0, {"eo:bands": [7], "raster:bands": [5]})})
    result = invoke(["chips", "--imagery", scene, "--labels", labels, "--classes", CLASSES_SPEC,
                     "--chip-size", 16, "--output", tmp_path / "chips"])
    assert result.exit_code == 0, result.output
    image = _chip_image(tmp_path / "chips")
    assert image["eo:bands"] == [{"name": "red"}] and "raster:bands" not in image
