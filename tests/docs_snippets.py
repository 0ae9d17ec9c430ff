"""The code blocks of a docs page, so that a test can run every command and snippet the page shows.

Convention for docs/*.md and README.md: fenced ```bash (or ```console, or ```sh) and ```python blocks are run by
a test, in order; ```json and ```yaml blocks that are STAC/MLM documents or describe specs are validated by a
test; output and illustrations that are not run go in ```text blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})[ ]*(?P<lang>[\w+-]*)[^\n]*$")


@dataclass(frozen=True)
class CodeBlock:
    lang: str
    text: str
    line: int  # 1-based line of the opening fence, for messages

    def where(self, page: Path) -> str:
        return f"{page}:{self.line}"


def code_blocks(page: Path, *langs: str) -> list[CodeBlock]:
    """The fenced code blocks of `page` (only those in `langs`, when given), in order."""
    blocks: list[CodeBlock] = []
    lines = page.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, indent, start = opening["fence"], len(opening["indent"]), index
        body: list[str] = []
        index += 1
        while index < len(lines) and not re.match(rf"^[ ]*{re.escape(fence[0])}{{{len(fence)},}}[ ]*$", lines[index]):
            body.append(lines[index][indent:] if not indent or lines[index][:indent].isspace() else lines[index].lstrip())
            index += 1
        index += 1
        lang = opening["lang"].lower()
        if not langs or lang in langs:
            blocks.append(CodeBlock(lang, "\n".join(body) + "\n", start + 1))
    return blocks


def commands(block: CodeBlock) -> list[str]:
    """The shell commands of a bash/console block: `$ ` prompts stripped, comments and output lines dropped,
    backslash continuations joined."""
    out: list[str] = []
    pending = ""
    console = block.lang == "console"
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if console and not pending:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    return out
