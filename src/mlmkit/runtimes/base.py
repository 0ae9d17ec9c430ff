"""The one interface every model runtime offers `predict`, whatever the model file's format.

A runtime reports its inputs and outputs (dynamic dimensions None) and maps named input arrays to
output arrays in the order of `outputs`; the tiling, pre- and post-processing around it never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """A model input/output as the runtime sees it; dynamic dimensions are None."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype


class ModelRunner(Protocol):
    """A loaded model: what it takes and gives, and one call per batch."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    description: str  # what runs the model and where (onnxruntime providers, torch device), for -v

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs, in the order of `outputs`, for arrays keyed by input name."""

    def close(self) -> None:
        """Release the model (sessions, device memory)."""
