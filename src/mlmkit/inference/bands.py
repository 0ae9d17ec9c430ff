"""Find, for every band a model asks for by name, the imagery asset and band index that holds it.

Imagery describes its bands in several ways (`eo:bands`, `raster:bands`, STAC 1.1 `bands`, or one
band per asset named by the asset key); MLM names bands by `name`, sometimes by common name. The
resolver tries the exact name first, then the asset key, then the common name, so that a model
trained on `B04` runs on imagery that calls it `red` and vice versa. An asset that is one array of a Zarr
store (EOPF Sentinel Items: `B02_10m` -> `<product>.zarr/measurements/reflectance/r10m/b02`) is listed
and addressed like a one-band GeoTIFF; the assets for whole groups and for the store are not bands.
"""

from __future__ import annotations

from dataclasses import dataclass

import pystac

from mlmkit.errors import InvalidInput
from mlmkit.stac.read import asset_href
from mlmkit.stac.zarr_arrays import is_array_asset

_BAND_LISTS = ("bands", "eo:bands", "raster:bands")
_RASTER_TYPES = ("image/tiff", "image/jp2", "image/vnd.stac.geotiff", "application/x-geotiff", "image/png")
_RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt", ".img")


@dataclass(frozen=True)
class BandRef:
    """One imagery band: the name the model uses for it, where it lives, its declared nodata."""

    name: str
    asset: str
    href: str
    index: int  # 1-based, as rasterio counts
    nodata: float | None = None


@dataclass(frozen=True)
class _ImageryBand:
    asset: str
    index: int
    names: frozenset[str]
    common_names: frozenset[str]
    nodata: float | None
    label: str  # as the item spells it, for messages


def _is_raster(asset: pystac.Asset) -> bool:
    roles = set(asset.roles or ())
    if roles & {"thumbnail", "overview", "metadata", "mlm:model"} and "data" not in roles:
        return False
    media = (asset.media_type or "").lower()
    return (any(kind in media for kind in _RASTER_TYPES) or asset.href.lower().split("?")[0].endswith(_RASTER_SUFFIXES)
            or is_array_asset(asset.href, asset.media_type, tuple(roles)))


def _nodata(entries: list[dict]) -> float | None:
    for entry in entries:
        value = entry.get("nodata")
        if isinstance(value, (int, float)):
            return float(value)
        if value == "nan":
            return float("nan")
    return None


def _asset_bands(key: str, asset: pystac.Asset) -> list[_ImageryBand]:
    fields = asset.extra_fields
    lists = [fields.get(name) or [] for name in _BAND_LISTS]
    count = max(map(len, lists), default=0)
    bands = []
    for position in range(count):
        entries = [lst[position] for lst in lists if position < len(lst) and isinstance(lst[position], dict)]
        spelled = {str(e["name"]) for e in entries if e.get("name")}
        common = {str(e[k]) for e in entries for k in ("common_name", "eo:common_name") if e.get(k)}
        names = {name.lower() for name in spelled} | ({key.lower()} if count == 1 else set())
        label = "/".join(sorted(spelled | common)) or key
        bands.append(_ImageryBand(key, position + 1, frozenset(names), frozenset(c.lower() for c in common),
                                  _nodata(entries), label))
    if not bands:
        bands.append(_ImageryBand(key, 1, frozenset({key.lower()}), frozenset(), None, key))
    return bands


def imagery_bands(item: pystac.Item) -> list[_ImageryBand]:
    """Every band of every raster asset of an item, data assets first."""
    assets = sorted(item.assets.items(), key=lambda kv: "data" not in (kv[1].roles or ()))
    return [band for key, asset in assets if _is_raster(asset) for band in _asset_bands(key, asset)]


def describe_bands(bands: list[_ImageryBand]) -> str:
    """A short list of what an item offers, for error messages."""
    labels = [band.asset if band.label == band.asset else f"{band.asset}[{band.index}]={band.label}" for band in bands]
    return ", ".join(labels) or "no raster assets"


class BandResolver:
    """Resolve MLM band names against one imagery item."""

    def __init__(self, item: pystac.Item, band_info: dict[str, dict] | None = None) -> None:
        self.item = item
        self.bands = imagery_bands(item)
        self.band_info = {name.lower(): info for name, info in (band_info or {}).items()}

    def _href(self, asset: str) -> str:
        return asset_href(self.item, asset)

    def _ref(self, name: str, band: _ImageryBand) -> BandRef:
        return BandRef(name, band.asset, self._href(band.asset), band.index, band.nodata)

    def resolve(self, name: str, where: str) -> BandRef:
        """The imagery band for an MLM band name; the error lists what the item has."""
        wanted = name.lower()
        common = str(self.band_info.get(wanted, {}).get("common_name", "") or
                     self.band_info.get(wanted, {}).get("eo:common_name", "")).lower()
        for matches in (
            lambda b: wanted in b.names,
            lambda b: wanted in b.common_names,
            lambda b: bool(common) and (common in b.common_names or common in b.names),
        ):
            found = [band for band in self.bands if matches(band)]
            if found:
                return self._ref(name, found[0])
        raise InvalidInput(
            f"{where} needs band {name!r}, which item {self.item.id!r} does not have; "
            f"the item has: {describe_bands(self.bands)}"
        )

    def resolve_asset(self, input_name: str, channels: int | None) -> list[BandRef]:
        """Bands of the asset named like a band-less input (e.g. a DEM), all of them in order."""
        wanted = input_name.lower()
        found = [band for band in self.bands if band.asset.lower() == wanted]
        if not found:
            raise InvalidInput(
                f"input {input_name!r} names no bands, so an imagery asset with key {input_name!r} is needed; "
                f"item {self.item.id!r} has: {', '.join(sorted({b.asset for b in self.bands})) or 'no raster assets'}"
            )
        if channels is not None and len(found) > 1 and len(found) != channels:
            raise InvalidInput(f"input {input_name!r} takes {channels} channels but asset {found[0].asset!r} "
                               f"has {len(found)} bands; expected equal counts")
        refs = [BandRef(f"{input_name}#{band.index}", band.asset, self._href(band.asset), band.index, band.nodata)
                for band in found]
        if channels and len(refs) == 1 and channels > 1:
            refs = [BandRef(f"{input_name}#{i}", found[0].asset, refs[0].href, i, found[0].nodata)
                    for i in range(1, channels + 1)]
        return refs
