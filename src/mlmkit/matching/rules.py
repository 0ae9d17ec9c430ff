"""Can this model run on this imagery? Every rule, from metadata alone (no raster or model file is opened).

`check(spec, stack)` applies the rules in this order and lists what each finds: a problem (the pair cannot
run; the first one is what `predict` refuses with) or a warning (it runs, but something may mislead, or a
field the model's requirement needs is absent so that requirement was not checked):

- shapes: the tensor layouts `predict` runs (docs/model-shapes.md), the number of dates a time-series model takes;
- dates: enough dated Items on one grid for a time-series model (`matching.stacks`);
- bands: every model band bound to an imagery band (`matching.bands`), band-less inputs to an asset;
- processing level: the model's `processing:level` against the Item's;
- value range: data type and value range where both sides state them (band `data_type`, `statistics`);
- resolution: the model's gsd against each source band's (warned beyond RESAMPLING_WARNING×, refused when the
  imagery would have to be upsampled beyond MAX_UPSAMPLING×);
- spatial: the Item's footprint outside the model's geometry (refused) or partly outside (warned);
- temporal: the Item's datetime outside the model's start/end_datetime (warned).

A model that states no requirement (no processing:level, no gsd, no start/end_datetime) gets that rule's
line in the plan's `not_checked`, not a warning: nothing about the imagery could have been wrong.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pystac

from mlmkit.errors import InvalidArgument, InvalidInput
from mlmkit.matching.bands import BandMatcher, Binding, ImageryBand, imagery_bands
from mlmkit.matching.footprints import relation
from mlmkit.matching.stacks import Stack, item_date
from mlmkit.mlm.shapes import TIME, detection_layout, detection_outputs, input_axes, is_pixelwise
from mlmkit.mlm.spec import Band, DimRole, ModelInput, ModelSpec

RESAMPLING_WARNING = 2.0   # a source band resampled by more than this factor, either way, is warned about
MAX_UPSAMPLING = 8.0       # a source band coarser than the model's gsd by more than this cannot feed it
RANGE_RATIO = 100.0        # value ranges whose spans differ by more than this factor are in other units
_RESIZE_DEFAULT = "bilinear"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_WORDS = {"pi", "e", "nan", "inf", "True", "False", "and", "or", "not"}
# What band arithmetic is made of; anything else (attributes, lambdas, subscripts, strings) is not band math.
_ARITHMETIC = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call, ast.Name, ast.Constant,
               ast.IfExp, ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)


@dataclass
class Match:
    """One model and the Item (or time stack of Items) it would run on: the verdict, its reasons, the plan."""

    spec: ModelSpec
    items: tuple[pystac.Item, ...]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    plan: dict = field(default_factory=dict)

    @property
    def runnable(self) -> bool:
        return not self.problems

    @property
    def model(self) -> str:
        return self.spec.item.id

    def to_json(self) -> dict:
        """The pair as `mlmkit match --json` prints it."""
        return {"model": self.model, "items": [item.id for item in self.items], "runnable": self.runnable,
                "problems": self.problems, "warnings": self.warnings, "plan": self.plan}


def time_steps(name: str, static: int | None, requested: int | None) -> int:
    """How many dates an input with a time dimension stacks: its static size, else the requested number."""
    if static is None and requested is None:
        raise InvalidArgument(f"input {name!r} has a dynamic time dimension; expected the time_steps argument "
                              "(how many dates to stack)")
    if static is not None and requested is not None and static != requested:
        raise InvalidArgument(f"input {name!r} takes {static} dates; the time_steps argument {requested} cannot be "
                              f"used (omit it or give {static})")
    return static or requested or 1


def model_dates(spec: ModelSpec, requested: int | None = None) -> tuple[int, list[str]]:
    """The number of dates one run of the model stacks, and the shape problems found on the way."""
    steps, problems, layouts = set(), [], set()
    for index, model_input in enumerate(spec.inputs):
        try:
            axes = input_axes(model_input.name, model_input.dim_order, len(model_input.dim_order))
        except InvalidInput as exc:
            problems.append(f"shapes: {exc} (mlm:input[{index}].input.dim_order)")
            continue
        layouts.add(is_pixelwise(axes))
        if TIME in axes:
            try:
                steps.add(time_steps(model_input.name, model_input.size(DimRole.TIME), requested))
            except InvalidInput as exc:
                problems.append(f"shapes: {exc}")
    if len(layouts) > 1:
        problems.append("shapes: the model mixes pixel-row and raster inputs (mlm:input[].input.dim_order); "
                        "expected all of one kind")
    if len(steps) > 1:
        problems.append(f"shapes: model inputs take different numbers of dates {sorted(steps)} "
                        "(mlm:input[].input.shape); expected one")
    boxes = detection_outputs(spec.outputs)
    if boxes:
        try:
            detection_layout([spec.outputs[i] for i in boxes])
        except InvalidInput as exc:
            problems.append(f"shapes: {exc} (mlm:output)")
    return (steps.pop() if len(steps) == 1 else 1), problems


def expression_bands(band: Band) -> list[str] | None:
    """The band names a derived band's expression reads (function names and constants left out); None when the
    text is not band arithmetic. `python` references name no bands (predict refuses them for bands)."""
    text = band.expression
    if (band.format or "").lower() == "python":
        return []
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return _prefix_names(text) if text.lstrip().startswith("(") else None
    except (RecursionError, MemoryError, ValueError):
        return None
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    names = []
    for node in ast.walk(tree):
        if not isinstance(node, _ARITHMETIC) or isinstance(node, ast.Constant) and isinstance(node.value, str):
            return None
        if isinstance(node, ast.Name) and id(node) not in called and node.id not in _WORDS:
            names.append(node.id)
    return list(dict.fromkeys(names))


def _prefix_names(text: str) -> list[str] | None:
    """The operands of rio-calc's prefix form `(/ (- B08 B04) (+ B08 B04))` that name bands."""
    tokens = _TOKEN.findall(text)
    names = [token for before, token in zip(["("] + tokens, tokens)
             if before != "(" and _IDENTIFIER.fullmatch(token) and token not in _WORDS]
    return list(dict.fromkeys(names))


