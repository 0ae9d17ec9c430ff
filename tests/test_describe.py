"""The MLM Item builder and `mlmkit describe`: fields read from real ONNX files, catalogs that validate."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import yaml
from click.testing import CliRunner

from mlm_fixtures import (CLASSES, S2_BANDS, item_path, make_classifier, make_segmenter, water_metadata,
                          write_water_catalog)
from mlmkit.cli import main
from mlmkit.mlm.describe import load_spec, metadata_from_spec
from mlmkit.errors import InvalidInput
from mlmkit.mlm.spec import MLM_SCHEMA_URL, read_model
from mlmkit.catalog.model_catalog import write_model_catalog
from mlmkit.mlm.build import build_model_item
from mlmkit.runtimes.onnx_info import data_type_name, read_graph
from mlmkit.catalog.validate import validate_source
from stac_model_check import assert_stac_model_reads

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_SPEC = REPO / "docs" / "describe-spec.example.yaml"


def test_item_fields_come_from_the_onnx_graph_and_file(tmp_path: Path) -> None:
    model = make_segmenter(tmp_path / "seg.onnx", channels=3, classes=2)
    item = build_model_item(model, water_metadata()).to_dict()
    props = item["properties"]
    (model_input,) = props["mlm:input"]
    assert model_input["name"] == "image"
    assert model_input["input"] == {"shape": [-1, 3, -1, -1], "dim_order": ["batch", "bands", "height", "width"],
                                    "data_type": "float32"}
    assert model_input["bands"] == ["B04", "B03", "B02"]
    (output,) = props["mlm:output"]
    assert output["result"] == {"shape": [-1, 2, -1, -1], "dim_order": ["batch", "class", "height", "width"],
                                "data_type": "float32"}
    assert output["classification:classes"][1] == {"value": 1, "name": "water", "description": "open water",
                                                   "color_hint": "0000FF"}
    assert output["classification:classes"][0]["color_hint"] == "000000"  # [0, 0, 0] -> RRGGBB
    assert props["mlm:total_parameters"] == 2 * 3 + 2  # 1x1 conv weights + bias
    assert props["mlm:memory_size"] == (2 * 3 + 2) * 4
    assert props["mlm:accelerator"] == "amd64" and props["mlm:framework"] == "ONNX"
    assert [b["common_name"] for b in props["eo:bands"]] == ["red", "green", "blue"]
    asset = item["assets"]["model"]
    data = model.read_bytes()
    assert asset["file:size"] == len(data)
    assert asset["file:checksum"] == "1220" + hashlib.sha256(data).hexdigest()
    assert asset["mlm:artifact_type"] == "onnx" and "mlm:model" in asset["roles"]
    assert item["stac_extensions"][0] == MLM_SCHEMA_URL
    assert "v1.6.0" not in json.dumps(item)


def test_classifier_output_and_static_input(tmp_path: Path) -> None:
    model = make_classifier(tmp_path / "cls.onnx", channels=3, classes=2, size=16)
    props = build_model_item(model, water_metadata(tasks=["classification"])).properties
    assert props["mlm:input"][0]["input"]["shape"] == [-1, 3, 16, 16]
    assert props["mlm:output"][0]["result"]["shape"] == [-1, 2]
    assert props["mlm:output"][0]["result"]["dim_order"] == ["batch", "class"]


def test_no_bands_means_channel_dim_and_no_eo(tmp_path: Path, schema_dir: Path) -> None:
    model = make_segmenter(tmp_path / "seg.onnx")
    item = build_model_item(model, water_metadata(bands=[], value_scaling=None))
    assert item.properties["mlm:input"][0]["input"]["dim_order"][1] == "channel"
    assert not any("/eo/" in url for url in item.stac_extensions)
    catalog = write_model_catalog(item, model, tmp_path / "out")
    assert validate_source(catalog, schema_dir) == []


def test_per_channel_scaling_without_band_names(tmp_path: Path, schema_dir: Path) -> None:
    """Three z-scores for a 3-channel input with no named bands: what validate accepts, describe accepts."""
    model = make_segmenter(tmp_path / "seg.onnx")
    scaling = [{"type": "z-score", "mean": float(i), "stddev": 2.0} for i in range(3)]
    item = build_model_item(model, water_metadata(bands=[], value_scaling=scaling))
    assert item.properties["mlm:input"][0]["value_scaling"] == scaling
    assert validate_source(write_model_catalog(item, model, tmp_path / "out"), schema_dir) == []
    with pytest.raises(InvalidInput, match="2 value_scaling entries for 3 channels"):
        build_model_item(model, water_metadata(bands=[], value_scaling=scaling[:2]))


def test_data_type_names() -> None:
    from onnx import TensorProto

    assert [data_type_name(t) for t in (TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT64, TensorProto.BOOL)] \
        == ["float32", "uint8", "int64", "other"]


@pytest.mark.parametrize("changes, wanted", [
    (dict(bands=S2_BANDS[:2]), "2 bands given but the model input 'image' has 3 channels"),
    (dict(classes=CLASSES + [{"value": 2, "name": "cloud"}]), "3 classes given but the model output 'scores' has 2"),
    (dict(value_scaling=[{"type": "scale", "value": 1}] * 2), "2 value_scaling entries for 3 bands"),
    (dict(input_name="nope"), "no input named 'nope'"),
    (dict(extra_properties={"mlm:batch": 1}), "mlm: prefix"),
    (dict(classes=[{"value": 0, "name": "a", "color_hint": "GG0000"}, {"value": 1, "name": "b"}]), "not a colour"),
])
def test_contradictory_metadata_is_refused(tmp_path: Path, changes: dict, wanted: str) -> None:
    model = make_segmenter(tmp_path / "seg.onnx")
    with pytest.raises(InvalidInput, match=wanted):
        build_model_item(model, water_metadata(**changes))


def test_catalog_is_self_contained_and_readable(tmp_path: Path, schema_dir: Path) -> None:
    catalog = write_water_catalog(tmp_path)
    moved = tmp_path / "moved"
    shutil.move(str(catalog.parent), moved)
    assert validate_source(moved / "catalog.json", schema_dir) == []
    item_file = item_path(moved / "catalog.json")
    item = json.loads(item_file.read_text())
    assert item["assets"]["model"]["href"] == "./water.onnx"
    assert all(not link["href"].startswith("/") for link in item["links"])
    spec = read_model(moved / "catalog.json")
    assert Path(spec.model_asset.href) == item_file.parent / "water.onnx"
    collection = json.loads((item_file.parent.parent / "collection.json").read_text())
    assert collection["extent"]["spatial"]["bbox"] == [[-75.0, 40.0, -74.0, 41.0]]
    # the described model runs with the shapes the Item declares
    session = onnxruntime.InferenceSession(spec.model_asset.href, providers=["CPUExecutionProvider"])
    out = session.run(None, {spec.inputs[0].name: np.ones((1, 3, 4, 5), np.float32)})[0]
    assert out.shape == (1, len(spec.outputs[0].classes), 4, 5)


def test_runtime_and_extra_assets_are_copied_or_referenced(tmp_path: Path, schema_dir: Path) -> None:
    import pystac

    model = make_segmenter(tmp_path / "seg.onnx")
    cwl = tmp_path / "predict.cwl"
    cwl.write_text("cwlVersion: v1.2\nclass: Workflow\ninputs: []\noutputs: []\nsteps: []\n")
    notes = tmp_path / "metrics.json"
    notes.write_text('{"accuracy": 0.9}')
    url = "https://example.org/train.cwl"
    catalog = write_model_catalog(
        build_model_item(model, water_metadata()), model, tmp_path / "out",
        extra_assets={"metrics": (notes, pystac.Asset(href=str(notes), media_type="application/json", roles=["metadata"]))},
        runtime={"mlm:inference-runtime": str(cwl), "mlm:training-runtime": url},
    )
    item = json.loads(item_path(catalog).read_text())
    assert item["assets"]["inference-runtime"]["href"] == "./predict.cwl"
    assert item["assets"]["inference-runtime"]["type"] == "application/cwl+yaml"
    assert item["assets"]["training-runtime"]["href"] == url
    assert (item_path(catalog).parent / "predict.cwl").read_text() == cwl.read_text()
    assert item["assets"]["metrics"]["href"] == "./metrics.json"
    spec = read_model(catalog)
    assert spec.runtime("mlm:inference-runtime").href == str(item_path(catalog).parent / "predict.cwl")
    assert validate_source(catalog, schema_dir) == []


def test_invalid_item_leaves_no_output(tmp_path: Path) -> None:
    model = make_segmenter(tmp_path / "seg.onnx")
    item = build_model_item(model, water_metadata(name="-not a valid name"))
    with pytest.raises(InvalidInput, match="mlm:name"):
        write_model_catalog(item, model, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.onnx"]


def test_example_spec_file_through_the_cli(tmp_path: Path) -> None:
    model = make_segmenter(tmp_path / "seg.onnx")
    out = tmp_path / "described"
    result = CliRunner().invoke(main, ["describe", str(model), "-o", str(out), "--spec", str(EXAMPLE_SPEC),
                                       "--keyword", "demo"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(str(out / "catalog.json"))
    spec = yaml.safe_load(EXAMPLE_SPEC.read_text())
    item = json.loads(item_path(out / "catalog.json").read_text())
    assert item["id"] == spec["id"]
    assert item["properties"]["license"] == spec["license"]
    assert item["properties"]["keywords"] == ["demo"]
    assert item["properties"]["start_datetime"] == spec["start_datetime"]
    assert [c["name"] for c in item["properties"]["mlm:output"][0]["classification:classes"]] == ["land", "water"]
    assert CliRunner().invoke(main, ["validate", str(out)]).exit_code == 0
    # every file the example names exists: its runtime packages were copied beside the Item
    assert {item["assets"][key]["href"] for key in ("inference-runtime", "training-runtime")} == \
        {"./inference.cwl", "./training.cwl"}
    # MLM best practices: the expected product and units, side-car assets, citation, version
    props = item["properties"]
    assert props["processing:level"] == "L1C" and props["version"] == "1.0.0" and props["sci:citation"]
    assert props["mlm:input"][0]["description"].startswith("L1C imagery: ")
    model = item["assets"]["model"]
    assert [b["name"] for b in model["raster:bands"]] == ["B04", "B03", "B02"]
    assert {(b["scale"], b["offset"], b["nodata"], b["data_type"]) for b in model["raster:bands"]} == \
        {(0.0001, 0, 0, "uint16")}
    assert "scale" not in model["eo:bands"][0] and model["eo:bands"][0]["common_name"] == "red"
    assert item["assets"]["source-code"]["mlm:entrypoint"] == "mlmkit.inference:predict"
    assert item["assets"]["container"] == {"href": "mlmkit:0.1.0", "type": "application/vnd.oci.image.index.v1+json",
                                           "title": "Container image that runs Sentinel-2 water segmenter",
                                           "roles": ["mlm:container", "runtime"]}
    assert_stac_model_reads(item)


def test_described_collection_summarises_its_item(tmp_path: Path) -> None:
    catalog = write_water_catalog(tmp_path)
    collection_path = next(tmp_path.rglob("collection.json"))
    collection = json.loads(collection_path.read_text())
    item = json.loads(item_path(catalog).read_text())
    assert collection["summaries"]["mlm:name"] == [item["properties"]["mlm:name"]]
    assert collection["summaries"]["mlm:tasks"] == item["properties"]["mlm:tasks"]
    assert collection["item_assets"]["model"] == {key: item["assets"]["model"][key]
                                                  for key in ("title", "type", "roles", "mlm:artifact_type")}
    for document in (json.loads(catalog.read_text()), collection, item):
        assert document["stac_version"] == "1.0.0"
        assert all(link.get("title") for link in document["links"]), document["links"]


def test_cli_options_without_spec(tmp_path: Path) -> None:
    model = make_segmenter(tmp_path / "seg.onnx")
    out = tmp_path / "described"
    args = ["describe", str(model), "-o", str(out), "--name", "Tiny segmenter", "--architecture", "conv",
            "--task", "semantic-segmentation", "--band", "B04:red", "--band", "B03:green", "--band", "B02:blue",
            "--class", "0:land", "--class", "1:water:0000ff", "--bbox", "10,50,11,51",
            "--value-scaling", '{"type": "min-max", "minimum": 0, "maximum": 10000}']
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    item = json.loads(item_path(out / "catalog.json").read_text())
    assert item["id"] == "tiny-segmenter"
    assert item["bbox"] == [10.0, 50.0, 11.0, 51.0]
    assert item["properties"]["mlm:input"][0]["value_scaling"] == [{"type": "min-max", "minimum": 0, "maximum": 10000}]
    assert item["properties"]["mlm:output"][0]["classification:classes"][1]["color_hint"] == "0000FF"

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "not empty" in again.output
    bad_class = CliRunner().invoke(main, args[:4] + ["--class", "water", "--overwrite"])
    assert bad_class.exit_code == 2 and "VALUE:NAME" in bad_class.output  # a usage error


def test_spec_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown spec fields \\['colour'\\]"):
        metadata_from_spec(tmp_path / "m.onnx", {"name": "m x", "architecture": "a", "tasks": ["x"], "colour": 1})
    with pytest.raises(InvalidInput, match="lacks \\['architecture'\\]"):
        metadata_from_spec(tmp_path / "m.onnx", {"name": "m x", "tasks": ["x"]})
    bad = tmp_path / "spec.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InvalidInput, match="expected a mapping"):
        load_spec(bad)


def test_read_graph_counts_parameters_of_a_classifier(tmp_path: Path) -> None:
    graph = read_graph(make_classifier(tmp_path / "cls.onnx", channels=4, classes=5, size=8))
    assert graph.total_parameters == 5 * 4  # conv without bias
    assert graph.inputs[0].shape == (-1, 4, 8, 8)
    assert graph.outputs[0].shape == (-1, 5)


def test_external_weight_files_travel_with_the_model(tmp_path: Path, schema_dir: Path) -> None:
    import onnx

    model = onnx.load(str(make_segmenter(tmp_path / "dense.onnx")))
    onnx.save_model(model, str(tmp_path / "split.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="split.weights", size_threshold=0)
    assert read_graph(tmp_path / "split.onnx").external_files == ("split.weights",)
    catalog = write_model_catalog(build_model_item(tmp_path / "split.onnx", water_metadata()), tmp_path / "split.onnx",
                                  tmp_path / "out")
    assert (item_path(catalog).parent / "split.weights").read_bytes() == (tmp_path / "split.weights").read_bytes()
    weights = json.loads(item_path(catalog).read_text())["assets"]["model-weights"]
    assert weights["href"] == "./split.weights" and weights["file:size"] == (tmp_path / "split.weights").stat().st_size
    assert validate_source(catalog, schema_dir) == []  # onnxruntime opened it from the catalog


def test_spec_runtime_paths_are_relative_to_the_spec_file(tmp_path: Path) -> None:
    model = make_segmenter(tmp_path / "seg.onnx")
    spec_dir = tmp_path / "specs"
    (spec_dir / "cwl").mkdir(parents=True)
    (spec_dir / "cwl" / "run.cwl").write_text("cwlVersion: v1.2\nclass: CommandLineTool\n")
    spec = yaml.safe_load(EXAMPLE_SPEC.read_text())
    spec["inference_runtime"] = "cwl/run.cwl"
    del spec["training_runtime"]  # the example names ../cwl/training.cwl, which is not beside this copy
    (spec_dir / "spec.json").write_text(json.dumps(spec))
    result = CliRunner().invoke(main, ["describe", str(model), "-o", str(tmp_path / "out"),
                                       "--spec", str(spec_dir / "spec.json")])
    assert result.exit_code == 0, result.output
    item = item_path(tmp_path / "out" / "catalog.json")
    assert json.loads(item.read_text())["assets"]["inference-runtime"]["roles"][0] == "mlm:inference-runtime"
    assert (item.parent / "run.cwl").read_text().startswith("cwlVersion: v1.2")
