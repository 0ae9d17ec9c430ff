"""One MLM model for reading and building: an Item built for a model file, read back with `read_model`'s objects
and built again from them, is the same JSON, and a valid catalog."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mlm_fixtures import CLASSES, S2_BANDS, make_segmenter
from mlmkit.catalog.validate import validate_source
from mlmkit.errors import InvalidMetadata
from mlmkit.catalog.model_catalog import write_model_catalog
from mlmkit.mlm.build import ModelMetadata, build_model_item
from mlmkit.mlm.describe import load_spec, metadata_from_spec
from mlmkit.mlm.spec import ModelClass, ModelInput, ModelOutput, ValueScaling, read_model, spec_from_item

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _trained_like() -> ModelMetadata:
    """Metadata as `mlmkit train` gives it (training/net_catalog.py): per-band z-scores, re-indexed classes with
    colours, hyperparameters, metrics as extra properties, the documentation fields."""
    return ModelMetadata(
        id="water-unet", name="water-unet", architecture="U-Net", tasks=["semantic-segmentation"],
        bands=[dict(band, nodata=0, data_type="uint16", scale=0.0001, offset=0) for band in S2_BANDS],
        value_scaling=tuple(ValueScaling(type="z-score", mean=m, stddev=s)
                            for m, s in [(1200.5, 310.25), (1100.0, 290.5), (900.75, 250.0)]),
        classes=tuple(ModelClass(value=i, name=name, color_hint=colour)
                      for i, (name, colour) in enumerate([("land", "A0A0A0"), ("water", "0000FF")])),
        bbox=[11.0, 46.0, 12.0, 47.0], start_datetime=datetime(2020, 1, 1, tzinfo=timezone.utc),
        end_datetime=datetime(2020, 12, 31, tzinfo=timezone.utc), framework="PyTorch", framework_version="2.13.0",
        hyperparameters={"arch": "unet", "epochs": 2, "batch_size": 8, "lr": 0.001, "optimizer": "AdamW"},
        input_name="image", output_name="scores",
        description="U-Net trained by mlmkit on water chips; inputs are z-scored per band.",
        keywords=["mlmkit", "segmentation"], extra_properties={"mlmkit:best_epoch": 1, "mlmkit:val_miou": 0.8125},
        processing_level="L1C", processing_lineage="Sentinel-2 MSI Level-1C digital numbers",
        source_code="https://github.com/mlmkit/mlmkit/tree/v0.2.0", entrypoint="mlmkit.inference:predict",
        container="mlmkit:0.2.0", citation="mlmkit developers (2026). water-unet.",
        publications=[{"doi": "10.1007/978-3-319-24574-4_28", "citation": "Ronneberger et al. (2015). U-Net."}],
        version="1.0.0", experimental=True,
    )


def _example_spec(model: Path) -> ModelMetadata:
    meta, _ = metadata_from_spec(model, load_spec(DOCS / "describe-spec.example.yaml"))
    return meta


@pytest.mark.parametrize("metadata", [_example_spec, lambda model: _trained_like()], ids=["describe-spec", "trained"])
def test_build_read_build_gives_the_same_item(tmp_path: Path, schema_dir: Path, metadata) -> None:
    model = make_segmenter(tmp_path / "seg.onnx")
    first = build_model_item(model, metadata(model))
    spec = spec_from_item(first)
    again = build_model_item(model, ModelMetadata.from_spec(spec))
    assert json.dumps(again.to_dict(), sort_keys=True) == json.dumps(first.to_dict(), sort_keys=True)
    catalog = write_model_catalog(again, model, tmp_path / "out")
    assert validate_source(catalog, schema_dir) == []
    # what is read from the written catalog is what was built: the same objects
    written = read_model(catalog)
    assert written.inputs == spec.inputs and written.outputs == spec.outputs


def test_objects_write_the_mlm_fields_they_read(tmp_path: Path) -> None:
    item = build_model_item(make_segmenter(tmp_path / "seg.onnx"), _trained_like()).to_dict()
    model_input, output = item["properties"]["mlm:input"][0], item["properties"]["mlm:output"][0]
    assert ModelInput.from_dict(model_input, 0).to_dict() == model_input
    assert ModelOutput.from_dict(output, 0).to_dict() == output
    assert model_input["value_scaling"][0] == {"type": "z-score", "mean": 1200.5, "stddev": 310.25}
    assert output["classification:classes"][1] == {"value": 1, "name": "water", "description": "water",
                                                   "color_hint": "0000FF"}
    assert model_input["bands"] == ["B04", "B03", "B02"]


def test_metadata_dicts_become_the_mlm_objects() -> None:
    meta = ModelMetadata(id="m", name="m", architecture="a", tasks=["classification"], classes=CLASSES,
                         value_scaling=[{"type": "scale", "value": 10000}], post_processing="A > 0.5")
    assert meta.classes[0] == ModelClass(value=0, name="background", description="background", color_hint="000000")
    assert meta.value_scaling == (ValueScaling(type="scale", value=10000),)
    assert meta.post_processing.to_dict() == {"format": "gdal-calc", "expression": "A > 0.5"}
    with pytest.raises(InvalidMetadata, match=r"value_scaling\[0\] has unknown fields \['std'\]"):
        ModelMetadata(id="m", name="m", architecture="a", tasks=[], value_scaling=[{"type": "z-score", "std": 2}])
    with pytest.raises(InvalidMetadata, match="class value 'one' is not a number"):
        ModelMetadata(id="m", name="m", architecture="a", tasks=[], classes=[{"value": "one", "name": "x"}])
