"""What the catalog of a trained PyTorch net says beyond the ONNX file: metadata, metrics, best checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pystac
import torch

from mlmkit.runtimes.artifacts import ArtifactKind
from mlmkit.mlm.build import ModelMetadata, model_asset, model_asset_bands
from mlmkit.mlm.spec import ModelClass, ValueScaling
from mlmkit.training.catalog_reader import TrainingData
from mlmkit.training.models import ARCHITECTURES
from mlmkit.training.output import (RunInfo, documentation, task_names, training_catalog_name, training_extent,
                                    validation_metrics, write_training_catalog)
from mlmkit.training.stats import BandStats
from mlmkit.training.trainer import TrainConfig, TrainResult

PYTORCH_MEDIA_TYPE = "application/octet-stream; framework=pytorch"


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
        "exported_max_abs_diff": run.exported_max_abs_diff,
        "samples": {split: int(len(s.images)) for split, s in data.splits.items()},
    }


def model_metadata(data: TrainingData, stats: BandStats, config: TrainConfig, result: TrainResult,
                   run: RunInfo) -> ModelMetadata:
    """What the ONNX file cannot tell the MLM builder: bands, scaling, classes, extent, hyperparameters."""
    bbox, start, end = training_extent(data)
    metrics = {"mlmkit:best_epoch": result.best_epoch, "mlmkit:onnx_max_abs_diff": run.onnx_max_abs_diff,
               **validation_metrics(result.validation, result.test, data.task)}
    if run.exported_max_abs_diff is not None:
        metrics["mlmkit:exported_max_abs_diff"] = run.exported_max_abs_diff
    return ModelMetadata(
        id=run.model_id, name=run.model_id, architecture=ARCHITECTURES[config.arch][2], tasks=task_names(data.task),
        bands=data.bands,
        value_scaling=tuple(ValueScaling(type="z-score", mean=m, stddev=s) for m, s in zip(stats.mean, stats.std)),
        classes=tuple(ModelClass(value=i, name=c.name, color_hint=c.color_hint) for i, c in enumerate(data.classes)),
        bbox=bbox, start_datetime=start, end_datetime=end, framework="PyTorch", framework_version=torch.__version__,
        accelerator="amd64",
        hyperparameters={"arch": config.arch, "epochs": config.epochs, "batch_size": config.batch_size,
                         "lr": config.lr, "weight_decay": config.weight_decay, "seed": config.seed,
                         "optimizer": "AdamW", "lr_schedule": "cosine", "loss": "cross-entropy"},
        input_name="input", output_name="logits",
        description=(f"{ARCHITECTURES[config.arch][2]} trained by mlmkit on {training_catalog_name(data)} "
                     f"for {data.task}; "
                     "inputs are z-scored per band with the training split's statistics; outputs are class logits."),
        keywords=["mlmkit", data.task], extra_properties=metrics, **documentation(data, run, config.arch))


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
    checkpoint = workdir / "best.pt"
    torch.save(result.model.state_dict(), checkpoint)
    meta = model_metadata(data, stats, config, result, run)
    extra = {"checkpoint": (checkpoint, _checkpoint_asset(meta, config.arch))}
    if run.exported_program is not None:  # MLM: alternate formats of one model, told apart by mlm:artifact_type
        extra["model-pt2"] = (run.exported_program,
                              model_asset(run.exported_program, meta, ArtifactKind.EXPORTED_PROGRAM))
    return write_training_catalog(outdir, workdir, onnx_path, meta, data, metrics_document(data, result, run),
                                  result.validation_confusion, run, extra, overwrite, schema_dir)
