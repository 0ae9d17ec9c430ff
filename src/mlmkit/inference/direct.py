"""Read the bands straight into the model's batch buffer where the input is nothing but its bands, scaled.

The general path reads every window into a float32 scratch array, stacks the input's bands (a copy),
scales them, and copies the result into the batch buffer. Where the model has one NCHW raster input built
from its bands as they are (no band math, no pre-processing function, one date, the window already the
model's tile), the reader can write the window into the batch slot itself and the value_scaling runs in
place there: the same arithmetic on the same values, without the stack and the two copies. That holds for a
float32 buffer only: GDAL cannot read into float16, and a float64 buffer would be scaled in float64 where the
plain path scales in float32. Other floating inputs are read directly only with the scaling folded into the
graph (folding.py), whose buffer holds the imagery's own data type.
"""

from __future__ import annotations

import numpy as np

from mlmkit.inference.bands import BandRef
from mlmkit.inference.binding import BoundInput, source_key
from mlmkit.inference.feeders import Feeder, TileFeeder
from mlmkit.inference.geometry import TileFit
from mlmkit.mlm.shapes import BANDS, BATCH, HEIGHT, WIDTH

_NCHW = (BATCH, BANDS, HEIGHT, WIDTH)


def direct_input(bound: list[BoundInput], fit: TileFit, feeder: Feeder) -> BoundInput | None:
    """The model's only input when windows can be read straight into its batch buffer (scaled there, see
    `scaled_in_place`, or by a folded graph), else None."""
    if len(bound) != 1 or not fit.identity or not isinstance(feeder, TileFeeder):
        return None
    entry = bound[0]
    plan = entry.plan
    names = plan.band_names
    if (plan.derived or plan.functions or plan.scaling_after or entry.axes != _NCHW or entry.steps != 1
            or not np.issubdtype(plan.dtype, np.floating) or len(set(names)) != len(names)
            or entry.channels != len(names)):
        return None
    return entry


def scaled_in_place(entry: BoundInput | None) -> BoundInput | None:
    """`entry` where its batch buffer can take the bands as read and be scaled there as the plain path scales
    (a float32 buffer), else None."""
    return entry if entry is not None and entry.plan.dtype == np.float32 else None


def in_input_order(refs: list[BandRef], bound: list[BoundInput]) -> list[BandRef]:
    """The first input's bands first, in its channel order, so that they can be read straight into its buffer."""
    entry = bound[0]
    order = {source_key(entry.dates[0], name): position for position, name in enumerate(entry.plan.band_names)}
    return sorted(refs, key=lambda ref: order.get(ref.name, len(order)))
