"""A smoke run: the model an MLM Item describes, run by the real predict pipeline on a few tiles of real
imagery, and what came out: class histogram, score range, boxes per tile, NaNs.

Metadata that passes every schema and lint rule can still be wrong (a scaling the other way round, bands in
another order); what the model then gives looks degenerate, and that is checked here: one class everywhere,
every score >= 0.5 on every tile, NaN, or no box on any tile although the model scored boxes.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlmkit.errors import LineageWarning, MetadataWarning
from mlmkit.inference.outputs import Plan
from mlmkit.inference.outputs.boxes import DetectionPlan, Detections
from mlmkit.inference.outputs.raster import OutputPlan
from mlmkit.inference.pipeline import PredictOptions, predict

SMOKE_TILES = 4
DEGENERATE_SCORE = 0.5


@dataclass
class OutputSummary:
    """What one output (or the boxes of a detector) gave over the tiles run."""

    key: str
    kind: str                                               # classes, binary, labels, values or detections
    tiles: int = 0
    histogram: dict[int, int] = field(default_factory=dict)  # class value -> pixels (tiles, for scene classes)
    names: dict[int, str] = field(default_factory=dict)
    low: float = math.inf                                    # score (or value) range over the tiles
    high: float = -math.inf
    lows: list[float] = field(default_factory=list)          # each tile's lowest score
    nan: int = 0
    boxes: list[int] = field(default_factory=list)           # boxes per tile (score >= threshold, before NMS)
    threshold: float | None = None

    def add_range(self, low: float, high: float) -> None:
        self.low, self.high = min(self.low, low), max(self.high, high)
        self.lows.append(low)

    def line(self) -> str:
        """One line: what came out."""
        parts = [f"{self.key} ({self.kind}): {self.tiles} tile{'s' if self.tiles != 1 else ''}"]
        if self.kind == "detections":
            parts.append(f"boxes per tile {self.boxes}")
        if self.histogram:
            classes = ", ".join(f"{value} {self.names.get(value, '')}".rstrip() + f": {count}"
                                for value, count in sorted(self.histogram.items()))
            parts.append(f"class histogram {{{classes}}} {'tiles' if self.kind.startswith('scene') else 'px'}")
        if self.low <= self.high:
            parts.append(f"{'values' if self.kind == 'values' else 'scores'} {self.low:.4g} to {self.high:.4g}")
        parts.append(f"NaN {self.nan}")
        return "; ".join(parts)

    def warnings(self) -> list[str]:
        """Why the output looks degenerate, one line each."""
        found = []
        if self.nan:
            found.append(f"{self.key}: the model gave {self.nan} NaN values; expected numbers (check value_scaling "
                         "and the input's data type)")
        if len(self.histogram) == 1 and self.tiles > 1:
            (value,) = self.histogram
            name = f" ({self.names[value]})" if value in self.names else ""
            found.append(f"{self.key}: one class, {value}{name}, everywhere on {self.tiles} tiles; expected several "
                         "on varied imagery (check value_scaling, the band order and input_shape)")
        if self.kind in ("binary", "detections") and self.lows and self.tiles > 0 \
                and all(low >= DEGENERATE_SCORE for low in self.lows):
            found.append(f"{self.key}: every score is >= {DEGENERATE_SCORE} on every tile (lowest {self.low:.4g}); "
                         "expected low scores where there is nothing (check value_scaling: MLM's scale divides)")
        if self.kind == "detections" and self.tiles and not any(self.boxes) and self.high > 0:
            found.append(f"{self.key}: no box reaches the score threshold {self.threshold:g} on any tile although "
                         f"the model scored boxes up to {self.high:.4g}; expected boxes where objects are (check "
                         "value_scaling and the score threshold)")
        return found


@dataclass
class SmokeReport:
    """A smoke run's outcome: what each output gave, and the warnings."""

    model: str
    imagery: str
    outputs: list[OutputSummary]

    @property
    def warnings(self) -> list[str]:
        return [warning for output in self.outputs for warning in output.warnings()]

    def lines(self) -> list[str]:
        return [output.line() for output in self.outputs]


class _Collector:
    """Takes each tile's result from the pipeline (PredictOptions.observe) into per-output summaries."""

    def __init__(self) -> None:
        self.summaries: dict[int, OutputSummary] = {}

    def __call__(self, plan: Plan, result: object, valid: np.ndarray) -> None:
        summary = self.summaries.get(id(plan))
        if summary is None:
            summary = self.summaries[id(plan)] = _summary(plan)
        summary.tiles += 1
        if isinstance(result, Detections):
            _add_detections(summary, result)
        elif isinstance(plan, OutputPlan):
            _add_raster(summary, plan, np.asarray(result, dtype=np.float32), valid)


def _summary(plan: Plan) -> OutputSummary:
    if isinstance(plan, DetectionPlan):
        return OutputSummary(plan.key, "detections", names={int(c.value): c.name for c in plan.classes},
                             threshold=plan.score_threshold)
    kind = plan.kind if plan.spatial else f"scene {plan.kind}"
    return OutputSummary(plan.key, kind, names={int(c.value): c.name for c in plan.output.classes})


def _add_detections(summary: OutputSummary, result: Detections) -> None:
    summary.boxes.append(len(result.scores))
    low, high, nan = result.candidates
    summary.nan += nan
    if not math.isnan(low):
        summary.add_range(low, high)


def _add_raster(summary: OutputSummary, plan: OutputPlan, scores: np.ndarray, valid: np.ndarray) -> None:
    """A per-pixel tile (channels, h, w), or a scene class (channels,) for the whole tile."""
    if scores.ndim == 1:
        scores, valid = scores[:, None, None], np.ones((1, 1), dtype=bool)
    covered = valid.astype(bool)
    values = scores[:, covered]
    summary.nan += int(np.isnan(values).sum())
    finite = values[np.isfinite(values)]
    if finite.size:
        summary.add_range(float(finite.min()), float(finite.max()))
    if plan.is_classes:
        classes = plan.finalize(scores.copy(), covered)[0][covered]
        found, counts = np.unique(classes, return_counts=True)
        for value, count in zip(found.tolist(), counts.tolist()):
            summary.histogram[int(value)] = summary.histogram.get(int(value), 0) + int(count)


def smoke_run(model: str, imagery: str, tiles: int = SMOKE_TILES, options: PredictOptions | None = None,
              output: Path | None = None) -> SmokeReport:
    """Run `model` (an MLM Item) through `predict` on `tiles` tiles of each Item of `imagery`, spread over the
    scene; the files written go to `output` (predict's catalog, for a picture of the result), else to a temporary
    directory and are dropped."""
    options = options or PredictOptions()
    collector = _Collector()
    options.sample_tiles, options.observe = max(1, tiles), collector
    with tempfile.TemporaryDirectory(prefix="mlmkit-smoke-") as work, warnings.catch_warnings():
        # the results are dropped (no lineage to write), and the Item's own lint is validate's to report
        warnings.simplefilter("ignore", LineageWarning)
        warnings.simplefilter("ignore", MetadataWarning)
        predict(model, imagery, output or Path(work) / "out", options)
    return SmokeReport(str(model), str(imagery), list(collector.summaries.values()))
