"""A band described once (name, common name, wavelength, nodata, type, scale, offset) split into the
fields of the extensions that hold them: eo:bands (what the band sees) and raster:bands (how it is stored)."""

from __future__ import annotations

EO_SCHEMA_URL = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
RASTER_SCHEMA_URL = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
EO_BAND_KEYS = ("name", "common_name", "description", "center_wavelength", "full_width_half_max")
RASTER_BAND_KEYS = ("nodata", "data_type", "scale", "offset", "unit", "spatial_resolution")


def eo_band_fields(band: dict) -> dict:
    """The eo:bands entry of a band: its name, common name and wavelengths."""
    return {key: band[key] for key in EO_BAND_KEYS if band.get(key) is not None}


def raster_fields(band: dict) -> dict:
    """How a band's values are stored and map to physical values (raster v1.1.0 band fields)."""
    return {key: band[key] for key in RASTER_BAND_KEYS if band.get(key) is not None}


def raster_bands(bands: list[dict]) -> list[dict] | None:
    """raster:bands, each named (as MLM wants), when any band says how its values are stored; else None."""
    if not any(raster_fields(band) for band in bands):
        return None
    return [{"name": band["name"], **raster_fields(band)} for band in bands]
