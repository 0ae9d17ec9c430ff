"""`mlmkit chips`: imagery + labels (raster or vector) and EuroSAT folders -> a valid, split training catalog."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from click.testing import CliRunner

from mlmkit.cli import main
from mlmkit.errors import InvalidInput
from mlmkit.training.chips import ChipOptions, build_chips
from mlmkit.training.eurosat import convert_eurosat
from mlmkit.training.layout import LABEL_NODATA, parse_classes
from mlmkit.catalog.validate import validate_source
from train_fixtures import (CHIP_OPTIONS, CLASSES_SPEC, scene, scene_arrays, training_catalog,  # noqa: F401
                            write_eurosat_folder, write_raster, write_vector_labels)


def _items(catalog: Path) -> list[pystac.Item]:
    return list(pystac.Catalog.from_file(str(catalog / "catalog.json")).get_items(recursive=True))


def _pixel_origin(item: pystac.Item) -> tuple[int, int]:
    transform = item.properties["proj:transform"]
    return int(round((4179460.0 - transform[5]) / 10)), int(round((transform[2] - 435730.0) / 10))


def test_catalog_has_one_collection_per_split_with_label_and_ml_aoi(training_catalog: Path) -> None:
    root = pystac.Catalog.from_file(str(training_catalog / "catalog.json"))
    collections = {c.extra_fields["ml-aoi:split"]: c for c in root.get_children()}
    assert set(collections) == {"train", "validate", "test"}
    items = _items(training_catalog)
    assert len(items) == (96 // 16) ** 2  # every chip is fully labelled
    for split, collection in collections.items():
        for item in collection.get_items():
            props = item.properties
            assert props["ml-aoi:split"] == split
            assert props["label:type"] == "raster" and props["label:properties"] is None
            assert props["label:classes"] == [{"name": None, "classes": [0, 1, 2]}]
            assert [c["name"] for c in item.assets["labels"].extra_fields["classification:classes"]] == \
                ["water", "forest", "field"]
            assert [b["common_name"] for b in item.assets["image"].extra_fields["eo:bands"]] == \
                ["blue", "green", "red", "nir"]
            assert any(link.rel == "source" for link in item.links)


def test_chips_hold_the_source_pixels(training_catalog: Path) -> None:
    image, labels = scene_arrays()
    for item in _items(training_catalog)[:6]:
        row, col = _pixel_origin(item)
        folder = Path(item.get_self_href()).parent
        with rasterio.open(folder / "image.tif") as src:
            assert src.block_shapes[0] == (16, 16) and src.dtypes[0] == "uint16"
            np.testing.assert_array_equal(src.read(), image[:, row:row + 16, col:col + 16])
        with rasterio.open(folder / "labels.tif") as src:
            np.testing.assert_array_equal(src.read(1), labels[row:row + 16, col:col + 16])


def test_chip_files_are_cloud_optimized(training_catalog: Path) -> None:
    """One block per chip and the TIFF directory ahead of the pixels: a COG needs nothing more below 512 px."""
    item = _items(training_catalog)[0]
    data = (Path(item.get_self_href()).parent / "image.tif").read_bytes()
    assert data[:4] == b"II*\x00" and int.from_bytes(data[4:8], "little") == 8


def test_splits_are_spatial_blocks_without_overlap(training_catalog: Path) -> None:
    split_of_block: dict[tuple[int, int], set[str]] = {}
    footprints = []
    for item in _items(training_catalog):
        row, col = _pixel_origin(item)
        split_of_block.setdefault((row // 32, col // 32), set()).add(item.properties["ml-aoi:split"])
        footprints.append((row, col, item.properties["ml-aoi:split"]))
    assert all(len(splits) == 1 for splits in split_of_block.values())  # a block never straddles splits
    for i, (r1, c1, s1) in enumerate(footprints):
        for r2, c2, s2 in footprints[i + 1:]:
            if s1 != s2:
                assert abs(r1 - r2) >= 16 or abs(c1 - c2) >= 16  # chips of different splits never overlap


def test_training_catalog_passes_validate(training_catalog: Path) -> None:
    assert validate_source(str(training_catalog / "catalog.json")) == []


def test_vector_labels_are_rasterised(scene, tmp_path: Path) -> None:
    geojson = write_vector_labels(tmp_path / "labels.geojson")
    out = tmp_path / "vector"
    build_chips(str(scene[0]), str(geojson), parse_classes(CLASSES_SPEC), out,
                ChipOptions(chip_size=16, block_size=1, fractions=(0.5, 0.25, 0.25)), label_property="kind")
    for item in _items(out):
        row, col = _pixel_origin(item)
        with rasterio.open(Path(item.get_self_href()).parent / "labels.tif") as src:
            values = src.read(1)
        expected = np.minimum(np.arange(col, col + 16) // 32, 2)  # thirds of 96 px: 0 | 1 | 2
        np.testing.assert_array_equal(values[0], expected)


def test_label_values_outside_the_classes_fail(scene, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"values \[2\] that are not classes"):
        build_chips(str(scene[0]), str(scene[1]), parse_classes("0=water,1=forest"), tmp_path / "out", CHIP_OPTIONS)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_missing_band_fails_with_the_bands_available(scene, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="B99"):
        build_chips(str(scene[0]), str(scene[1]), parse_classes(CLASSES_SPEC), tmp_path / "out",
                    ChipOptions(chip_size=16, bands=("B02", "B99")))


def test_nodata_labels_are_kept_as_nodata(scene, tmp_path: Path) -> None:
    _, labels = scene_arrays()
    labels = labels.copy()
    labels[:8, :] = 9
    write_raster(tmp_path / "labels.tif", labels, nodata=9)
    out = tmp_path / "out"
    build_chips(str(scene[0]), str(tmp_path / "labels.tif"), parse_classes(CLASSES_SPEC), out, CHIP_OPTIONS)
    top = [i for i in _items(out) if _pixel_origin(i)[0] == 0][0]
    with rasterio.open(Path(top.get_self_href()).parent / "labels.tif") as src:
        assert (src.read(1)[:8] == LABEL_NODATA).all() and src.nodata == LABEL_NODATA


def test_eurosat_folder_conversion(tmp_path: Path) -> None:
    folder = write_eurosat_folder(tmp_path / "EuroSAT_MS")
    out = convert_eurosat(folder, tmp_path / "eurosat")
    items = _items(out)
    assert len(items) == 24
    assert {tuple((c["value"], c["name"]) for c in i.assets["labels"].extra_fields["classification:classes"])
            for i in items} == {((0, "Forest"), (1, "River"), (2, "SeaLake"))}
    for item in items:
        assert item.properties["label:type"] == "vector"
        assert item.properties["label:classes"] == [{"name": "class", "classes": ["Forest", "River", "SeaLake"]}]
        labels = json.loads((Path(item.get_self_href()).parent / "labels.geojson").read_text())
        assert item.id.startswith(labels["features"][0]["properties"]["class"])
        bands = item.assets["image"].extra_fields["eo:bands"]
        assert len(bands) == 13 and bands[8]["name"] == "B8A" and bands[3]["common_name"] == "red"
    assert {i.properties["ml-aoi:split"] for i in items} == {"train", "validate", "test"}
    assert validate_source(str(out / "catalog.json")) == []


def test_eurosat_mixed_chip_sizes_fail(tmp_path: Path) -> None:
    folder = write_eurosat_folder(tmp_path / "EuroSAT_MS", per_class=2)
    write_raster(folder / "River" / "River_9.tif", np.ones((13, 20, 20), dtype="uint16"))
    with pytest.raises(InvalidInput, match="expected 13 bands of 16x16"):
        convert_eurosat(folder, tmp_path / "out")


def test_eurosat_mixed_band_counts_fail(tmp_path: Path) -> None:
    folder = write_eurosat_folder(tmp_path / "EuroSAT_MS", per_class=2)
    write_raster(folder / "River" / "River_9.tif", np.ones((12, 16, 16), dtype="uint16"))
    with pytest.raises(InvalidInput, match="has 12 bands"):
        convert_eurosat(folder, tmp_path / "out")


def test_cli_chips_and_its_errors(scene, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["chips", "--imagery", str(scene[0]), "--labels", str(scene[1]), "--classes",
                              CLASSES_SPEC, "--chip-size", "16", "--block-size", "2", "--split", "0.5,0.25,0.25",
                              "--output", str(tmp_path / "out")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "out" / "catalog.json").exists()
    bad = runner.invoke(main, ["chips", "--imagery", str(scene[0]), "--labels", str(scene[1]), "--classes",
                               "water,forest", "--output", str(tmp_path / "bad")])
    assert bad.exit_code == 2  # an argument of the wrong form is a usage error
    assert "expected e.g. 0=water,1=vegetation" in bad.output


def test_split_fractions_are_checked() -> None:
    from mlmkit.training.splits import parse_fractions

    assert parse_fractions("0.8,0.1,0.1") == (0.8, 0.1, 0.1)
    for bad in ("0.8,0.1", "0.5,0.5,0.5", "1,0,0", "a,b,c"):
        with pytest.raises(InvalidInput, match="expected e.g. 0.7,0.15,0.15"):
            parse_fractions(bad)


def test_a_class_in_one_block_cannot_be_split() -> None:
    from mlmkit.training.splits import assign_splits

    blocks = [(0, 0), (0, 1), (1, 0), (1, 1)]
    classes = [{0, 1}, {0}, {0}, {0}]  # class 1 lives in one block: never in train and validate both
    with pytest.raises(InvalidInput, match=r"puts classes \[1\] in"):
        assign_splits(blocks, classes, (0.5, 0.25, 0.25), seed=0)
    splits = assign_splits(blocks, [{0, 1}] * 4, (0.5, 0.25, 0.25), seed=0)
    assert sorted(splits) == ["test", "train", "train", "validate"]
