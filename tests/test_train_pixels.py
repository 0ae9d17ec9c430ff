"""`mlmkit train --architecture random-forest|gradient-boosting`: scikit-learn pixel classifiers with a true MLM
Item that `mlmkit predict` runs unchanged; no torch on that path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pystac
import pytest
import rasterio
from click.testing import CliRunner

from mlmkit.cli import main
from mlmkit.inference import PredictOptions, predict
from mlmkit.training.catalog_reader import IGNORE_INDEX, SplitData
from mlmkit.catalog.validate import validate_source
from train_fixtures import scene, training_catalog  # noqa: F401

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")
FAST = ["--trees", "15", "--max-samples", "1500", "--seed", "3"]


@pytest.fixture(scope="module")
def forest(training_catalog: Path, tmp_path_factory, schema_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("forest") / "model"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        run = CliRunner().invoke(main, ["train", "--data", str(training_catalog), "--output", str(out),
                                        "--architecture", "random-forest", *FAST])
    assert run.exit_code == 0, run.output
    assert "validate accuracy" in run.output and "model catalog:" in run.output
    return out


def _item(model_dir: Path) -> pystac.Item:
    return next(pystac.Catalog.from_file(str(model_dir / "catalog.json")).get_items(recursive=True))


def test_model_item_describes_a_pixel_classifier(forest: Path) -> None:
    import sklearn

    item = _item(forest)
    props = item.properties
    assert props["mlm:framework"] == "scikit-learn" and props["mlm:framework_version"] == sklearn.__version__
    assert props["mlm:architecture"] == "RandomForestClassifier"
    assert props["mlm:hyperparameters"]["n_estimators"] == 15 and props["mlm:hyperparameters"]["seed"] == 3
    assert props["mlm:hyperparameters"]["max_training_pixels"] == 1500
    assert props["mlm:total_parameters"] > 0
    model_input = props["mlm:input"][0]
    assert model_input["bands"] == ["B02", "B03", "B04", "B08"]
    assert model_input["input"] == {"shape": [-1, 4], "dim_order": ["batch", "bands"], "data_type": "float32"}
    assert model_input["value_scaling"] is None
    outputs = {o["name"]: o for o in props["mlm:output"]}
    assert outputs["label"]["result"] == {"shape": [-1], "dim_order": ["batch"], "data_type": "int64"}
    assert outputs["probabilities"]["result"]["dim_order"] == ["batch", "class"]
    assert [(c["value"], c["name"]) for c in outputs["label"]["classification:classes"]] == [
        (0, "water"), (1, "forest"), (2, "field")]
    metrics = json.loads(Path(item.assets["metrics"].get_absolute_href()).read_text())
    assert {"train", "validate", "test"} <= set(metrics) and metrics["validate"]["overall_accuracy"] > 0.9
    assert metrics["onnx_max_abs_diff"] < 1e-3 and props["mlmkit:validate_miou"] == metrics["validate"]["miou"]
    derived = {link.extra_fields.get("ml-aoi:split") for link in item.links if link.rel == "derived_from"}
    assert derived == {"train", "validate", "test"}
    assert validate_source(forest / "catalog.json") == []


def test_predict_runs_it_unchanged(forest: Path, scene, tmp_path: Path) -> None:
    imagery, labels = scene
    out = tmp_path / "out"
    predict(str(forest), str(imagery), out, PredictOptions(tile_size=40))
    result = next(out.rglob("synthetic-scene-*.json"))
    assets = json.loads(result.read_text())["assets"]
    with rasterio.open(result.parent / assets["label-classes"]["href"]) as dataset:
        written = dataset.read(1)
    with rasterio.open(Path(imagery).parent / "image.tif") as dataset:
        rows = dataset.read().reshape(4, -1).T.astype(np.float32)
    session = ort.InferenceSession(str(Path(_item(forest).assets["model"].get_absolute_href())))
    direct = session.run(["label"], {"input": rows})[0].reshape(written.shape)
    np.testing.assert_array_equal(written, direct)  # every pixel, edges included
    with rasterio.open(labels) as dataset:
        assert (written == dataset.read(1)).mean() > 0.9


def test_gradient_boosting_without_torch(training_catalog: Path, tmp_path: Path, schema_dir: Path) -> None:
    """The scikit-learn path imports no torch (the inference image has none)."""
    script = ("import sys; from mlmkit.training.classical import train_pixel_classifier; "
              f"s = train_pixel_classifier({str(training_catalog)!r}, {str(tmp_path / 'gb')!r}, "
              "arch='gradient-boosting', trees=10, max_samples=900); "
              "assert 'torch' not in sys.modules, 'torch was imported'; print(s.validation['overall_accuracy'])")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={"MLMKIT_SCHEMA_DIR": str(schema_dir), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert float(run.stdout) > 0.9
    assert _item(tmp_path / "gb").properties["mlm:architecture"] == "GradientBoostingClassifier"


def test_balanced_seeded_sample() -> None:
    from mlmkit.training.classical import sample_pixels

    rng = np.random.default_rng(0)
    labels = rng.choice([0, 0, 0, 0, 1, IGNORE_INDEX], size=(6, 8, 8))
    labels[0, 0, :3] = 2  # a rare class: all of its 3 pixels are kept
    images = rng.integers(0, 1000, size=(6, 2, 8, 8)).astype(np.uint16)
    split = SplitData(images, labels, [], [], [])
    pixels, classes = sample_pixels(split, 3, 60, seed=5)
    assert np.bincount(classes).tolist() == [20, 20, 3]
    chip, row, col = np.nonzero(labels == 2)
    np.testing.assert_array_equal(np.sort(pixels[classes == 2][:, 0]), np.sort(images[chip, 0, row, col]))
    again, _ = sample_pixels(split, 3, 60, seed=5)
    np.testing.assert_array_equal(pixels, again)