def _channels(model_input: ModelInput) -> int | None:
    return model_input.size(DimRole.BANDS)


def _bind_inputs(spec: ModelSpec, matcher: BandMatcher, date: int, match: Match) -> list[Binding]:
    bindings = []
    for model_input in spec.inputs:
        where = f"input {model_input.name!r}"
        if not model_input.bands:
            problem = matcher.asset_problem(model_input.name, _channels(model_input))
            if problem:
                match.problems.append(f"bands: {problem} (mlm:input[].bands)")
            else:
                match.plan["bands"].append({"input": model_input.name, "band": None, "date": date,
                                            "asset": model_input.name, "why": "asset key equal to the input's name"})
            continue
        names = []
        for band in model_input.bands:
            read = expression_bands(band) if band.is_derived else [band.name]
            if read is None:
                match.problems.append(f"bands: {where} band {band.name!r} has an expression that is not band "
                                      "arithmetic (mlm:input[].bands[].expression); expected gdal-calc/rio-calc "
                                      "arithmetic over band names")
            names += read or []
        for name in dict.fromkeys(names):
            binding = matcher.bind(name)
            if binding is None:
                match.problems.append(f"bands: {matcher.missing(name, where)}")
                continue
            bindings.append(binding)
            match.plan["bands"].append({"input": model_input.name, "band": name, "date": date,
                                        "asset": binding.source.asset, "index": binding.source.index,
                                        "why": binding.how, **({"also": list(binding.others)} if binding.others else {})})
            if binding.others and "wavelength" in binding.how:
                match.warnings.append(f"bands: model band {name!r} took {binding.source.where} by {binding.how}; "
                                      f"also in range: {', '.join(binding.others)}")
    return bindings


def _level(value: object) -> str:
    return re.sub(r"[\s_-]|level", "", str(value).lower()).removeprefix("l")


def _processing_level(spec: ModelSpec, item: pystac.Item, match: Match) -> None:
    wanted = spec.item.properties.get("processing:level")
    if not wanted:
        return
    found = item.properties.get("processing:level")
    if not found:
        match.warnings.append(f"processing level: item {item.id!r} states no processing:level; the model's "
                              f"{wanted} was not checked")
    elif _level(found) != _level(wanted):
        match.problems.append(f"processing level: the model is for {wanted} imagery (processing:level) but item "
                              f"{item.id!r} is {found} (processing:level); expected the same processing level")


