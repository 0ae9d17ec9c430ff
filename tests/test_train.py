"""`mlmkit train`: a training catalog in, an ONNX model with a true MLM Item out, which validates and
which `mlmkit predict` runs unchanged; bad catalogs fail early with one clear line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pystac
import pytest
import rasterio
import torch
from click.testing import CliRunner

from mlmkit import __version__
from mlmkit.stac.checksum import file_checksum
from mlmkit.cli import main
from mlmkit.errors import InvalidInput
from mlmkit.mlm.spec import read_model
from mlmkit.training.catalog_reader import IGNORE_INDEX, read_training_data
from mlmkit.training.dataset import ChipBatches
from mlmkit.training.chips import build_chips
from mlmkit.training.eurosat import convert_eurosat
from mlmkit.training.layout import parse_classes
from mlmkit.training.models import SmallCNN, UNet
from mlmkit.training.stats import band_stats
from mlmkit.catalog.validate import validate_source
from http_helpers import static_server
from stac_model_check import assert_stac_model_reads
from train_fixtures import (CHIP_OPTIONS, CLASSES_SPEC, scene, scene_arrays, training_catalog,  # noqa: F401
                            write_eurosat_folder, write_raster, write_scene)

TINY = ["--epochs", "3", "--width", "4", "--batch-size", "8", "--quiet"]


@pytest.fixture(scope="module")
def trained(training_catalog: Path, tmp_path_factory, schema_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    with pytest.MonkeyPatch.context() as patch:  # module scope runs before the per-test schema setting
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        result = CliRunner().invoke(main, ["train", "--data", str(training_catalog), "--output", str(out), *TINY,
                                           "--inference-cwl-href", "https://example.org/v1/inference.cwl"])
    assert result.exit_code == 0, result.output
    assert "model catalog:" in result.output
    return out


def _model_item(model_dir: Path) -> pystac.Item:
    return next(pystac.Catalog.from_file(str(model_dir / "catalog.json")).get_items(recursive=True))


def _train_images(catalog: Path) -> np.ndarray:
    """The train split's pixels, read straight from the chip files."""
    chips = []
    for item in pystac.Catalog.from_file(str(catalog / "catalog.json")).get_items(recursive=True):
        if item.properties["ml-aoi:split"] == "train":
            with rasterio.open(Path(item.get_self_href()).parent / "image.tif") as src:
                chips.append(src.read().astype("float64"))
    return np.stack(chips)


