"""Sentinel-2 MSI band names, so chips from S2 imagery carry common names the way STAC EO does."""

from __future__ import annotations

# band name -> (eo common_name, center wavelength in micrometres)
S2_BANDS: dict[str, tuple[str, float]] = {
    "B01": ("coastal", 0.443),
    "B02": ("blue", 0.490),
    "B03": ("green", 0.560),
    "B04": ("red", 0.665),
    "B05": ("rededge", 0.705),
    "B06": ("rededge", 0.740),
    "B07": ("rededge", 0.783),
    "B08": ("nir", 0.842),
    "B8A": ("nir08", 0.865),
    "B09": ("nir09", 0.945),
    "B10": ("cirrus", 1.375),
    "B11": ("swir16", 1.610),
    "B12": ("swir22", 2.190),
}

# The band order of the 13-band EuroSAT MS GeoTIFFs: all L1C bands in S2_BANDS' order (B8A after B08).
EUROSAT_MS_ORDER = tuple(S2_BANDS)


def eo_band(name: str) -> dict:
    """An eo:bands entry for a band name; S2 names get their common name and wavelength."""
    band: dict = {"name": name}
    if name in S2_BANDS:
        common, wavelength = S2_BANDS[name]
        band["common_name"] = common
        band["center_wavelength"] = wavelength
    return band
