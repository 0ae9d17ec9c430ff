"""What a local engine does before its command runs: every catalog input as a local catalog directory.

A self-contained local catalog directory goes in as it is; an Item file, a catalog whose files lie elsewhere,
or anything given by URL is staged (`mlmkit.packages.stage.stage_in`) into the engine's work directory, as an
ADES's stage-in step would: the containerised tools then read only local files.
"""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Any

from mlmkit.errors import InvalidInput
from mlmkit.mlm.spec import ModelSpec, read_model
from mlmkit.packages.engines.base import CatalogRef
from mlmkit.packages.stage import stage_in
from mlmkit.stac.read import is_url, node_files, resolve_href, walk
from mlmkit.stac.safepath import is_within

# What a model's catalog must carry into the package: the model and its external weights, not its checkpoint.
MODEL_ROLES = ("mlm:model", "mlm:weights")


def _self_contained(directory: Path) -> bool:
    """Whether every document and local asset of the catalog in `directory` lies inside it (what a container sees)."""
    return all(is_within(path, directory) for path in node_files(walk(directory)))


def _catalog_dir(source: str) -> Path | None:
    """The directory a local input already is, when it is a self-contained catalog directory."""
    if is_url(source):
        return None
    path = Path(source)
    directory = path if path.is_dir() else path.parent if path.name == "catalog.json" else None
    if directory is None or not (directory / "catalog.json").is_file() or not _self_contained(directory):
        return None
    return directory.absolute()


def model_directory(source: str, spec: ModelSpec, scratch: Path) -> Path:
    """The directory holding the MLM Item's catalog; a copy when the Item is remote or not in a catalog of its own."""
    root = spec.item.get_single_link("root")
    if spec.self_href and not is_url(spec.self_href) and root is not None:
        catalog = Path(resolve_href(root.href, spec.self_href))
        directory = catalog.parent
        if catalog.name == "catalog.json" and catalog.is_file() and _self_contained(directory):
            try:
                if read_model(directory).item.id == spec.item.id:
                    return directory.absolute()
            except InvalidInput:
                pass  # the root catalog holds other MLM Items too: copy this one
    keys = [key for key, asset in spec.item.assets.items() if set(asset.roles or ()) & set(MODEL_ROLES)]
    return stage_in([spec.self_href or source], scratch / "model", keys)


def local_job_order(inputs: dict[str, Any], scratch: Path) -> dict:
    """The CWL job order with every `CatalogRef` a local Directory: as it is, or staged under `scratch`."""
    staged = count()  # numbers the staged input catalogs in order

    def directory(ref: CatalogRef) -> dict:
        if ref.model:
            path = model_directory(ref.href, read_model(ref.href), scratch)
        else:
            path = _catalog_dir(ref.href) or stage_in([ref.href], scratch / "inputs" / f"input-{next(staged)}")
        return {"class": "Directory", "path": str(path)}

    def value(entry: Any) -> Any:
        if isinstance(entry, CatalogRef):
            return directory(entry)
        if isinstance(entry, list):
            return [value(item) for item in entry]
        return entry
    return {name: value(entry) for name, entry in inputs.items()}
