"""Where predict reads each band a model asks for: the band matching of `mlmkit.matching.bands` (the rules
`mlmkit match` applies), turned into files and band indexes."""

from __future__ import annotations

from dataclasses import dataclass

import pystac

from mlmkit.errors import NotRunnable
from mlmkit.matching.bands import BandMatcher, imagery_bands
from mlmkit.stac.read import asset_href

__all__ = ["BandRef", "BandResolver", "imagery_bands"]


@dataclass(frozen=True)
class BandRef:
    """One imagery band: the name the model uses for it, where it lives, its declared nodata."""

    name: str
    asset: str
    href: str
    index: int  # 1-based, as rasterio counts
    nodata: float | None = None


class BandResolver:
    """Resolve MLM band names against one imagery item."""

    def __init__(self, item: pystac.Item, band_info: dict[str, dict] | None = None) -> None:
        self.item = item
        self.matcher = BandMatcher(item, band_info)

    def _href(self, asset: str) -> str:
        return asset_href(self.item, asset)

    def resolve(self, name: str, where: str) -> BandRef:
        """The imagery band for an MLM band name; the error lists what the item has."""
        binding = self.matcher.bind(name)
        if binding is None:
            raise NotRunnable(self.matcher.missing(name, where))
        band = binding.source
        return BandRef(name, band.asset, self._href(band.asset), band.index, band.nodata)

    def resolve_asset(self, input_name: str, channels: int | None) -> list[BandRef]:
        """Bands of the asset named like a band-less input (e.g. a DEM), all of them in order."""
        problem = self.matcher.asset_problem(input_name, channels)
        if problem is not None:
            raise NotRunnable(problem)
        found = self.matcher.asset_bands(input_name)
        refs = [BandRef(f"{input_name}#{band.index}", band.asset, self._href(band.asset), band.index, band.nodata)
                for band in found]
        if channels and len(refs) == 1 and channels > 1:
            refs = [BandRef(f"{input_name}#{i}", found[0].asset, refs[0].href, i, found[0].nodata)
                    for i in range(1, channels + 1)]
        return refs
