"""Pixel classifiers with scikit-learn: random forest and gradient boosting on pixels of the chip catalog.

Training pixels are a bounded, seeded sample, balanced by class (up to max_samples / K per class), so rare
classes are seen and memory does not grow with the catalog; scene-classification chips lend their label
to every pixel. Metrics are computed as for the nets (overall accuracy, per-class F1, IoU) on the
validate and test pixels. The model is exported with skl2onnx without ZipMap (`label [batch]` and
`probabilities [batch, class]` tensors), checked against scikit-learn, and described as a true MLM Item
whose input is `[batch, bands]` rows of raw band values: `mlmkit predict` runs it as is.
No torch here.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlmkit.errors import InvalidArgument, ModelRunError
from mlmkit.mlm.build import ModelMetadata
from mlmkit.mlm.spec import ModelClass
from mlmkit.training.catalog_reader import IGNORE_INDEX, SplitData, TrainingData
from mlmkit.training.metrics import confusion_matrix, summarize
from mlmkit.training.output import (RunInfo, documentation, read_run_data, training_catalog_name,
                                    training_extent, validation_metrics, write_training_catalog)

PIXEL_ARCHITECTURES = {"random-forest": "RandomForestClassifier", "gradient-boosting": "GradientBoostingClassifier"}
PIXEL_TASKS = ["semantic-segmentation", "classification"]
EVAL_MAX = 1_000_000          # validate/test pixels scored at most (a uniform sample beyond)
CHECK_PIXELS = 20_000         # pixels on which ONNX and scikit-learn must agree
MIN_AGREEMENT = 0.999
OPSETS = {"": 17, "ai.onnx.ml": 3}


@dataclass(frozen=True)
class PixelTrainSummary:
    """What a caller reports after training a pixel classifier."""

    catalog: Path
    validation: dict
    test: dict | None
    onnx_max_abs_diff: float
    samples: dict[str, int]


def _estimator(arch: str, trees: int, seed: int):
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    if arch == "random-forest":
        return RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=-1)
    return GradientBoostingClassifier(n_estimators=trees, random_state=seed)


def _pixel_labels(split: SplitData) -> np.ndarray:
    """(N, H, W) class indices: raster labels as they are, a scene chip's label on all its pixels."""
    labels = split.labels
    if labels.ndim == 1:
        labels = np.broadcast_to(labels[:, None, None], (len(labels), *split.images.shape[2:]))
    return labels


def _pixels(split: SplitData, flat: np.ndarray) -> np.ndarray:
    """(n, C) float32 band values of the pixels at flat (chip, row, col) positions."""
    _, _, height, width = split.images.shape
    chip, rest = np.divmod(flat, height * width)
    row, col = np.divmod(rest, width)
    return split.images[chip, :, row, col].astype(np.float32)


