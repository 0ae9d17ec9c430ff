"""Property tests: random structures given to the expression evaluator and the STAC/MLM readers end in a
result or in one InvalidInput line, never in another exception (which the CLI would show as a traceback)."""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlmkit.errors import MlmkitError
from mlmkit.mlm.spec import read_model
from mlmkit.inference.expressions import MAX_DEPTH, Expression
from mlmkit.catalog.publish import plan_publication
from mlmkit.catalog.search import ModelQuery
from mlmkit.stac.read import iter_items, stac_from_dict, walk

# FUZZ_EXAMPLES=3000 searches longer (CI keeps the default)
SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 150)), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
TILE = np.arange(12, dtype=np.float32).reshape(3, 4)
MLM_URL = "https://stac-extensions.github.io/mlm/v1.5.2/schema.json"

# --- expressions --------------------------------------------------------------------------------------

NAMES = ["B04", "B08", "A", "b", "np", "pi", "nan", "x", "__class__"]
FUNCTIONS = ["where", "sqrt", "np.log", "clip", "sum", "mean", "float32", "power", "round", "open", "eval", "min"]
INFIX = ["+", "-", "*", "/", "//", "%", "**", "<", "<=", "==", "!=", "&", "|", "^", " and ", " or ", "@", "<<"]
PREFIX = ["+", "-", "*", "/", "**", "<", "and", "not", "where", "sqrt", "bogus"]
numbers = st.one_of(st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["1e20", "1e400", "-0.0", "0x1f", "1_000", "2j"]))


def _infix(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(NAMES), numbers.map(str))
    if depth == 0:
        return leaf
    inner = st.deferred(lambda: _infix(depth - 1))
    return st.one_of(
        leaf,
        st.tuples(inner, st.sampled_from(INFIX), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(st.sampled_from(["-", "not ", "~", "+"]), inner).map("".join),
        st.tuples(st.sampled_from(FUNCTIONS), st.lists(inner, max_size=4)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
    )


def _prefix(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(NAMES), numbers.map(str))
    if depth == 0:
        return leaf
    inner = st.deferred(lambda: _prefix(depth - 1))
    return st.one_of(leaf, st.tuples(st.sampled_from(PREFIX), st.lists(inner, max_size=4))
                     .map(lambda t: f"({t[0]} {' '.join(t[1])})"))


def _evaluates_or_refuses(text: str) -> None:
    try:
        expression = Expression(text)
        result = expression({"B04": TILE, "B08": TILE + 1, "A": TILE, "b": TILE, "x": TILE})
    except MlmkitError as exc:
        assert "\n" not in str(exc)
        return
    assert np.broadcast_shapes(result.shape, TILE.shape) == TILE.shape


@SETTINGS
@given(_infix(4))
def test_random_infix_expressions_evaluate_or_refuse(text):
    _evaluates_or_refuses(text)


@SETTINGS
@given(_prefix(4))
def test_random_prefix_expressions_evaluate_or_refuse(text):
    _evaluates_or_refuses(text)


@SETTINGS
@given(st.text(alphabet=string.printable, max_size=200))
def test_random_text_evaluates_or_refuses(text):
    _evaluates_or_refuses(text)


@settings(max_examples=30, deadline=None)
@given(st.integers(MAX_DEPTH + 1, 3000), st.sampled_from(["-", "np.sqrt(", "(- 1 ", "B04 + ("]))
def test_deep_nesting_is_refused_with_one_line(depth, opener):
    closer = ")" * opener.count("(")
    text = opener * depth + "B04" + closer * depth
    with pytest.raises(MlmkitError, match="nested|characters long|terms") as info:
        Expression(text)({"B04": TILE})
    assert "\n" not in str(info.value)


# --- STAC and MLM readers ---------------------------------------------------------------------------------

KEYS = ["type", "id", "links", "assets", "properties", "stac_extensions", "stac_version", "geometry", "bbox",
        "href", "rel", "collection", "extent", "description", "license", "roles", "datetime", "features",
        "mlm:name", "mlm:input", "mlm:output", "name", "bands", "input", "result", "shape", "dim_order",
        "data_type", "value_scaling", "pre_processing_function", "format", "expression", "tasks",
        "classification:classes", "value", "mlm:model", "eo:bands"]
TEXTS = ["Feature", "Catalog", "Collection", "child", "item", "self", "root", "mlm:model", MLM_URL, "./x.json",
         "../../../etc/passwd", "/etc/passwd", "1.0.0", "2024-01-01T00:00:00Z", "", "\x00", "B04", "batch",
         "height", "gdal-calc", "python", "(B04 - B08)"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, width=16),
                    st.sampled_from(TEXTS), st.text(max_size=8))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)), max_leaves=25)


