"""Pair each MLM input with an ONNX graph input and the imagery bands (of one or several dates) that feed it.

Everything that can be wrong with a model/imagery pair (missing bands, channel counts, tile sizes,
tensor layouts, date counts) is found here, before the first window is read. Each input is read into
the canonical (N, T*C, H, W) window buffer and handed to the model in its own dimension order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pystac

from mlmkit.errors import InvalidArgument, InvalidMetadata, ModelRefused
from mlmkit.mlm.spec import DimRole, ModelInput, ModelSpec
from mlmkit.inference.bands import BandRef, BandResolver
from mlmkit.matching.rules import time_steps
from mlmkit.inference.geometry import InputGeometry
from mlmkit.inference.preprocess import InputPlan, plan_input, source_names
from mlmkit.inference.runtime import ModelRunner, TensorSpec
from mlmkit.mlm.shapes import BANDS, BATCH, HEIGHT, TIME, WIDTH, input_axes, is_pixelwise

_ROLES = {BATCH: DimRole.BATCH, TIME: DimRole.TIME, BANDS: DimRole.BANDS, HEIGHT: DimRole.HEIGHT,
          WIDTH: DimRole.WIDTH}
_RASTER_VIEW = (BATCH, TIME, BANDS, HEIGHT, WIDTH)
_ROW_VIEW = (BATCH, TIME, BANDS)
_RGB = ("red", "green", "blue")


def source_key(date: int, name: str) -> str:
    """The name under which the reader holds band `name` of the stack's `date`-th Item."""
    return f"{date}:{name}"


@dataclass
class BoundInput:
    """An MLM input wired to its ONNX input: how to build it from windows and how to lay it out."""

    plan: InputPlan
    tensor: TensorSpec
    axes: tuple[int, ...]           # model axis i takes canonical axis axes[i] of (N, T, C, H, W)
    channels: int                   # C, per date
    steps: int                      # T: dates stacked (1 without a time dim)
    fixed_hw: tuple[int | None, int | None]
    batch: int | None               # the model's static batch size (1 when it has no batch axis)
    dates: tuple[int, ...] = (0,)   # which Items of the stack feed it, in time order

    @property
    def name(self) -> str:
        return self.tensor.name

    @property
    def pixelwise(self) -> bool:
        return is_pixelwise(self.axes)

    @property
    def depth(self) -> int:
        """Channels of the canonical buffer: dates × channels."""
        return self.steps * self.channels

    @cached_property
    def sources(self) -> tuple[str, ...]:
        """The imagery bands the input reads (derived bands pull in the bands they use)."""
        return tuple(sorted(source_names(self.plan)))

    def build(self, sources: Mapping[str, np.ndarray]) -> np.ndarray:
        """(T*C, h, w) of the input's dtype for one window, date by date."""
        parts = [self.plan.build({name: sources[source_key(date, name)] for name in self.sources})
                 for date in self.dates]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def feed(self, batch: np.ndarray) -> np.ndarray:
        """Our (n, T*C, H, W) batch in the model's own dimension order."""
        n, _, height, width = batch.shape
        return _arrange(batch.reshape(n, self.steps, self.channels, height, width), _RASTER_VIEW, self.axes)

    def feed_rows(self, rows: np.ndarray) -> np.ndarray:
        """(P, T*C) pixel rows in the model's own dimension order."""
        return _arrange(rows.reshape(len(rows), self.steps, self.channels), _ROW_VIEW, self.axes)


