"""Which Items one model run reads: each Item alone, or, for a model with a time dimension of T dates,
stacks of T Items that share a grid, in datetime order.

Items are grouped by grid (CRS, transform, size); each group is sorted by date and cut into consecutive
stacks of T, the last one shifted back to end on the latest date (as the last tile ends on the image
edge), so every date is used. A group with fewer than T dates is an error naming the dates it has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Sequence

import pystac

from mlmkit.errors import InvalidInput
from mlmkit.inference.tiler import starts


def item_date(item: pystac.Item) -> dt.datetime:
    """The Item's datetime, else its start_datetime; a time series needs one."""
    date = item.datetime or item.common_metadata.start_datetime
    if date is None:
        raise InvalidInput(f"item {item.id!r} has no datetime or start_datetime; expected dated Items for a "
                           "time-series model")
    return date


def stack_items(items: Sequence[pystac.Item], steps: int,
                grid_key: Callable[[pystac.Item], Hashable]) -> list[tuple[pystac.Item, ...]]:
    """Stacks of `steps` Items sharing a grid, each in datetime order (one Item per stack when steps is 1)."""
    if steps == 1:
        return [(item,) for item in items]
    groups: dict[Hashable, list[pystac.Item]] = {}
    for item in items:
        groups.setdefault(grid_key(item), []).append(item)
    stacks = []
    for group in groups.values():
        dated = sorted(group, key=lambda item: (item_date(item), item.id))
        if len(dated) < steps:
            found = ", ".join(f"{item.id} ({item_date(item).isoformat()})" for item in dated)
            raise InvalidInput(f"the model takes {steps} dates but the Items on this grid have {len(dated)}: "
                               f"{found}; expected at least {steps} dated Items sharing a grid")
        stacks += [tuple(dated[start:start + steps]) for start in starts(len(dated), steps, steps)]
    return stacks