def _stated_range(info: dict) -> tuple[float, float] | None:
    stats = info.get("statistics") or info.get("raster:statistics")
    if isinstance(stats, dict):
        low, high = stats.get("minimum"), stats.get("maximum")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            return float(low), float(high)
    return None


def _value_range(band_info: dict[str, dict], binding: Binding, item: pystac.Item, match: Match) -> None:
    info, band = band_info.get(binding.band.lower(), {}), binding.source
    dtype = info.get("data_type") or info.get("raster:data_type")
    if dtype and band.data_type and str(dtype) != band.data_type:
        match.warnings.append(f"value range: model band {binding.band!r} was trained on {dtype} values (data_type), "
                              f"item {item.id!r} stores {band.where} as {band.data_type} (raster:bands data_type)")
    wanted = _stated_range(info)
    if wanted is None or band.minimum is None or band.maximum is None:
        return
    spans = (wanted[1] - wanted[0], band.maximum - band.minimum)
    disjoint = band.maximum < wanted[0] or band.minimum > wanted[1]
    other_units = min(spans) > 0 and max(spans) / min(spans) > RANGE_RATIO
    if disjoint or other_units:
        match.problems.append(
            f"value range: model band {binding.band!r} was trained on values {wanted[0]:g}..{wanted[1]:g} (statistics) "
            f"but item {item.id!r} holds {band.minimum:g}..{band.maximum:g} in {band.where} (statistics); expected "
            "values in the same units")


def _resampling(spec: ModelSpec) -> str:
    resize = next((i.resize_type for i in spec.inputs if i.resize_type), None)
    return resize.removeprefix("interpolation-") if resize else _RESIZE_DEFAULT


def _resolution(spec: ModelSpec, bindings: list[Binding], item: pystac.Item, match: Match) -> None:
    sources = {b.source.asset: b.source.gsd for b in bindings}
    stated = [gsd for gsd in sources.values() if gsd]
    model = spec.resolution
    grid = model or (min(stated) if stated else None)
    match.plan.setdefault("grid", {"resolution": grid, "why": "the model's gsd" if model else
                                   "the finest source band" if stated else "the finest band, read from the files",
                                   "resampling": _resampling(spec), "sources": {}})
    match.plan["grid"]["sources"].update(sources)
    if model is None:
        return
    unstated = sorted(where for where, gsd in sources.items() if not gsd)
    if unstated:
        match.warnings.append(f"resolution: item {item.id!r} states no gsd for {', '.join(unstated)} (gsd, "
                              f"raster:bands spatial_resolution); the model's {model:g} m was not checked")
    resampled: dict[float, list[str]] = {}
    for where, gsd in sources.items():
        if not gsd:
            continue
        factor = gsd / model
        if factor > MAX_UPSAMPLING:
            match.problems.append(
                f"resolution: {where} of item {item.id!r} has {gsd:g} m pixels (gsd) and the model takes {model:g} m "
                f"(gsd): {factor:g}x upsampling; expected at most {MAX_UPSAMPLING:g}x")
        elif factor > RESAMPLING_WARNING or factor < 1 / RESAMPLING_WARNING:
            resampled.setdefault(gsd, []).append(where)
    for gsd, wheres in resampled.items():
        factor = gsd / model
        match.warnings.append(f"resolution: {', '.join(wheres)} of item {item.id!r} ({gsd:g} m) resampled to the "
                              f"model's {model:g} m (gsd), {max(factor, 1 / factor):.3g}x")


def _spatial(spec: ModelSpec, item: pystac.Item, match: Match) -> None:
    model = spec.item
    if model.geometry is None and not model.bbox:
        match.plan["not_checked"].append("spatial: the model states no geometry")
        return
    where = relation(model.geometry, model.bbox, item.geometry, item.bbox)
    if where is None:
        match.warnings.append(f"spatial: item {item.id!r} states no geometry or bbox; the model's geometry was "
                              "not checked")
    elif where == "outside":
        match.problems.append(f"spatial: item {item.id!r} lies outside the model's geometry (geometry); expected "
                              "imagery where the model applies")
    elif where == "partly":
        match.warnings.append(f"spatial: item {item.id!r} lies partly outside the model's geometry (geometry)")


