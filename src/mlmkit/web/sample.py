"""Try the model being described on sample imagery: the smoke check of `validate --against` (inference/smoke.py)
on a few tiles of one STAC Item, and what came out as a picture (the class map over the imagery, or the boxes
predict draws) with the smoke check's lines and warnings.

The sample Item comes from a user: it is read as untrusted input. Its document is at most MAX_ITEM_BYTES, read
from http(s) or s3 only; its assets must be URLs (relative hrefs resolve against the document's URL; a local
path is refused), so the server reads nothing of its own disk for a user. The run itself happens in a child
process with a time limit, on at most TRY_TILES tiles, one at a time per server (`TrialGate`). Hosts on loopback,
private, link-local or reserved addresses are refused (the server must not become a door into its own network)
unless the operator allows them with $MLMKIT_DESCRIBE_TRY_PRIVATE=1; the document is read without redirects.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pystac
import rasterio
import requests
from PIL import Image
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.vrt import WarpedVRT

from mlmkit.errors import (InvalidArgument, InvalidInput, InvalidMetadata, LimitExceeded, MlmkitError, ModelRefused,
                           ModelRunError, NotRunnable, RemoteFailure, UnsafePath)
from mlmkit.inference.outputs.base import grey_stretch, quicklook_shape, save_png
from mlmkit.stac.objstore import open_store
from mlmkit.stac.read import is_url, json_type, resolve_href

SCHEMES = ("http", "https", "s3")
MAX_ITEM_BYTES = 1 << 20
TRY_TILES = 4
TIMEOUT_ENV = "MLMKIT_DESCRIBE_TRY_TIMEOUT_S"
PRIVATE_ENV = "MLMKIT_DESCRIBE_TRY_PRIVATE"
DEFAULT_TIMEOUT_S = 180
FETCH_TIMEOUT_S = 30
_RGB = ("red", "green", "blue")
_UNRUN = 0.45  # the imagery where no tile ran is dimmed, so the tiles that ran stand out


@dataclass
class Trial:
    """What the smoke check gave: its lines and warnings, the picture (PNG) and the class legend (RRGGBB, name)."""

    lines: list[str]
    warnings: list[str]
    picture: bytes
    legend: list[tuple[str, str]] = field(default_factory=list)
    tiles: int = 0

    @property
    def picture_url(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.picture).decode("ascii")


class TrialGate:
    """One smoke check at a time on a server: a second one is refused at once rather than queued."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            raise LimitExceeded("a smoke check is already running on this server; expected one at a time (try again "
                                "in a minute)")
        try:
            yield
        finally:
            self._lock.release()


def number_from_env(name: str, default: float, what: str) -> float:
    """The operator's setting $`name` as a number (`default` when unset); `what` says what it sets."""
    text = os.environ.get(name, str(default))
    try:
        return float(text)
    except ValueError as exc:
        raise InvalidArgument(f"{name}={text!r} is not a number; expected {what}") from exc


def timeout_from_env() -> float:
    return number_from_env(TIMEOUT_ENV, DEFAULT_TIMEOUT_S, "the smoke check's limit in seconds")


def _too_large(where: str) -> LimitExceeded:
    return LimitExceeded(f"the sample Item {where} is larger than {MAX_ITEM_BYTES >> 20} MiB; expected one STAC Item "
                         "document")


def _public_host(url: str, where: str) -> None:
    """Refuse an http(s) URL whose host resolves to a loopback, private, link-local or reserved address, unless
    the operator allowed them ($MLMKIT_DESCRIBE_TRY_PRIVATE=1); s3 URLs go to the operator's own endpoint."""
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or os.environ.get(PRIVATE_ENV) == "1":
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname or "", parts.port or 443)}
    except (OSError, UnicodeError) as exc:
        raise RemoteFailure(f"{where}: cannot resolve the host of {url} ({exc}); expected a URL this server can "
                            "reach") from exc
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise UnsafePath(f"{where}: {url} is on a non-public address ({ip}); expected imagery on a public host "
                             f"(the operator allows others with {PRIVATE_ENV}=1)")