def _arrange(view: np.ndarray, present: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
    """`view` (canonical axes `present`) reordered to `axes`; canonical axes the model lacks have size 1."""
    if axes == present:
        return view
    order = [present.index(axis) for axis in axes]
    dropped = [i for i, axis in enumerate(present) if axis not in axes]
    arranged = view.transpose(order + dropped)
    return np.ascontiguousarray(arranged.reshape(arranged.shape[:len(order)]))


def _pair(spec: ModelSpec, runner: ModelRunner) -> list[tuple[ModelInput, TensorSpec]]:
    by_name = {tensor.name: tensor for tensor in runner.inputs}
    if all(model_input.name in by_name for model_input in spec.inputs):
        return [(model_input, by_name[model_input.name]) for model_input in spec.inputs]
    if len(spec.inputs) == len(runner.inputs):
        return list(zip(spec.inputs, runner.inputs))
    raise InvalidMetadata(
        f"the MLM Item's mlm:input declares {len(spec.inputs)} input(s) ({', '.join(i.name for i in spec.inputs)}) "
        f"but the ONNX model has {len(runner.inputs)} ({', '.join(t.name for t in runner.inputs)}); expected matching "
        "names or counts"
    )


def _static(tensor: TensorSpec, model_input: ModelInput, axes: tuple[int, ...], ours: int) -> int | None:
    if ours in axes:
        size = tensor.shape[axes.index(ours)]
        if size is not None:
            return size
    return model_input.size(_ROLES[ours])


def _steps(model_input: ModelInput, static: int | None, axes: tuple[int, ...], requested: int | None) -> int:
    return time_steps(model_input.name, static, requested) if TIME in axes else 1


def bind_inputs(spec: ModelSpec, runner: ModelRunner, allow_python: bool,
                time_steps: int | None = None) -> list[BoundInput]:
    """Plans for every model input; no imagery needed yet."""
    bound = []
    for model_input, tensor in _pair(spec, runner):
        axes = input_axes(model_input.name, model_input.dim_order, len(tensor.shape))
        channels = _static(tensor, model_input, axes, BANDS) if BANDS in axes else 1
        steps = _steps(model_input, _static(tensor, model_input, axes, TIME), axes, time_steps)
        plan = plan_input(model_input, channels, tensor.dtype, allow_python)
        hw = (_static(tensor, model_input, axes, HEIGHT), _static(tensor, model_input, axes, WIDTH))
        batch = _static(tensor, model_input, axes, BATCH) if BATCH in axes else 1
        bound.append(BoundInput(plan, tensor, axes, channels or 0, steps, hw, batch))
    if time_steps is not None and all(entry.steps == 1 and TIME not in entry.axes for entry in bound):
        raise InvalidArgument(f"the time_steps argument {time_steps} was given but no model input has a time "
                              "dimension; expected it only for time-series models")
    return bound


def stack_depth(bound: list[BoundInput]) -> int:
    """How many dated Items one run stacks: the inputs' common time steps (1 without a time dim)."""
    steps = {entry.steps for entry in bound if TIME in entry.axes}
    if len(steps) > 1:
        raise ModelRefused(f"model inputs take different numbers of dates {sorted(steps)}; expected one")
    return steps.pop() if steps else 1


def bind_item(bound: list[BoundInput], stack: Sequence[pystac.Item],
              spec: ModelSpec) -> tuple[list[BandRef], list[BoundInput]]:
    """The imagery bands all inputs need from the stack's Items (each once), and the inputs as they feed them.

    Inputs with a time dim take every Item of the stack in order; others take its last (latest) Item.
    `bound` is shared by every stack and left as it is: a band-less input (`bands: []`) takes the bands of
    the asset named like it, which differ from Item to Item, so each stack gets its own copies.
    """
    resolvers = [BandResolver(item, spec.band_info) for item in stack]
    refs: dict[str, BandRef] = {}
    item_bound = []
    for entry in bound:
        dates = tuple(range(len(stack))) if TIME in entry.axes else (len(stack) - 1,)
        for date in dates:
            if not entry.plan.model_input.bands:
                asset_refs = resolvers[date].resolve_asset(entry.plan.model_input.name, entry.channels or None)
                refs.update({source_key(date, ref.name): replace(ref, name=source_key(date, ref.name))
                             for ref in asset_refs})
                entry = replace(entry, plan=replace(entry.plan, band_names=[ref.name for ref in asset_refs]))
                continue
            for name in entry.sources:
                key = source_key(date, name)
                if key not in refs:
                    refs[key] = replace(resolvers[date].resolve(name, f"input {entry.plan.model_input.name!r}"),
                                        name=key)
        item_bound.append(replace(entry, channels=_built_channels(entry), dates=dates))
    return list(refs.values()), item_bound


def _built_channels(entry: BoundInput) -> int:
    """Build the input once from zeros: the channel count must be what the model takes."""
    zeros = {name: np.zeros((2, 2), np.float32) for name in entry.sources}
    built = entry.plan.build(zeros)
    if entry.channels and built.shape[0] != entry.channels:
        raise InvalidMetadata(
            f"input {entry.plan.model_input.name!r} provides {built.shape[0]} channel(s) "
            f"({', '.join(entry.plan.band_names)}) but the model takes {entry.channels}; "
            "expected the input's bands in mlm:input to match the model's input shape"
        )
    return built.shape[0]


def preview_sources(bound: list[BoundInput], band_info: Mapping[str, dict]) -> list[str]:
    """Up to three bands of the first input, latest date, for quicklooks: red, green, blue when they are there."""
    entry = bound[0]
    names = [name for name in entry.plan.band_names if name not in entry.plan.derived] or list(entry.sources)
    common = {name: str(band_info.get(name, {}).get("common_name", "")).lower() for name in names}
    rgb = [next((name for name in names if common[name] == colour), None) for colour in _RGB]
    return [source_key(entry.dates[-1], name) for name in (rgb if None not in rgb else names[:3])]


def input_geometry(bound: list[BoundInput]) -> list[InputGeometry]:
    """What each input says about its height and width, for choosing tile sizes."""
    return [InputGeometry(entry.plan.model_input.name, entry.fixed_hw,
                          1 if entry.pixelwise else entry.plan.model_input.size_multiple)  # rows: any window
            for entry in bound]



def fixed_batch(bound: list[BoundInput]) -> int | None:
    """The batch size the model fixes, if any; all inputs must agree on it."""
    fixed = {entry.batch for entry in bound if entry.batch is not None}
    if len(fixed) > 1:
        raise ModelRefused(f"model inputs have different fixed batch sizes {sorted(fixed)}; expected one")
    return fixed.pop() if fixed else None
