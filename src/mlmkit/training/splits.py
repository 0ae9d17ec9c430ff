"""Spatial block splits: whole blocks of neighbouring chips go to one split, so that the validation
and test chips are not the train chips' neighbours (spatial autocorrelation would flatter the metrics)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from mlmkit.errors import InvalidArgument, InvalidInput
from mlmkit.training.layout import SPLITS

MAX_TRIES = 100


def parse_fractions(spec: str) -> tuple[float, float, float]:
    """`0.7,0.15,0.15` -> train/validate/test fractions summing to 1."""
    try:
        values = tuple(float(v) for v in spec.split(","))
    except ValueError as exc:
        raise InvalidArgument(f"split {spec!r} is not three numbers; expected e.g. 0.7,0.15,0.15") from exc
    if len(values) != 3 or min(values) < 0 or values[0] <= 0 or values[1] <= 0 or abs(sum(values) - 1) > 1e-6:
        raise InvalidArgument(f"split {spec!r} is not train,validate,test fractions > 0 summing to 1; "
                           "expected e.g. 0.7,0.15,0.15")
    return values  # type: ignore[return-value]


def _draw(blocks: list[Hashable], sizes: Mapping[Hashable, int], fractions: Sequence[float],
          rng: np.random.Generator) -> dict[Hashable, str]:
    order = [blocks[i] for i in rng.permutation(len(blocks))]
    total = sum(sizes.values())
    bounds = np.cumsum(fractions) * total
    assigned, seen, split = {}, 0, 0
    for block in order:
        while split < len(SPLITS) - 1 and seen >= bounds[split] - 1e-9:
            split += 1
        assigned[block] = SPLITS[split]
        seen += sizes[block]
    return assigned


def _missing(assigned: Mapping[Hashable, str], block_classes: Mapping[Hashable, set],
             required: set) -> list[tuple[str, set]]:
    present = {split: set() for split in SPLITS}
    for block, split in assigned.items():
        present[split] |= block_classes[block]
    return [(split, required - present[split]) for split in ("train", "validate") if required - present[split]]


def assign_splits(chip_blocks: Sequence[Hashable], chip_classes: Sequence[set], fractions: Sequence[float],
                  seed: int) -> list[str]:
    """A split per chip; blocks are drawn at random (seeded) until train and validate both hold every class."""
    blocks = sorted(set(chip_blocks), key=repr)
    if len(blocks) < 2:
        raise InvalidInput(f"only {len(blocks)} spatial block(s); "
                           "expected at least 2 (a smaller block size or more chips)")
    sizes: dict[Hashable, int] = {b: 0 for b in blocks}
    block_classes: dict[Hashable, set] = {b: set() for b in blocks}
    for block, classes in zip(chip_blocks, chip_classes):
        sizes[block] += 1
        block_classes[block] |= classes
    required = set().union(*chip_classes)
    rng = np.random.default_rng(seed)
    for _ in range(MAX_TRIES):
        assigned = _draw(blocks, sizes, fractions, rng)
        if not _missing(assigned, block_classes, required):
            return [assigned[b] for b in chip_blocks]
    split, classes = _missing(assigned, block_classes, required)[0]
    raise InvalidInput(f"no block split of {len(blocks)} blocks puts classes {sorted(classes)} in {split!r}; "
                       "expected rarer classes in more blocks (a smaller block size, other split fractions)")
