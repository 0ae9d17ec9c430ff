"""The errors of the CWL package wing (packages/) are named by what went wrong and speak of arguments: no bare
InvalidInput where errors.py has a closer class, and no CLI flag in a message (a library caller has none)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import mlmkit.packages

PACKAGES = Path(mlmkit.packages.__file__).parent
# What no closer class fits: a tool or extra not installed, an output or log that cannot be written.
BARE_ALLOWED = ("pip install", "cannot write")
FLAG = re.compile(r"(?<![\w-])--[a-z]")


def raises() -> list[tuple[str, str, str]]:
    """(where, error class, the message's literal text) of every `raise Error(...)` under packages/."""
    found = []
    for path in sorted(PACKAGES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                text = "".join(part.value for arg in node.exc.args[:1] for part in ast.walk(arg)
                               if isinstance(part, ast.Constant) and isinstance(part.value, str))
                found.append((f"{path.relative_to(PACKAGES)}:{node.lineno}", node.exc.func.id, text))
    return found


def test_the_scan_sees_the_raise_sites() -> None:
    found = raises()
    assert len(found) > 40 and {"InvalidArgument", "InvalidMetadata", "NotFound", "UnsafePath"} <= {c for _, c, _ in found}


def test_no_bare_invalid_input_where_a_closer_class_fits() -> None:
    bare = [(where, text) for where, cls, text in raises()
            if cls == "InvalidInput" and not any(allowed in text for allowed in BARE_ALLOWED)]
    assert bare == []


def test_messages_name_no_cli_flags() -> None:
    flags = [(where, text) for where, _, text in raises()
             if FLAG.search(text.replace("cwltool --validate", "cwltool's validation"))]
    assert flags == []
