"""Band-math expressions from an MLM Item, evaluated without running any of its text as code.

MLM Items carry expressions (`gdal-calc`, `rio-calc`, `numexpr`-style arithmetic) for derived bands,
value scaling and pre/post-processing. The Item is untrusted data, so the text is parsed with `ast`
and only arithmetic, comparisons, logic and a fixed set of numpy functions over named arrays run.
`rio-calc`'s prefix form `(/ (- B08 B04) (+ B08 B04))` is accepted as well.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mlmkit.errors import InvalidInput

SAFE_FORMATS = ("gdal-calc", "rio-calc", "numexpr", "numpy", "math", "expression")
PYTHON_FORMAT = "python"

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(np, name) for name in (
        "abs", "absolute", "sqrt", "exp", "log", "log10", "log2", "log1p", "sin", "cos", "tan", "arcsin",
        "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "floor", "ceil", "round", "rint", "minimum",
        "maximum", "fmin", "fmax", "where", "clip", "isnan", "isfinite", "nan_to_num", "logical_not",
        "logical_and", "logical_or", "logical_xor", "sign", "power", "square", "hypot", "mean", "sum",
    )
}
_FUNCTIONS.update({"min": np.minimum, "max": np.maximum, "float32": np.float32, "float64": np.float64})
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


class Expression:
    """A parsed, checked expression; `names` are the arrays it needs."""

    def __init__(self, text: str, fmt: str = "gdal-calc") -> None:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"{fmt} expression {text!r} is empty or not text; expected band arithmetic")
        self.text = text
        self.format = fmt
        try:
            self._tree: Any = ast.parse(text.strip(), mode="eval").body
            self._evaluate = self._eval_ast
        except SyntaxError:
            self._tree = _parse_prefix(text)
            self._evaluate = self._eval_prefix
        self.names = frozenset(self._collect_names(self._tree))

    def __call__(self, values: Mapping[str, Any]) -> np.ndarray:
        missing = sorted(name for name in self.names if _lookup(values, name) is None)
        if missing:
            raise InvalidInput(
                f"expression {self.text!r} uses {', '.join(missing)}, which are not available; "
                f"expected names among {', '.join(sorted(values))}"
            )
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.asarray(self._evaluate(self._tree, values))

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
        for node in ast.walk(tree):
            if not isinstance(node, allowed):
                raise InvalidInput(f"expression {self.text!r} uses {type(node).__name__}, which is not allowed; "
                                   "expected arithmetic, comparisons and numpy functions over band names")
            if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, bool)):
                raise InvalidInput(f"expression {self.text!r} has constant {node.value!r}; expected numbers only")
            if isinstance(node, ast.Call):
                _function(node.func, self.text)
                if node.keywords:
                    raise InvalidInput(f"expression {self.text!r} uses keyword arguments; expected positional ones")
            if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name)
                                                        and node.value.id in ("np", "numpy")):
                raise InvalidInput(f"expression {self.text!r} reads attribute {node.attr!r}; expected np.<function> only")
            if isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
                raise InvalidInput(f"expression {self.text!r} uses operator {type(node.op).__name__}, which is not allowed")

    def _eval_ast(self, node: ast.AST, values: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return _CONSTANTS[node.id] if node.id in _CONSTANTS else _lookup(values, node.id)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._eval_ast(node.left, values), self._eval_ast(node.right, values))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval_ast(node.operand, values))
        if isinstance(node, ast.BoolOp):
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            result = self._eval_ast(node.values[0], values)
            for other in node.values[1:]:
                result = combine(result, self._eval_ast(other, values))
            return result
        if isinstance(node, ast.Compare):
            left, result = self._eval_ast(node.left, values), True
            for op, comparator in zip(node.ops, node.comparators):
                right = self._eval_ast(comparator, values)
                result = np.logical_and(result, _COMPARE[type(op)](left, right))
                left = right
            return result
        if isinstance(node, ast.IfExp):
            return np.where(self._eval_ast(node.test, values), self._eval_ast(node.body, values),
                            self._eval_ast(node.orelse, values))
        if isinstance(node, ast.Call):
            return _function(node.func, self.text)(*(self._eval_ast(arg, values) for arg in node.args))
        raise InvalidInput(f"expression {self.text!r}: cannot evaluate {type(node).__name__}")

    def _eval_prefix(self, node: Any, values: Mapping[str, Any]) -> Any:
        if isinstance(node, str):
            number = _number(node)
            if number is not None:
                return number
            return _CONSTANTS[node] if node in _CONSTANTS else _lookup(values, node)
        head, args = node[0], [self._eval_prefix(arg, values) for arg in node[1:]]
        func = _PREFIX_OPS.get(head) or _FUNCTIONS.get(head)
        if len(args) == 1 and head == "-":
            return np.negative(args[0])
        result = func(*args[:2]) if head in _PREFIX_OPS and len(args) >= 2 else func(*args)
        for extra in args[2:] if head in _PREFIX_OPS else ():
            result = func(result, extra)
        return result


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    if name in values:
        return values[name]
    folded = {key.lower(): value for key, value in values.items()}
    return folded.get(name.lower())


def _function(func: ast.AST, text: str) -> Callable[..., Any]:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in _FUNCTIONS:
        raise InvalidInput(f"expression {text!r} calls {name!r}, which is not allowed; expected one of "
                           + ", ".join(sorted(_FUNCTIONS)))
    return _FUNCTIONS[name]


def _number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def _is_operator(token: str) -> bool:
    return token in _PREFIX_OPS or token in _FUNCTIONS


def _parse_prefix(text: str) -> list:
    """Parse rio-calc's s-expressions into nested lists, checking every operator."""
    tokens = _TOKEN.findall(text)
    stack: list[list] = [[]]
    for token in tokens:
        if token == "(":
            stack.append([])
        elif token == ")":
            if len(stack) < 2:
                raise InvalidInput(f"expression {text!r} has unbalanced parentheses")
            done = stack.pop()
            if not done or not isinstance(done[0], str) or not _is_operator(done[0]):
                raise InvalidInput(f"expression {text!r} is neither arithmetic nor rio-calc with known operators; "
                                   f"expected e.g. (B08 - B04) / (B08 + B04)")
            stack[-1].append(done)
        else:
            stack[-1].append(token)
    if len(stack) != 1 or len(stack[0]) != 1:
        raise InvalidInput(f"expression {text!r} is not one valid expression; expected e.g. (B08 - B04) / (B08 + B04)")
    return stack[0][0]


def letter_names(names: list[str]) -> dict[str, str]:
    """gdal-calc letters A, B, ... for a list of names, in order."""
    return {chr(ord("A") + index): name for index, name in enumerate(names[:26])}


def check_format(fmt: str | None, expression: Any, allow_python: bool, where: str) -> None:
    """Refuse formats this processor will not run; `python` only with the user's explicit consent."""
    fmt = (fmt or "").lower()
    if fmt == PYTHON_FORMAT:
        if not allow_python:
            raise InvalidInput(
                f"{where} is a python expression ({expression!r}); refusing to run code from an MLM Item "
                "(pass --allow-python-expressions to trust it)"
            )
        return
    if fmt not in SAFE_FORMATS:
        raise InvalidInput(f"{where} has expression format {fmt!r}; expected one of {', '.join(SAFE_FORMATS)} "
                           "or python (with --allow-python-expressions)")


def python_callable(reference: str) -> Callable[..., Any]:
    """Import `package.module:function` (or dotted path); only called after the user allowed it."""
    import importlib

    module_name, _, attr = reference.partition(":") if ":" in reference else reference.rpartition(".")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidInput(f"python expression {reference!r} cannot be imported: {exc}") from exc
    return target