def _checkpoint_scores(item: pystac.Item, model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """Class scores of the checkpointed torch model on one z-scored image, outside mlmkit's pipeline."""
    model.load_state_dict(torch.load(item.assets["checkpoint"].get_absolute_href()))
    scaling = item.properties["mlm:input"][0]["value_scaling"]
    mean = np.array([s["mean"] for s in scaling])[:, None, None]
    std = np.array([s["stddev"] for s in scaling])[:, None, None]
    with torch.no_grad():
        return model.eval()(torch.from_numpy(((image - mean) / std)[None].astype("float32")))[0].numpy()


def _checkpoint_classes(item: pystac.Item, model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """Argmax of the checkpointed torch model on one z-scored image, outside mlmkit's pipeline."""
    return _checkpoint_scores(item, model, image).argmax(axis=0)


def test_model_item_is_true_to_the_model(trained: Path, training_catalog: Path) -> None:
    item = _model_item(trained)
    props = item.properties
    model_input, output = props["mlm:input"][0], props["mlm:output"][0]
    assert model_input["bands"] == ["B02", "B03", "B04", "B08"]
    assert [b["common_name"] for b in props["eo:bands"]] == ["blue", "green", "red", "nir"]
    assert model_input["input"] == {"shape": [-1, 4, -1, -1], "dim_order": ["batch", "bands", "height", "width"],
                                    "data_type": "float32"}
    assert output["result"]["shape"] == [-1, 3, -1, -1]
    classes = output["classification:classes"]
    assert [(c["value"], c["name"]) for c in classes] == [(0, "water"), (1, "forest"), (2, "field")]
    assert all(c.get("color_hint") for c in classes)
    assert props["mlm:hyperparameters"]["epochs"] == 3 and props["mlm:framework"] == "PyTorch"
    assert props["mlm:framework_version"] == torch.__version__
    assert not any(k.startswith("mlm:") and "accuracy" in k for k in props)
    assert 0 <= props["mlmkit:validate_overall_accuracy"] <= 1
    # the ONNX graph itself has the shapes the Item declares
    session = ort.InferenceSession(str(Path(item.get_self_href()).parent / "model.onnx"))
    assert [d if isinstance(d, int) else -1 for d in session.get_inputs()[0].shape] == [-1, 4, -1, -1]
    # value_scaling is the train split's statistics, computed here independently
    images = _train_images(training_catalog)
    mean, std = images.mean(axis=(0, 2, 3)), images.std(axis=(0, 2, 3))
    scaling = model_input["value_scaling"]
    np.testing.assert_allclose([s["mean"] for s in scaling], mean, rtol=1e-9)
    np.testing.assert_allclose([s["stddev"] for s in scaling], std, rtol=1e-6)


def test_output_catalog_assets_and_links(trained: Path) -> None:
    item = _model_item(trained)
    model = item.assets["model"]
    assert "mlm:model" in model.roles and model.extra_fields["mlm:artifact_type"] == "onnx"
    assert model.extra_fields["file:size"] == (Path(item.get_self_href()).parent / "model.onnx").stat().st_size
    assert item.assets["inference-runtime"].href == "https://example.org/v1/inference.cwl"
    assert item.assets["inference-runtime"].media_type == "application/cwl+yaml"
    metrics = json.loads(Path(item.assets["metrics"].get_absolute_href()).read_text())
    assert len(metrics["history"]) == 3 and metrics["onnx_max_abs_diff"] < 1e-3
    assert all(0 <= h["train"]["overall_accuracy"] <= 1 and set(h["validate"]["f1"]) == {"water", "forest", "field"}
               for h in metrics["history"])
    assert len(metrics["validate_confusion_matrix"]) == 3
    with rasterio.open(item.assets["confusion-matrix"].get_absolute_href()) as png:
        assert png.driver == "PNG"
    derived = [link for link in item.links if link.rel == "derived_from"]
    assert {link.extra_fields.get("ml-aoi:split") for link in derived} == {"train", "validate", "test"}
    written = json.loads(Path(item.get_self_href()).read_text())["links"]
    for link in (link for link in written if link["rel"] == "derived_from"):
        assert link["href"].startswith("../")  # relative, so both catalogs can move together
        target = (Path(item.get_self_href()).parent / link["href"]).resolve()
        assert json.loads(target.read_text())["ml-aoi:split"] == link["ml-aoi:split"]
    assert read_model(str(trained / "catalog.json")).outputs[0].classes[2].name == "field"


def test_the_exported_program_is_a_second_model_asset(trained: Path) -> None:
    item = _model_item(trained)
    program = item.assets["model-pt2"]
    path = Path(item.get_self_href()).parent / "model.pt2"
    assert "mlm:model" in program.roles and program.extra_fields["mlm:artifact_type"] == "torch.export.save"
    assert program.extra_fields["file:size"] == path.stat().st_size
    assert program.extra_fields["file:checksum"] == file_checksum(path)
    assert program.extra_fields["file:checksum"] != item.assets["model"].extra_fields["file:checksum"]
    assert 0 <= item.properties["mlmkit:exported_max_abs_diff"] <= 1e-3
    assert "model-pt2" in [asset.key for asset in read_model(str(trained / "catalog.json")).model_assets]


def test_predict_gives_the_same_classes_from_onnx_and_the_exported_program(trained: Path, scene,
                                                                           tmp_path: Path) -> None:
    maps, scores = {}, {}
    for key in ("model", "model-pt2"):
        result = CliRunner().invoke(main, ["predict", "--model", str(trained / "catalog.json"), "--input",
                                           str(scene[0]), "--output", str(tmp_path / key), "--model-asset", key,
                                           "--probabilities"])
        assert result.exit_code == 0, result.output
        with rasterio.open(next((tmp_path / key).rglob("classes.tif"))) as src:
            maps[key] = src.read(1)
        with rasterio.open(next((tmp_path / key).rglob("scores.tif"))) as src:
            scores[key] = src.read()
    expected_scores = _checkpoint_scores(_model_item(trained), UNet(4, 3, width=4), scene_arrays()[0])
    expected = expected_scores.argmax(axis=0)
    agreement = float(np.mean(maps["model"] == maps["model-pt2"]))
    print(f"ONNX vs ExportedProgram: {agreement:.5f}; vs torch: ONNX {np.mean(maps['model'] == expected):.5f}, "
          f"ExportedProgram {np.mean(maps['model-pt2'] == expected):.5f} of {expected.size} pixels")
    assert agreement >= 0.999
    assert maps["model"].shape == maps["model-pt2"].shape == expected.shape
    assert np.mean(maps["model"] == expected) >= 0.999 and np.mean(maps["model-pt2"] == expected) >= 0.999
    # three epochs leave one class winning nearly everywhere: the scores, which vary over the scene, are compared
    assert np.ptp(expected_scores, axis=(1, 2)).min() > 1e-3
    for key in ("model", "model-pt2"):
        np.testing.assert_allclose(scores[key], expected_scores, rtol=0, atol=1e-5, err_msg=key)


def test_model_item_follows_the_mlm_best_practices(trained: Path) -> None:
    item = json.loads(Path(_model_item(trained).get_self_href()).read_text())
    props, assets = item["properties"], item["assets"]
    assert item["stac_version"] == "1.0.0"
    # the checkpoint is the same model for PyTorch: a model asset told apart by its artifact type
    checkpoint = assets["checkpoint"]
    assert checkpoint["roles"] == ["mlm:model", "mlm:weights", "mlm:checkpoint"]
    assert checkpoint["mlm:artifact_type"] == "torch.save"
    checkpoint_file = Path(_model_item(trained).get_self_href()).parent / checkpoint["href"]
    assert checkpoint["file:size"] == checkpoint_file.stat().st_size
    assert checkpoint["file:checksum"] == file_checksum(checkpoint_file)
    assert read_model(str(trained / "catalog.json")).model_asset.key == "model"  # predict still runs the ONNX one
    assert assets["source-code"]["href"] == f"https://github.com/mlmkit/mlmkit/tree/v{__version__}"
    assert assets["source-code"]["mlm:entrypoint"] == "mlmkit.inference:predict"
    assert assets["container"]["href"] == f"mlmkit:{__version__}"  # pinned by digest with `mlmkit release`
    assert props["sci:publications"][0]["doi"] == "10.1007/978-3-319-24574-4_28"  # U-Net
    assert props["version"] == "1.0.0"
    assert all(link.get("title") for link in item["links"])
    assert_stac_model_reads(item)


def test_model_item_carries_the_imagery_product_and_units(tmp_path: Path) -> None:
    """processing:level/lineage and raster band scale/offset/nodata of the imagery reach the model Item."""
    item_path, labels = write_scene(tmp_path / "scene")
    imagery = json.loads(item_path.read_text())
    imagery["properties"].update({"processing:level": "L2A", "processing:lineage": "Sen2Cor surface reflectance"})
    imagery["stac_extensions"] += ["https://stac-extensions.github.io/processing/v1.2.0/schema.json",
                                   "https://stac-extensions.github.io/raster/v1.1.0/schema.json"]
    for asset in imagery["assets"].values():
        asset["raster:bands"] = [{"nodata": 0, "scale": 0.0001, "offset": -0.1} for _ in asset["eo:bands"]]
    item_path.write_text(json.dumps(imagery))
    build_chips(str(item_path), str(labels), parse_classes(CLASSES_SPEC), tmp_path / "chips", CHIP_OPTIONS)
    result = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "chips"), "--output", str(tmp_path / "m"),
                                       *TINY, "--epochs", "1"])
    assert result.exit_code == 0, result.output
    item = json.loads(Path(_model_item(tmp_path / "m").get_self_href()).read_text())
    assert item["properties"]["processing:level"] == "L2A"
    assert item["properties"]["mlm:input"][0]["description"] == "L2A imagery: Sen2Cor surface reflectance"
    raster = item["assets"]["model"]["raster:bands"]
    assert [band["name"] for band in raster] == item["properties"]["mlm:input"][0]["bands"]
    assert all((band["nodata"], band["scale"], band["offset"], band["data_type"]) == (0, 0.0001, -0.1, "uint16")
               for band in raster)


