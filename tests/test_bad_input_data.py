"""Bad data, one line each: JSON that is no STAC object, hostile expressions, broken rasters, STAC APIs
that answer garbage, usage errors, and training catalogs that could only teach one class."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from bad_input_helpers import (BANDS, Sandbox, assert_one_line_failure, assert_refused, box, invoke,  # noqa: F401
                               write_model, write_scene)
from http_helpers import scripted_server
from mlm_fixtures import make_segmenter
from mlmkit.inference.expressions import MAX_DEPTH, MAX_LENGTH, MAX_NODES
from predict_helpers import imagery_item, write_raster
from train_fixtures import write_scene as write_training_scene

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # our own test rasters
NOT_OBJECTS = {"array": "[1, 2]", "string": '"catalog"', "number": "42", "null": "null", "boolean": "true"}
PYTHON_TYPES = {"array": "list", "string": "str"}  # what describe --spec names them
MALFORMED = {
    "truncated JSON": '{"type": "Feature", "id": ',
    "links not an array": '{"type": "Catalog", "id": "c", "description": "d", "stac_version": "1.0.0", "links": {}}',
    "link without href": '{"type": "Catalog", "id": "c", "description": "d", "stac_version": "1.0.0", '
                         '"links": [{"rel": "item"}]}',
    "assets not objects": '{"type": "Feature", "id": "i", "stac_version": "1.0.0", "geometry": null, '
                          '"properties": {"datetime": null}, "links": [], "assets": {"a": 3}}',
    "unknown type": '{"type": "FeatureCollection", "features": []}',
    "not UTF-8": b'{"type": "\xff\xfe"}',
}


def _doc(box: Sandbox, text: str | bytes, name: str = "doc.json") -> Path:
    path = box.work / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# --- JSON that is not a STAC object, for every command that reads one ------------------------------------------

def _reader_args(box: Sandbox, command: str, doc: Path) -> list:
    if command == "predict --model":
        return ["predict", "-m", doc, "-i", write_scene(box.work / "scene"), "-o", box.out]
    if command == "predict --input":
        return ["predict", "-m", write_model(box.work / "model"), "-i", doc, "-o", box.out]
    if command == "describe --spec":
        return ["describe", make_segmenter(box.work / "seg.onnx"), "--spec", doc, "-o", box.out]
    if command == "merge":
        return ["merge", doc, "-o", box.out]
    if command == "chips --imagery":
        return ["chips", "--imagery", doc, "--labels", doc, "--classes", "0=a,1=b", "-o", box.out]
    if command == "train --data":
        return ["train", "--data", doc, "-o", box.out]
    if command == "publish":
        return ["publish", doc, "--api", "http://127.0.0.1:9"]
    return ["search", doc]


READERS = ["predict --model", "predict --input", "describe --spec", "merge", "chips --imagery", "train --data",
           "publish", "search"]


@pytest.mark.parametrize("command,kind", [(command, kind) for command in READERS for kind in sorted(NOT_OBJECTS)
                                          if command != "describe --spec" or kind in ("array", "string")])
def test_json_that_is_not_an_object(box: Sandbox, command: str, kind: str):
    doc = _doc(box, NOT_OBJECTS[kind])
    line = assert_refused(box, _reader_args(box, command, doc))
    if command == "describe --spec":  # a YAML/JSON spec file, named as one, in Python's words
        said = f"spec file {doc} holds a {PYTHON_TYPES[kind]}; expected a mapping of metadata fields"
    else:
        said = f"{doc} holds a JSON {kind}; expected a JSON object (a STAC document)"
    if command == "publish":  # validated first: the validation problem is the reason nothing is published
        assert line.startswith(f"Error: nothing published: 1 validation problem(s) in {doc}: "), line
        assert line.endswith(f": $: {said}"), line
    else:
        assert line == f"Error: {said}"


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("command", ["predict --input", "merge", "search"])
def test_malformed_stac_documents(box: Sandbox, command: str, case: str):
    doc = _doc(box, MALFORMED[case])
    assert_refused(box, _reader_args(box, command, doc))


def test_validate_reports_a_non_object_document_as_a_problem(box: Sandbox):
    doc = _doc(box, "[]")
    result = invoke(["validate", doc])
    assert result.exit_code == 1 and f"{doc}: $: " in result.stdout and "JSON array" in result.stdout


# --- hostile expressions in an MLM Item, refused before any output exists ---------------------------------------

HOSTILE = {
    "50,000-term sum": "+".join(["B04"] * 50_000),
    "5,000-deep rio-calc": "(+ " * 5_000 + "B04 1" + ")" * 5_000,
    "deep nesting within the length limit": "(- " * (MAX_DEPTH + 5) + "B04" + ")" * (MAX_DEPTH + 5),
    "more terms than allowed": "+".join(["1"] * (MAX_NODES + 10)),
    "huge integer power": "99999999999999999999999 ** 99999999",
    "huge integer constant": "B04 * " + "9" * 400,
    "negative integer power": "B04 * 2 ** -1",
    "import": "__import__('os').system('touch pwned')",
    "attribute": "B04.__class__.__bases__",
    "lambda": "(lambda: 1)()",
    "string constant": "'rm -rf /'",
    "out argument": "minimum(B04, B03, B02)",
    "copy=False argument": "nan_to_num(B04, False)",
    "result larger than the tile": "where(B04 > 0)",
    "axis out of range": "sum(B04, 7)",
    "unknown function": "open('/etc/passwd')",
    "longer than allowed": "B04 + " + "0 + " * (MAX_LENGTH // 4),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_expressions_are_refused(box: Sandbox, case: str):
    item = write_scene(box.work / "scene")
    bands = ["B04", "B03", {"name": "NDX", "format": "gdal-calc", "expression": HOSTILE[case]}]
    model = write_model(box.work / "model", bands=bands)
    assert_refused(box, ["predict", "-m", model, "-i", item, "-o", box.out], match="expression")
    assert not list(box.root.rglob("pwned"))


# --- rasters that are truncated, empty or not georeferenced ---------------------------------------------------

def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "text":
        path.write_text("not a raster")
    else:  # not georeferenced
        with rasterio.open(path) as src:
            array, profile = src.read(), src.profile
        profile.pop("crs"), profile.pop("transform")
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(array)


DAMAGE = ["truncated", "empty", "text", "not georeferenced"]


@pytest.mark.parametrize("how", DAMAGE)
def test_predict_on_a_damaged_raster(box: Sandbox, how: str):
    folder = box.work / "scene"
    folder.mkdir()
    data = np.random.default_rng(0).integers(1, 500, (3, 300, 300)).astype("uint16")
    write_raster(folder / "img.tif", data)  # uncompressed, several tiles: a cut file fails while reading
    item = imagery_item(folder / "item.json", {"img": ("./img.tif", BANDS)})
    _damage(folder / "img.tif", how)
    assert_refused(box, ["predict", "-m", write_model(box.work / "model"), "-i", item, "-o", box.out],
                   match="imagery asset")


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("which", ["imagery", "labels"])
def test_chips_on_a_damaged_raster(box: Sandbox, which: str, how: str):
    item, labels = write_training_scene(box.work / "scene", size=64)
    _damage(box.work / "scene" / ("image.tif" if which == "imagery" else "labels.tif"), how)
    assert_refused(box, ["chips", "--imagery", item, "--labels", labels, "--classes", "0=water,1=forest,2=field",
                         "--chip-size", "16", "-o", box.out])


@pytest.mark.parametrize("how", ["truncated", "empty", "text"])
def test_describe_a_damaged_model(box: Sandbox, how: str):
    model = make_segmenter(box.work / "seg.onnx")
    _damage(model, how)
    assert_refused(box, ["describe", model, "-o", box.out, "--name", "n", "--architecture", "a", "--task", "t"],
                   match="ONNX")


# --- training catalogs: damaged chips, a single class --------------------------------------------------------

@pytest.fixture(scope="module")
def training_source(tmp_path_factory) -> Path:
    """A small training catalog (3 classes, 16×16 chips) to copy and spoil per case."""
    from mlmkit.training.chips import ChipOptions, build_chips
    from mlmkit.training.layout import parse_classes

    root = tmp_path_factory.mktemp("training")
    item, labels = write_training_scene(root / "scene", size=96)
    options = ChipOptions(chip_size=16, block_size=1, fractions=(0.5, 0.25, 0.25), name="t")
    build_chips(str(item), str(labels), parse_classes("0=water,1=forest,2=field"), root / "catalog", options)
    return root / "catalog"


def _training_copy(box: Sandbox, source: Path) -> Path:
    catalog = box.work / "training"
    shutil.copytree(source, catalog)
    return catalog


def _rewrite_labels(catalog: Path, split: str, value: int) -> None:
    for path in (catalog / split).rglob("labels.tif"):
        with rasterio.open(path) as src:
            labels, profile = src.read(), src.profile
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.where(labels == 255, 255, value).astype(labels.dtype))


def test_train_on_a_truncated_chip(box: Sandbox, training_source: Path):
    catalog = _training_copy(box, training_source)
    _damage(next((catalog / "validate").rglob("image.tif")), "truncated")
    assert_refused(box, ["train", "--data", catalog, "-o", box.out, "--epochs", "1"], match="cannot read imagery")


def test_train_refuses_a_single_declared_class(box: Sandbox):
    item, labels = write_training_scene(box.work / "scene", size=64)
    with rasterio.open(labels) as src:
        array, profile = src.read(), src.profile
    with rasterio.open(labels, "w", **profile) as dst:
        dst.write(np.zeros_like(array))
    assert invoke(["chips", "--imagery", item, "--labels", labels, "--classes", "0=water", "--chip-size", "16",
                   "--block-size", "1", "-o", box.work / "training"]).exit_code == 0
    assert_refused(box, ["train", "--data", box.work / "training", "-o", box.out, "--epochs", "1"],
                   match="declares 1 class")


def test_train_refuses_a_test_split_of_one_class(box: Sandbox, training_source: Path):
    catalog = _training_copy(box, training_source)
    _rewrite_labels(catalog, "test", 1)
    assert_refused(box, ["train", "--data", catalog, "-o", box.out, "--epochs", "1"],
                   match="'test' split's labels hold 1 of the 3 declared classes")


def test_train_refuses_labels_of_one_class_everywhere(box: Sandbox, training_source: Path):
    catalog = _training_copy(box, training_source)
    for split in ("train", "validate", "test"):
        _rewrite_labels(catalog, split, 0)
    assert_refused(box, ["train", "--data", catalog, "-o", box.out, "--epochs", "1"], match="have no samples")


# --- STAC APIs and servers that answer garbage ----------------------------------------------------------------

JSON = "application/json"
CONFORMS = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
            "https://api.stacspec.org/v1.0.0/ogcapi-features/extensions/transaction"]
LANDING = json.dumps({
    "type": "Catalog", "stac_version": "1.0.0", "id": "api", "description": "garbage API", "conformsTo": CONFORMS,
    "links": [{"rel": "self", "href": "{base}/"}, {"rel": "root", "href": "{base}/"},
              {"rel": "conformance", "href": "{base}/conformance"},
              {"rel": "search", "href": "{base}/search", "method": "POST", "type": "application/geo+json"}],
}).encode()
PAGE_LOOP = json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature"}], "links": [
    {"rel": "next", "href": "{base}/search", "method": "POST", "body": {}}]}).encode()
SEARCH_ANSWERS = {
    "landing page HTML": {"/": (200, "text/html", b"<html>welcome</html>")},
    "landing page array": {"/": (200, JSON, b"[1, 2]")},
    "landing page string": {"/": (200, JSON, b'"api"')},
    "landing page truncated": {"/": (200, JSON, LANDING[:60])},
    "landing page 500": {"/": (500, JSON, b"{}")},
    "landing links not links": {"/": (200, JSON, b'{"type": "Catalog", "id": "x", "description": "d", '
                                                b'"stac_version": "1.0.0", "links": "x"}')},
    "search page HTML": {"/": (200, JSON, LANDING), "/search": (200, "text/html", b"<html>")},
    "search page array": {"/": (200, JSON, LANDING), "/search": (200, JSON, b"[]")},
    "search page string": {"/": (200, JSON, LANDING), "/search": (200, JSON, b'"items"')},
    "search features not an array": {"/": (200, JSON, LANDING), "/search": (200, JSON, b'{"features": "x"}')},
    "search features not objects": {"/": (200, JSON, LANDING), "/search": (200, JSON, b'{"features": [1, 2]}')},
    "search page loop": {"/": (200, JSON, LANDING), "/search": (200, JSON, PAGE_LOOP)},
    "search page 502": {"/": (200, JSON, LANDING), "/search": (502, "text/html", b"<html>bad gateway</html>")},
}


@pytest.mark.parametrize("case", sorted(SEARCH_ANSWERS))
def test_search_against_an_api_answering_garbage(box: Sandbox, case: str):
    with scripted_server(SEARCH_ANSWERS[case]) as base:
        assert_refused(box, ["search", "--api", base, "--task", "classification"], match="STAC API")


CONFORMANCE_ANSWERS = {
    "HTML": (200, "text/html", b"<html>"),
    "array": (200, JSON, b"[]"),
    "conformsTo not a list": (200, JSON, b'{"conformsTo": "transaction"}'),
    "truncated": (200, JSON, b'{"conformsTo": ["ht'),
    "404": (404, JSON, b"{}"),
}


@pytest.mark.parametrize("case", sorted(CONFORMANCE_ANSWERS))
def test_publish_against_an_api_answering_garbage(box: Sandbox, case: str):
    catalog = box.work / "pub"
    catalog.mkdir()
    (catalog / "catalog.json").write_text(json.dumps({
        "type": "Collection", "stac_version": "1.0.0", "id": "c", "description": "d", "license": "MIT", "links": [],
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}}}))
    with scripted_server({"/conformance": CONFORMANCE_ANSWERS[case]}) as base:
        assert_refused(box, ["publish", catalog, "--api", base], match="conformance")


@pytest.mark.parametrize("what,answer", [("input", (200, "text/html", b"<html>")), ("input", (200, JSON, b"[]")),
                                         ("input", (404, JSON, b"{}")), ("model", (500, JSON, b"{}")),
                                         ("model", (200, JSON, b'{"type": "Feature"')),
                                         ("model asset", (404, "text/plain", b"gone"))])
def test_predict_with_documents_over_http_that_are_garbage(box: Sandbox, what: str, answer: tuple):
    item = write_scene(box.work / "scene")
    model = write_model(box.work / "model")
    with scripted_server({"/doc.json": answer, "/m.onnx": answer}) as base:
        if what == "model asset":
            data = json.loads(model.read_text())
            data["assets"]["model"]["href"] = f"{base}/m.onnx"
            model.write_text(json.dumps(data))
        args = ["predict", "-m", f"{base}/doc.json" if what == "model" else model,
                "-i", f"{base}/doc.json" if what == "input" else item, "-o", box.out]
        assert_refused(box, args)


# --- usage errors: one line with the usage, exit 2 --------------------------------------------------------------

USAGE = {
    "predict without --model": ["predict", "-i", "x.json", "-o", "out"],
    "predict tile size too small": ["predict", "-m", "m", "-i", "i", "-o", "out", "--tile-size", "3"],
    "describe of a missing model file": ["describe", "missing.onnx", "-o", "out"],
    "merge without catalogs": ["merge", "-o", "out"],
    "chips without --output": ["chips", "--imagery", "x"],
    "train without --data": ["train", "-o", "out"],
    "train with an unknown task": ["train", "--data", "d", "-o", "out", "--task", "dancing"],
    "publish of a missing catalog": ["publish", "missing/", "--api", "http://x"],
    "search with a zero limit": ["search", "--api", "http://x", "--limit", "0"],
    "validate without documents": ["validate"],
    "release without --base-url": ["release", "--image", "a=b", "-o", "out"],
    "unknown command": ["bogus"],
    "unknown option": ["--bogus"],
}


@pytest.mark.parametrize("case", sorted(USAGE))
def test_usage_errors_are_one_line(box: Sandbox, case: str):
    line = assert_refused(box, USAGE[case], status=2)
    assert "--help" in line
