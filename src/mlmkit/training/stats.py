"""Per-band normalisation statistics from the training split only (validation stays unseen)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlmkit.errors import InvalidInput

_CHUNK = 256


@dataclass(frozen=True)
class BandStats:
    """Mean and standard deviation per band: the z-score the MLM Item's value_scaling declares."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.mean, dtype="float32"), np.asarray(self.std, dtype="float32")


def band_stats(images: np.ndarray) -> BandStats:
    """Mean/std per band of (N, C, H, W) images, accumulated in float64 chunk by chunk."""
    total = np.zeros(images.shape[1])
    total_sq = np.zeros(images.shape[1])
    for start in range(0, len(images), _CHUNK):
        chunk = images[start:start + _CHUNK].astype("float64")
        total += chunk.sum(axis=(0, 2, 3))
        total_sq += np.square(chunk).sum(axis=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    flat = [i for i, s in enumerate(std) if s <= 1e-12]
    if flat:
        raise InvalidInput(f"bands {flat} are constant over the training split; expected varying imagery")
    return BandStats(tuple(float(m) for m in mean), tuple(float(s) for s in std))