def test_model_catalog_passes_validate(trained: Path) -> None:
    assert validate_source(str(trained / "catalog.json")) == []
    result = CliRunner().invoke(main, ["validate", str(trained / "catalog.json")])
    assert result.exit_code == 0, result.output


def test_predict_runs_the_item_unchanged_and_matches_torch(trained: Path, scene, tmp_path: Path) -> None:
    out = tmp_path / "prediction"
    result = CliRunner().invoke(main, ["predict", "--model", str(trained / "catalog.json"), "--input",
                                       str(scene[0]), "--output", str(out), "--probabilities"])
    assert result.exit_code == 0, result.output
    with rasterio.open(next(out.rglob("classes.tif"))) as src:
        predicted = src.read(1)
    # the same model, run here from its checkpoint with the training statistics
    expected_scores = _checkpoint_scores(_model_item(trained), UNet(4, 3, width=4), scene_arrays()[0])
    expected = expected_scores.argmax(axis=0)
    assert predicted.shape == expected.shape
    assert np.mean(predicted == expected) > 0.97
    # nearly one class everywhere after three epochs: the scores tell whether the Item is run as trained
    assert np.ptp(expected_scores, axis=(1, 2)).min() > 1e-3
    with rasterio.open(next(out.rglob("scores.tif"))) as src:
        np.testing.assert_allclose(src.read(), expected_scores, rtol=0, atol=1e-5)


