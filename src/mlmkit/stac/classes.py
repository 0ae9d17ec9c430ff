"""Class objects of the classification extension that stay valid when a reader moves them to v2.0.0.

mlmkit declares classification v1.1.0 (what MLM v1.5.2 refers to: `value` and `description` required), and pystac
migrates that declaration to v2.0.0 on read, whose `name` must match `^[0-9A-Za-z-_]+$`. So a class given as
"Dense vegetation" is written with the machine name `dense-vegetation` and keeps its words as `title`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from mlmkit.errors import InvalidInput, InvalidMetadata

NAME_PATTERN = re.compile(r"^[0-9A-Za-z_-]+$")
_NOT_NAME = re.compile(r"[^0-9a-z_-]+")


def machine_name(text: str, value: int | float) -> str:
    """`text` where v2.0.0 accepts it as a name, else its lower-case words joined by '-' (`class-<value>` if none)."""
    if NAME_PATTERN.fullmatch(text):
        return text
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_NAME.sub("-", ascii_text.lower()).strip("-") or f"class-{value:g}"


def machine_names(classes: Sequence[tuple[int | float, str]], where: str,
                  error: type[InvalidInput] = InvalidMetadata) -> list[str]:
    """The machine name of each (value, name) pair; two classes whose names become the same one are refused."""
    names = [machine_name(name, value) for value, name in classes]
    seen: dict[str, str] = {}
    for (_, name), machine in zip(classes, names):
        if machine in seen:
            raise error(f"{where}: classes {seen[machine]!r} and {name!r} both become the class name {machine!r}; "
                        "expected class names that differ in more than case, spaces or punctuation")
        seen[machine] = name
    return names


def class_objects(classes: Iterable[dict], where: str, error: type[InvalidInput] = InvalidMetadata) -> list[dict]:
    """`classification:classes` entries from dicts with value and name (title, description, color_hint, nodata
    optional): machine names, the given words as title, a description always (v1.1.0 requires one)."""
    entries = list(classes)
    names = machine_names([(entry["value"], str(entry["name"])) for entry in entries], where, error)
    out = []
    for entry, name in zip(entries, names):
        title = entry.get("title") or (str(entry["name"]) if name != entry["name"] else None)
        written = {"value": entry["value"], "name": name}
        if title:
            written["title"] = str(title)
        written["description"] = str(entry.get("description") or title or name)
        written.update({key: entry[key] for key in ("color_hint", "nodata") if entry.get(key)})
        out.append(written)
    return out
