"""Which imagery band feeds each band a model asks for, from STAC metadata alone.

Imagery describes its bands in several ways (`eo:bands`, `raster:bands`, STAC 1.1 `bands`, or one band per
asset named by the asset key); MLM names bands by `name`, sometimes by common name, sometimes with the
wavelengths they were trained on. A model band is looked for, in this order, by
1. its name (or the key of a one-band asset), 2. the imagery's common name equal to that name,
3. the model band's common name, 4. an imagery centre wavelength inside that common name's range in the EO
extension's table, 5. an imagery centre wavelength inside the model band's own wavelengths.
The first step that finds a band decides; several candidates there are told apart by wavelength when both
sides state one, else the first (data assets first) is taken and the others are named.

An asset that is one array of a Zarr store (EOPF Sentinel Items: `B02_10m` ->
`<product>.zarr/measurements/reflectance/r10m/b02`) is listed and addressed like a one-band GeoTIFF; the assets
for whole groups and for the store are not bands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pystac

from mlmkit.stac.zarr_arrays import is_array_asset

BAND_LISTS = ("bands", "eo:bands", "raster:bands")
_RASTER_TYPES = ("image/tiff", "image/jp2", "image/vnd.stac.geotiff", "application/x-geotiff", "image/png")
_RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt", ".img")
_RESOLUTION_KEYS = ("gsd", "eo:gsd", "spatial_resolution", "raster:spatial_resolution")

# The EO extension's common band names and their ranges in micrometres (eo v1.1.0, "Common Band Names").
COMMON_NAMES: dict[str, tuple[float, float]] = {
    "coastal": (0.40, 0.45), "blue": (0.45, 0.50), "green": (0.50, 0.60), "red": (0.60, 0.70),
    "yellow": (0.58, 0.62), "pan": (0.50, 0.70), "rededge": (0.70, 0.79), "nir": (0.75, 1.00),
    "nir08": (0.75, 0.90), "nir09": (0.85, 1.05), "cirrus": (1.35, 1.40), "swir16": (1.55, 1.75),
    "swir22": (2.10, 2.30), "lwir": (10.5, 12.5), "lwir11": (10.5, 11.5), "lwir12": (11.5, 12.5),
}


@dataclass(frozen=True)
class ImageryBand:
    """One band of an imagery asset as its metadata describes it (None: not stated)."""

    asset: str
    index: int  # 1-based, as rasterio counts
    names: frozenset[str]  # lower case; the asset key too for a one-band asset
    common_names: frozenset[str]
    label: str  # as the item spells it, for messages
    nodata: float | None = None
    wavelength: float | None = None  # centre, micrometres
    fwhm: float | None = None
    data_type: str | None = None
    gsd: float | None = None
    minimum: float | None = None  # statistics
    maximum: float | None = None
    scale: float | None = None
    offset: float | None = None

    @property
    def where(self) -> str:
        return self.asset if self.label == self.asset else f"{self.asset}[{self.index}]={self.label}"


@dataclass(frozen=True)
class Binding:
    """The imagery band that feeds a model band, and why that one."""

    band: str
    source: ImageryBand
    how: str
    others: tuple[str, ...] = ()  # other bands the deciding step also found


def _number(*values: object) -> float | None:
    for value in values:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _field(entries: list[dict], *keys: str) -> object:
    return next((entry[key] for entry in entries for key in keys if entry.get(key) is not None), None)


def _nodata(entries: list[dict]) -> float | None:
    value = _field(entries, "nodata", "raster:nodata")
    return float("nan") if value == "nan" else _number(value)


def is_raster(asset: pystac.Asset) -> bool:
    """Whether an asset holds raster data a model can read (not a thumbnail, metadata or a model)."""
    roles = set(asset.roles or ())
    if roles & {"thumbnail", "overview", "metadata", "mlm:model"} and "data" not in roles:
        return False
    media = (asset.media_type or "").lower()
    return (any(kind in media for kind in _RASTER_TYPES) or asset.href.lower().split("?")[0].endswith(_RASTER_SUFFIXES)
            or is_array_asset(asset.href, asset.media_type, tuple(roles)))


def raster_asset_bands(item: pystac.Item, key: str, asset: pystac.Asset) -> list[ImageryBand] | None:
    """The bands of a GeoTIFF/JP2-like asset, from its band lists (an unlisted asset is one band)."""
    if not is_raster(asset):
        return None
    fields = asset.extra_fields
    lists = [fields.get(name) or [] for name in BAND_LISTS]
    lists = [entries for entries in lists if isinstance(entries, list)]
    count = max(map(len, lists), default=0)
    asset_gsd = _number(*(fields.get(k) for k in _RESOLUTION_KEYS), item.properties.get("gsd"))
    bands = []
    for position in range(count):
        entries = [lst[position] for lst in lists if position < len(lst) and isinstance(lst[position], dict)]
        spelled = {str(e["name"]) for e in entries if e.get("name")}
        common = {str(e[k]) for e in entries for k in ("common_name", "eo:common_name") if e.get(k)}
        names = {name.lower() for name in spelled} | ({key.lower()} if count == 1 else set())
        stats = _field(entries, "statistics", "raster:statistics")
        stats = stats if isinstance(stats, dict) else {}
        bands.append(ImageryBand(
            key, position + 1, frozenset(names), frozenset(c.lower() for c in common),
            "/".join(sorted(spelled | common)) or key, _nodata(entries),
            _number(_field(entries, "center_wavelength", "eo:center_wavelength")),
            _number(_field(entries, "full_width_half_max", "eo:full_width_half_max")),
            str(_field(entries, "data_type", "raster:data_type") or "") or None,
            _number(_field(entries, *_RESOLUTION_KEYS), asset_gsd),
            _number(stats.get("minimum")), _number(stats.get("maximum")),
            _number(_field(entries, "scale", "raster:scale")), _number(_field(entries, "offset", "raster:offset"))))
    return bands or [ImageryBand(key, 1, frozenset({key.lower()}), frozenset(), key, gsd=asset_gsd)]


def imagery_bands(item: pystac.Item) -> list[ImageryBand]:
    """Every band of every readable asset of an item, data assets first."""
    assets = sorted(item.assets.items(), key=lambda kv: "data" not in (kv[1].roles or ()))
    return [band for key, asset in assets for band in raster_asset_bands(item, key, asset) or []]


def describe_bands(bands: list[ImageryBand]) -> str:
    """A short list of what an item offers, for messages."""
    return ", ".join(band.where for band in bands) or "no raster assets"


def common_name(name: str, info: Mapping[str, object]) -> str | None:
    """The model band's common name: stated in its band object, or its name when that is a common name."""
    stated = info.get("common_name") or info.get("eo:common_name")
    if stated:
        return str(stated).lower()
    return name.lower() if name.lower() in COMMON_NAMES else None