def test_normalised_training_data_has_zero_mean_unit_std(training_catalog: Path) -> None:
    data = read_training_data(str(training_catalog))
    stats = band_stats(data.splits["train"].images)
    batches = ChipBatches(data.splits["train"].images, data.splits["train"].labels, stats, batch_size=5)
    normalised = torch.cat([images for images, _ in batches]).double()
    np.testing.assert_allclose(normalised.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(normalised.std(dim=(0, 2, 3), correction=0).numpy(), 1, atol=1e-4)


def test_same_seed_same_model(training_catalog: Path, tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        result = CliRunner().invoke(main, ["train", "--data", str(training_catalog), "--output", str(tmp_path / name),
                                           "--epochs", "1", "--width", "4", "--batch-size", "8", "-q", "--seed", "7"])
        assert result.exit_code == 0, result.output
        item = _model_item(tmp_path / name)
        runs.append(json.loads(Path(item.assets["metrics"].get_absolute_href()).read_text())["history"])
    assert runs[0] == runs[1]


def test_scene_classification_on_a_eurosat_folder(tmp_path: Path) -> None:
    catalog = convert_eurosat(write_eurosat_folder(tmp_path / "EuroSAT_MS"), tmp_path / "eurosat")
    result = CliRunner().invoke(main, ["train", "--data", str(catalog), "--output", str(tmp_path / "model"),
                                       "--task", "scene-classification", "--arch", "small-cnn", *TINY])
    assert result.exit_code == 0, result.output
    item = _model_item(tmp_path / "model")
    output = item.properties["mlm:output"][0]
    assert output["result"]["shape"] == [-1, 3] and output["result"]["dim_order"] == ["batch", "class"]
    assert item.properties["mlm:input"][0]["input"]["shape"] == [-1, 13, 16, 16]
    assert item.properties["mlm:tasks"][0] == "scene-classification"
    assert validate_source(str(tmp_path / "model" / "catalog.json")) == []
    # predict runs it on a chip Item; its one-pixel class map is the model's own argmax for that chip
    chip = next(pystac.Catalog.from_file(str(catalog / "catalog.json")).get_items(recursive=True))
    result = CliRunner().invoke(main, ["predict", "--model", str(tmp_path / "model"), "--input",
                                       chip.get_self_href(), "--output", str(tmp_path / "prediction")])
    assert result.exit_code == 0, result.output
    with rasterio.open(next((tmp_path / "prediction").rglob("*.tif"))) as src:
        predicted = src.read(1)
    with rasterio.open(chip.assets["image"].get_absolute_href()) as src:
        expected = _checkpoint_classes(item, SmallCNN(13, 3, width=4), src.read())
    assert predicted.shape == (1, 1) and int(predicted[0, 0]) == int(expected)


# ---- bad inputs: one clear error, before any training -------------------------------------------------

def _copy(catalog: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(catalog, tmp_path / "copy"))


def _split_items(catalog: Path, split: str) -> list[pystac.Item]:
    return [i for i in pystac.Catalog.from_file(str(catalog / "catalog.json")).get_items(recursive=True)
            if i.properties["ml-aoi:split"] == split]


def test_empty_catalog_fails(tmp_path: Path) -> None:
    catalog = pystac.Catalog("empty", "nothing here")
    catalog.normalize_and_save(str(tmp_path / "empty"), pystac.CatalogType.SELF_CONTAINED)
    with pytest.raises(InvalidInput, match="holds no label items"):
        read_training_data(str(tmp_path / "empty"))


def test_labels_without_classes_fail(training_catalog: Path, tmp_path: Path) -> None:
    catalog = _copy(training_catalog, tmp_path)
    item = _split_items(catalog, "train")[0]
    del item.properties["label:classes"]
    del item.assets["labels"].extra_fields["classification:classes"]
    item.save_object(include_self_link=False)
    with pytest.raises(InvalidInput, match=f"label item {item.id} declares no classes"):
        read_training_data(str(catalog))


def test_class_missing_from_a_split_fails(training_catalog: Path, tmp_path: Path) -> None:
    catalog = _copy(training_catalog, tmp_path)
    for item in _split_items(catalog, "validate"):
        path = Path(item.get_self_href()).parent / "labels.tif"
        with rasterio.open(path) as src:
            labels, profile = src.read(), src.profile
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.where(labels == 2, 0, labels).astype(labels.dtype))
    with pytest.raises(InvalidInput, match=r"classes \['field'\] have no samples in the 'validate' split"):
        read_training_data(str(catalog))


@pytest.mark.parametrize("shape, message", [((4, 8, 8), r"is \(4, 8, 8\) uint16; expected \(4, 16, 16\)"),
                                            ((3, 16, 16), "has 3 bands but eo:bands lists 4")])
def test_mixed_chips_fail(training_catalog: Path, tmp_path: Path, shape, message) -> None:
    catalog = _copy(training_catalog, tmp_path)
    item = _split_items(catalog, "validate")[0]
    write_raster(Path(item.get_self_href()).parent / "image.tif", np.ones(shape, dtype="uint16"))
    with pytest.raises(InvalidInput, match=message):
        read_training_data(str(catalog))


def test_imagery_lacking_a_band_fails(training_catalog: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="lacks band 'B11'"):
        read_training_data(str(training_catalog), bands=["B02", "B11"])
    catalog = _copy(training_catalog, tmp_path)
    item = _split_items(catalog, "test")[0]
    item.assets["image"].extra_fields["eo:bands"] = item.assets["image"].extra_fields["eo:bands"][:3]
    item.save_object(include_self_link=False)
    with pytest.raises(InvalidInput, match=f"chip {item.id} has bands"):
        read_training_data(str(catalog))


def test_cli_reports_bad_input_in_one_line_and_writes_nothing(training_catalog: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--data", str(training_catalog), "--output", str(tmp_path / "m"),
                                       "--task", "scene-classification"])
    assert result.exit_code == 2  # the task argument contradicts the labels: a usage error
    assert result.output.strip().count("\n") == 0 and "expected task 'semantic-segmentation'" in result.output
    assert not (tmp_path / "m").exists()


