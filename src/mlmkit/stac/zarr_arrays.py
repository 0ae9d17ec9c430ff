"""Arrays in a Zarr store as imagery assets: which assets they are, how GDAL opens them, and the CRS their
attributes declare.

ESA's EOPF Sentinel products are Zarr stores (`<product>.zarr`); their STAC Items give every band an asset
whose href is one array of the store (`<product>.zarr/measurements/reflectance/r10m/b02`, media type
`application/vnd+zarr`), beside assets for whole groups (role `dataset`), the store itself (`product`) and its
consolidated metadata. An array asset is read like a one-band GeoTIFF: GDAL's Zarr driver (in rasterio's
wheels) opens it, reads it chunk by chunk, takes the geotransform from the group's `x`/`y` coordinate arrays
and nodata, scale and offset from the array (`fill_value`/`_FillValue`, `scale_factor`, `add_offset`). The CRS
GDAL does not find there: EOPF writes it as `proj:epsg` (or `proj:wkt2`, `proj:code`) in the array's
attributes, or only in the product's root attributes (`other_metadata.horizontal_CRS_code`, the
`stac_discovery` Item's `proj:code`/`proj:epsg`); Zarr written by xarray/rioxarray names a CF `grid_mapping`
array holding `crs_wkt`. `zarr_crs` reads those, nearest first.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlparse

from mlmkit.errors import InvalidInput
from mlmkit.stac.objstore import gdal_path
from mlmkit.stac.read import read_json

ZARR_MEDIA_TYPES = ("application/vnd+zarr", "application/vnd.zarr", "application/x-zarr")
_GROUP_ROLES = {"dataset"}  # EOPF: an asset for a whole group of arrays (one resolution's bands), not a band
_CRS_KEYS = ("proj:wkt2", "proj:code", "proj:epsg")
_STORE = re.compile(r"(.*\.zarr)(?:/.*)?$", re.IGNORECASE)  # the last component ending in .zarr


def store_root(href: str) -> str | None:
    """The store an href points into (up to the path component ending in `.zarr`), or None."""
    found = _STORE.match(href.rstrip("/"))
    return found[1] if found else None


def is_zarr(href: str) -> bool:
    """Whether `href` points at (or into) a Zarr store: a path component ending in `.zarr`."""
    return store_root(href) is not None


def is_array_asset(href: str, media_type: str | None, roles: list[str] | tuple[str, ...]) -> bool:
    """A Zarr asset that is one array of its store: not the store itself, not a group (role `dataset`)."""
    media = (media_type or "").lower()
    if not (is_zarr(href) or any(kind in media for kind in ZARR_MEDIA_TYPES)) or set(roles) & _GROUP_ROLES:
        return False
    return store_root(href) != href.rstrip("/")


def gdal_zarr_path(href: str) -> str:
    """The path GDAL's Zarr driver opens an array at (`ZARR:"/vsis3/…"` for s3://, `/vsicurl/` for http)."""
    path = gdal_path(href)
    if urlparse(href).scheme in ("http", "https"):
        path = f"/vsicurl/{href}"
    return f'ZARR:"{path}"'


def _attributes(node: str) -> dict:
    """The attributes of a Zarr array or group (v2 `.zattrs`, v3 `zarr.json`), {} where it has none."""
    for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
        try:
            document = read_json(f"{node.rstrip('/')}/{name}")
        except InvalidInput:
            continue
        attributes = document.get(key, {}) if key else document
        return attributes if isinstance(attributes, dict) else {}
    return {}


def _declared(attributes: dict) -> str | None:
    """A CRS as `proj:` attributes give it (WKT2, `EPSG:n`, or an EPSG number)."""
    for key in _CRS_KEYS:
        value = attributes.get(key)
        if isinstance(value, bool) or value in (None, ""):
            continue
        return f"EPSG:{value}" if isinstance(value, int) else str(value)
    return None


def _grid_mapping(href: str, attributes: dict) -> str | None:
    """The WKT of the CF grid-mapping array the attributes name (xarray/rioxarray-written Zarr)."""
    name = attributes.get("grid_mapping")
    if not isinstance(name, str) or not name or "/" in name:
        return None
    mapping = _attributes(f"{href.rstrip('/').rsplit('/', 1)[0]}/{name}")
    value = mapping.get("crs_wkt") or mapping.get("spatial_ref")
    return value if isinstance(value, str) and value else None


@functools.lru_cache(maxsize=16)
def _product(root_href: str) -> str | None:
    """The CRS an EOPF product states for all its arrays in its root attributes (read once per store: they
    are large, and every band of a product asks)."""
    root = _attributes(root_href)
    other = root.get("other_metadata")
    code = other.get("horizontal_CRS_code") if isinstance(other, dict) else None
    if isinstance(code, str) and code:
        return code
    stac = root.get("stac_discovery")
    properties = stac.get("properties") if isinstance(stac, dict) else None
    return _declared(properties) if isinstance(properties, dict) else None


def zarr_crs(href: str) -> str | None:
    """The CRS of a Zarr array from its attributes, its CF grid mapping or its product's root, nearest first."""
    attributes = _attributes(href)
    found = _declared(attributes) or _grid_mapping(href, attributes)
    root = store_root(href)
    if found is None and root is not None and root != href.rstrip("/"):
        found = _product(root)
    return found


def zarr_transform(href: str) -> tuple[float, ...] | None:
    """The array's own `proj:transform` (for arrays without x/y coordinate arrays GDAL could use), if any."""
    value = _attributes(href).get("proj:transform")
    if isinstance(value, list) and len(value) in (6, 9) and all(isinstance(v, (int, float)) for v in value):
        return tuple(float(v) for v in value[:6])
    return None