def sample_pixels(split: SplitData, classes: int, max_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to max_samples // classes labelled pixels of each class, drawn without replacement (seeded)."""
    labels = _pixel_labels(split).reshape(-1)
    rng = np.random.default_rng(seed)
    quota = max(1, max_samples // classes)
    chosen = []
    for index in range(classes):
        where = np.flatnonzero(labels == index)
        chosen.append(where if len(where) <= quota else np.sort(rng.choice(where, quota, replace=False)))
    flat = np.concatenate(chosen)
    return _pixels(split, flat), labels[flat]


def _all_pixels(split: SplitData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled pixel of a split (a uniform sample of EVAL_MAX when there are more)."""
    labels = _pixel_labels(split).reshape(-1)
    flat = np.flatnonzero(labels != IGNORE_INDEX)
    if len(flat) > EVAL_MAX:
        flat = np.sort(np.random.default_rng(seed).choice(flat, EVAL_MAX, replace=False))
    return _pixels(split, flat), labels[flat]


def _score(model, values: np.ndarray, pixels: np.ndarray, truth: np.ndarray, names: list[str]) -> tuple[dict, np.ndarray]:
    predicted = np.searchsorted(values, model.predict(pixels))  # class values → class indices
    matrix = confusion_matrix(truth, predicted, len(names), IGNORE_INDEX)
    return summarize(matrix, names), matrix


def export_pixel_onnx(model, bands: int, path: Path) -> None:
    """skl2onnx export with plain tensors: `label [batch]` and `probabilities [batch, class]` (no ZipMap)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onnx_model = convert_sklearn(model, initial_types=[("input", FloatTensorType([None, bands]))],
                                 options={id(model): {"zipmap": False}}, target_opset=OPSETS)
    path.write_bytes(onnx_model.SerializeToString())


def compare_pixel_onnx(model, path: Path, pixels: np.ndarray) -> float:
    """Largest |probability| difference between onnxruntime and scikit-learn; labels must agree."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(["label", "probabilities"], {"input": pixels})
    agreement = float(np.mean(labels == model.predict(pixels)))
    if agreement < MIN_AGREEMENT:
        raise ModelRunError(f"the ONNX export agrees with scikit-learn on {agreement:.2%} of pixels; "
                          f"expected at least {MIN_AGREEMENT:.1%}")
    return float(np.max(np.abs(probabilities - model.predict_proba(pixels)), initial=0.0))


def _hyperparameters(model, arch: str, max_samples: int, seed: int) -> dict:
    plain = {key: value for key, value in model.get_params().items()
             if value is None or isinstance(value, (bool, int, float, str))}
    return {"arch": arch, **plain, "seed": seed, "max_training_pixels": max_samples, "sampling": "balanced per class"}


def _metadata(data: TrainingData, model, arch: str, run: RunInfo, metrics: dict, max_samples: int,
              seed: int) -> ModelMetadata:
    import sklearn

    bbox, start, end = training_extent(data)
    name = PIXEL_ARCHITECTURES[arch]
    return ModelMetadata(
        id=run.model_id, name=run.model_id, architecture=name, tasks=PIXEL_TASKS, bands=data.bands,
        classes=tuple(ModelClass(value=c.value, name=c.name, color_hint=c.color_hint) for c in data.classes),
        bbox=bbox, start_datetime=start, end_datetime=end, framework="scikit-learn",
        framework_version=sklearn.__version__, accelerator="amd64",
        hyperparameters=_hyperparameters(model, arch, max_samples, seed), input_name="input",
        description=(f"{name} trained by mlmkit on pixels of {training_catalog_name(data)}; one row of raw band "
                     "values per pixel in, the class value (label) and class probabilities out."),
        keywords=["mlmkit", "pixel-classification"], extra_properties=metrics, **documentation(data, run, arch))


def train_pixel_classifier(data: str, outdir: str | Path, *, task: str | None = None, arch: str = "random-forest",
                           trees: int = 100,
                           max_samples: int = 100_000, seed: int = 0, bands: Sequence[str] = (),
                           model_id: str | None = None, training_cwl: str | None = None,
                           inference_cwl: str | None = None, overwrite: bool = False, version: str = "1.0.0",
                           experimental: bool = False, citation: str | None = None, doi: str | None = None,
                           schema_dir: Path | None = None, training_data_href: str | None = None) -> PixelTrainSummary:
    """Train a pixel classifier on the training catalog `data` and write the model catalog to `outdir`
    (`version` ... `training_data_href` as for `train_model`)."""
    outdir = Path(outdir)
    if arch not in PIXEL_ARCHITECTURES:
        raise InvalidArgument(f"unknown pixel architecture {arch!r}; expected one of {sorted(PIXEL_ARCHITECTURES)}")
    if trees < 1 or max_samples < 1:
        raise InvalidArgument(f"trees={trees}, max samples={max_samples}; expected positive values")
    training = read_run_data(data, outdir, overwrite=overwrite, model_id=model_id, task=task, bands=bands,
                             published=training_data_href)  # scene chips lend their class to every pixel
    names = [c.name for c in training.classes]
    values = np.array([c.value for c in training.classes])
    pixels, indices = sample_pixels(training.splits["train"], len(names), max_samples, seed)
    model = _estimator(arch, trees, seed)
    started = time.perf_counter()
    model.fit(pixels, values[indices])
    seconds = time.perf_counter() - started
    train, _ = _score(model, values, pixels, indices, names)
    validate_pixels, validate_truth = _all_pixels(training.splits["validate"], seed)
    validation, matrix = _score(model, values, validate_pixels, validate_truth, names)
    test = _score(model, values, *_all_pixels(training.splits["test"], seed), names)[0] \
        if "test" in training.splits else None
    with tempfile.TemporaryDirectory(prefix="mlmkit-train-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_pixel_onnx(model, pixels.shape[1], onnx_path)
        max_diff = compare_pixel_onnx(model, onnx_path, validate_pixels[:CHECK_PIXELS])
        run = RunInfo(model_id or f"{arch}-pixels", max_diff, training_cwl, inference_cwl, version=version,
                      experimental=experimental, citation=citation, doi=doi)
        properties = {"mlmkit:onnx_max_abs_diff": max_diff,
                      **validation_metrics(validation, test, PIXEL_TASKS[0])}
        document = {"task": "pixel classification", "architecture": PIXEL_ARCHITECTURES[arch], "classes": names,
                    "train": train, "validate": validation, "validate_confusion_matrix": matrix.tolist(),
                    "test": test, "train_seconds": seconds, "onnx_max_abs_diff": max_diff,
                    "samples": {"train": int(len(pixels)), "validate": int(len(validate_pixels))}}
        catalog = write_training_catalog(outdir, Path(tmp), onnx_path,
                                         _metadata(training, model, arch, run, properties, max_samples, seed),
                                         training, document, matrix, run, overwrite=overwrite,
                                         schema_dir=schema_dir)
    return PixelTrainSummary(catalog, validation, test, max_diff, document["samples"])
