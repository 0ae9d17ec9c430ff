"""Which Items one model run reads: each Item alone, or, for a model with a time dimension of T dates,
stacks of T Items that share a grid, in datetime order.

Items are grouped by grid (CRS, transform, size); each group is sorted by date and cut into consecutive
stacks of T, the last one shifted back to end on the latest date (as the last tile ends on the image
edge), so every date is used. A group with fewer than T dates is one stack that cannot run, naming the
dates it has; so is an undated Item. `match` groups by the grids the metadata states (`proj:*`), `predict`
by the grids of the files it reads; both cut stacks here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import pystac

from mlmkit.matching.bands import is_raster

_PROJ_CODES = ("proj:code", "proj:epsg", "proj:wkt2", "proj:projjson")


@dataclass(frozen=True)
class Stack:
    """The Items one run stacks, in time order; `problem` says why they cannot run together (dates rule)."""

    items: tuple[pystac.Item, ...]
    problem: str | None = None


def item_date(item: pystac.Item) -> dt.datetime | None:
    """The Item's datetime, else its start_datetime."""
    return item.datetime or item.common_metadata.start_datetime


def metadata_grid(item: pystac.Item) -> Hashable | None:
    """The grids the Item's raster assets state (projection extension), or None when one is not stated."""
    grids = set()
    for asset in item.assets.values():
        if not is_raster(asset):
            continue
        fields = {**item.properties, **asset.extra_fields}
        code = next((fields[key] for key in _PROJ_CODES if fields.get(key) is not None), None)
        transform, shape = fields.get("proj:transform"), fields.get("proj:shape")
        if code is None or not isinstance(transform, list) or not isinstance(shape, list):
            return None
        grids.add((str(code), tuple(transform[:6]), tuple(shape)))
    return frozenset(grids) or None


def footprint_grid(item: pystac.Item) -> Hashable:
    """The stated grids, else the footprint (bbox), as a grouping key that reads no file."""
    return metadata_grid(item) or tuple(round(value, 6) for value in item.bbox or ()) or item.id


def stack_items(items: Sequence[pystac.Item], steps: int,
                grid_key: Callable[[pystac.Item], Hashable]) -> list[Stack]:
    """Stacks of `steps` Items sharing a grid, each in datetime order (one Item per stack when steps is 1)."""
    if steps == 1:
        return [Stack((item,)) for item in items]
    groups: dict[Hashable, list[pystac.Item]] = {}
    stacks = []
    for item in items:
        if item_date(item) is None:
            stacks.append(Stack((item,), f"dates: item {item.id!r} has no datetime or start_datetime; expected dated "
                                         "Items for a time-series model"))
        else:
            groups.setdefault(grid_key(item), []).append(item)
    for group in groups.values():
        dated = sorted(group, key=lambda item: (item_date(item), item.id))
        if len(dated) < steps:
            found = ", ".join(f"{item.id} ({item_date(item).isoformat()})" for item in dated)
            stacks.append(Stack(tuple(dated), f"dates: the model takes {steps} dates but the Items on this grid have "
                                              f"{len(dated)}: {found}; expected at least {steps} dated Items sharing "
                                              "a grid (datetime)"))
            continue
        firsts = [*range(0, len(dated) - steps, steps), len(dated) - steps]
        stacks += [Stack(tuple(dated[first:first + steps])) for first in firsts]
    return stacks