def _um(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + " µm"


def _inside(band: ImageryBand, low: float, high: float) -> bool:
    return band.wavelength is not None and low <= band.wavelength <= high


def _own_range(centre: float, width: float | None, band: ImageryBand) -> bool:
    """Whether an imagery band's centre lies within the model band's FWHM (or the imagery band's, around it),
    or, with no width stated, in the same narrowest common-name range."""
    if band.wavelength is None:
        return False
    widths = [w for w in (width, band.fwhm) if w]
    if widths:
        return abs(band.wavelength - centre) <= max(widths) / 2
    shared = [r for r in COMMON_NAMES.values() if r[0] <= centre <= r[1] and r[0] <= band.wavelength <= r[1]]
    return bool(shared)


class BandMatcher:
    """Bind model band names to the bands of one imagery item (metadata only, nothing is opened)."""

    def __init__(self, item: pystac.Item, band_info: Mapping[str, dict] | None = None,
                 bands: list[ImageryBand] | None = None) -> None:
        """`bands`: the item's `imagery_bands`, when the caller has them already (one item, many models)."""
        self.item = item
        self.bands = imagery_bands(item) if bands is None else bands
        self.band_info = {name.lower(): info for name, info in (band_info or {}).items()}

    def _steps(self, name: str) -> list[tuple[Callable[[ImageryBand], bool], Callable[[ImageryBand], str]]]:
        wanted = name.lower()
        info = self.band_info.get(wanted, {})
        common = common_name(name, info)
        steps = [(lambda b: wanted in b.names, lambda b: "name"),
                 (lambda b: wanted in b.common_names, lambda b: f"common name {wanted!r}")]
        if common:
            steps.append((lambda b: common in b.common_names or common in b.names,
                          lambda b: f"common name {common!r}"))
        if common in COMMON_NAMES:
            low, high = COMMON_NAMES[common]
            steps.append((lambda b: _inside(b, low, high),
                          lambda b: f"centre wavelength {_um(b.wavelength)} in {common} ({low:g}-{high:g} µm)"))
        centre = _number(info.get("center_wavelength"), info.get("eo:center_wavelength"))
        width = _number(info.get("full_width_half_max"), info.get("eo:full_width_half_max"))
        if centre is not None:
            steps.append((lambda b: _own_range(centre, width, b),
                          lambda b: f"centre wavelength {_um(b.wavelength)} near the model band's {_um(centre)}"))
        return steps

    def bind(self, name: str) -> Binding | None:
        """The imagery band for a model band name, or None when no step finds one."""
        info = self.band_info.get(name.lower(), {})
        centre = _number(info.get("center_wavelength"), info.get("eo:center_wavelength"))
        if centre is None and common_name(name, info) in COMMON_NAMES:
            centre = sum(COMMON_NAMES[common_name(name, info)]) / 2  # nearest the common name's middle
        for matches, why in self._steps(name):
            found = [band for band in self.bands if matches(band)]
            if found:
                if centre is not None and all(band.wavelength is not None for band in found):
                    found.sort(key=lambda band: abs(band.wavelength - centre))
                return Binding(name, found[0], why(found[0]), tuple(band.where for band in found[1:]))
        return None

    def missing(self, name: str, where: str) -> str:
        """The one line saying a model band has no match, and what the item has."""
        info = self.band_info.get(name.lower(), {})
        known = [f"common name {common_name(name, info)}"] if common_name(name, info) else []
        centre = _number(info.get("center_wavelength"), info.get("eo:center_wavelength"))
        known += [f"centre wavelength {_um(centre)}"] if centre is not None else []
        said = f" ({', '.join(known)})" if known else ""
        return (f"{where} needs band {name!r}{said}, which item {self.item.id!r} does not have by name, common name "
                f"or wavelength (eo:bands/bands name, common_name, center_wavelength); the item has: "
                f"{describe_bands(self.bands)}")

    def asset_bands(self, asset: str) -> list[ImageryBand]:
        """Every band of the asset with this key (case-insensitive), in order."""
        return [band for band in self.bands if band.asset.lower() == asset.lower()]

    def asset_problem(self, input_name: str, channels: int | None) -> str | None:
        """Why a band-less input (e.g. a DEM) cannot take the asset named like it, or None when it can."""
        found = self.asset_bands(input_name)
        if not found:
            assets = ", ".join(sorted({b.asset for b in self.bands})) or "no raster assets"
            return (f"input {input_name!r} names no bands, so an imagery asset with key {input_name!r} is needed; "
                    f"item {self.item.id!r} has: {assets}")
        if channels is not None and len(found) > 1 and len(found) != channels:
            return (f"input {input_name!r} takes {channels} channels but asset {found[0].asset!r} has {len(found)} "
                    "bands; expected equal counts")
        return None
