"""The STAC catalog of a predict run: one result Item per input Item (or per stack of dated Items), with provenance.

Each result links back to the imagery it was computed from and to the MLM Item of the model
(`derived_from`), and records the model as its `processing:expression`, so a reader can tell
exactly what produced every pixel (or box).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pystac
from pystac.utils import datetime_to_str
from rasterio.warp import transform_geom

from mlmkit import __version__
from mlmkit.stac.checksum import file_checksum
from mlmkit.mlm.spec import ModelSpec
from mlmkit.inference.reader import Grid
from mlmkit.catalog.provenance import PREDICT_HREF_INPUTS, settle_lineage
from mlmkit.stac.safepath import layout_catalog
from mlmkit.stac.write import save_catalog

EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/classification/v1.1.0/schema.json",
]


class Result(Protocol):
    """One written file of a result Item."""

    key: str

    def asset(self, item_dir: Path) -> pystac.Asset:
        """Its STAC asset, href relative to the Item's directory."""


def file_fields(path: Path) -> dict:
    """`file:checksum` and `file:size` of a written file."""
    return {"file:checksum": file_checksum(path), "file:size": path.stat().st_size}


@dataclass
class FileResult:
    """Any other written file (GeoParquet, GeoJSON): its media type and extra asset fields."""

    key: str
    path: Path
    title: str
    media_type: str
    fields: dict = field(default_factory=dict)

    def asset(self, item_dir: Path) -> pystac.Asset:
        return pystac.Asset(href=f"./{self.path.relative_to(item_dir)}", media_type=self.media_type, title=self.title,
                            roles=["data"], extra_fields={**file_fields(self.path), **self.fields})


def _footprint(grid: Grid) -> dict:
    left, bottom, right, top = grid.bounds
    ring = [[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]
    return transform_geom(grid.crs, "EPSG:4326", {"type": "Polygon", "coordinates": [ring]}, precision=7)


def _bbox(geometry: dict) -> list[float]:
    xs = [x for x, _ in geometry["coordinates"][0]]
    ys = [y for _, y in geometry["coordinates"][0]]
    return [min(xs), min(ys), max(xs), max(ys)]


def _proj_code(grid: Grid) -> str | None:
    epsg = grid.crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else None


def stack_id(sources: Sequence[pystac.Item]) -> str:
    """The id a result takes from its source Item, or from the first and last Items of a stack of dates."""
    return sources[0].id if len(sources) == 1 else f"{sources[0].id}--{sources[-1].id}"


def _period(sources: Sequence[pystac.Item]) -> tuple[dt.datetime | None, dict]:
    """datetime and start/end_datetime: the source's own, or the span of a stack's dates."""
    if len(sources) == 1:
        props = sources[0].properties
        start, end = props.get("start_datetime"), props.get("end_datetime")
        return sources[0].datetime, {k: v for k, v in (("start_datetime", start), ("end_datetime", end)) if v}
    starts = [item.common_metadata.start_datetime or item.datetime for item in sources]
    ends = [item.common_metadata.end_datetime or item.datetime for item in sources]
    return None, {"start_datetime": datetime_to_str(min(starts)),
                  "end_datetime": datetime_to_str(max(ends))}


def result_item(sources: Sequence[pystac.Item], spec: ModelSpec, model_href: str, grid: Grid,
                results: Sequence[Result], quicklook: Path | None, item_dir: Path,
                source_hrefs: Sequence[str | None] = ()) -> pystac.Item:
    """A result Item for one source Item (or a stack of dated ones); files already lie in `item_dir`.

    `model_href` and `source_hrefs` (one per source) are the inputs' best hrefs
    (mlmkit.catalog.provenance.reference); `write_catalog` settles them for where the Item ends up.
    """
    geometry = _footprint(grid)
    datetime, properties = _period(sources)
    properties.update({
        "proj:code": _proj_code(grid),
        "proj:shape": [grid.height, grid.width],
        "proj:transform": list(grid.transform)[:6],
        "proj:bbox": list(grid.bounds),
        "processing:level": "L4",
        "processing:expression": {"format": "stac-mlm", "expression": model_href},
        "processing:software": {"mlmkit": __version__},
        "processing:datetime": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    item = pystac.Item(
        id=f"{stack_id(sources)}-{slug(spec.name)}", geometry=geometry, bbox=_bbox(geometry),
        datetime=datetime, properties=properties, stac_extensions=list(EXTENSIONS),
        collection=None,
    )
    if datetime is None and "start_datetime" not in properties:
        item.datetime = dt.datetime.now(dt.timezone.utc)
    for result in results:
        item.add_asset(result.key, result.asset(item_dir))
    if quicklook is not None:
        item.add_asset("quicklook", pystac.Asset(href=f"./{quicklook.relative_to(item_dir)}", media_type=pystac.MediaType.PNG,
                                                 title="Quicklook in class colours", roles=["overview", "thumbnail"]))
    for source, source_href in zip(sources, source_hrefs or [None] * len(sources)):
        if source_href:
            item.add_link(pystac.Link("derived_from", source_href, media_type=pystac.MediaType.GEOJSON,
                                      title=f"Source imagery {source.id}"))
    item.add_link(pystac.Link("derived_from", model_href, media_type=pystac.MediaType.GEOJSON,
                              title=f"MLM model {spec.name}", extra_fields={"mlm:name": spec.name}))
    return item


def slug(text: str) -> str:
    """A name safe for ids, asset keys and file names."""
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-") or "model"


def write_catalog(outdir: Path, items: list[pystac.Item], spec: ModelSpec, final: Path | None = None) -> Path:
    """OUTDIR/catalog.json with each result Item in OUTDIR/<id>/<id>.json (relative hrefs).

    `final`: where OUTDIR will be renamed to; lineage hrefs are written for that place.
    """
    catalog = pystac.Catalog(id="mlmkit-predictions", title=f"Predictions of {spec.name}",
                             description=f"Results of running the MLM model {spec.name!r} with mlmkit predict.")
    for item in items:
        catalog.add_item(item)
    layout_catalog(catalog, outdir)
    for item in items:
        settle_lineage(item, item.get_self_href(), (outdir, final or outdir), PREDICT_HREF_INPUTS)
    save_catalog(catalog)
    return outdir / "catalog.json"
