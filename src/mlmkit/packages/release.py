"""Release copies of the CWL application packages, as the EOAP packages' CI makes them.

A released package must run the image it was tested with: every `dockerPull` is pinned to
`image@sha256:<digest>` and required (the development packages only hint it), `s:softwareVersion` is the
release version, and the training package records
the released package URLs in the MLM Items it writes. MLM Items already published can have their
runtime assets pointed at the released packages too.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlmkit import __version__
from mlmkit.stac.atomic import atomic_output_dir
from mlmkit.stac.checksum import file_checksum
from mlmkit.errors import InvalidArgument, InvalidMetadata, NotFound
from mlmkit.mlm.spec import is_container_asset
from mlmkit.stac.read import is_url, resolve_href, walk

SOURCE_REPOSITORY = "https://github.com/mlmkit/mlmkit"  # the packages' s:codeRepository
INFERENCE_IMAGE = f"mlmkit:{__version__}"  # the image the inference package runs, as its dockerPull names it
PINNED = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
PACKAGES = {"mlm:inference-runtime": "inference.cwl", "mlm:training-runtime": "training.cwl"}
# Workflow inputs of the training package whose default becomes the released URL of a package.
RUNTIME_INPUTS = {"inference_cwl": "inference.cwl", "training_cwl": "training.cwl"}


def source_code_url(version: str = __version__) -> str:
    """The repository at the release tag of `version`: the code of every model mlmkit trains."""
    return f"{SOURCE_REPOSITORY}/tree/v{version}"


def packages_dir() -> Path:
    """Where the CWL packages live: MLMKIT_CWL_DIR, else the copy inside the installed package (`mlmkit/cwl`, which
    in a checkout links to the top-level cwl/), links resolved."""
    return Path(os.environ.get("MLMKIT_CWL_DIR") or str(importlib.resources.files("mlmkit") / "cwl")).resolve()


@dataclass(frozen=True)
class ReleaseSpec:
    """What a release is: its version, where its CWL files will be served, and the pinned images."""

    version: str
    base_url: str
    images: dict[str, str]  # dockerPull as written in cwl/ -> image@sha256:<digest>

    def url(self, filename: str) -> str:
        return self.base_url.rstrip("/") + "/" + filename


def parse_image_pin(text: str) -> tuple[str, str]:
    """'mlmkit:0.2.0=ghcr.io/org/mlmkit@sha256:<64 hex>' -> (local reference, pinned reference)."""
    local, sep, pinned = text.partition("=")
    if not sep or not local or not PINNED.match(pinned):
        raise InvalidArgument(f"image pin {text!r} is malformed; expected TAG=REPOSITORY@sha256:<64 hex digits>")
    return local, pinned


def _load_cwl(path: Path) -> dict:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidMetadata(f"cannot read CWL package {path}: {exc}") from exc
    if not isinstance(document, dict) or "$graph" not in document:
        raise InvalidMetadata(f"{path} has no $graph; expected a packed CWL application package")
    return document


def _pin_images(document: dict, images: dict[str, str], path: Path) -> None:
    """Every DockerRequirement names its pinned image and becomes a requirement: the development packages
    hint it (so they also run with `cwltool --no-container`), a release must run the image it names."""
    for process in document["$graph"]:
        hints = process.get("hints", [])
        for entry in [*process.get("requirements", []), *hints]:
            if entry.get("class") != "DockerRequirement":
                continue
            image = entry.get("dockerPull")
            if image not in images:
                raise InvalidArgument(f"{path}: no pinned image for {image!r} (process {process.get('id')}); "
                                      f"expected an image pin {image}=REPOSITORY@sha256:DIGEST in images")
            entry["dockerPull"] = images[image]
        docker = [entry for entry in hints if entry.get("class") == "DockerRequirement"]
        if docker:
            process["hints"] = [entry for entry in hints if entry not in docker]
            process["requirements"] = [*docker, *process.get("requirements", [])]
            if not process["hints"]:
                del process["hints"]


def _set_runtime_defaults(document: dict, spec: ReleaseSpec) -> None:
    for process in document["$graph"]:
        if process.get("class") != "Workflow":
            continue
        for name, filename in RUNTIME_INPUTS.items():
            if isinstance(process.get("inputs"), dict) and name in process["inputs"]:
                process["inputs"][name]["default"] = spec.url(filename)


def released_package(source: Path, spec: ReleaseSpec) -> dict:
    """The release copy of one CWL package as a document."""
    document = _load_cwl(source)
    document["s:version"] = document["s:softwareVersion"] = spec.version  # eozilla/MAAP read one, ZOO the other
    _pin_images(document, spec.images, source)
    _set_runtime_defaults(document, spec)
    return document


def maap_package(document: dict) -> dict:
    """The copy NASA MAAP deploys: its deploy code loads the file with cwltool without a '#' target, which picks
    the process named `main`; MAAP also reads the first step's tool as the algorithm, so that tool becomes `main`."""
    document = copy.deepcopy(document)
    workflow = next(p for p in document["$graph"] if p.get("class") == "Workflow")
    first = next(iter(workflow["steps"].values()))
    tool_id = first["run"].lstrip("#")
    for process in document["$graph"]:
        if process.get("id") == tool_id:
            process["id"] = "main"
    for step in workflow["steps"].values():
        if step.get("run") == f"#{tool_id}":
            step["run"] = "#main"
    return document


