"""The training run's catalog: MLM Item (via mlmkit.mlm_item), metrics JSON, confusion-matrix PNG,
best checkpoint, runtime CWL assets and derived_from links to the split collections it learned from."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pystac
import torch
from PIL import Image, ImageDraw
from pystac.utils import make_relative_href

from mlmkit.drawing import PAD, TEXT_SIZE, font, text_width, vertical_text
from mlmkit.errors import InvalidInput
from mlmkit.mlm_item import ModelMetadata, build_model_item, model_asset_bands, write_model_catalog
from mlmkit.release import INFERENCE_IMAGE, PACKAGES, packages_dir, source_code_url
from mlmkit.stacio import is_url
from mlmkit.training.catalog_reader import TrainingData
from mlmkit.training.layout import ML_AOI_EXT, SEGMENTATION
from mlmkit.training.models import ARCHITECTURES
from mlmkit.training.stats import BandStats
from mlmkit.training.trainer import TrainConfig, TrainResult

CELL = 56
PYTORCH_MEDIA_TYPE = "application/octet-stream; framework=pytorch"
# The papers that introduced the architectures mlmkit trains (sci:publications of the trained models).
PUBLICATIONS = {
    "unet": {"doi": "10.1007/978-3-319-24574-4_28",
             "citation": "Ronneberger, O., Fischer, P., Brox, T. (2015). U-Net: Convolutional Networks for Biomedical "
                         "Image Segmentation. MICCAI 2015, LNCS 9351, 234-241."},
    "resnet18": {"doi": "10.1109/CVPR.2016.90",
                 "citation": "He, K., Zhang, X., Ren, S., Sun, J. (2016). Deep Residual Learning for Image "
                             "Recognition. CVPR 2016, 770-778."},
}


class _DerivedFromLink(pystac.Link):
    """A derived_from link that keeps its `ml-aoi:split` through Link.clone (which drops extra fields) and
    is written relative to the Item like hierarchical links, so the model and training catalogs can move
    together (pystac leaves other local links absolute: here, inside a temporary directory)."""

    def clone(self) -> _DerivedFromLink:
        link = super().clone()
        link.extra_fields = dict(self.extra_fields)
        return link

    def get_href(self, transform_href: bool = True) -> str | None:
        href = super().get_href(transform_href)
        owner = self.owner.get_self_href() if self.owner is not None else None
        if transform_href and href and owner and os.path.isabs(href) and not is_url(owner):
            return make_relative_href(href, owner)
        return href


@dataclass(frozen=True)
class RunInfo:
    """What the output catalog records about the run beyond the trained model."""

    model_id: str
    onnx_max_abs_diff: float
    training_cwl: str | None = None
    inference_cwl: str | None = None
    version: str = "1.0.0"
    experimental: bool = False
    citation: str | None = None
    doi: str | None = None


def runtime_hrefs(training: str | None, inference: str | None) -> dict[str, str]:
    """Given hrefs (release URLs or files) win; otherwise the repository's CWL files where they exist."""
    hrefs = {}
    for role, given in (("mlm:training-runtime", training), ("mlm:inference-runtime", inference)):
        default = packages_dir() / PACKAGES[role]
        if given:
            hrefs[role] = given
        elif default.is_file():
            hrefs[role] = str(default)
    return hrefs


def metrics_document(data: TrainingData, result: TrainResult, run: RunInfo) -> dict:
    """Everything measured during the run, for the `metrics` asset."""
    return {
        "task": data.task,
        "classes": [c.name for c in data.classes],
        "best_epoch": result.best_epoch,
        "validate": result.validation,
        "validate_confusion_matrix": np.asarray(result.validation_confusion).tolist(),
        "test": result.test,
        "history": result.history,
        "train_seconds": result.train_seconds,
        "train_samples_per_s": result.train_samples_per_s,
        "onnx_max_abs_diff": run.onnx_max_abs_diff,
        "samples": {split: int(len(s.images)) for split, s in data.splits.items()},
    }


