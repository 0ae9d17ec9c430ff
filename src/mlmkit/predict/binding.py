"""Pair each MLM input with an ONNX graph input and the imagery bands that feed it.

Everything that can be wrong with a model/imagery pair (missing bands, channel counts, tile sizes,
tensor layouts) is found here, before the first window is read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pystac

from mlmkit.errors import InvalidInput
from mlmkit.mlm import DimRole, ModelInput, ModelSpec
from mlmkit.predict.bands import BandRef, BandResolver
from mlmkit.predict.geometry import InputGeometry
from mlmkit.predict.preprocess import InputPlan, plan_input, source_names
from mlmkit.predict.runtime import ModelRunner, TensorSpec

_NCHW = {DimRole.BATCH: 0, DimRole.BANDS: 1, DimRole.HEIGHT: 2, DimRole.WIDTH: 3}


@dataclass
class BoundInput:
    """An MLM input wired to its ONNX input: how to build it and how to lay it out."""

    plan: InputPlan
    tensor: TensorSpec
    axes: tuple[int, ...]           # model axis i takes our (N, C, H, W) axis axes[i]; 3 axes = no channel axis
    channels: int
    fixed_hw: tuple[int | None, int | None]
    batch: int | None

    @property
    def name(self) -> str:
        return self.tensor.name

    def feed(self, batch: np.ndarray) -> np.ndarray:
        """Our (N, C, H, W) batch in the model's own dimension order."""
        if len(self.axes) == 3:
            return np.ascontiguousarray(batch[:, 0].transpose([a if a == 0 else a - 1 for a in self.axes]))
        return batch if self.axes == (0, 1, 2, 3) else np.ascontiguousarray(batch.transpose(self.axes))


def _pair(spec: ModelSpec, runner: ModelRunner) -> list[tuple[ModelInput, TensorSpec]]:
    by_name = {tensor.name: tensor for tensor in runner.inputs}
    if all(model_input.name in by_name for model_input in spec.inputs):
        return [(model_input, by_name[model_input.name]) for model_input in spec.inputs]
    if len(spec.inputs) == len(runner.inputs):
        return list(zip(spec.inputs, runner.inputs))
    raise InvalidInput(
        f"the MLM Item declares {len(spec.inputs)} input(s) ({', '.join(i.name for i in spec.inputs)}) but the ONNX "
        f"model has {len(runner.inputs)} ({', '.join(t.name for t in runner.inputs)}); expected matching names or counts"
    )


def _axes(model_input: ModelInput, tensor: TensorSpec) -> tuple[int, ...]:
    rank = len(tensor.shape)
    if len(model_input.dim_order) == rank:
        roles = list(model_input.roles)
        unknown = [i for i, role in enumerate(roles) if role not in _NCHW]
        if len(unknown) == 1 and DimRole.BANDS not in roles:
            roles[unknown[0]] = DimRole.BANDS
        if all(role in _NCHW for role in roles) and len(set(roles)) == rank:
            return tuple(_NCHW[role] for role in roles)
    if rank == 4:
        return 0, 1, 2, 3
    if rank == 3:
        return 0, 2, 3
    raise InvalidInput(f"input {model_input.name!r}: ONNX input {tensor.name!r} has rank {rank} and dim_order "
                       f"{list(model_input.dim_order)}; expected (batch, bands, height, width) in some order")


def _static(tensor: TensorSpec, model_input: ModelInput, axes: tuple[int, ...], ours: int) -> int | None:
    if ours in axes:
        size = tensor.shape[axes.index(ours)]
        if size is not None:
            return size
    role = {0: DimRole.BATCH, 1: DimRole.BANDS, 2: DimRole.HEIGHT, 3: DimRole.WIDTH}[ours]
    return model_input.size(role)


def bind_inputs(spec: ModelSpec, runner: ModelRunner, allow_python: bool) -> list[BoundInput]:
    """Plans for every model input; no imagery needed yet."""
    bound = []
    for model_input, tensor in _pair(spec, runner):
        axes = _axes(model_input, tensor)
        channels = _static(tensor, model_input, axes, 1) if len(axes) == 4 else 1
        plan = plan_input(model_input, channels, tensor.dtype, allow_python)
        hw = (_static(tensor, model_input, axes, 2), _static(tensor, model_input, axes, 3))
        bound.append(BoundInput(plan, tensor, axes, channels or 0, hw, _static(tensor, model_input, axes, 0)))
    return bound


def bind_item(bound: list[BoundInput], item: pystac.Item, spec: ModelSpec) -> tuple[list[BandRef], list[BoundInput]]:
    """The imagery bands all inputs need (each once), and the inputs as this Item feeds them.

    `bound` is shared by every Item and left as it is: a band-less input (`bands: []`) takes the bands of the
    asset named like it, which differ from Item to Item, so each Item gets its own copies of the inputs.
    """
    resolver = BandResolver(item, spec.band_info)
    refs: dict[str, BandRef] = {}
    item_bound = []
    for entry in bound:
        if not entry.plan.model_input.bands:
            asset_refs = resolver.resolve_asset(entry.plan.model_input.name, entry.channels or None)
            refs.update({ref.name: ref for ref in asset_refs})
            entry = replace(entry, plan=replace(entry.plan, band_names=[ref.name for ref in asset_refs]))
        else:
            for name in sorted(source_names(entry.plan)):
                if name not in refs:
                    refs[name] = resolver.resolve(name, f"input {entry.plan.model_input.name!r}")
        item_bound.append(replace(entry, channels=_built_channels(entry)))
    return list(refs.values()), item_bound


def _built_channels(entry: BoundInput) -> int:
    """Build the input once from zeros: the channel count must be what the model takes."""
    zeros = {name: np.zeros((2, 2), np.float32) for name in entry.plan.band_names}
    for expression in entry.plan.derived.values():
        zeros.update({name: np.zeros((2, 2), np.float32) for name in expression.names})
    built = entry.plan.build(zeros)
    if entry.channels and built.shape[0] != entry.channels:
        raise InvalidInput(
            f"input {entry.plan.model_input.name!r} provides {built.shape[0]} channel(s) "
            f"({', '.join(entry.plan.band_names)}) but the model takes {entry.channels}; "
            "expected the MLM bands to match the model's input shape"
        )
    return built.shape[0]


def input_geometry(bound: list[BoundInput]) -> list[InputGeometry]:
    """What each input says about its height and width, for choosing tile sizes."""
    return [InputGeometry(entry.plan.model_input.name, entry.fixed_hw, entry.plan.model_input.size_multiple)
            for entry in bound]


def fixed_batch(bound: list[BoundInput]) -> int | None:
    """The batch size the model fixes, if any; all inputs must agree on it."""
    fixed = {entry.batch for entry in bound if entry.batch is not None}
    if len(fixed) > 1:
        raise InvalidInput(f"model inputs have different fixed batch sizes {sorted(fixed)}; expected one")
    return fixed.pop() if fixed else None


def batch_size(bound: list[BoundInput], requested: int) -> int:
    """The model's fixed batch size, else --batch-size (at least 1)."""
    fixed = fixed_batch(bound)
    return fixed if fixed is not None else max(1, requested)
