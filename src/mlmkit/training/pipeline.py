"""`mlmkit train` as one call: read the catalog, train, export (ONNX and ExportedProgram), check the exports,
write the catalog."""

from __future__ import annotations

import tempfile
from itertools import islice
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


from mlmkit.progress import QUIET, Progress
from mlmkit.errors import InvalidArgument
from mlmkit.training.dataset import ChipBatches
from mlmkit.training.export import compare_onnx, compare_program, export_onnx, export_program
from mlmkit.training.layout import SEGMENTATION
from mlmkit.training.models import DEFAULT_ARCH
from mlmkit.training.net_catalog import write_output_catalog
from mlmkit.training.output import RunInfo, read_run_data
from mlmkit.training.stats import band_stats
from mlmkit.training.trainer import TrainConfig, TrainResult, fit, pick_device

CHECK_BATCHES = 3


@dataclass(frozen=True)
class TrainSummary:
    """What a caller reports after training: where the catalog is, how the run went."""

    catalog: Path
    result: TrainResult
    onnx_max_abs_diff: float
    exported_max_abs_diff: float
    samples: dict[str, int]


def train_model(data: str, outdir: str | Path, *, task: str | None = None, arch: str | None = None,
                epochs: int = 10, batch_size: int = 32, lr: float = 1e-3, seed: int = 0, width: int | None = None,
                device: str | None = None, bands: Sequence[str] = (), model_id: str | None = None,
                training_cwl: str | None = None, inference_cwl: str | None = None, overwrite: bool = False,
                progress: Progress | None = None, version: str = "1.0.0", experimental: bool = False,
                citation: str | None = None, doi: str | None = None, schema_dir: Path | None = None,
                training_data_href: str | None = None) -> TrainSummary:
    """Train on the training catalog `data` and write the model catalog to `outdir`.

    `version`, `experimental`, `citation` and `doi` describe the model in its Item (version and scientific
    extensions); `schema_dir` is the offline schema mirror the catalog is validated against;
    `training_data_href` the URL `data` is published at, for the MLM Item's derived_from links.
    """
    outdir = Path(outdir)
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise InvalidArgument(f"epochs={epochs}, batch size={batch_size}, lr={lr}; expected positive values")
    training = read_run_data(data, outdir, overwrite=overwrite, model_id=model_id, task=task, bands=bands,
                             published=training_data_href)
    stats = band_stats(training.splits["train"].images)
    config = TrainConfig(arch or DEFAULT_ARCH[training.task], epochs, batch_size, lr, seed=seed, width=width,
                         device=pick_device(device), progress=progress or Progress(QUIET))
    result = fit(training, stats, config)
    validate = ChipBatches(training.splits["validate"].images, training.splits["validate"].labels, stats, batch_size)
    real_batches = [images for images, _ in islice(validate, CHECK_BATCHES)]
    run_id = model_id or f"{config.arch}-{training.task}"
    with tempfile.TemporaryDirectory(prefix="mlmkit-train-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(result.model, onnx_path, real_batches[0], dynamic_hw=training.task == SEGMENTATION)
        max_diff = compare_onnx(result.model, onnx_path, real_batches)
        program_path = Path(tmp) / "model.pt2"  # the same model as a second mlm:model asset (torch.export.save)
        export_program(result.model, program_path, real_batches[0], dynamic_hw=training.task == SEGMENTATION)
        program_diff = compare_program(result.model, program_path, real_batches)
        run = RunInfo(run_id, max_diff, training_cwl, inference_cwl, exported_program=program_path,
                      exported_max_abs_diff=program_diff, version=version, experimental=experimental,
                      citation=citation, doi=doi)
        catalog = write_output_catalog(outdir, Path(tmp), onnx_path, training, stats, config, result, run, overwrite,
                                       schema_dir)
    return TrainSummary(catalog, result, max_diff, program_diff, {s: len(d.images) for s, d in training.splits.items()})
