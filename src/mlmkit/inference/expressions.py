"""Band-math expressions from an MLM Item, evaluated without running any of its text as code.

MLM Items carry expressions (`gdal-calc`, `rio-calc`, `numexpr`-style arithmetic) for derived bands,
value scaling and pre/post-processing. The Item is untrusted data, so the text is parsed with `ast`
and only arithmetic, comparisons, logic and a fixed set of numpy functions over named arrays run.
`rio-calc`'s prefix form `(/ (- B08 B04) (+ B08 B04))` is accepted as well.

Resource bombs are refused before anything runs: text longer than MAX_LENGTH characters, more than
MAX_NODES operations and operands, nesting deeper than MAX_DEPTH, integer constants beyond
±MAX_INTEGER; while it runs, no intermediate array may hold more values than the largest input (the
tile), and the result must fit the tile.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mlmkit.errors import InvalidMetadata, LimitExceeded, ModelRefused

SAFE_FORMATS = ("gdal-calc", "rio-calc", "numexpr", "numpy", "math", "expression")
PYTHON_FORMAT = "python"
MAX_LENGTH = 10_000      # characters of expression text
MAX_NODES = 2_000        # operators, calls, names and constants
MAX_DEPTH = 100          # nesting of operations
MAX_INTEGER = 2 ** 53    # integer constants beyond this are refused (floats: any, overflow gives inf)

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(np, name) for name in (
        "abs", "absolute", "sqrt", "exp", "log", "log10", "log2", "log1p", "sin", "cos", "tan", "arcsin",
        "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "floor", "ceil", "round", "rint", "minimum",
        "maximum", "fmin", "fmax", "where", "clip", "isnan", "isfinite", "nan_to_num", "logical_not",
        "logical_and", "logical_or", "logical_xor", "sign", "power", "square", "hypot", "mean", "sum",
    )
}
_FUNCTIONS.update({"min": np.minimum, "max": np.maximum, "float32": np.float32, "float64": np.float64})
# Positional arguments each function may take: a ufunc its inputs only (one more would be `out`, writing
# into a band array), the others up to before their `out`/`copy`/`dtype` parameters.
_ARITY = {name: (func.nin, func.nin) if isinstance(func, np.ufunc) else (1, 1) for name, func in _FUNCTIONS.items()}
_ARITY.update({"where": (3, 3), "clip": (3, 3), "round": (1, 2), "mean": (1, 2), "sum": (1, 2)})
_CONSTANTS = {"pi": np.pi, "e": np.e, "nan": np.nan, "inf": np.inf, "True": True, "False": False}
_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide, ast.Mod: np.mod, ast.Pow: np.power, ast.BitAnd: np.logical_and,
    ast.BitOr: np.logical_or, ast.BitXor: np.logical_xor,
}
_COMPARE = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: np.logical_not, ast.Invert: np.logical_not}
_PREFIX_OPS = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "**": np.power, "%": np.mod,
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
    "!=": np.not_equal, "&": np.logical_and, "|": np.logical_or, "and": np.logical_and, "or": np.logical_or,
    "not": np.logical_not,
}
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
# What evaluating a well-formed expression over odd values can raise (wrong argument counts, negative
# integer powers, shapes that do not broadcast, giant Python integers): refused as one line.
_EVALUATION_ERRORS = (ArithmeticError, ValueError, TypeError, IndexError, MemoryError)


def shown(text: object, limit: int = 80) -> str:
    """An expression as messages show it: quoted, cut to `limit` characters."""
    text = repr(text)
    return text if len(text) <= limit else f"{text[:limit]}…' ({len(text)} characters)"


class Expression:
    """A parsed, checked expression; `names` are the arrays it needs."""

    def __init__(self, text: str, fmt: str = "gdal-calc") -> None:
        if not isinstance(text, str) or not text.strip():
            raise InvalidMetadata(f"{fmt} expression {shown(text)} is empty or not text; expected band arithmetic")
        if len(text) > MAX_LENGTH:
            raise LimitExceeded(f"expression {shown(text)} is {len(text)} characters long; expected at most "
                                f"{MAX_LENGTH}")
        self.text = text
        self.format = fmt
        try:
            self._tree: Any = ast.parse(text.strip(), mode="eval").body
            self._evaluate = self._eval_ast
        except SyntaxError:
            self._tree = _parse_prefix(text)
            self._evaluate = self._eval_prefix
        except (RecursionError, MemoryError) as exc:  # the parser's own stack: far beyond MAX_DEPTH
            raise LimitExceeded(f"expression {shown(text)} is nested too deeply to parse; expected at most "
                                f"{MAX_DEPTH} levels") from exc
        self._check_size()
        self.names = frozenset(self._collect_names(self._tree))

    def __call__(self, values: Mapping[str, Any]) -> np.ndarray:
        missing = sorted(name for name in self.names if _lookup(values, name) is None)
        if missing:
            raise InvalidMetadata(
                f"expression {shown(self.text)} uses {', '.join(missing)}, which are not available; "
                f"expected names among {', '.join(sorted(values))}"
            )
        used = [np.shape(_lookup(values, name)) for name in self.names]
        try:
            tile = np.broadcast_shapes(*used)
        except ValueError as exc:
            raise InvalidMetadata(f"expression {shown(self.text)} combines arrays of shapes {used}; expected "
                                  "arrays of one tile") from exc
        limit = max(1, int(np.prod(tile)))
        try:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
                result = np.asarray(self._evaluate(self._tree, values, limit))
        except _EVALUATION_ERRORS as exc:
            reason = " ".join(str(exc).split())[:200].rstrip(".") or type(exc).__name__
            raise InvalidMetadata(f"expression {shown(self.text)} cannot be evaluated: {reason}; expected arithmetic "
                                  "on the band arrays") from exc
        if result.dtype == object or np.broadcast_shapes(result.shape, tile) != tile:
            raise InvalidMetadata(f"expression {shown(self.text)} gives a {result.dtype} result of shape "
                                  f"{list(result.shape)}; expected numbers that fit the {list(tile)} tile")
        return result

    def _check_size(self) -> None:
        """Count nodes and measure nesting without recursion, so no input can exhaust the Python stack."""
        pending: list[tuple[Any, int]] = [(self._tree, 1)]
        nodes = 0
        while pending:
            node, depth = pending.pop()
            nodes += 1
            if nodes > MAX_NODES:
                raise LimitExceeded(f"expression {shown(self.text)} has more than {MAX_NODES} terms; expected at "
                                    f"most {MAX_NODES}")
            if depth > MAX_DEPTH:
                raise LimitExceeded(f"expression {shown(self.text)} is nested more than {MAX_DEPTH} levels deep; "
                                    f"expected at most {MAX_DEPTH}")
            children = node if isinstance(node, list) else (
                ast.iter_child_nodes(node) if isinstance(node, ast.AST) else ())
            pending.extend((child, depth + 1) for child in children
                           if not isinstance(child, (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop,
                                                     ast.boolop)))

    def _collect_names(self, node: Any) -> list[str]:
        if isinstance(node, list):
            head = node[0] if node and isinstance(node[0], str) and _is_operator(node[0]) else None
            return [name for part in (node[1:] if head else node) for name in self._collect_names(part)]
        if isinstance(node, str):
            return [] if node in _CONSTANTS or _number(node) is not None else [node]
        if isinstance(node, ast.AST):
            self._check(node)
            names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
            called = {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            return [name for name in names if name not in called and name not in _CONSTANTS and name not in ("np", "numpy")]
        return []

    def _check(self, tree: ast.AST) -> None:
        allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.IfExp, ast.Call, ast.Name,
                   ast.Constant, ast.Load, ast.Attribute, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
        text = shown(self.text)
        for node in ast.walk(tree):
            if not isinstance(node, allowed):
                raise InvalidMetadata(f"expression {text} uses {type(node).__name__}, which is not allowed; "
                                      "expected arithmetic, comparisons and numpy functions over band names")
            if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, bool)):
                raise InvalidMetadata(f"expression {text} has constant {shown(node.value, 40)}; expected numbers only")
            if isinstance(node, ast.Constant) and isinstance(node.value, int) and abs(node.value) > MAX_INTEGER:
                raise LimitExceeded(f"expression {text} has the integer constant {shown(node.value, 40)}; expected "
                                    f"integers within ±2**53 (write larger numbers as floats, e.g. 1e20)")
            if isinstance(node, ast.Call):
                _check_arity(_function(node.func, self.text), len(node.args), self.text)
                if node.keywords:
                    raise InvalidMetadata(f"expression {text} uses keyword arguments; expected positional ones")
            if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name)
                                                        and node.value.id in ("np", "numpy")):
                raise InvalidMetadata(f"expression {text} reads attribute {shown(node.attr, 40)}; "
                                      "expected np.<function> only")
            if isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
                raise InvalidMetadata(f"expression {text} uses operator {type(node.op).__name__}, which is not allowed")

    def _value(self, name: str, values: Mapping[str, Any]) -> Any:
        value = _CONSTANTS[name] if name in _CONSTANTS else _lookup(values, name)
        if value is None:
            raise InvalidMetadata(f"expression {shown(self.text)} uses {shown(name, 40)} as a value; expected band "
                                  "names and numbers")
        return value

    def _bounded(self, value: Any, limit: int) -> Any:
        """An intermediate result, refused when it holds more values than the tile it is computed from."""
        if np.size(value) > limit:
            raise LimitExceeded(f"expression {shown(self.text)} builds an array of {np.size(value)} values from "
                                f"{limit}-value bands; expected results that fit the tile")
        return value

    def _eval_ast(self, node: ast.AST, values: Mapping[str, Any], limit: int) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self._value(node.id, values)
        if isinstance(node, ast.BinOp):
            left, right = self._eval_ast(node.left, values, limit), self._eval_ast(node.right, values, limit)
            return self._bounded(_BINARY[type(node.op)](left, right), limit)
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval_ast(node.operand, values, limit))
        if isinstance(node, ast.BoolOp):
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            result = self._eval_ast(node.values[0], values, limit)
            for other in node.values[1:]:
                result = self._bounded(combine(result, self._eval_ast(other, values, limit)), limit)
            return result
        if isinstance(node, ast.Compare):
            left, result = self._eval_ast(node.left, values, limit), True
            for op, comparator in zip(node.ops, node.comparators):
                right = self._eval_ast(comparator, values, limit)
                result = self._bounded(np.logical_and(result, _COMPARE[type(op)](left, right)), limit)
                left = right
            return result
        if isinstance(node, ast.IfExp):
            return self._bounded(np.where(self._eval_ast(node.test, values, limit),
                                          self._eval_ast(node.body, values, limit),
                                          self._eval_ast(node.orelse, values, limit)), limit)
        if isinstance(node, ast.Call):
            args = [self._eval_ast(arg, values, limit) for arg in node.args]
            return self._bounded(_FUNCTIONS[_function(node.func, self.text)](*args), limit)
        raise InvalidMetadata(f"expression {shown(self.text)}: cannot evaluate {type(node).__name__}")

    def _eval_prefix(self, node: Any, values: Mapping[str, Any], limit: int) -> Any:
        if isinstance(node, str):
            number = _number(node)
            if number is not None:
                return number
            return self._value(node, values)
        head, args = node[0], [self._eval_prefix(arg, values, limit) for arg in node[1:]]
        if head not in _PREFIX_OPS or len(args) == 1:  # a function, `not`, or `-` as negation
            func = _FUNCTIONS[head] if head not in _PREFIX_OPS else (
                np.negative if head == "-" else _PREFIX_OPS[head])
            return self._bounded(func(*args), limit)
        result = args[0]
        for extra in args[1:]:  # (+ a b c) is (a + b) + c
            result = self._bounded(_PREFIX_OPS[head](result, extra), limit)
        return result


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    if name in values:
        return values[name]
    folded = {key.lower(): value for key, value in values.items()}
    return folded.get(name.lower())


def _check_arity(name: str, count: int, text: str) -> None:
    low, high = _ARITY[name] if name in _ARITY else _prefix_arity(name)
    if not low <= count <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise InvalidMetadata(f"expression {shown(text)} calls {name} with {count} argument(s); expected {wanted}")


def _prefix_arity(operator_name: str) -> tuple[int, int]:
    """rio-calc operators: `not` takes one operand, `-` one (negation) or more, the others two or more (folded)."""
    if _PREFIX_OPS[operator_name].nin == 1:
        return 1, 1
    return (1 if operator_name == "-" else 2), MAX_NODES


def _function(func: ast.AST, text: str) -> str:
    """The whitelisted function a call names."""
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in _FUNCTIONS:
        raise InvalidMetadata(f"expression {shown(text)} calls {shown(name, 40)}, which is not allowed; expected "
                              "one of " + ", ".join(sorted(_FUNCTIONS)))
    return name


def _number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def _is_operator(token: str) -> bool:
    return token in _PREFIX_OPS or token in _FUNCTIONS


def _parse_prefix(text: str) -> list:
    """Parse rio-calc's s-expressions into nested lists, checking every operator."""
    stack: list[list] = [[]]
    for token in _TOKEN.findall(text):
        if token == "(":
            stack.append([])
            if len(stack) > MAX_DEPTH + 1:
                raise LimitExceeded(f"expression {shown(text)} is nested more than {MAX_DEPTH} levels deep; "
                                    f"expected at most {MAX_DEPTH}")
        elif token == ")":
            if len(stack) < 2:
                raise InvalidMetadata(f"expression {shown(text)} has unbalanced parentheses")
            done = stack.pop()
            if not done or not isinstance(done[0], str) or not _is_operator(done[0]):
                raise InvalidMetadata(f"expression {shown(text)} is neither arithmetic nor rio-calc with known "
                                      "operators; expected e.g. (B08 - B04) / (B08 + B04)")
            _check_arity(done[0], len(done) - 1, text)
            stack[-1].append(done)
        else:
            stack[-1].append(token)
    if len(stack) != 1 or len(stack[0]) != 1:
        raise InvalidMetadata(f"expression {shown(text)} is not one valid expression; "
                              "expected e.g. (B08 - B04) / (B08 + B04)")
    return stack[0][0]


def letter_names(names: list[str]) -> dict[str, str]:
    """gdal-calc letters A, B, ... for a list of names, in order."""
    return {chr(ord("A") + index): name for index, name in enumerate(names[:26])}


def check_format(fmt: str | None, expression: Any, allow_python: bool, where: str) -> None:
    """Refuse formats this processor will not run; `python` only with the user's explicit consent."""
    fmt = (fmt or "").lower()
    if fmt == PYTHON_FORMAT:
        if not allow_python:
            raise ModelRefused(
                f"{where} is a python expression ({shown(expression)}); refusing to run code from an MLM Item "
                "(the allow_python_expressions argument trusts it)"
            )
        return
    if fmt not in SAFE_FORMATS:
        raise InvalidMetadata(f"{where} has expression format {shown(fmt, 40)}; expected one of "
                              f"{', '.join(SAFE_FORMATS)} or python (with the allow_python_expressions argument)")


def python_callable(reference: str) -> Callable[..., Any]:
    """Import `package.module:function` (or dotted path); only called after the user allowed it."""
    import importlib

    module_name, _, attr = reference.partition(":") if ":" in reference else reference.rpartition(".")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidMetadata(f"python expression {shown(reference)} cannot be imported: {exc}") from exc
    return target
