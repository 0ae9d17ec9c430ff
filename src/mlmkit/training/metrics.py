"""Confusion-matrix metrics: overall accuracy, per-class F1 and IoU, mean IoU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # scikit-learn models are scored without torch
    import torch


def confusion(logits: torch.Tensor, target: torch.Tensor, classes: int, ignore_index: int) -> np.ndarray:
    """A (true, predicted) count matrix of a batch, ignoring `ignore_index` targets.

    torch.max(dim=1) and numpy's bincount: torch.argmax over the class axis of (N, K, H, W) and torch's
    bincount are ~20x slower on CPU, enough to cost a small U-Net a tenth of its training speed.
    """
    predicted = logits.detach().max(dim=1).indices.cpu().numpy()
    return confusion_matrix(target.cpu().numpy(), predicted, classes, ignore_index)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int, ignore_index: int) -> np.ndarray:
    """The (true, predicted) count matrix of class-index arrays, ignoring `ignore_index` truths."""
    valid = truth != ignore_index
    codes = truth[valid].astype(np.int64) * classes + predicted[valid]
    return np.bincount(codes, minlength=classes * classes).reshape(classes, classes)


def summarize(matrix: np.ndarray, names: Sequence[str]) -> dict:
    """Metrics of a confusion matrix (rows: truth, columns: prediction)."""
    matrix = np.asarray(matrix, dtype="float64")
    tp = np.diag(matrix)
    truth, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(truth + predicted > 0, 2 * tp / (truth + predicted), 0.0)
        iou = np.where(truth + predicted - tp > 0, tp / (truth + predicted - tp), 0.0)
    present = truth > 0
    return {
        "overall_accuracy": float(tp.sum() / max(matrix.sum(), 1)),
        "f1": {name: float(v) for name, v in zip(names, f1)},
        "mean_f1": float(f1[present].mean()) if present.any() else 0.0,
        "iou": {name: float(v) for name, v in zip(names, iou)},
        "miou": float(iou[present].mean()) if present.any() else 0.0,
        "samples": int(matrix.sum()),
    }