def _fetch(url: str) -> bytes:
    """The document at an http(s) or s3 URL, read up to MAX_ITEM_BYTES."""
    scheme = urlparse(url).scheme
    if scheme not in SCHEMES:
        raise UnsafePath(f"sample imagery {url!r} is not an http(s) or s3 URL; expected the URL of a STAC Item, e.g. "
                         "https://example.org/items/scene.json")
    _public_host(url, "sample imagery")
    try:
        if scheme == "s3":
            import obstore

            store, key = open_store(url)
            if obstore.head(store, key)["size"] > MAX_ITEM_BYTES:
                raise _too_large(f"at {url}")
            return bytes(obstore.get(store, key).bytes())
        with requests.get(url, timeout=FETCH_TIMEOUT_S, stream=True, allow_redirects=False) as response:
            response.raise_for_status()
            if response.is_redirect:
                raise RemoteFailure(f"the sample Item at {url} redirects to {response.headers.get('location')!r}; "
                                    "expected the Item's own URL (redirects are not followed)")
            body = b""
            for chunk in response.iter_content(1 << 16):
                body += chunk
                if len(body) > MAX_ITEM_BYTES:
                    raise _too_large(f"at {url}")
            return body
    except MlmkitError:
        raise
    except Exception as exc:  # requests' and obstore's failures: the server or the network said no
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise RemoteFailure(f"cannot read the sample Item at {url}: {detail}; expected a STAC Item this server "
                            "can read") from exc


def sample_item(url: str, uploaded: bytes | None = None) -> dict:
    """The sample Item (from `url`, or an uploaded document), its asset hrefs made absolute URLs; refused where
    it is no Item, too large, or names a local file."""
    if uploaded is not None:
        if len(uploaded) > MAX_ITEM_BYTES:
            raise _too_large("uploaded")
        body, base, where = uploaded, None, "the uploaded sample Item"
    elif url:
        body, base, where = _fetch(url), url, url
    else:
        raise InvalidArgument("no sample imagery given; expected the URL of a STAC Item (or an Item JSON file) whose "
                           "assets the server can read")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidMetadata(f"{where} is not JSON ({' '.join(str(exc).split())[:120]}); expected a STAC Item") \
            from exc
    if not isinstance(data, dict) or data.get("type") != "Feature":
        kind = data.get("type") if isinstance(data, dict) else f"a JSON {json_type(data)}"
        raise InvalidMetadata(f"{where} is {kind!r}, not a STAC Item; expected one Item (type Feature) to try the "
                              "model on")
    assets = data.get("assets")
    if not isinstance(assets, dict) or not assets:
        raise InvalidMetadata(f"{where} has no assets; expected an Item whose assets hold the imagery")
    for key, asset in assets.items():
        href = asset.get("href") if isinstance(asset, dict) else None
        if not isinstance(href, str):
            raise InvalidMetadata(f"{where}: asset {key!r} has no string href; expected an object with an href")
        absolute = resolve_href(href, base) if base else href
        if not is_url(absolute) or urlparse(absolute).scheme not in SCHEMES:
            raise UnsafePath(f"{where}: asset {key!r} is {href!r}, not an http(s) or s3 URL; expected imagery the "
                             "server reads from a URL (an uploaded Item needs absolute URLs)")
        _public_host(absolute, f"{where}: asset {key!r}")
        asset["href"] = absolute
    data["links"] = []  # nothing beyond the Item is followed
    return data