def test_ignore_index_marks_unlabelled_pixels(training_catalog: Path, tmp_path: Path) -> None:
    catalog = _copy(training_catalog, tmp_path)
    item = _split_items(catalog, "train")[0]
    path = Path(item.get_self_href()).parent / "labels.tif"
    with rasterio.open(path) as src:
        labels, profile = src.read(), src.profile
    labels[0, :4] = 255
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels)
    data = read_training_data(str(catalog))
    assert (data.splits["train"].labels == IGNORE_INDEX).sum() == 4 * 16


def test_runtime_cwl_hrefs_default_to_the_repository_files(tmp_path: Path, monkeypatch) -> None:
    from mlmkit.training.output import runtime_hrefs

    (tmp_path / "training.cwl").write_text("cwlVersion: v1.2\nclass: Workflow\n")
    monkeypatch.setenv("MLMKIT_CWL_DIR", str(tmp_path))
    assert runtime_hrefs(None, None) == {"mlm:training-runtime": str(tmp_path / "training.cwl")}
    url = "https://github.com/org/mlmkit/releases/download/v0.1.0/inference.cwl"
    assert runtime_hrefs(None, url) == {"mlm:training-runtime": str(tmp_path / "training.cwl"),
                                        "mlm:inference-runtime": url}


def test_imagery_may_come_through_the_source_link(training_catalog: Path, tmp_path: Path) -> None:
    """A bring-your-own layout: the label item holds only labels; its `source` Item holds the chip imagery."""
    catalog = _copy(training_catalog, tmp_path)
    for item in _split_items(catalog, "train"):
        folder = Path(item.get_self_href()).parent
        imagery = pystac.Item(f"{item.id}-imagery", item.geometry, item.bbox, None, dict(item.properties))
        imagery.add_asset("visual", item.assets.pop("image"))
        imagery.set_self_href(str(folder / "imagery.json"))
        imagery.save_object(include_self_link=False)
        item.clear_links("source")
        item.add_link(pystac.Link("source", "./imagery.json", media_type="application/geo+json"))
        item.save_object(include_self_link=False)
    original, rewired = read_training_data(str(training_catalog)), read_training_data(str(catalog))
    np.testing.assert_array_equal(original.splits["train"].images, rewired.splits["train"].images)


