"""Lineage hrefs that still mean something after the run.

`derived_from` and `source` links and `processing:expression` name the documents a result came from. A
run often reads them from places that vanish when it ends: an ADES or cwltool stage-in directory
(`/var/lib/cwl/stg<uuid>/...`), a runner's temporary directory (`/tmp/...`), or mlmkit's own
`.partial` directory before it is renamed into place. The rules, in order:

1. an explicit href given by the user (`--source-href`, `--model-href`, `--training-data-href`, or the CWL
   packages' `source_hrefs`/`model_href`/`training_data_href` inputs): a URL, or a `file:` URI naming a lasting
   local file (what `mlmkit run` gives for local inputs, as no engine shows a tool where they came from);
2. the input's canonical href: a `canonical` link, an absolute http(s) `self` link, or the URL it was read from;
3. a local path: relative when the target moves with the output (both outside temporary directories,
   or inside the same one), absolute when only the output is temporary (e.g. a runner's output directory);
4. nothing, when the target lies in a temporary or staging directory the output does not share.
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import pystac

from mlmkit.errors import LineageWarning
from mlmkit.stac.read import is_url, json_path, resolve_href

LINEAGE_RELS = ("derived_from", "source")
# Where a user gives the URLs of a prediction's inputs read from staging copies (warnings and Items name it).
PREDICT_HREF_INPUTS = ("the CWL package's source_hrefs/model_href inputs, or the source_item_hrefs/model_href "
                       "arguments of predict")
# A cwltool/Toil staging directory, mlmkit's unfinished (.partial) or replaced (.old) outputs.
_STAGING_NAME = re.compile(r"^(stg[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|\..+\.(partial|old))$")
# /tmp as well as $TMPDIR: a CWL runner gives each tool a TMPDIR of its own inside /tmp.
SYSTEM_TEMP = Path("/tmp")
# Where containerised CWL runners put a tool's output directory.
_RUNNER_DIRS = (Path("/var/spool/cwl"),)
_STAGING_TEXT = re.compile(r"/stg[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}(/|$)|\.partial(/|$)|/var/(lib|spool)/cwl/")


def is_file_uri(href: str) -> bool:
    """Whether `href` is a `file:` URI: a lasting local file named explicitly, kept as it is."""
    return urlsplit(str(href)).scheme == "file"


def _absolute(href: str, base: str | None) -> str:
    """`resolve_href`, leaving `file:` URIs as they are."""
    return href if is_file_uri(href) else resolve_href(href, base)


def names_document(href: str, obj: pystac.STACObject) -> bool:
    """Whether `href` is the document of `obj` itself: its last path segment, less `.json`, is the object's id
    (`.../<id>/<id>.json` of a static catalog, `.../items/<id>` of a STAC API)."""
    last = urlsplit(href).path.rstrip("/").rsplit("/", 1)[-1]
    return (last[:-5] if last.endswith(".json") else last) == obj.id


def transient_root(path: str | Path, temp_dir: bool = True) -> Path | None:
    """The innermost temporary or staging directory holding `path` (symlinks resolved), or None.

    Two paths with the same root are deleted, or renamed, together: a link between them stays true.
    `temp_dir=False` counts only staging and unfinished-output directories, not the system's temporary one.
    A path reached through a staging directory (`stg<uuid>`, symlinks) is the real file when that lasts
    (cwltool --no-container links the inputs themselves), else the staging directory is its root: Toil links
    into its own cache, which lies beside the tool's output but is not part of it.
    """
    temps = {Path(os.path.realpath(tempfile.gettempdir())), SYSTEM_TEMP} if temp_dir else set()
    real_root = _innermost_root(Path(os.path.realpath(path)), temps)
    staged = _innermost_root(Path(os.path.abspath(path)), set())
    return real_root if staged is None or real_root is None else staged


def _innermost_root(real: Path, temps: set[Path]) -> Path | None:
    """The innermost ancestor of `real` that is a staging directory or a child of one of `temps`."""
    root = None
    for depth in range(1, len(real.parts) + 1):
        ancestor = Path(*real.parts[:depth])
        if ancestor.parent in temps or ancestor in _RUNNER_DIRS or _STAGING_NAME.match(ancestor.name):
            root = ancestor
    return root


def _moved(path: str, moved: tuple[Path, Path] | None) -> str:
    """`path` where it will be once the directory moved[0] has become moved[1]."""
    if moved is None:
        return path
    work, final = (str(Path(p).absolute()) for p in moved)
    absolute = os.path.abspath(path)
    if absolute == work or absolute.startswith(work + os.sep):
        return final + absolute[len(work):]
    return path


def href_for(target: str, document: str | Path, moved: tuple[Path, Path] | None = None) -> str | None:
    """How the document that will live at `document` refers to `target` (a URL or a local path), or None.

    `moved` = (work, final): paths under `work` are taken where they will be once it is renamed to `final`.
    """
    if is_url(target) or is_file_uri(target):
        return target
    target, document = _moved(target, moved), _moved(str(document), moved)
    real_target, real_document = os.path.realpath(target), os.path.realpath(document)
    target_root, document_root = transient_root(target), transient_root(document)
    if target_root is None and document_root is not None:
        return real_target  # the output moves on (a runner's outdir); the input stays where it is
    if target_root != document_root:
        return None
    relative = os.path.relpath(real_target, os.path.dirname(real_document)).replace(os.sep, "/")
    return relative if relative.startswith("../") else f"./{relative}"


def canonical_href(obj: pystac.STACObject) -> str | None:
    """Where a document is published: its `canonical` link (a URL, or the original file of a local input staged
    for a run, while it exists), else the URL it was read from."""
    for link in obj.links:
        target = str(link.target if isinstance(link.target, str) else "")
        if link.rel == "canonical" and (is_url(target) or (os.path.isabs(target) and os.path.isfile(target))):
            return target
    self_href = obj.get_self_href()
    return self_href if self_href and is_url(self_href) else None


def rebase(href: str, given: str, published: str) -> str:
    """The URL of `href`, a document reached from the input document `given`, when `given` is published at
    `published`: the same relative place under it. Both hrefs are absolute, as `document_href` gives them."""
    if href == given:
        return published
    if is_url(given):
        relative = posixpath.relpath(urlsplit(href).path, posixpath.dirname(urlsplit(given).path))
    else:
        relative = os.path.relpath(os.path.abspath(href), os.path.dirname(os.path.abspath(given))).replace(os.sep, "/")
    return urljoin(published, relative)


def reference(obj: pystac.STACObject, given: str | None = None, published: str | None = None,
              named: Sequence[str] = ()) -> str | None:
    """The best href of an input document: the one of `named` or `published` that names `obj` (an Item's own
    URL given for a catalog staged around it), else rebased on `published` as the URL of the input `given`,
    else its canonical href, else where it was read from."""
    self_href = obj.get_self_href()
    own = [href for href in (*named, published) if href and names_document(href, obj)]
    if own:
        return own[0]
    if published and given and self_href:
        return rebase(self_href, given, published)
    return canonical_href(obj) or self_href


def lineage_href(target: str | None, document: str | Path, what: str, option: str,
                 moved: tuple[Path, Path] | None = None) -> str | None:
    """`href_for`, with a warning naming `what` was left out and the `option` that would give its URL."""
    href = href_for(target, document, moved) if target else None
    if href is None:
        warnings.warn(f"{what} was read from {target or 'an unnamed location'}, a temporary or staging path; "
                      f"no link to it written (give its URL with {option})", LineageWarning, stacklevel=2)
    return href


def note_missing_lineage(item: pystac.Item, what: list[str], option: str) -> None:
    """Say in the Item's `processing:lineage` why it has no link to `what`: a reader sees the gap is known."""
    note = (f"No derived_from link to {', '.join(what)}: read from a temporary or staging copy that does not "
            f"outlast the run, and no URL was given for it (give one with {option}).")
    lineage = item.properties.get("processing:lineage")
    item.properties["processing:lineage"] = f"{lineage} {note}" if isinstance(lineage, str) and lineage else note