def try_model(model: Path, item: dict, work: Path, timeout_s: float, tiles: int = TRY_TILES) -> Trial:
    """The smoke check of the MLM catalog at `model` on the sample Item, run in a child process under a time
    limit; `work` is an empty directory for its files."""
    item_path = work / "sample-item.json"
    item_path.write_text(json.dumps(item))
    answer = work / "trial.json"
    command = [sys.executable, "-m", "mlmkit.web.sample", str(model), str(item_path), str(work), str(tiles)]
    try:
        # its temporary files under `work` too: a child killed at the limit leaves nothing elsewhere
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False,
                             env={**os.environ, "TMPDIR": str(work)})
    except subprocess.TimeoutExpired as exc:
        raise LimitExceeded(f"the smoke check ran past this server's limit of {timeout_s:g} s; expected a sample "
                            "Item whose imagery the server reads quickly (a smaller scene, or one nearer)") from exc
    if not answer.is_file():
        last = (run.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise ModelRunError(f"the smoke check stopped without an answer ({last}); expected it to finish")
    result = json.loads(answer.read_text())
    if "error" in result:
        raise InvalidInput(result["error"])
    return Trial(result["lines"], result["warnings"], (work / "picture.png").read_bytes(),
                 [tuple(entry) for entry in result["legend"]], result["tiles"])


def _rgb_sources(item: pystac.Item) -> list[tuple[str, int]]:
    """(href, band index) of the Item's red, green and blue bands (by eo:bands common name), else its first band."""
    found: dict[str, tuple[str, int]] = {}
    first = None
    for asset in item.assets.values():
        bands = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
        if first is None and "data" in (asset.roles or ["data"]):
            first = (asset.href, 1)
        for index, band in enumerate(bands):
            name = band.get("common_name") if isinstance(band, dict) else None
            if name in _RGB and name not in found:
                found[name] = (asset.href, index + 1)
    if all(name in found for name in _RGB):
        return [found[name] for name in _RGB]
    return [first] if first else []


def background(item: pystac.Item, crs, bounds, shape: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) 8-bit imagery of the Item on the result's grid at `shape`, each band stretched 2-98 %."""
    height, width = shape
    transform = from_bounds(*bounds, width, height)
    bands = []
    for href, index in _rgb_sources(item):
        with rasterio.open(href) as source, WarpedVRT(source, crs=crs, transform=transform, width=width,
                                                       height=height, resampling=Resampling.bilinear) as vrt:
            values = vrt.read(index).astype(np.float32)
            values[vrt.read_masks(index) == 0] = np.nan
            bands.append(grey_stretch(values))
    if not bands:
        return np.full((height, width, 3), 128, np.uint8)
    return np.stack(bands * (3 // len(bands)), axis=-1)


def class_picture(cog: Path, item: pystac.Item, names: dict[int, str]) -> tuple[Image.Image, list[tuple[str, str]]]:
    """The class map in its class colours (the COG's colour table, as predict wrote it) over the imagery, which
    shows dimmed where no tile ran; and the legend."""
    with rasterio.open(cog) as dataset:
        shape = quicklook_shape(dataset.width, dataset.height)
        classes = dataset.read(1, out_shape=shape, resampling=Resampling.nearest)
        colours = dataset.colormap(1)
        nodata, crs, bounds = dataset.nodata, dataset.crs, dataset.bounds
    rgb = (background(item, crs, bounds, shape) * _UNRUN).astype(np.uint8)
    for value in np.unique(classes).tolist():
        if value != nodata:
            rgb[classes == value] = colours[int(value)][:3]
    legend = [("%02X%02X%02X" % colours[value][:3], name) for value, name in sorted(names.items())
              if value in colours]
    return Image.fromarray(rgb, mode="RGB"), legend


def _picture(out: Path, report, item: pystac.Item) -> tuple[Path, list[tuple[str, str]]]:
    """The picture of the first output: a class map over the imagery, else predict's own quicklook (boxes drawn on
    the imagery, or values in grey)."""
    summary = report.outputs[0]
    cogs = sorted(out.glob(f"*/{summary.key}.tif"))
    target = out / "picture.png"
    if summary.kind != "detections" and cogs:
        with rasterio.open(cogs[0]) as dataset:
            has_classes = bool(dataset.colorinterp) and dataset.colorinterp[0].name == "palette"
        if has_classes:
            picture, legend = class_picture(cogs[0], item, summary.names)
            return save_png(picture, target), legend
    looks = sorted(out.glob("*/quicklook.png"))
    if not looks:
        raise ModelRefused(f"{summary.key} ({summary.kind}) has no picture; expected a class map, values or boxes")
    with Image.open(looks[0]) as look:
        return save_png(look, target), []


def _work(model: str, item_path: Path, out: Path, tiles: int) -> dict:
    """In the child process: the smoke run (predict's files kept under `out`/result) and the picture."""
    from mlmkit.inference.smoke import smoke_run
    from mlmkit.stac.read import read_stac

    try:
        report = smoke_run(model, str(item_path), tiles, output=out / "result")
        if not report.outputs:
            raise NotRunnable("the model ran on no tile of the sample Item (all nodata?); expected imagery with data")
        item = read_stac(item_path)
        _, legend = _picture(out / "result", report, item)
        (out / "result" / "picture.png").replace(out / "picture.png")
    except MlmkitError as exc:
        return {"error": f"the smoke check failed on the sample imagery: {exc}"}
    return {"lines": report.lines(), "warnings": report.warnings, "legend": legend,
            "tiles": max(summary.tiles for summary in report.outputs)}


def main(argv: list[str]) -> int:
    model, item_path, work, tiles = argv
    answer = _work(model, Path(item_path), Path(work), int(tiles))
    (Path(work) / "trial.json").write_text(json.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
