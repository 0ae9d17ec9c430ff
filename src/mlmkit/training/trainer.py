"""The training loop: seeded, per-epoch validation, best epoch kept, a progress bar per epoch."""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mlmkit.training.catalog_reader import IGNORE_INDEX, TrainingData
from mlmkit.training.dataset import ChipBatches
from mlmkit.training.metrics import confusion, summarize
from mlmkit.training.models import build_model
from mlmkit.training.layout import SEGMENTATION
from mlmkit.training.stats import BandStats


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters and run settings (also written to mlm:hyperparameters)."""

    arch: str
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    width: int | None = None
    device: str = "cpu"
    progress: bool = True


@dataclass
class TrainResult:
    """The best-epoch model (weights loaded, eval mode), its metrics and the per-epoch history."""

    model: nn.Module
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    validation: dict = field(default_factory=dict)
    validation_confusion: np.ndarray | None = None
    test: dict | None = None
    train_seconds: float = 0.0  # in training steps, validation excluded
    train_samples_per_s: float = 0.0


def pick_device(requested: str | None) -> str:
    """CUDA when present unless told otherwise."""
    if requested and requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def seed_everything(seed: int) -> None:
    """Same seed, same data order, same weights, same model (on the same device and thread count)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@torch.no_grad()
def evaluate(model: nn.Module, batches: ChipBatches, classes: int) -> np.ndarray:
    """The confusion matrix of the model over all batches."""
    model.eval()
    matrix = np.zeros((classes, classes), dtype="int64")
    for images, labels in batches:
        matrix += confusion(model(images), labels, classes, IGNORE_INDEX)
    return matrix


def train_epoch(model: nn.Module, batches: ChipBatches, optimizer, loss_fn, classes: int, bar_label: str,
                progress: bool) -> tuple[float, np.ndarray]:
    """One pass over the train batches: mean loss and the confusion matrix of the predictions made on the way."""
    model.train()
    total, count = 0.0, 0
    matrix = np.zeros((classes, classes), dtype="int64")
    # a bar on a terminal only (tqdm: disable=None); the epoch summary lines are written either way
    with tqdm(batches, desc=bar_label, unit="batch", leave=False, disable=None if progress else True) as bar:
        for images, labels in bar:
            optimizer.zero_grad(set_to_none=True)
            logits = model(images)
            loss = loss_fn(logits, labels)
            loss.backward()
            optimizer.step()
            matrix += confusion(logits, labels, classes, IGNORE_INDEX)
            total += loss.item() * len(images)
            count += len(images)
            bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1), matrix


def _score(metrics: dict, task: str) -> float:
    return metrics["miou"] if task == SEGMENTATION else metrics["overall_accuracy"]


def fit(data: TrainingData, stats: BandStats, config: TrainConfig) -> TrainResult:
    """Train on the train split, keep the epoch that scores best on validate (mIoU or accuracy)."""
    seed_everything(config.seed)
    names = [c.name for c in data.classes]
    model = build_model(config.arch, data.task, data.chip_shape[0], len(names), config.width).to(config.device)
    train = ChipBatches(data.splits["train"].images, data.splits["train"].labels, stats, config.batch_size,
                        shuffle=True, seed=config.seed, device=config.device)
    validate = ChipBatches(data.splits["validate"].images, data.splits["validate"].labels, stats,
                           config.batch_size, device=config.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    result = TrainResult(model, best_epoch=0)
    best_state, best_score = None, -1.0
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        loss, train_matrix = train_epoch(model, train, optimizer, loss_fn, len(names),
                                         f"epoch {epoch}/{config.epochs}", config.progress)
        result.train_seconds += time.perf_counter() - started
        schedule.step()
        matrix = evaluate(model, validate, len(names))
        metrics = summarize(matrix, names)
        train_metrics = summarize(train_matrix, names)
        result.history.append({"epoch": epoch, "train_loss": loss, "train": train_metrics, "validate": metrics})
        if config.progress:
            tqdm.write(f"epoch {epoch}/{config.epochs}: loss {loss:.4f}, train accuracy "
                       f"{train_metrics['overall_accuracy']:.3f}, validate accuracy {metrics['overall_accuracy']:.3f}, "
                       f"mean F1 {metrics['mean_f1']:.3f}, mIoU {metrics['miou']:.3f}")
        if _score(metrics, data.task) > best_score:
            best_score, best_state = _score(metrics, data.task), copy.deepcopy(model.state_dict())
            result.best_epoch, result.validation, result.validation_confusion = epoch, metrics, matrix
    result.train_samples_per_s = len(train.images) * config.epochs / max(result.train_seconds, 1e-9)
    model.load_state_dict(best_state)
    model.eval()
    if "test" in data.splits:
        test = ChipBatches(data.splits["test"].images, data.splits["test"].labels, stats, config.batch_size,
                           device=config.device)
        result.test = summarize(evaluate(model, test, len(names)), names)
    return result
