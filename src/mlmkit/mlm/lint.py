"""What in an MLM Item is probably wrong although it is valid: findings that name the field and the likely fix.

A schema cannot tell that `value_scaling` `scale` 0.0001 on uint16 imagery is the raster extension's habit
(multiply) written where MLM divides: the model then gets values 10^8 times too large and answers with
confidence. Each rule is a pure function of the Item (JSON) and, where it needs one, of what the model file
declares.

This is the describe form's first rule only (inverted scaling); issue 23's lint replaces this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mlmkit.runtimes.info import ModelFileInfo

_INTEGER_TYPES = {"uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"}


@dataclass(frozen=True)
class Finding:
    """One lint finding: the JSON path of the field, a message naming the field and the fix, a severity."""

    path: str
    message: str
    severity: str = "warning"  # "warning" | "error"


def _imagery_types(item: dict) -> set[str]:
    """The data types the model's imagery stores its values in (raster:bands of the model assets)."""
    assets = item.get("assets") if isinstance(item.get("assets"), dict) else {}
    return {band.get("data_type") for asset in assets.values() if isinstance(asset, dict)
            and "mlm:model" in (asset.get("roles") or []) for band in asset.get("raster:bands") or []
            if isinstance(band, dict) and band.get("data_type")}


def _inverted_scaling(item: dict) -> Iterator[Finding]:
    """MLM `scale` divides; a value below 1 on integer imagery is the multiplier of the raster extension."""
    integer = sorted(_imagery_types(item) & _INTEGER_TYPES)
    if not integer:
        return
    inputs = (item.get("properties") or {}).get("mlm:input") or []
    for index, model_input in enumerate(inputs):
        for entry_index, scaling in enumerate((model_input or {}).get("value_scaling") or []):
            value = scaling.get("value") if isinstance(scaling, dict) else None
            if scaling.get("type") != "scale" or not isinstance(value, (int, float)) or not 0 < value < 1:
                continue
            yield Finding(
                f"properties.mlm:input[{index}].value_scaling[{entry_index}]",
                f"value_scaling scale divides (input = pixel / value): value {value:g} on {'/'.join(integer)} "
                f"imagery multiplies it by {1 / value:g}; expected value {1 / value:g} to divide it (the raster "
                "extension's scale multiplies, MLM's divides)")


def lint_item(item: dict, info: ModelFileInfo | None = None) -> list[Finding]:
    """Findings for metadata that is valid but probably wrong; `info` is what the model file declares."""
    return list(_inverted_scaling(item))
