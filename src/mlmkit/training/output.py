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

from mlmkit.errors import InvalidInput
from mlmkit.mlm_item import ModelMetadata, build_model_item, write_model_catalog
from mlmkit.provenance import lineage_href
from mlmkit.release import PACKAGES, packages_dir
from mlmkit.stacio import is_url
from mlmkit.training.catalog_reader import TrainingData
from mlmkit.training.layout import ML_AOI_EXT, SEGMENTATION
from mlmkit.training.models import ARCHITECTURES
from mlmkit.training.stats import BandStats
from mlmkit.training.trainer import TrainConfig, TrainResult

CELL = 48


class _DerivedFromLink(pystac.Link):
    """A derived_from link that keeps its `ml-aoi:split` through Link.clone (which drops extra fields) and,
    when `relative`, is written relative to the Item like hierarchical links, so the model and training
    catalogs can move together (pystac leaves other local links absolute: here, inside a temporary directory
    beside the output, so the relative href is the same as from the output)."""

    relative = True

    def clone(self) -> _DerivedFromLink:
        link = super().clone()
        link.extra_fields = dict(self.extra_fields)
        link.relative = self.relative
        return link

    def get_href(self, transform_href: bool = True) -> str | None:
        href = super().get_href(transform_href)
        owner = self.owner.get_self_href() if self.owner is not None else None
        if self.relative and transform_href and href and owner and os.path.isabs(href) and not is_url(owner):
            return make_relative_href(href, os.path.realpath(owner))
        return href


def training_data_links(data: TrainingData, outdir: Path) -> list[_DerivedFromLink]:
    """derived_from links to the split collections, by mlmkit.provenance's rules for a model catalog at `outdir`."""
    links = []
    for split, split_data in data.splits.items():
        for href in split_data.collections:
            what = f"training data ({split} split)"
            settled = lineage_href(href, Path(outdir).absolute() / "catalog.json", what, "--training-data-href")
            if settled is None:
                continue
            relative = not (is_url(settled) or os.path.isabs(settled))  # then made relative when written
            link = _DerivedFromLink("derived_from", os.path.realpath(href) if relative else settled,
                                    media_type="application/json", title=what, extra_fields={"ml-aoi:split": split})
            link.relative = relative
            links.append(link)
    return links


@dataclass(frozen=True)
class RunInfo:
    """What the output catalog records about the run beyond the trained model."""

    model_id: str
    onnx_max_abs_diff: float
    training_cwl: str | None = None
    inference_cwl: str | None = None


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
    """Row-normalised confusion matrix (rows: truth, columns: prediction) with counts."""
    matrix = np.asarray(matrix)
    k = len(names)
    margin = 8 + 7 * max(len(n) for n in names)
    image = Image.new("RGB", (margin + k * CELL + 8, margin + k * CELL + 8), "white")
    draw = ImageDraw.Draw(image)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    for i, name in enumerate(names):
        draw.text((4, margin + i * CELL + CELL // 2 - 5), name, fill="black")
        draw.text((margin + i * CELL + 2, margin - 14 - (i % 2) * 12), name[:8], fill="black")
        for j in range(k):
            shade = int(255 * (1 - share[i, j]))
            box = (margin + j * CELL, margin + i * CELL, margin + (j + 1) * CELL - 1, margin + (i + 1) * CELL - 1)
            draw.rectangle(box, fill=(shade, shade, 255), outline="grey")
            draw.text((box[0] + 4, box[1] + CELL // 2 - 5), str(int(matrix[i, j])),
                      fill="white" if share[i, j] > 0.5 else "black")
    image.save(path)


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
        description=(f"{ARCHITECTURES[config.arch][2]} trained by mlmkit on the training catalog "
                     f"{data.source if is_url(data.source) else repr(data.catalog_id)} for {data.task}; "
                     "inputs are z-scored per band with the training split's statistics; outputs are class logits."),
        keywords=["mlmkit", data.task], extra_properties=metrics)


def write_output_catalog(outdir: Path, workdir: Path, onnx_path: Path, data: TrainingData, stats: BandStats,
                         config: TrainConfig, result: TrainResult, run: RunInfo, overwrite: bool = False) -> Path:
    """Write the model catalog at `outdir` from artefacts prepared in `workdir`."""
    names = [c.name for c in data.classes]
    metrics_path, png_path, checkpoint = workdir / "metrics.json", workdir / "confusion_matrix.png", workdir / "best.pt"
    metrics_path.write_text(json.dumps(metrics_document(data, result, run), indent=2))
    confusion_png(result.validation_confusion, names, png_path)
    torch.save(result.model.state_dict(), checkpoint)
    item = build_model_item(onnx_path, model_metadata(data, stats, config, result, run))
    item.stac_extensions.append(ML_AOI_EXT)
    item.add_links(training_data_links(data, outdir))
    extra = {
        "metrics": (metrics_path, pystac.Asset("", "training and validation metrics", media_type="application/json",
                                               roles=["metadata"])),
        "confusion-matrix": (png_path, pystac.Asset("", "validation confusion matrix (rows: truth)",
                                                    media_type="image/png", roles=["overview", "visual"])),
        "checkpoint": (checkpoint, pystac.Asset("", "best-epoch PyTorch state_dict",
                                                media_type="application/octet-stream; framework=pytorch",
                                                roles=["mlm:weights", "mlm:checkpoint"])),
    }
    return write_model_catalog(item, onnx_path, outdir, extra, runtime_hrefs(run.training_cwl, run.inference_cwl),
                               overwrite)