def _dump(document: dict, target: Path) -> None:
    target.write_text(yaml.safe_dump(document, sort_keys=False, width=110), encoding="utf-8")


def write_release(cwl_dir: Path, outdir: Path, spec: ReleaseSpec, overwrite: bool = False) -> list[Path]:
    """OUTDIR/<package>.cwl for every package, OUTDIR/maap/<package>.cwl (the copies NASA MAAP loads) and
    OUTDIR/ogc/<process id>.json describing each."""
    from mlmkit.packages.ogc import process_description

    written = []
    with atomic_output_dir(outdir, overwrite, [cwl_dir]) as work:
        (work / "ogc").mkdir()
        (work / "maap").mkdir()
        for filename in PACKAGES.values():
            document = released_package(cwl_dir / filename, spec)
            target = work / filename
            _dump(document, target)
            _dump(maap_package(document), work / "maap" / filename)
            description = process_description(target)
            (work / "ogc" / f"{description['id']}.json").write_text(json.dumps(description, indent=2) + "\n")
            written.append(Path(outdir) / filename)
    return written


def point_runtime_assets(catalog: str, release_dir: Path, spec: ReleaseSpec) -> int:
    """Set the runtime CWL assets of the MLM Items in a catalog to the released URLs and their container
    assets to the pinned images; returns how many assets changed.

    file:checksum/file:size, where present, become those of the released file; a copy of a package kept
    beside the Item is removed, since the Item no longer refers to it.
    """
    if is_url(catalog):
        raise InvalidArgument(f"{catalog} is a URL; expected a local model catalog whose Items can be rewritten")
    released = {role: release_dir / name for role, name in PACKAGES.items()}
    missing = [str(file) for file in released.values() if not file.is_file()]
    if missing:
        raise NotFound(f"{', '.join(missing)} not found; expected the packages written by the release first")
    file_fields = {role: {"file:checksum": file_checksum(file), "file:size": file.stat().st_size}
                   for role, file in released.items()}
    changed = 0
    for node in walk(catalog):
        if node.kind != "Feature":
            continue
        path = Path(node.href)
        data = copy.deepcopy(node.data)
        stale: list[Path] = []
        pointed = 0
        for asset in data.get("assets", {}).values():
            if is_container_asset(asset) and asset.get("href") in spec.images:
                asset["href"] = spec.images[asset["href"]]
                pointed += 1
                continue
            role = next((r for r in asset.get("roles", []) if r in PACKAGES), None)
            if role is None:
                continue
            local = None if is_url(asset["href"]) else Path(resolve_href(asset["href"], str(path)))
            asset["href"] = spec.url(PACKAGES[role])
            asset.update({key: value for key, value in file_fields[role].items() if key in asset})
            if local is not None and local.is_file() and local.parent == path.parent:
                stale.append(local)
            pointed += 1
        if pointed:
            temp = path.with_suffix(".json.partial")
            temp.write_text(json.dumps(data, indent=2), encoding="utf-8")
            os.replace(temp, path)
            for file in stale:
                file.unlink()
        changed += pointed
    return changed
