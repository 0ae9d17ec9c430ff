"""Metadata never becomes a path outside the output, and an output never replaces an input.

Ids and keys like `../../../X` only name files through safe names inside OUTDIR (the real id stays in the
JSON); commands that copy files refuse hrefs that leave their catalog (symlinks included); OUTDIR may not
be, contain or lie inside an input, so `--overwrite` cannot delete one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from bad_input_helpers import (Sandbox, assert_contained, assert_one_line_failure, assert_refused, box,  # noqa: F401
                               invoke, snapshot, write_model, write_scene)
from mlm_fixtures import S2_BANDS, make_segmenter
from train_fixtures import write_eurosat_folder, write_scene as write_training_scene

TRAVERSALS = ["../../../X", "..", ".", "a/../../../b", "/abs/path/X", "x\ny", "ü/../../ü", "-rf", " ", "C:\\x\\..\\y"]
COPY_ESCAPES = ["../../../secret.txt", "{root}/secret.txt", "file://{root}/secret.txt"]


def _ids_in(outdir: Path) -> set[str]:
    return {json.loads(path.read_text()).get("id") for path in outdir.rglob("*.json")}


# --- predict ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("item_id", TRAVERSALS)
def test_predict_item_id_names_a_directory_inside_outdir(box: Sandbox, item_id: str):
    item = write_scene(box.work, item_id=item_id)
    model = write_model(box.work / "model")
    outdir = assert_contained(box, ["predict", "-m", model, "-i", item, "-o", box.out])
    assert f"{item_id}-test-model" in _ids_in(outdir)  # the real id stays in the JSON


@pytest.mark.parametrize("name,output", [("../../../m", "out"), ("Test", "../../../evil"), ("/", "/etc/passwd")])
def test_predict_model_and_output_names_stay_inside(box: Sandbox, name: str, output: str):
    item = write_scene(box.work)
    model = write_model(box.work / "model", output_name=output, name=name)
    assert_contained(box, ["predict", "-m", model, "-i", item, "-o", box.out])


# --- describe ----------------------------------------------------------------------------------------------

def _describe_args(box: Sandbox, *extra) -> list:
    model = make_segmenter(box.work / "seg.onnx")
    return ["describe", model, "-o", box.out, "--name", "Water", "--architecture", "conv",
            "--task", "semantic-segmentation", *(arg for band in S2_BANDS for arg in ("--band", band["name"])),
            "--class", "0:land", "--class", "1:water", *extra]


@pytest.mark.parametrize("item_id", ["../../../X", "/abs/X", "..", "a\\..\\..\\b"])
def test_describe_id_option_stays_inside(box: Sandbox, item_id: str):
    outdir = assert_contained(box, _describe_args(box, "--id", item_id))
    assert item_id in _ids_in(outdir)


def test_describe_spec_id_stays_inside(box: Sandbox):
    spec = box.work / "spec.json"
    spec.write_text(json.dumps({"id": "../../../spec-X", "license": "MIT"}))
    outdir = assert_contained(box, _describe_args(box, "--spec", spec))
    assert "../../../spec-X" in _ids_in(outdir)


def _model_with_external_data(folder: Path, location: str) -> Path:
    """An ONNX model whose weight tensor says it lives in `location` (as an untrusted file may say)."""
    weight = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "weight")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "24")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Conv", ["image", "weight"], ["scores"])], "ext",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 2, "h", "w"])],
                              initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "ext.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("location", ["../secret.bin", "{root}/secret.bin", "link.bin"])
def test_describe_refuses_external_data_outside_the_model_directory(box: Sandbox, location: str):
    (box.work / "secret.bin").write_bytes(b"s" * 24)
    folder = box.work / "model"
    folder.mkdir()
    (folder / "link.bin").symlink_to(box.work / "secret.bin")
    model = _model_with_external_data(folder, location.format(root=box.work))
    args = _describe_args(box)
    args[1] = model
    assert_refused(box, args, match="external data location .* (leaves|outside)")


# --- merge -------------------------------------------------------------------------------------------------

def _result_catalog(folder: Path, item_id: str = "r1", href: str = "./data.tif", key: str = "data") -> Path:
    """A catalog directory with one Item whose asset `key` has `href`."""
    item_dir = folder / "item"
    item_dir.mkdir(parents=True)
    (item_dir / "data.tif").write_bytes(b"pixels")
    item = {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "geometry": None, "properties":
            {"datetime": "2024-01-01T00:00:00Z"}, "assets": {key: {"href": href}},
            "links": [{"rel": "root", "href": "../catalog.json"}, {"rel": "parent", "href": "../catalog.json"}]}
    (item_dir / "item.json").write_text(json.dumps(item))
    (folder / "catalog.json").write_text(json.dumps({
        "type": "Catalog", "stac_version": "1.0.0", "id": "results", "description": "d",
        "links": [{"rel": "root", "href": "./catalog.json"}, {"rel": "item", "href": "./item/item.json"}]}))
    return folder


@pytest.mark.parametrize("href", COPY_ESCAPES)
def test_merge_refuses_assets_outside_their_catalog(box: Sandbox, href: str):
    (box.root / "secret.txt").write_text("do not copy")
    (box.work / "secret.txt").write_text("do not copy")
    source = _result_catalog(box.work / "pred", href=href.format(root=box.root))
    assert_refused(box, ["merge", source, "-o", box.out], match="outside its catalog")


def test_merge_refuses_a_symlink_out_of_the_catalog(box: Sandbox):
    (box.root / "secret.txt").write_text("do not copy")
    source = _result_catalog(box.work / "pred", href="./link.tif")
    (source / "item" / "link.tif").symlink_to(box.root / "secret.txt")
    assert_refused(box, ["merge", source, "-o", box.out], match="a link to .*outside its catalog")


def test_merge_refuses_a_directory_as_an_asset(box: Sandbox):
    source = _result_catalog(box.work / "pred", href="..")
    assert_refused(box, ["merge", source, "-o", box.out], match="not a readable file")


@pytest.mark.parametrize("item_id,key", [("../../../X", "data"), ("/abs/X", "../../../k"), ("..", "."),
                                         ("r/../../../../Y", "/etc/passwd")])
def test_merge_ids_and_keys_stay_inside(box: Sandbox, item_id: str, key: str):
    source = _result_catalog(box.work / "pred", item_id=item_id, key=key)
    outdir = assert_contained(box, ["merge", source, "-o", box.out])
    assert item_id in _ids_in(outdir)
    assert len(list(outdir.rglob("data.tif"))) == 1


# --- publish (refused before any request: the API URL is never reached) -------------------------------------

def _plain_catalog(folder: Path, href: str) -> Path:
    source = _result_catalog(folder, href=href)
    catalog = json.loads((source / "catalog.json").read_text())
    catalog.update(type="Collection", license="MIT", extent={"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                                            "temporal": {"interval": [[None, None]]}})
    (source / "catalog.json").write_text(json.dumps(catalog))
    return source


@pytest.mark.parametrize("href,base", [("../../secret.txt", None), ("../../secret.txt", "https://x.org/c"),
                                       ("./link.tif", None), ("./link.tif", "https://x.org/c")])
def test_publish_refuses_local_assets_outside_the_catalog(box: Sandbox, href: str, base: str | None):
    (box.work / "secret.txt").write_text("private")
    source = _plain_catalog(box.work / "pub", href=href)
    (source / "item" / "link.tif").symlink_to(box.work / "secret.txt")
    args = ["publish", source, "--api", "http://127.0.0.1:9"] + (["--base-href", base] if base else [])
    assert_refused(box, args, match="outside the catalog directory")


# --- chips and train ---------------------------------------------------------------------------------------

def _chips_args(box: Sandbox, out: Path, imagery_id: str = "scene") -> list:
    item, labels = write_training_scene(box.work / "scene", size=64)
    data = json.loads(item.read_text())
    data["id"] = imagery_id
    item.write_text(json.dumps(data))
    return ["chips", "--imagery", item, "--labels", labels, "--classes", "0=water,1=forest,2=field",
            "--chip-size", "16", "--block-size", "1", "-o", out]


def test_chips_name_and_imagery_id_are_only_ids(box: Sandbox):
    outdir = assert_contained(box, _chips_args(box, box.out, "../../../scene") + ["--name", "../../../X"])
    assert "../../../X" in _ids_in(outdir)


def test_train_model_id_with_a_path_is_refused_by_the_mlm_name_rule(box: Sandbox):
    """The id is also the model's mlm:name, whose MLM pattern has no room for a path: one line, nothing out."""
    training = box.work / "training"
    assert invoke(_chips_args(box, training)).exit_code == 0
    assert_refused(box, ["train", "--data", training, "-o", box.out, "--epochs", "1", "--quiet",
                         "--model-id", "../../../X"], status=2, match="mlm:name")  # an argument of the wrong form


