"""A model's STAC catalog: catalog.json -> collection -> MLM Item, with the model file, its external weights,
extra files and CWL runtimes copied beside the Item, validated before it appears.

`describe` (an existing model) and `train` (a model it just exported) both end here; `mlm.build` makes the Item.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pystac

from mlmkit.catalog.validate import validate_source
from mlmkit.errors import InvalidArgument, InvalidMetadata, NotFound, UnsafePath
from mlmkit.mlm.build import build_model_item, described_kind, file_fields, read_described_file
from mlmkit.mlm.describe import metadata_from_spec
from mlmkit.mlm.foreign import foreign_spec
from mlmkit.mlm.lint import enforce, lint_model
from mlmkit.mlm.spec import spec_from_item
from mlmkit.runtimes.artifacts import file_kind
from mlmkit.runtimes.registry import runtime_for
from mlmkit.stac.atomic import atomic_output_dir
from mlmkit.stac.bands import EO_SCHEMA_URL
from mlmkit.stac.read import is_url
from mlmkit.stac.safepath import layout_catalog, local_file_inside
from mlmkit.stac.write import save_catalog

ITEM_ASSETS_SCHEMA_URL = "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json"
CWL_MEDIA_TYPE = "application/cwl+yaml"
RUNTIME_ROLES = ("mlm:training-runtime", "mlm:inference-runtime")


def _runtime_asset(role: str, href: str, item_dir: Path) -> pystac.Asset:
    if role not in RUNTIME_ROLES:
        raise InvalidArgument(f"runtime role {role!r} is unknown; expected one of {list(RUNTIME_ROLES)}")
    if not is_url(href):
        source = Path(href)
        if not source.is_file():
            raise NotFound(f"CWL file {source} for {role} does not exist; expected a CWL workflow file or URL")
        shutil.copy2(source, item_dir / source.name)
        href = f"./{source.name}"
    kind = role.split(":", 1)[1].split("-")[0]
    return pystac.Asset(href=href, media_type=CWL_MEDIA_TYPE, title=f"CWL {kind} application package",
                        roles=[role, "runtime", "workflow"])


def _external_weights(model_path: Path) -> list[tuple[str, Path]]:
    """The ONNX external-data files (location as written, real path), refused unless each lies in the model's
    directory: the locations come from the file and must not make describe copy e.g. /etc/passwd."""
    files = []
    for name in runtime_for(file_kind(model_path, described_kind(model_path))).external_files(model_path):
        where = f"ONNX external data location {name!r} of {model_path}"
        if os.path.isabs(name) or ".." in Path(name).parts:
            raise UnsafePath(f"{where} leaves the model's directory; expected a relative path beside the model")
        files.append((name, local_file_inside(model_path.parent / name, model_path.parent, where)))
    return files


def _add_external_weights(item: pystac.Item, model_path: Path, item_dir: Path) -> None:
    """ONNX weights kept outside the .onnx file are copied beside it and listed as assets."""
    weights = _external_weights(model_path)
    for index, (name, source) in enumerate(weights):
        target = item_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        key = "model-weights" if len(weights) == 1 else f"model-weights-{index + 1}"
        item.add_asset(key, pystac.Asset(
            href=f"./{name}", media_type="application/octet-stream", title=f"ONNX external data {name}",
            roles=["mlm:weights"],
            extra_fields=file_fields(target),
        ))


def _collection_for(item: pystac.Item) -> pystac.Collection:
    start = item.common_metadata.start_datetime or item.datetime
    end = item.common_metadata.end_datetime or item.datetime
    return pystac.Collection(
        id=f"{item.id}-collection", description=f"The model {item.properties.get('mlm:name', item.id)} and its files.",
        extent=pystac.Extent(pystac.SpatialExtent([item.bbox]), pystac.TemporalExtent([[start, end]])),
        license=item.properties.get("license", "proprietary"),
    )


_SUMMARISED = ("mlm:name", "mlm:architecture", "mlm:tasks", "mlm:framework", "mlm:framework_version",
               "mlm:accelerator", "eo:bands")
_ASSET_DEFINITION = ("title", "type", "roles", "mlm:artifact_type")


def _summarise(collection: pystac.Collection, item: pystac.Item) -> None:
    """What the collection's items are (summaries) and which assets each has (item_assets), for search and
    for clients that read the collection only."""
    props = item.properties
    summaries = {key: list(props[key]) if isinstance(props[key], list) else [props[key]]
                 for key in _SUMMARISED if props.get(key) is not None}
    collection.summaries = pystac.Summaries(summaries)
    collection.extra_fields["item_assets"] = {
        key: {field: value for field, value in asset.to_dict().items() if field in _ASSET_DEFINITION}
        for key, asset in item.assets.items()}
    # Not declaring MLM here: its v1.5.2 collection schema wants every summary to be an object, which rejects
    # the plain value lists STAC summaries are (the official MLM collection example declares no MLM either).
    collection.stac_extensions = [ITEM_ASSETS_SCHEMA_URL] + ([EO_SCHEMA_URL] if "eo:bands" in summaries else [])


def write_model_catalog(
    item: pystac.Item,
    model_path: Path,
    outdir: Path,
    extra_assets: dict[str, tuple[Path, pystac.Asset]] | None = None,
    runtime: dict[str, str] | None = None,
    overwrite: bool = False,
    schema_dir: Path | None = None,
) -> Path:
    """Write catalog.json -> collection -> item + model copy, validated before it appears at `outdir`.

    `extra_assets` (file, asset) are copied beside the model; an asset without file:size and file:checksum gets
    them (one made by model_asset has them already). `runtime` maps mlm:inference-runtime /
    mlm:training-runtime to a CWL file (copied) or URL.
    """
    item = item.clone()
    inputs = [model_path, *(path for path, _ in (extra_assets or {}).values()), *(runtime or {}).values()]
    with atomic_output_dir(outdir, overwrite, inputs) as work:
        catalog = pystac.Catalog(id=f"{item.id}-catalog", description=f"STAC catalog of the model {item.id}.")
        collection = _collection_for(item)
        catalog.add_child(collection)
        collection.add_item(item)
        layout_catalog(catalog, work)
        item_dir = Path(item.get_self_href()).parent
        item_dir.mkdir(parents=True, exist_ok=True)
        model_key = next((key for key, asset in item.assets.items() if "mlm:model" in (asset.roles or [])), None)
        if model_key is None:
            raise InvalidMetadata(f"item {item.id!r} has no asset with role mlm:model; expected one from build_model_item")
        shutil.copy2(model_path, item_dir / Path(model_path).name)
        item.assets[model_key].href = f"./{Path(model_path).name}"
        _add_external_weights(item, Path(model_path), item_dir)
        for key, (path, asset) in (extra_assets or {}).items():
            target = item_dir / Path(path).name
            shutil.copy2(path, target)
            copy = asset.clone()
            copy.href = f"./{target.name}"
            if not {"file:size", "file:checksum"} <= copy.extra_fields.keys():  # model_asset() has them already
                copy.extra_fields.update(file_fields(target))
            item.add_asset(key, copy)
        for role, href in (runtime or {}).items():
            item.add_asset(role.split(":", 1)[1], _runtime_asset(role, href, item_dir))
        _summarise(collection, item)
        save_catalog(catalog)
        problems = validate_source(str(work / "catalog.json"), schema_dir)
        if problems:
            shown = "; ".join(str(p).replace(str(work), str(outdir)) for p in problems[:3])
            raise InvalidMetadata(f"the model catalog would be invalid ({len(problems)} problems): {shown}")
    return Path(outdir).absolute() / "catalog.json"


def describe_model(model_path: str | Path, outdir: str | Path, spec: dict[str, Any], overwrite: bool = False,
                   schema_dir: Path | None = None) -> Path:
    """Write the validated MLM catalog of a model file; returns its catalog.json. Fields that GeoDeep or geoai
    stored with the model are read first (`mlm.foreign`; `spec` overrides them); what is probably wrong in the
    metadata (`mlm.lint`) is said as warnings, or refused before anything is written."""
    model_path = Path(model_path)
    meta, runtime = metadata_from_spec(model_path, {**foreign_spec(model_path), **spec})
    graph = read_described_file(model_path, meta)
    item = build_model_item(model_path, meta, graph)
    enforce(lint_model(spec_from_item(item), graph), "the described Item")
    return write_model_catalog(item, model_path, Path(outdir), runtime=runtime, overwrite=overwrite,
                               schema_dir=schema_dir)
