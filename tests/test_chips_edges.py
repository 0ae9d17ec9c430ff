"""A scene that is not a whole number of chips: the last row and column of chips end on its edge, so the chips and
the extent of a model trained on them cover the scene, and predict/match on that scene warn of nothing spatial
(the demo's 1933x1947 px Sentinel-2 cut gave 'partly outside the model's geometry' for its own model)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from click.testing import CliRunner

from mlmkit.cli import main
from mlmkit.matching.pairs import match
from mlmkit.training.chips import build_chips, chip_offsets
from mlmkit.training.layout import parse_classes
from train_fixtures import CHIP_OPTIONS, CLASSES_SPEC, write_scene

SIZE = 100  # 6 chips of 16 and 4 pixels left over on each axis


@pytest.fixture(scope="module")
def ragged(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(imagery Item, label raster, chips catalog) of a 100x100 scene cut into 16x16 chips."""
    root = tmp_path_factory.mktemp("ragged")
    item, labels = write_scene(root / "scene", size=SIZE)
    chips = root / "chips"
    build_chips(str(item), str(labels), parse_classes(CLASSES_SPEC), chips, CHIP_OPTIONS)
    return item, labels, chips


def chip_items(catalog: Path) -> list[pystac.Item]:
    return list(pystac.Catalog.from_file(str(catalog / "catalog.json")).get_items(recursive=True))


def test_offsets() -> None:
    assert chip_offsets(100, 16) == [0, 16, 32, 48, 64, 80, 84]
    assert chip_offsets(96, 16) == [0, 16, 32, 48, 64, 80]
    assert chip_offsets(16, 16) == [0]


def test_chips_cover_every_pixel_with_the_scene_values(ragged) -> None:
    item, labels, chips = ragged
    with rasterio.open(Path(item).parent / "image.tif") as scene:
        image, transform = scene.read(), scene.transform
    with rasterio.open(labels) as source:
        truth = source.read(1)
    covered = np.zeros((SIZE, SIZE), bool)
    items = chip_items(chips)
    assert len(items) == 7 * 7
    for chip in items:
        with rasterio.open(chip.assets["image"].get_absolute_href()) as data, \
                rasterio.open(chip.assets["labels"].get_absolute_href()) as classes:
            col, row = (round(v) for v in ~transform * (data.transform.c, data.transform.f))
            window = np.s_[row:row + 16, col:col + 16]
            assert (data.read() == image[(slice(None), *window)]).all()  # the scene's pixels, not resampled
            assert (classes.read(1) == truth[window]).all()
            covered[window] = True
    assert covered.all()


def test_an_edge_chip_shares_the_split_of_the_chip_it_overlaps(ragged) -> None:
    split = {chip.id: chip.properties["ml-aoi:split"] for chip in chip_items(ragged[2])}
    for chip_id, where in split.items():
        _, row, col = chip_id.split("-")
        neighbour = f"chip-{min(int(row), 5):04d}-{min(int(col), 5):04d}"
        assert where == split[neighbour], chip_id


def test_a_model_trained_on_the_chips_covers_the_scene(ragged, tmp_path: Path, schema_dir: Path) -> None:
    item, _, chips = ragged
    model = tmp_path / "model"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        run = CliRunner().invoke(main, ["train", "--data", str(chips), "--output", str(model), "--architecture",
                                        "random-forest", "--trees", "5", "--max-samples", "600", "--seed", "1"])
    assert run.exit_code == 0, run.output
    model_item = next(p for p in model.rglob("*.json") if json.loads(p.read_text()).get("type") == "Feature")
    west, south, east, north = json.loads(model_item.read_text())["bbox"]
    s_west, s_south, s_east, s_north = pystac.Item.from_file(str(item)).bbox
    assert west <= s_west and south <= s_south and east >= s_east and north >= s_north
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (pair,) = match([str(model / "catalog.json")], [str(item)])
    assert pair.runnable and not [w for w in pair.warnings if w.startswith("spatial")], pair.warnings
    assert not caught