def test_eurosat_file_names_stay_inside(box: Sandbox):
    folder = write_eurosat_folder(box.work / "eurosat", per_class=8, bands=3, classes=("a..b", "c d", "-x"))
    outdir = assert_contained(box, ["chips", "--eurosat", folder, "-o", box.out, "--band-names", "B04,B03,B02",
                                    "--block-deg", "0.001"])
    assert len(list(outdir.rglob("image.tif"))) == 24


# --- --overwrite never deletes an input ------------------------------------------------------------------------

OVERWRITE_CASES = {
    "predict output is the input catalog directory": ("predict", "scene", "scene"),
    "predict output contains the input item": ("predict", "item", "work"),
    "predict output contains the model": ("predict", "model", "model-dir"),
    "predict output contains an imagery asset": ("predict", "asset", "assets"),
    "predict output lies inside the input catalog": ("predict", "scene", "scene/pred"),
    "merge output is a source": ("merge", "pred", "pred"),
    "merge output contains a source": ("merge", "pred", "work"),
    "merge output lies inside a source": ("merge", "pred", "pred/sub"),
    "describe output contains the model": ("describe", "model", "work"),
    "chips output contains the imagery": ("chips", "scene", "scene"),
    "chips output contains the labels": ("chips", "labels", "labels"),
    "eurosat output is the folder": ("eurosat", "folder", "eurosat"),
    "eurosat output lies inside the folder": ("eurosat", "folder", "eurosat/out"),
    "train output is the training catalog": ("train", "catalog", "training"),
    "train output lies inside the training catalog": ("train", "catalog", "training/model"),
    "release output is the CWL directory": ("release", "cwl", "cwl"),
}


