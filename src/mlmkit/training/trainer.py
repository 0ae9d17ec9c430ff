"""The training loop: seeded, per-epoch validation, best epoch kept; a bar over the run's batches (on a terminal)
and one line per epoch with its metrics, its time and the ETA of the run."""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from mlmkit.progress import QUIET, Progress, Task, duration
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
    progress: Progress = field(default_factory=lambda: Progress(QUIET), compare=False)


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


def train_epoch(model: nn.Module, batches: ChipBatches, optimizer, loss_fn, classes: int,
                task: Task) -> tuple[float, np.ndarray]:
    """One pass over the train batches: mean loss and the confusion matrix of the predictions made on the way."""
    model.train()
    total, count = 0.0, 0
    matrix = np.zeros((classes, classes), dtype="int64")
    for images, labels in batches:
        optimizer.zero_grad(set_to_none=True)
        logits = model(images)
        loss = loss_fn(logits, labels)
        loss.backward()
        optimizer.step()
        matrix += confusion(logits, labels, classes, IGNORE_INDEX)
        total += loss.item() * len(images)
        count += len(images)
        task.advance()
    return total / max(count, 1), matrix


def epoch_line(epoch: int, epochs: int, seconds: float, elapsed: float, metrics: dict) -> str:
    """`epoch 3/10 in 12.4 s, ETA 1:27: loss ...`: the epoch's time (training and validation) and the time the
    remaining epochs will take at the mean pace so far."""
    eta = f", ETA {duration(elapsed / epoch * (epochs - epoch))}" if epoch < epochs else ""
    return (f"epoch {epoch}/{epochs} in {seconds:.1f} s{eta}: loss {metrics['loss']:.4f}, train accuracy "
            f"{metrics['train']['overall_accuracy']:.3f}, validate accuracy {metrics['validate']['overall_accuracy']:.3f}, "
            f"mean F1 {metrics['validate']['mean_f1']:.3f}, mIoU {metrics['validate']['miou']:.3f}")


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
    run_started = time.perf_counter()
    with config.progress.task(f"train {config.arch}", config.epochs * len(train), "batches", summary=False) as task:
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            loss, train_matrix = train_epoch(model, train, optimizer, loss_fn, len(names), task)
            result.train_seconds += time.perf_counter() - started
            schedule.step()
            matrix = evaluate(model, validate, len(names))
            metrics = summarize(matrix, names)
            result.history.append({"epoch": epoch, "train_loss": loss, "train": summarize(train_matrix, names),
                                   "validate": metrics})
            now = time.perf_counter()
            config.progress.info(epoch_line(epoch, config.epochs, now - started, now - run_started,
                                            {**result.history[-1], "loss": loss}))
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
