"""The STAC catalog of a predict run: one result Item per input Item, with provenance.

Each result links back to the imagery it was computed from and to the MLM Item of the model
(`derived_from`), and records the model as its `processing:expression`, so a reader can tell
exactly what produced every pixel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pystac
from rasterio.warp import transform_geom

from mlmkit import __version__
from mlmkit.checksum import file_checksum
from mlmkit.mlm import ModelSpec
from mlmkit.predict.reader import Grid
from mlmkit.provenance import settle_lineage

EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/classification/v1.1.0/schema.json",
]
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


@dataclass
class RasterResult:
    """One written COG and what describes it."""

    key: str
    path: Path
    title: str
    grid: Grid
    data_type: str
    nodata: float
    band_names: list[str]
    classes: list[dict] | None = None


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


def _raster_asset(result: RasterResult, item_dir: Path) -> pystac.Asset:
    nodata = "nan" if result.nodata != result.nodata else result.nodata
    fields: dict = {
        "raster:bands": [
            {"name": name, "data_type": result.data_type, "nodata": nodata, "spatial_resolution": result.grid.resolution}
            for name in result.band_names
        ],
        "file:checksum": file_checksum(result.path),
        "file:size": result.path.stat().st_size,
        "proj:shape": [result.grid.height, result.grid.width],
        "proj:transform": list(result.grid.transform)[:6],
    }
    if result.classes:
        fields["classification:classes"] = result.classes
    return pystac.Asset(href=f"./{result.path.relative_to(item_dir)}", media_type=COG_TYPE, title=result.title,
                        roles=["data"], extra_fields=fields)


def result_item(source: pystac.Item, spec: ModelSpec, model_href: str, grid: Grid, results: list[RasterResult],
                quicklook: Path | None, item_dir: Path, source_href: str | None = None) -> pystac.Item:
    """A result Item for one source Item; files already lie in `item_dir`.

    `model_href`/`source_href` are the inputs' best hrefs (mlmkit.provenance.reference); `write_catalog`
    settles them for where the Item ends up.
    """
    geometry = _footprint(grid)
    props = source.properties
    start, end = props.get("start_datetime"), props.get("end_datetime")
    properties = {k: v for k, v in (("start_datetime", start), ("end_datetime", end)) if v}
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
        id=f"{source.id}-{slug(spec.name)}", geometry=geometry, bbox=_bbox(geometry),
        datetime=source.datetime, properties=properties, stac_extensions=list(EXTENSIONS),
        collection=None,
    )
    if source.datetime is None and not (start and end):
        item.datetime = dt.datetime.now(dt.timezone.utc)
    for result in results:
        item.add_asset(result.key, _raster_asset(result, item_dir))
    if quicklook is not None:
        item.add_asset("quicklook", pystac.Asset(href=f"./{quicklook.relative_to(item_dir)}", media_type=pystac.MediaType.PNG,
                                                 title="Quicklook in class colours", roles=["overview", "thumbnail"]))
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
    catalog.normalize_hrefs(f"{outdir}/")  # trailing slash: the temp dir name has a suffix
    for item in items:
        settle_lineage(item, item.get_self_href(), (outdir, final or outdir), "--source-href/--model-href")
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return outdir / "catalog.json"