def lineage_findings(data: dict, href: str | None) -> list[tuple[str, str]]:
    """Lineage hrefs of a local document that do not resolve or point into temporary/staging directories."""
    findings: list[tuple[str, str]] = []
    if not href or is_url(href):
        return findings
    links = data.get("links") if isinstance(data.get("links"), list) else []
    targets = [(json_path("links", n, "href"), link["href"]) for n, link in enumerate(links)
               if isinstance(link, dict) and link.get("rel") in LINEAGE_RELS and isinstance(link.get("href"), str)]
    properties = data.get("properties") if isinstance(data.get("properties"), dict) else data
    expression = _model_expression(properties)
    if expression is not None:
        targets.append((json_path("properties", "processing:expression", "expression"), expression))
    for path, target in targets:
        if is_url(target):
            continue
        resolved = url2pathname(urlsplit(target).path) if is_file_uri(target) else resolve_href(target, href)
        if not os.path.exists(resolved):
            findings.append((path, f"{target} does not resolve ({resolved} does not exist); expected a file "
                                   "shipped with the catalog, a path that outlives the run, or a URL"))
        elif (staging := transient_root(resolved, temp_dir=False)) is not None \
                and not os.path.realpath(href).startswith(f"{staging}{os.sep}"):
            findings.append((path, f"{target} points into a temporary or staging directory; expected the "
                                   "input's canonical URL (or a file shipped with the catalog)"))
    lineage = properties.get("processing:lineage")
    if isinstance(lineage, str) and _STAGING_TEXT.search(lineage):
        findings.append((json_path("properties", "processing:lineage"),
                         "names a temporary or staging path; expected hrefs that outlive the run"))
    return findings


def _model_expression(properties: dict) -> str | None:
    """The model href of a `stac-mlm` processing:expression in an Item's properties."""
    expression = properties.get("processing:expression")
    if isinstance(expression, dict) and expression.get("format") == "stac-mlm" \
            and isinstance(expression.get("expression"), str):
        return expression["expression"]
    return None


def absolute_lineage(item: pystac.Item) -> None:
    """Resolve the item's relative lineage hrefs against where it lies now, before it is moved elsewhere."""
    base = item.get_self_href()
    for link in item.links:
        if link.rel in LINEAGE_RELS:
            link.target = link.get_absolute_href() or link.href
    expression = _model_expression(item.properties)
    if expression is not None:
        item.properties["processing:expression"]["expression"] = _absolute(expression, base)


def settle_lineage(item: pystac.Item, document: str | Path, moved: tuple[Path, Path] | None, option: str) -> None:
    """Rewrite the item's lineage hrefs (absolute or URLs) for the item at `document` by the rules above;
    a link to a vanishing target is removed with a warning and a note in the Item, the model expression with it."""
    missing = []
    for link in [link for link in item.links if link.rel in LINEAGE_RELS]:
        href = lineage_href(link.get_absolute_href(), document, link.title or link.rel, option, moved)
        if href is None:
            item.links.remove(link)
            missing.append(link.title or link.rel)
        else:
            link.target = href
    if missing:
        note_missing_lineage(item, missing, option)
    expression = _model_expression(item.properties)
    if expression is not None:
        href = href_for(_absolute(expression, item.get_self_href()), document, moved)
        if href is None:
            del item.properties["processing:expression"]
        else:
            item.properties["processing:expression"]["expression"] = href