def _mlm_like(properties: dict, assets: object, links: object) -> dict:
    """An Item skeleton that passes the first checks, so random values reach the deeper readers."""
    return {"type": "Feature", "stac_version": "1.0.0", "stac_extensions": [MLM_URL], "id": "fuzz",
            "geometry": None, "properties": {"datetime": "2024-01-01T00:00:00Z", "mlm:name": "m", **properties},
            "assets": assets, "links": links}


def _tensor_entry(structure_key: str) -> st.SearchStrategy[dict]:
    structure = st.one_of(json_values, st.fixed_dictionaries({
        "shape": st.one_of(json_values, st.lists(st.integers(-2, 8), max_size=5)),
        "dim_order": st.one_of(json_values, st.lists(st.sampled_from(["batch", "bands", "height", "width", "class"]),
                                                      max_size=5)),
        "data_type": st.one_of(scalars, st.just("float32"))}))
    return st.fixed_dictionaries({"name": scalars, structure_key: structure}, optional={
        "bands": json_values, "value_scaling": json_values, "pre_processing_function": json_values,
        "post_processing_function": json_values, "tasks": json_values, "classification:classes": json_values,
        "resize_type": scalars, "norm_type": scalars, "statistics": json_values})


mlm_properties = st.fixed_dictionaries({}, optional={
    "mlm:input": st.one_of(json_values, st.lists(_tensor_entry("input"), min_size=1, max_size=2)),
    "mlm:output": st.one_of(json_values, st.lists(_tensor_entry("result"), min_size=1, max_size=2)),
    "mlm:name": scalars, "mlm:tasks": json_values, "eo:bands": json_values, "bands": json_values})

documents = st.one_of(
    json_values,
    st.builds(_mlm_like, mlm_properties, st.just({"model": {"href": "./m.onnx", "roles": ["mlm:model"]}}),
              st.just([])),
    st.builds(_mlm_like, st.dictionaries(st.sampled_from(["mlm:input", "mlm:output", "mlm:name", "mlm:tasks",
                                                         "eo:bands", "bands"]), json_values, max_size=4),
              st.one_of(json_values, st.just({"model": {"href": "./m.onnx", "roles": ["mlm:model"]}})),
              st.one_of(json_values, st.just([]))),
    st.fixed_dictionaries({"type": st.sampled_from(["Catalog", "Collection", "Feature"]), "id": scalars,
                           "links": json_values, "stac_version": st.just("1.0.0"), "description": scalars}),
)


def _refuses_in_one_line(call) -> None:
    try:
        call()
    except MlmkitError as exc:
        assert "\n" not in str(exc)


@SETTINGS
@given(documents)
def test_stac_from_dict_reads_or_refuses(data):
    _refuses_in_one_line(lambda: stac_from_dict(data, "/fuzz/doc.json"))


@SETTINGS
@given(documents)
def test_readers_of_a_document_on_disk_read_or_refuse(tmp_path_factory, data):
    folder: Path = tmp_path_factory.mktemp("doc")
    path = folder / "doc.json"
    path.write_text(json.dumps(data))
    _refuses_in_one_line(lambda: list(walk(path)))
    _refuses_in_one_line(lambda: list(iter_items(path)))
    _refuses_in_one_line(lambda: read_model(path))
    _refuses_in_one_line(lambda: plan_publication(path, base_href="https://example.org/x"))


@SETTINGS
@given(documents)
def test_search_predicate_never_raises(data):
    query = ModelQuery(task="classification", bands=("red",), framework="onnx", bbox=(0, 0, 1, 1),
                       datetime="2020-01-01/..", text="water")
    if isinstance(data, dict):
        query.match(data)
