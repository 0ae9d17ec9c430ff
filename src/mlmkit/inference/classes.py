"""Class colours and `classification:classes` of a model output, shared by raster and vector results."""

from __future__ import annotations

from collections.abc import Sequence

from mlmkit.mlm.spec import ModelClass
from mlmkit.stac.classes import class_objects

_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def color_of(model_class: ModelClass, position: int) -> tuple[int, int, int]:
    """A class's colour_hint (hex string or RGB list), else a fixed palette colour."""
    hint = model_class.color_hint
    if isinstance(hint, str) and len(hint.lstrip("#")) >= 6:
        text = hint.lstrip("#")
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    if isinstance(hint, (list, tuple)) and len(hint) >= 3:
        return int(hint[0]), int(hint[1]), int(hint[2])
    return _PALETTE[position % len(_PALETTE)]


def class_table(declared: Sequence[ModelClass], values: Sequence) -> list[tuple[ModelClass, tuple[int, int, int]]]:
    """The declared class of each value (a placeholder `class-N` for undeclared ones) with its colour."""
    by_value = {c.value: c for c in declared}
    found = [by_value.get(value, ModelClass(value=int(value), name=f"class-{value}")) for value in values]
    return [(model_class, color_of(model_class, position)) for position, model_class in enumerate(found)]


def class_entries(table: list[tuple[ModelClass, tuple[int, int, int]]]) -> list[dict]:
    """`classification:classes` entries (value, machine name, title, description, color_hint) of a class table."""
    return class_objects(({"value": int(model_class.value), "name": model_class.name, "title": model_class.title,
                           "description": model_class.description, "color_hint": "%02X%02X%02X" % rgb}
                          for model_class, rgb in table), "the model's classification:classes")
