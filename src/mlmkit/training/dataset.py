"""Chips in memory -> normalised torch batches.

Imagery stays in its stored dtype (uint16 for S2) and is normalised batch by batch, so memory is that
of the raw chips; no DataLoader workers, whose start-up and copies cost more than they save here.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from mlmkit.training.stats import BandStats


class ChipBatches:
    """Batches of (normalised float32 images, int64 labels), shuffled by a seeded generator."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, stats: BandStats, batch_size: int,
                 shuffle: bool = False, seed: int = 0, device: str = "cpu"):
        self.images = np.ascontiguousarray(images)
        self.labels = np.ascontiguousarray(labels, dtype="int64")
        mean, std = stats.as_arrays()
        self.mean = torch.from_numpy(mean).view(1, -1, 1, 1).to(device)
        self.std = torch.from_numpy(std).view(1, -1, 1, 1).to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.images) + self.batch_size - 1) // self.batch_size

    def normalise(self, images: np.ndarray) -> torch.Tensor:
        """float32 z-scores of a raw batch (numpy gathers uint16 several times faster than torch)."""
        batch = torch.from_numpy(images.astype(np.float32, copy=False)).to(self.device)
        return batch.sub_(self.mean).div_(self.std)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.images)
        order = (torch.randperm(count, generator=self.generator) if self.shuffle else torch.arange(count)).numpy()
        for start in range(0, count, self.batch_size):
            index = order[start:start + self.batch_size]
            images = self.images.take(index, axis=0)
            yield self.normalise(images), torch.from_numpy(self.labels.take(index, axis=0)).to(self.device)