def confusion_png(matrix: np.ndarray, names: list[str], path: Path) -> None:
    """Row-normalised confusion matrix with counts: true classes down the rows, predicted across the columns,
    full class names and axis titles."""
    matrix = np.asarray(matrix)
    k = len(names)
    label = max(text_width(name) for name in names) + 2 * PAD
    axis = TEXT_SIZE + 2 * PAD
    title_h = TEXT_SIZE + 2 + 2 * PAD
    left, top = axis + label, title_h + axis + label
    title = "Validation confusion matrix (counts; shade: share of the true class)"
    image = Image.new("RGBA", (max(left + k * CELL + PAD, text_width(title) + 2 * PAD), top + k * CELL + PAD), "white")
    draw = ImageDraw.Draw(image)
    draw.text(((image.width - text_width(title)) // 2, PAD), title, fill="black", font=font())
    heading = "predicted class"
    draw.text((left + (k * CELL - text_width(heading)) // 2, title_h), heading, fill="black", font=font())
    true_axis = vertical_text("true class")
    image.alpha_composite(true_axis, (PAD // 2, top + max(0, (k * CELL - true_axis.height) // 2)))
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    for i, name in enumerate(names):
        draw.text((left - PAD - text_width(name), top + i * CELL + (CELL - TEXT_SIZE) // 2), name, fill="black",
                  font=font())
        column = vertical_text(name)
        image.alpha_composite(column, (left + i * CELL + (CELL - column.width) // 2, top - PAD - column.height))
        for j in range(k):
            shade = int(255 * (1 - share[i, j]))
            box = (left + j * CELL, top + i * CELL, left + (j + 1) * CELL - 1, top + (i + 1) * CELL - 1)
            draw.rectangle(box, fill=(shade, shade, 255), outline="grey")
            count = str(int(matrix[i, j]))
            draw.text((box[0] + (CELL - text_width(count, TEXT_SIZE - 2)) // 2, box[1] + (CELL - TEXT_SIZE) // 2),
                      count, fill="white" if share[i, j] > 0.5 else "black", font=font(TEXT_SIZE - 2))
    image.convert("RGB").save(path)


def _extent(data: TrainingData) -> tuple[list[float], str, str]:
    boxes = np.array([b for s in data.splits.values() for b in s.bboxes])
    times = sorted(t for s in data.splits.values() for period in s.periods for t in period if t is not None)
    if not times:
        raise InvalidInput(f"no chip of {data.source} has a datetime; expected datetime or start/end_datetime")
    bbox = [float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max())]
    return bbox, times[0].isoformat(), times[-1].isoformat()


def model_metadata(data: TrainingData, stats: BandStats, config: TrainConfig, result: TrainResult,
                   run: RunInfo) -> ModelMetadata:
    """What the ONNX file cannot tell the MLM builder: bands, scaling, classes, extent, hyperparameters."""
    bbox, start, end = _extent(data)
    task_names = [data.task, "segmentation"] if data.task == SEGMENTATION else [data.task, "classification"]
    metrics = {"mlmkit:best_epoch": result.best_epoch,
               "mlmkit:validate_overall_accuracy": result.validation["overall_accuracy"],
               "mlmkit:validate_mean_f1": result.validation["mean_f1"],
               "mlmkit:validate_f1": result.validation["f1"],
               "mlmkit:onnx_max_abs_diff": run.onnx_max_abs_diff}
    if data.task == SEGMENTATION:
        metrics["mlmkit:validate_miou"] = result.validation["miou"]
    if result.test:
        metrics["mlmkit:test_overall_accuracy"] = result.test["overall_accuracy"]
    return ModelMetadata(
        id=run.model_id, name=run.model_id, architecture=ARCHITECTURES[config.arch][2], tasks=task_names,
        bands=data.bands,
        value_scaling=[{"type": "z-score", "mean": m, "stddev": s} for m, s in zip(stats.mean, stats.std)],
        classes=[{"value": i, "name": c.name, "color_hint": c.color_hint} for i, c in enumerate(data.classes)],
        bbox=bbox, start_datetime=start, end_datetime=end, framework="PyTorch", framework_version=torch.__version__,
        accelerator="amd64",
        hyperparameters={"arch": config.arch, "epochs": config.epochs, "batch_size": config.batch_size,
                         "lr": config.lr, "weight_decay": config.weight_decay, "seed": config.seed,
                         "optimizer": "AdamW", "lr_schedule": "cosine", "loss": "cross-entropy"},
        input_name="input", output_name="logits",
        description=(f"{ARCHITECTURES[config.arch][2]} trained by mlmkit on {data.source} for {data.task}; "
                     "inputs are z-scored per band with the training split's statistics; outputs are class logits."),
        keywords=["mlmkit", data.task], extra_properties=metrics,
        processing_level=data.processing.get("processing:level"),
        processing_lineage=data.processing.get("processing:lineage"),
        source_code=source_code_url(), entrypoint="mlmkit.predict:predict", container=INFERENCE_IMAGE,
        citation=run.citation, doi=run.doi,
        publications=[PUBLICATIONS[config.arch]] if config.arch in PUBLICATIONS else [],
        version=run.version, experimental=run.experimental)


def _checkpoint_asset(meta: ModelMetadata, arch: str) -> pystac.Asset:
    """The best epoch's state_dict: the same model for PyTorch (built by the source code's build_model), so it
    is a model asset too (MLM allows mlm:artifact_type only there), told apart by its artifact type."""
    return pystac.Asset("", f"{meta.name} best-epoch PyTorch state_dict",
                        description=f"torch.load() it into mlmkit.training.models.build_model({arch!r}, ...) "
                                    "of the source code; the ONNX `model` asset needs no code",
                        media_type=PYTORCH_MEDIA_TYPE, roles=["mlm:model", "mlm:weights", "mlm:checkpoint"],
                        extra_fields={"mlm:artifact_type": "torch.save", **model_asset_bands(meta)})


def write_output_catalog(outdir: Path, workdir: Path, onnx_path: Path, data: TrainingData, stats: BandStats,
                         config: TrainConfig, result: TrainResult, run: RunInfo, overwrite: bool = False,
                         schema_dir: Path | None = None) -> Path:
    """Write the model catalog at `outdir` from artefacts prepared in `workdir`."""
    names = [c.name for c in data.classes]
    metrics_path, png_path, checkpoint = workdir / "metrics.json", workdir / "confusion_matrix.png", workdir / "best.pt"
    metrics_path.write_text(json.dumps(metrics_document(data, result, run), indent=2))
    confusion_png(result.validation_confusion, names, png_path)
    torch.save(result.model.state_dict(), checkpoint)
    meta = model_metadata(data, stats, config, result, run)
    item = build_model_item(onnx_path, meta)
    item.stac_extensions.append(ML_AOI_EXT)
    for split, split_data in data.splits.items():
        for href in split_data.collections:
            item.add_link(_DerivedFromLink("derived_from", href, media_type="application/json",
                                      title=f"training data ({split} split)", extra_fields={"ml-aoi:split": split}))
    extra = {
        "metrics": (metrics_path, pystac.Asset("", "training and validation metrics", media_type="application/json",
                                               roles=["metadata"])),
        "confusion-matrix": (png_path, pystac.Asset("", "validation confusion matrix (rows: true class, "
                                                        "columns: predicted class)",
                                                    media_type="image/png", roles=["overview", "visual"])),
        "checkpoint": (checkpoint, _checkpoint_asset(meta, config.arch)),
    }
    return write_model_catalog(item, onnx_path, outdir, extra, runtime_hrefs(run.training_cwl, run.inference_cwl),
                               overwrite, schema_dir)
