"""The typed MLM view agrees with what the official example Items say."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from mlmkit.errors import InvalidInput
from mlmkit.mlm.spec import DimRole, dim_role, read_model


def _write(tmp_path: Path, data: dict, name: str = "item.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.fixture()
def eo_item(mlm_examples: Path) -> dict:
    return json.loads((mlm_examples / "item_eo_bands.json").read_text())


def test_every_official_example_is_read(mlm_examples: Path) -> None:
    files = sorted(mlm_examples.glob("item_*.json"))
    assert len(files) == 9
    for path in files:
        spec = read_model(path)
        assert spec.mlm_version == "1.5.2"
        assert spec.inputs and spec.outputs
        assert "mlm:model" in spec.model_asset.roles


def test_eo_bands_example_fields(mlm_examples: Path) -> None:
    spec = read_model(mlm_examples / "item_eo_bands.json")
    (model_input,) = spec.inputs
    assert model_input.shape == (-1, 13, 64, 64)
    assert model_input.axis(DimRole.BANDS) == 1
    assert model_input.size(DimRole.BANDS) == 13
    assert model_input.size(DimRole.BATCH) is None
    assert [band.name for band in model_input.bands][:3] == ["B01", "B02", "B03"]
    assert len(model_input.value_scaling) == 13
    assert {scaling.type for scaling in model_input.value_scaling} == {"z-score"}
    assert spec.outputs[0].size(DimRole.CLASSES) == 10
    assert spec.band_info["B04"]["common_name"] == "red"
    assert spec.runtime("mlm:source_code") is not None


def test_multi_io_and_expression_bands(mlm_examples: Path) -> None:
    spec = read_model(mlm_examples / "item_multi_io.json")
    assert [i.name for i in spec.inputs] == ["RGB", "NDVI", "DEM"]
    ndvi = spec.inputs[1]
    assert ndvi.pre_processing_function[0].format == "gdal-calc"
    assert spec.inputs[2].roles[-2:] == (DimRole.HEIGHT, DimRole.WIDTH)
    derived = read_model(mlm_examples / "item_bands_expression.json").inputs[0].bands
    assert [band.is_derived for band in derived] == [False, False, False, True]


@pytest.mark.parametrize(
    ("name", "role"),
    [("channels", DimRole.BANDS), ("Y", DimRole.HEIGHT), ("lon", DimRole.WIDTH), ("class", DimRole.CLASSES),
     ("time", DimRole.TIME), ("h", DimRole.OTHER)],
)
def test_dim_roles(name: str, role: DimRole) -> None:
    assert dim_role(name) is role


def test_model_href_resolved_against_item(tmp_path: Path, eo_item: dict) -> None:
    eo_item["assets"]["weights"]["href"] = "weights/model.onnx"
    spec = read_model(_write(tmp_path, eo_item))
    assert spec.model_asset.href == str(tmp_path / "weights" / "model.onnx")


def test_catalog_directory_with_one_mlm_item(tmp_path: Path, eo_item: dict) -> None:
    _write(tmp_path, eo_item, "model.json")
    catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "c", "description": "d",
               "links": [{"rel": "item", "href": "./model.json", "type": "application/json"}]}
    _write(tmp_path, catalog, "catalog.json")
    assert read_model(tmp_path).item.id == eo_item["id"]


def test_old_version_is_named(tmp_path: Path, eo_item: dict) -> None:
    eo_item["stac_extensions"] = [u.replace("v1.5.2", "v1.2.0") for u in eo_item["stac_extensions"]]
    with pytest.raises(InvalidInput, match=r"MLM v1\.2\.0"):
        read_model(_write(tmp_path, eo_item))


def test_legacy_norm_type_becomes_value_scaling(tmp_path: Path, eo_item: dict) -> None:
    eo_item["stac_extensions"] = [u.replace("v1.5.2", "v1.3.0") for u in eo_item["stac_extensions"]]
    entry = eo_item["properties"]["mlm:input"][0]
    entry.pop("value_scaling")
    entry["norm_type"] = "z-score"
    entry["statistics"] = [{"mean": 10.0 * i, "stddev": 2.0} for i in range(13)]
    scaling = read_model(_write(tmp_path, eo_item)).inputs[0].value_scaling
    assert [s.mean for s in scaling][:3] == [0.0, 10.0, 20.0]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["properties"].pop("mlm:name"), "mlm:name"),
        (lambda d: d["assets"]["weights"].update(roles=["data"]), "mlm:model"),
        (lambda d: d["properties"]["mlm:input"][0]["input"].update(dim_order=["batch", "bands"]), "dim_order"),
        (lambda d: d["properties"].update({"mlm:output": []}), "mlm:output"),
        (lambda d: d.update(stac_extensions=[]), "MLM extension"),
    ],
)
def test_broken_items_are_named(tmp_path: Path, eo_item: dict, mutate, message: str) -> None:
    broken = copy.deepcopy(eo_item)
    mutate(broken)
    with pytest.raises(InvalidInput, match=message):
        read_model(_write(tmp_path, broken))
