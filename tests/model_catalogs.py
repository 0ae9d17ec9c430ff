"""Small MLM model catalogs (real ONNX files, written by mlmkit's own builder) for the publish/search tests."""

from __future__ import annotations

import json
from pathlib import Path

from mlm_fixtures import CLASSES, S2_BANDS, make_classifier, make_segmenter

from mlmkit.catalog.model_catalog import write_model_catalog
from mlmkit.mlm.build import ModelMetadata, build_model_item

NIR_BANDS = [{"name": "B08", "common_name": "nir", "center_wavelength": 0.842},
             {"name": "B11", "common_name": "swir16", "center_wavelength": 1.61}]


def model_catalog(outdir: Path, item_id: str, *, task: str, bands: list[dict], bbox: list[float],
                  framework: str = "ONNX", start: str = "2020-01-01T00:00:00Z", end: str = "2022-12-31T23:59:59Z",
                  description: str = "", keywords: tuple[str, ...] = ()) -> Path:
    """A catalog directory (catalog → collection '<id>-collection' → item + model.onnx); returns it."""
    work = outdir.parent / f"{outdir.name}-onnx"
    work.mkdir(parents=True, exist_ok=True)
    if task == "classification":
        model = make_classifier(work / "model.onnx", channels=len(bands))
    else:
        model = make_segmenter(work / "model.onnx", channels=len(bands))
    meta = ModelMetadata(id=item_id, name=item_id.replace("-", " "), architecture="tiny-cnn", tasks=[task],
                         bands=bands, classes=CLASSES, bbox=bbox, framework=framework, start_datetime=start,
                         end_datetime=end, description=description or f"test model {item_id}",
                         keywords=list(keywords))
    write_model_catalog(build_model_item(model, meta), model, outdir)
    return outdir


def item_path(catalog_dir: Path, item_id: str) -> Path:
    """Where write_model_catalog put the item JSON."""
    return next(catalog_dir.rglob(f"{item_id}.json"))


def edit_item(catalog_dir: Path, item_id: str, **properties) -> dict:
    """Change properties of the item JSON in place; returns the new JSON."""
    path = item_path(catalog_dir, item_id)
    data = json.loads(path.read_text())
    data["properties"].update(properties)
    path.write_text(json.dumps(data, indent=2))
    return data


__all__ = ["CLASSES", "NIR_BANDS", "S2_BANDS", "edit_item", "item_path", "model_catalog"]