def _interval(item: pystac.Item) -> tuple[datetime | None, datetime | None]:
    meta = item.common_metadata
    return meta.start_datetime or item.datetime, meta.end_datetime or item.datetime


def _temporal(spec: ModelSpec, item: pystac.Item, match: Match) -> None:
    start, end = spec.item.common_metadata.start_datetime, spec.item.common_metadata.end_datetime
    if start is None and end is None:
        match.plan["not_checked"].append("temporal: the model states no start_datetime/end_datetime range")
        return
    first, last = _interval(item)
    if first is None and last is None:
        match.warnings.append(f"temporal: item {item.id!r} states no datetime; the model's range was not checked")
    elif (start and last and last < start) or (end and first and first > end):
        when = first.date().isoformat() if first == last else f"{first.date()}/{last.date()}"
        span = f"{start.date() if start else '..'}/{end.date() if end else '..'}"
        match.warnings.append(f"temporal: item {item.id!r} ({when}, datetime) is outside the model's range {span} "
                              "(start_datetime/end_datetime)")


def _scaling(spec: ModelSpec, bands: Sequence[ImageryBand]) -> list[dict]:
    """What each input's values go through: read as stored (a raster:scale is not applied), then the MLM steps."""
    stored = {b.asset: b.scale for b in bands if b.scale not in (None, 1.0)}
    return [{"input": i.name, "values": "as stored in the files", **({"stored_scale": stored} if stored else {}),
             "value_scaling": [s.type for s in i.value_scaling or ()] or None,
             "pre_processing": bool(i.pre_processing_function)} for i in spec.inputs]


def check(spec: ModelSpec, stack: Stack, requested_steps: int | None = None,
          known: dict[int, list[ImageryBand]] | None = None) -> Match:
    """Every rule for one model and one Item or time stack; the problems in rule order. `known`: the
    imagery bands of Items seen before, by id(item), filled as Items are seen (a cache for many models)."""
    known = {} if known is None else known
    match = Match(spec, stack.items, plan={"bands": [], "not_checked": []})
    steps, shape_problems = model_dates(spec, requested_steps)
    match.problems += shape_problems
    if stack.problem:
        match.problems.append(stack.problem)
    bindings = []
    for date, item in enumerate(stack.items):
        if id(item) not in known:
            known[id(item)] = imagery_bands(item)
        bindings.append(_bind_inputs(spec, BandMatcher(item, spec.band_info, known[id(item)]), date, match))
    for item in stack.items:
        _processing_level(spec, item, match)
    band_info = {name.lower(): info for name, info in spec.band_info.items()}
    for item, bound in zip(stack.items, bindings):
        for binding in bound:
            _value_range(band_info, binding, item, match)
    for item, bound in zip(stack.items, bindings):
        _resolution(spec, bound, item, match)
    for item in stack.items:
        _spatial(spec, item, match)
    for item in stack.items:
        _temporal(spec, item, match)
    if not spec.item.properties.get("processing:level"):
        match.plan["not_checked"].append("processing level: the model states no processing:level")
    if spec.resolution is None:
        match.plan["not_checked"].append("resolution: the model states no gsd")
    match.plan["scaling"] = _scaling(spec, [b.source for bound in bindings for b in bound])
    if steps > 1:
        match.plan["dates"] = [item_date(item).isoformat() if item_date(item) else None for item in stack.items]
    match.problems = _order(match.problems)
    match.plan["not_checked"] = list(dict.fromkeys(match.plan["not_checked"]))
    match.warnings = list(dict.fromkeys(match.warnings))
    return match


_ORDER = ("shapes", "dates", "bands", "processing level", "value range", "resolution", "spatial")


def _order(problems: list[str]) -> list[str]:
    """Problems by rule, in the order the module docstring gives, each once."""
    rank = {rule: index for index, rule in enumerate(_ORDER)}
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda line: rank.get(line.split(":", 1)[0], len(rank)))
