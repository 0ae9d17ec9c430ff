"""ADES-style staging: STAC documents by URL into a local catalog directory, and a result catalog out to S3.

`stage_in` is what an EO Application Package's stage-in step does: it copies STAC Items (or whole
catalogs) and their assets into a directory with `catalog.json`, so a containerised tool reads only
local files. Every staged document keeps a `canonical` link to the URL it came from, so what a tool
derives from it can name the published document, not the staging directory (see mlmkit.catalog.provenance).
`stage_out` uploads a self-contained result catalog to S3 and returns the URL of its `catalog.json`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, count
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlmkit.stac.atomic import atomic_output_dir
from mlmkit.stac.checksum import verify_checksum
from mlmkit.errors import InvalidArgument, InvalidInput, InvalidMetadata, RemoteFailure, UnsafePath
from mlmkit.stac.fetch import download
from mlmkit.stac.safepath import safe_name
from mlmkit.stac.read import Node, confine, input_folder, is_url, node_files, published_self, resolve_href, walk

HIERARCHY = ("self", "root", "parent", "child", "item", "collection")
_NEVER_READ = ("self", "root", "parent")  # links a staged document drops or points at the staged tree
_DOCUMENT_TYPES = {"Feature": "application/geo+json", "Catalog": "application/json", "Collection": "application/json"}


@dataclass
class _Staged:
    """One document to write: where it came from, its JSON, and where it goes in the staged directory."""

    node: Node
    path: Path


def _canonical(node: Node) -> str:
    """Where the document is published: its absolute self URL, else the URL it was read from, else (a local
    input staged for a run, e.g. into a container's view) the file it was copied from."""
    return published_self(node.data) or (node.href if is_url(node.href) else os.path.realpath(node.href))


def _layout(nodes: list[Node], root_href: str | None, outdir: Path) -> dict[str, Path]:
    """Local path of every document: mirrored under the root document's folder where it lies there,
    else <kind>/<id>/<id>.json; never outside `outdir`."""
    paths: dict[str, Path] = {}
    base = root_href.rsplit("/", 1)[0] if root_href else None
    for node in nodes:
        if node.href == root_href:
            paths[node.href] = outdir / "catalog.json"
            continue
        target = None
        if base and node.href.startswith(base + "/"):
            relative = unquote(node.href[len(base) + 1:]) if is_url(node.href) else node.href[len(base) + 1:]
            candidate = (outdir / relative).resolve()
            if candidate.is_relative_to(outdir.resolve()) and candidate.suffix == ".json":
                target = outdir / candidate.relative_to(outdir.resolve())
        if target is None or target in paths.values():
            ident = safe_name(str(node.data.get("id", "")), "document")
            target = outdir / ("items" if node.kind == "Feature" else "collections") / ident / f"{ident}.json"
            if target in paths.values():
                raise InvalidMetadata(f"{node.href}: id {node.data.get('id')!r} is staged twice; expected unique ids")
        paths[node.href] = target
    return paths


def _check_sources(tree: list[Node], keys: set[str]) -> None:
    """Refuse, before anything is written, a staged copy that would take a file from this machine's disk
    (`confine`): the assets to be copied, and in documents read from a URL every asset and every link the
    staged copy keeps (a sloppy local `self` of a published document is dropped, not refused)."""
    folder = input_folder(tree[0].href)
    for node in tree:
        remote = is_url(node.href)
        assets = (node.data.get("assets") or {}) if node.kind == "Feature" else {}
        for key, asset in assets.items():
            if remote or not keys or key in keys:
                confine(resolve_href(asset["href"], node.href), node.href, folder, f"asset {key!r} of {node.href}")
        for link in node.data.get("links", []) if remote else []:
            if link["rel"] not in _NEVER_READ:
                confine(resolve_href(link["href"], node.href), node.href, folder, f"{link['rel']} link of {node.href}")


def _taken_names(paths: Iterable[Path], outdir: Path) -> dict[Path, set[str]]:
    """The names in each staged folder that documents (and the folders holding them) already take."""
    taken: dict[Path, set[str]] = {}
    for path in [outdir / "catalog.json", *paths]:
        parts = path.relative_to(outdir).parts
        for depth, name in enumerate(parts):
            taken.setdefault(outdir.joinpath(*parts[:depth]), set()).add(name)
    return taken


def _free_name(name: str, key: str, taken: set[str]) -> str:
    """`name`, else `<key>-<name>`, else `<key>-<n>-<name>`: the first not taken in its folder, which it then takes."""
    prefix = safe_name(key, "asset")
    free = next(c for c in chain([name, f"{prefix}-{name}"], (f"{prefix}-{n}-{name}" for n in count(2)))
                if c not in taken)
    taken.add(free)
    return free


def _fetch(href: str, target: Path) -> None:
    """Copy a file or stream a URL to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_url(href):
        download(href, target)
        return
    try:
        shutil.copyfile(href, target)
    except OSError as exc:
        raise InvalidMetadata(f"cannot copy {href}: {exc.strerror}; expected an asset href to a readable file") from exc


def _stage_assets(staged: _Staged, wanted: set[str], taken: dict[Path, set[str]]) -> None:
    """Download the item's assets beside it (all, or the `wanted` keys) under names not `taken` in that folder,
    and point them at the copies."""
    for key, asset in (staged.node.data.get("assets") or {}).items():
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
            continue
        source = resolve_href(asset["href"], staged.node.href)
        if wanted and key not in wanted:
            asset["href"] = source
            continue
        name = safe_name(os.path.basename(unquote(urlsplit(source).path)), safe_name(key, "asset"))
        name = _free_name(name, key, taken.setdefault(staged.path.parent, set()))
        target = staged.path.parent / name
        _fetch(source, target)
        if isinstance(asset.get("file:checksum"), str):
            verify_checksum(target, asset["file:checksum"])
        asset["href"] = f"./{name}"


def _relink(staged: _Staged, paths: dict[str, Path]) -> None:
    """Hierarchy links between staged documents become relative; every other href becomes absolute."""
    links = []
    for link in staged.node.data.get("links", []):
        if not isinstance(link, dict) or not isinstance(link.get("href"), str) or link.get("rel") == "self":
            continue
        target = resolve_href(link["href"], staged.node.href)
        if link.get("rel") in HIERARCHY and target in paths:
            link = {**link, "href": os.path.relpath(paths[target], staged.path.parent)}
        elif link.get("rel") in ("root", "parent", "child", "item"):
            continue  # a document that was not staged: the staged tree has its own hierarchy
        else:
            link = {**link, "href": target}
        links.append(link)
    canonical = _canonical(staged.node)
    if canonical and not any(link.get("rel") == "canonical" for link in links):
        links.append({"rel": "canonical", "href": canonical, "type": _DOCUMENT_TYPES.get(staged.node.kind)})
    staged.node.data["links"] = links


def _root_catalog(items: list[_Staged], children: list[_Staged], outdir: Path) -> dict:
    root = outdir / "catalog.json"
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    links += [{"rel": "item", "href": f"./{s.path.relative_to(outdir)}", "type": "application/geo+json"} for s in items]
    links += [{"rel": "child", "href": f"./{s.path.relative_to(outdir)}", "type": "application/json"} for s in children]
    for staged in items + children:
        up = os.path.relpath(root, staged.path.parent)
        staged.node.data["links"] = [link for link in staged.node.data["links"] if link.get("rel") not in ("root", "parent")]
        staged.node.data["links"] += [{"rel": "root", "href": up, "type": "application/json"},
                                      {"rel": "parent", "href": up, "type": "application/json"}]
    return {"type": "Catalog", "stac_version": "1.0.0", "id": "staged", "description":
            "STAC documents staged for a run; each keeps a canonical link to where it is published.", "links": links}


def stage_in(hrefs: list[str], outdir: Path, asset_keys: Iterable[str] = (), overwrite: bool = False) -> Path:
    """Copy the STAC Items/Catalogs/Collections at `hrefs` (URLs or paths) and their assets into
    `outdir`, a directory with catalog.json; returns `outdir`. `asset_keys` limits the assets
    downloaded (the others keep absolute hrefs to where they are)."""
    if not hrefs:
        raise InvalidArgument("nothing to stage; expected one or more STAC Item/Catalog URLs")
    keys = set(asset_keys)
    trees = [list(walk(href, confined=True)) for href in hrefs]
    for tree in trees:
        _check_sources(tree, keys)
    nodes = [node for tree in trees for node in tree]
    with atomic_output_dir(outdir, overwrite, inputs=[*hrefs, *node_files(nodes)]) as work:
        single_tree = len(trees) == 1 and trees[0][0].kind != "Feature"
        paths = _layout(nodes, trees[0][0].href if single_tree else None, work)
        staged = [_Staged(node, paths[node.href]) for node in nodes]
        taken = _taken_names(paths.values(), work)
        for entry in staged:
            entry.path.parent.mkdir(parents=True, exist_ok=True)
            if entry.node.kind == "Feature":
                _stage_assets(entry, keys, taken)
            _relink(entry, paths)
        if not single_tree:
            tops = [staged[sum(len(t) for t in trees[:n])] for n in range(len(trees))]
            root = _root_catalog([s for s in tops if s.node.kind == "Feature"],
                                 [s for s in tops if s.node.kind != "Feature"], work)
            (work / "catalog.json").write_text(json.dumps(root, indent=2), encoding="utf-8")
        for entry in staged:
            entry.path.write_text(json.dumps(entry.node.data, indent=2), encoding="utf-8")
    return Path(outdir)


def _split_s3_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise InvalidArgument(f"{url!r} is not an S3 URL; expected s3://BUCKET/PREFIX")
    return parts.netloc, parts.path.strip("/")


def _upload_plan(catalog_dir: Path) -> list[tuple[Path, str]]:
    """(file, media type) for every file of a self-contained catalog: assets first, then Items, then
    Collections/Catalogs, catalog.json last, so a reader never finds a document whose files are missing."""
    root = catalog_dir.resolve()
    assets: dict[Path, str] = {}
    documents: list[tuple[Path, str]] = []
    for node in walk(catalog_dir):
        path = Path(node.href).resolve()
        documents.append((path, _DOCUMENT_TYPES.get(node.kind, "application/json")))
        for key, asset in (node.data.get("assets") or {}).items():
            href = asset.get("href") if isinstance(asset, dict) else None
            if not isinstance(href, str) or is_url(href):
                continue
            file = Path(resolve_href(href, node.href)).resolve()
            if not file.is_relative_to(root):
                raise UnsafePath(f"asset {key!r} of {node.href} is {href}, which lies outside {catalog_dir}; "
                                 "expected a self-contained catalog (mlmkit merge writes one)")
            if not file.is_file():
                raise InvalidMetadata(f"asset {key!r} of {node.href} is {href}, which is not a file; expected a "
                                      "self-contained catalog (mlmkit merge writes one)")
            assets[file] = asset.get("type") or "application/octet-stream"
    for path, _ in documents:
        if not path.is_relative_to(root):
            raise UnsafePath(f"{path} is linked from {catalog_dir} but lies outside it; "
                             "expected a self-contained catalog")
    ordered = sorted(documents, key=lambda entry: (entry[1] != "application/geo+json", -len(entry[0].parts)))
    return list(assets.items()) + ordered


def stage_out(catalog_dir: Path, s3_url: str, endpoint_url: str | None = None) -> str:
    """Upload the catalog in `catalog_dir` under `s3_url` (s3://bucket/prefix); returns the URL of its catalog.json.

    Credentials and region come from the usual AWS settings (environment, config files);
    `endpoint_url` (or AWS_ENDPOINT_URL) points at another S3 service, e.g. MinIO.
    """
    try:
        import boto3
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as exc:
        raise InvalidInput("stage-out needs boto3; expected `pip install mlmkit[stage]`") from exc
    bucket, prefix = _split_s3_url(s3_url)
    catalog_dir = Path(catalog_dir)
    plan = _upload_plan(catalog_dir)
    client = boto3.client("s3", endpoint_url=endpoint_url or None)
    root = catalog_dir.resolve()
    for path, media_type in plan:
        key = "/".join(filter(None, [prefix, path.relative_to(root).as_posix()]))
        try:
            client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": media_type})
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            reason = str(exc).rsplit(": An error occurred ", 1)[-1]
            raise RemoteFailure(f"cannot upload {path.relative_to(root)} to s3://{bucket}/{key}: {reason}; expected an "
                                "existing bucket writable with the AWS credentials in the environment") from exc
    return f"s3://{bucket}/{prefix + '/' if prefix else ''}catalog.json"