def test_a_missing_source_item_is_named(training_catalog: Path, tmp_path: Path) -> None:
    """A label item without imagery whose `source` link is dangling: the error names the missing file."""
    catalog = _copy(training_catalog, tmp_path)
    item = _split_items(catalog, "train")[0]
    del item.assets["image"]
    item.clear_links("source")
    item.add_link(pystac.Link("source", "./missing.json", media_type="application/geo+json"))
    item.save_object(include_self_link=False)
    missing = Path(item.get_self_href()).parent / "missing.json"
    with pytest.raises(InvalidInput, match=re.escape(str(missing))):
        read_training_data(str(catalog))


def test_training_catalog_over_http(training_catalog: Path) -> None:
    """`--data URL`: catalog, items and chip COGs fetched over http, as from a static STAC catalog online."""
    with static_server(training_catalog.parent) as base:
        remote = read_training_data(f"{base}/{training_catalog.name}/catalog.json")
    local = read_training_data(str(training_catalog))
    assert remote.source.startswith("http://")
    for split in ("train", "validate", "test"):
        np.testing.assert_array_equal(remote.splits[split].images, local.splits[split].images)
        np.testing.assert_array_equal(remote.splits[split].labels, local.splits[split].labels)


@pytest.mark.parametrize("arch, task, size", [("small-cnn", "scene-classification", 64),
                                              ("resnet18", "scene-classification", 64),
                                              ("unet", "semantic-segmentation", 32)])
