"""Turn the bands read for a window into the array one model input expects, exactly as its MLM entry says.

Order: derived bands (band expressions) → value_scaling (per band or one broadcast) →
pre_processing_function. Expressions are checked once, when the plan is built, not per tile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from mlmkit.errors import InvalidMetadata, ModelRefused
from mlmkit.mlm.spec import ModelInput, ValueScaling
from mlmkit.inference.expressions import PYTHON_FORMAT, Expression, check_format, letter_names, python_callable

Step = Callable[[np.ndarray], np.ndarray]


def _require(scaling: ValueScaling, *fields: str) -> list[float]:
    values = [getattr(scaling, name) for name in fields]
    if any(value is None for value in values):
        raise InvalidMetadata(f"value_scaling {scaling.type!r} needs {', '.join(fields)}; got {scaling}")
    return [float(value) for value in values]


# value_scaling type -> (required fields, in-place operation on a float32 array), as the MLM table defines them
_ARITHMETIC: dict[str, tuple[tuple[str, ...], Callable[..., np.ndarray]]] = {
    "min-max": (("minimum", "maximum"), lambda d, low, high: np.divide(np.subtract(d, low, out=d), high - low, out=d)),
    "z-score": (("mean", "stddev"), lambda d, mean, std: np.divide(np.subtract(d, mean, out=d), std, out=d)),
    "clip": (("minimum", "maximum"), lambda d, low, high: np.clip(d, low, high, out=d)),
    "clip-min": (("minimum",), lambda d, low: np.maximum(d, low, out=d)),
    "clip-max": (("maximum",), lambda d, high: np.minimum(d, high, out=d)),
    "offset": (("value",), lambda d, value: np.subtract(d, value, out=d)),
    "scale": (("value",), lambda d, value: np.divide(d, value, out=d)),
}


def scaling_step(scaling: ValueScaling | None, allow_python: bool = False) -> Step:
    """One value_scaling entry as a function of a float32 array (updated in place where it can be)."""
    if scaling is None or scaling.type is None:
        return lambda data: data
    kind = scaling.type
    if kind in _ARITHMETIC:
        fields, operation = _ARITHMETIC[kind]
        params = _require(scaling, *fields)
        return lambda data: operation(data, *params)
    if kind == "processing":
        check_format(scaling.format, scaling.expression, allow_python, "value_scaling processing")
        if (scaling.format or "").lower() == PYTHON_FORMAT:
            return python_callable(scaling.expression)
        expression = Expression(scaling.expression, scaling.format or "gdal-calc")
        return lambda data: expression({"A": data, "x": data, "data": data}).astype(np.float32, copy=False)
    raise InvalidMetadata(f"value_scaling type {kind!r} is not supported; expected min-max, z-score, clip, "
                          "clip-min, clip-max, offset, scale or processing")


@dataclass
class InputPlan:
    """How to build one model input from the named source bands of a window."""

    model_input: ModelInput
    band_names: list[str]                  # the input's bands, in order (real or derived; an asset's for band-less inputs)
    derived: dict[str, Expression]         # derived band name -> expression over source bands
    scaling: list[Step] | None
    scaling_after: bool                    # value_scaling matches the pre-processed channels, not the bands
    functions: list[Step]
    dtype: np.dtype

    def build(self, sources: Mapping[str, np.ndarray]) -> np.ndarray:
        """(channels, h, w) array of the input's dtype from source band arrays of shape (h, w)."""
        stack = np.stack([self._band(name, sources) for name in self.band_names])  # a copy: scaled in place
        if self.scaling is not None and not self.scaling_after:
            stack = _apply_scaling(stack, self.scaling)
        for function in self.functions:
            stack = np.asarray(function(stack), dtype=np.float32)
            stack = stack[None] if stack.ndim == 2 else stack
        if self.scaling is not None and self.scaling_after:
            stack = _apply_scaling(stack, self.scaling)
        if np.issubdtype(self.dtype, np.floating):
            if self.derived or self.functions:  # band math may divide by zero
                np.nan_to_num(stack, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            return stack.astype(self.dtype, copy=False)
        info = np.iinfo(self.dtype)
        return np.clip(np.nan_to_num(stack), info.min, info.max).astype(self.dtype)

    def scale_in_place(self, stack: np.ndarray) -> None:
        """value_scaling over a (channels, h, w) float32 array of the input's bands, written back into it."""
        if self.scaling is not None:
            scaled = _apply_scaling(stack, self.scaling)
            if scaled is not stack:
                stack[...] = scaled

    def _band(self, name: str, sources: Mapping[str, np.ndarray]) -> np.ndarray:
        if name in self.derived:
            return self.derived[name](sources).astype(np.float32, copy=False)
        return sources[name]


def _apply_scaling(stack: np.ndarray, steps: list[Step]) -> np.ndarray:
    if len(steps) == 1:
        return np.asarray(steps[0](stack), dtype=np.float32)
    if len(steps) != stack.shape[0]:
        raise InvalidMetadata(f"value_scaling has {len(steps)} entries for {stack.shape[0]} channels; "
                              "expected one per channel or a single one")
    for index, step in enumerate(steps):
        stack[index] = step(stack[index])
    return stack


def _processing_step(fmt: str, expression, names: list[str], allow_python: bool, where: str) -> Step:
    check_format(fmt, expression, allow_python, where)
    if fmt.lower() == PYTHON_FORMAT:
        return python_callable(expression)
    parsed = Expression(expression, fmt)
    letters = letter_names(names)

    def step(stack: np.ndarray) -> np.ndarray:
        values = {letter: stack[index] for index, letter in enumerate(letters)}
        values.update({name: stack[index] for index, name in enumerate(names)})
        return parsed(values)

    return step


def plan_input(model_input: ModelInput, channels: int | None, dtype: np.dtype, allow_python: bool) -> InputPlan:
    """Check an input's expressions and scaling once, before any pixel is read."""
    where = f"input {model_input.name!r}"
    derived = {}
    for band in model_input.bands:
        if band.is_derived:
            if (band.format or "").lower() == PYTHON_FORMAT:  # refused whatever --allow-python-expressions says
                raise ModelRefused(f"{where} band {band.name!r}: python band expressions are not supported; "
                                   "expected gdal-calc/rio-calc arithmetic")
            check_format(band.format, band.expression, allow_python, f"{where} band {band.name!r}")
            derived[band.name] = Expression(band.expression, band.format or "rio-calc")
    names = [band.name for band in model_input.bands]
    functions = [
        _processing_step(expr.format, expr.expression, names, allow_python, f"{where} pre_processing_function")
        for expr in model_input.pre_processing_function
    ]
    scaling = None
    if model_input.value_scaling:
        scaling = [scaling_step(entry, allow_python) for entry in model_input.value_scaling]
    after = bool(functions) and scaling is not None and len(scaling) not in (1, len(names)) and \
        channels is not None and len(scaling) == channels
    return InputPlan(model_input, names, derived, scaling, after, functions, np.dtype(dtype))


def source_names(plan: InputPlan) -> set[str]:
    """The real imagery bands an input plan reads (derived bands pull in the bands they use)."""
    needed = {name for name in plan.band_names if name not in plan.derived}
    for expression in plan.derived.values():
        needed |= set(expression.names)
    return needed