def _overwrite_args(box: Sandbox, command: str, outdir: Path) -> list:
    work = box.work
    if command == "predict":
        (work / "assets").mkdir(exist_ok=True)
        write_scene(work / "assets")
        scene = work / "scene"
        write_scene(scene)
        item = json.loads((scene / "item.json").read_text())
        item["assets"]["img"]["href"] = "../assets/img.tif"
        (scene / "item.json").write_text(json.dumps(item))
        (scene / "catalog.json").write_text(json.dumps({
            "type": "Catalog", "stac_version": "1.0.0", "id": "c", "description": "d",
            "links": [{"rel": "item", "href": "./item.json"}]}))
        model = write_model(work / "model-dir")
        return ["predict", "-m", model, "-i", scene if outdir.name in ("scene", "pred", "assets") else
                scene / "item.json", "-o", outdir, "--overwrite"]
    if command == "merge":
        return ["merge", _result_catalog(work / "pred"), "-o", outdir, "--overwrite"]
    if command == "describe":
        args = _describe_args(box, "--overwrite")
        args[3] = outdir
        return args
    if command == "chips":
        item, _ = write_training_scene(work / "scene", size=64)
        labels = work / "labels" / "labels.tif"
        labels.parent.mkdir()
        os.replace(work / "scene" / "labels.tif", labels)
        return ["chips", "--imagery", item, "--labels", labels, "--classes", "0=water,1=forest,2=field",
                "--chip-size", "16", "-o", outdir, "--overwrite"]
    if command == "eurosat":
        return ["chips", "--eurosat", write_eurosat_folder(work / "eurosat", bands=3), "-o", outdir, "--block-deg", "0.001",
                "--band-names", "B04,B03,B02", "--overwrite"]
    if command == "train":
        (work / "training").mkdir()
        (work / "training" / "catalog.json").write_text(json.dumps({
            "type": "Catalog", "stac_version": "1.0.0", "id": "t", "description": "d", "links": []}))
        return ["train", "--data", work / "training", "-o", outdir, "--overwrite"]
    cwl = work / "cwl"
    cwl.mkdir()
    (cwl / "inference.cwl").write_text("{}")
    return ["release", "--base-url", "https://x.org", "--image", f"a=b@sha256:{'0' * 64}", "--cwl-dir", cwl,
            "-o", outdir, "--overwrite"]


@pytest.mark.parametrize("case", sorted(OVERWRITE_CASES))
def test_overwrite_never_deletes_an_input(box: Sandbox, case: str):
    command, _, target = OVERWRITE_CASES[case]
    outdir = box.work if target == "work" else box.work / target
    args = _overwrite_args(box, command, outdir)
    before = snapshot(box.root)
    assert_one_line_failure(invoke(args), 1, r"output directory .* (is|contains|lies inside) the input")
    assert snapshot(box.root) == before  # nothing deleted, nothing written