def test_every_architecture_exports_with_dynamic_axes(arch: str, task: str, size: int, tmp_path: Path) -> None:
    from mlmkit.training.export import compare_onnx, export_onnx
    from mlmkit.training.models import build_model

    torch.manual_seed(0)
    model = build_model(arch, task, 5, 4, width=4).eval()
    export_onnx(model, tmp_path / "m.onnx", torch.randn(2, 5, size, size), dynamic_hw=task == "semantic-segmentation")
    batches = [torch.randn(1, 5, size, size), torch.randn(3, 5, size, size)]
    if task == "semantic-segmentation":
        batches.append(torch.randn(2, 5, 48, 80))  # fully convolutional: any multiple of 8
    assert compare_onnx(model, tmp_path / "m.onnx", batches) < 1e-3
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    shape = session.run(None, {"input": batches[-1].numpy()})[0].shape
    assert shape == ((2, 4, 48, 80) if task == "semantic-segmentation" else (3, 4))


def test_architecture_must_suit_the_task() -> None:
    from mlmkit.training.models import build_model

    with pytest.raises(InvalidInput, match="expected one of \\['unet'\\] for semantic-segmentation"):
        build_model("resnet18", "semantic-segmentation", 4, 3)


def test_metrics_from_a_known_confusion_matrix() -> None:
    from mlmkit.training.metrics import confusion, summarize

    truth = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, IGNORE_INDEX])
    predicted = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 0])
    matrix = confusion(torch.nn.functional.one_hot(predicted, 2).float(), truth, 2, IGNORE_INDEX)
    np.testing.assert_array_equal(matrix, [[3, 1], [0, 4]])
    metrics = summarize(matrix, ["a", "b"])
    assert metrics["overall_accuracy"] == pytest.approx(7 / 8)
    assert metrics["f1"] == pytest.approx({"a": 6 / 7, "b": 8 / 9})
    assert metrics["iou"] == pytest.approx({"a": 3 / 4, "b": 4 / 5})
    assert metrics["miou"] == pytest.approx((3 / 4 + 4 / 5) / 2)


def test_each_epoch_says_its_time_and_the_eta(training_catalog: Path, tmp_path: Path) -> None:
    """One line per epoch on stderr (not a terminal: no bar), with its time and the ETA of the epochs left; the
    ETA is the mean epoch time so far times the epochs left, so it is never negative and the last has none."""
    result = CliRunner().invoke(main, ["train", "--data", str(training_catalog), "--output", str(tmp_path / "m"),
                                       "--epochs", "3", "--width", "4", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    pattern = r"epoch (\d)/3 in (\d+\.\d) s(?:, ETA (\d+):(\d\d))?: loss \d\.\d{4}, train accuracy .*, mIoU \d\.\d{3}$"
    matches = [re.match(pattern, line) for line in lines]
    assert len(lines) == 3 and all(matches), lines
    assert [m.group(1) for m in matches] == ["1", "2", "3"]
    assert [m.group(3) is not None for m in matches] == [True, True, False]
    quiet = CliRunner().invoke(main, ["train", "--data", str(training_catalog), "--output", str(tmp_path / "q"),
                                      *TINY])
    assert quiet.exit_code == 0 and "epoch " not in quiet.stderr
