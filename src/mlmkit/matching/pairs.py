"""`match(models, imagery)`: every model against every Item (or time stack), runnable pairs first.

Models and imagery may be given as paths or URLs of Items and catalogs, pystac Items, `ModelSpec`s, or lists
of them. Only metadata is read. `predict` cuts its stacks and decides with `pair_up`, the same function.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Union

import pystac

from mlmkit.errors import InvalidInput, MetadataWarning, NotRunnable, warn
from mlmkit.matching.bands import ImageryBand
from mlmkit.matching.rules import Match, check, model_dates
from mlmkit.matching.stacks import footprint_grid, stack_items
from mlmkit.mlm.spec import ModelSpec, mlm_version, spec_from_item
from mlmkit.stac.read import iter_items

Source = Union[str, Path, pystac.Item, ModelSpec]
Sources = Union[Source, Sequence[Source]]


def _each(sources: Sources) -> list[Source]:
    return [sources] if isinstance(sources, (str, Path, pystac.Item, ModelSpec)) else list(sources)


def _is_model(item: pystac.Item) -> bool:
    return mlm_version({"stac_extensions": item.stac_extensions}) is not None


def _items(source: Source) -> Iterable[pystac.Item]:
    return [source] if isinstance(source, pystac.Item) else iter_items(source)


def read_models(models: Sources) -> list[ModelSpec]:
    """The MLM view of every MLM Item the sources hold; a source with none is an error."""
    specs = []
    for source in _each(models):
        if isinstance(source, ModelSpec):
            specs.append(source)
            continue
        found = [spec_from_item(item) for item in _items(source) if _is_model(item)]
        if not found:
            raise InvalidInput(f"{source} holds no MLM Item; expected an MLM Item or a catalog of them")
        specs += found
    return specs


def read_imagery(imagery: Sources) -> list[pystac.Item]:
    """Every Item the sources hold, MLM Items left out; a source with none is an error."""
    items = []
    for source in _each(imagery):
        found = [item for item in _items(source) if not _is_model(item)]
        if not found:
            raise InvalidInput(f"{source} holds no imagery Item; expected a STAC Item or a catalog with Items")
        items += found
    return items


def pair_up(spec: ModelSpec, items: Sequence[pystac.Item], requested_steps: int | None = None,
            grid_key: Callable[[pystac.Item], Hashable] = footprint_grid,
            known: dict[int, list[ImageryBand]] | None = None) -> list[Match]:
    """The model against the Items: one pair per Item, or per time stack of Items sharing a grid. `known`
    caches the Items' bands across models (see `rules.check`)."""
    steps, _ = model_dates(spec, requested_steps)
    return [check(spec, stack, requested_steps, known) for stack in stack_items(items, steps, grid_key)]


def decide(pairs: Iterable[Match]) -> None:
    """What a run does with its pairs: refuse it with the first problem of the first refused pair, else say
    every pair's warnings (MetadataWarning) and go on."""
    pairs = list(pairs)
    for pair in pairs:
        if not pair.runnable:
            raise NotRunnable(pair.problems[0])
    for line in dict.fromkeys(line for pair in pairs for line in pair.warnings):
        warn(line, MetadataWarning)


def ranked(pairs: Iterable[Match]) -> list[Match]:
    """Runnable pairs first, those with fewer warnings first; refused pairs after, in the order given."""
    pairs = list(pairs)
    order = {id(pair): index for index, pair in enumerate(pairs)}
    return sorted(pairs, key=lambda pair: (not pair.runnable, len(pair.warnings) if pair.runnable else 0,
                                           order[id(pair)]))


def match(models: Sources, imagery: Sources, time_steps: int | None = None) -> list[Match]:
    """Which models can run on which imagery, from metadata alone: every pair with its verdict and plan."""
    specs, items = read_models(models), read_imagery(imagery)
    known: dict[int, list[ImageryBand]] = {}
    return ranked(pair for spec in specs for pair in pair_up(spec, items, time_steps, known=known))
