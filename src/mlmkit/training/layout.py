"""The training catalog layout mlmkit writes and reads (documented in README "Training").

catalog.json -> one Collection per split (`ml-aoi:split`) -> one label Item per chip, holding the chip's
imagery (`image`, a COG with eo:bands, `ml-aoi:role: feature`) and its labels (`labels`, `ml-aoi:role:
label`): a class raster for segmentation (label:type raster), a one-feature GeoJSON for scene
classification (label:type vector, label:properties ["class"]). A `source` link names the imagery the
labels were drawn on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pystac
import rasterio
from rasterio.warp import transform_bounds

from mlmkit.stac.bands import RASTER_SCHEMA_URL, eo_band_fields, raster_bands
from mlmkit.stac.classes import class_objects, machine_names
from mlmkit.errors import InvalidArgument, InvalidInput
from mlmkit.catalog.provenance import lineage_href
from mlmkit.stac.safepath import safe_name
from mlmkit.stac.write import save_catalog

SPLITS = ("train", "validate", "test")
SEGMENTATION = "semantic-segmentation"
SCENE_CLASSIFICATION = "scene-classification"
LABEL_EXT = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
ML_AOI_EXT = "https://stac-extensions.github.io/ml-aoi/v0.2.0/schema.json"
EO_EXT = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
PROJ_EXT = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
CLASSIFICATION_EXT = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
PROCESSING_EXT = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
# What chip items carry over from their imagery Item: the product the chips were cut from.
PROCESSING_FIELDS = ("processing:level", "processing:lineage")
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
GEOJSON_TYPE = "application/geo+json"
IMAGE_KEY = "image"
LABELS_KEY = "labels"
CLASS_PROPERTY = "class"
LABEL_NODATA = 255
# Distinct colours for class maps (tab10), used when the labels name none.
PALETTE = ("1f77b4", "2ca02c", "d62728", "ff7f0e", "9467bd", "8c564b", "e377c2", "7f7f7f", "bcbd22", "17becf")


@dataclass(frozen=True)
class LabelClass:
    """A class of the labels: the pixel/sample value, its name, a display colour (hex RGB) and, where the name is
    a machine name read back from a catalog, the words it stands for."""

    value: int
    name: str
    color_hint: str | None = None
    title: str | None = None


def with_colours(classes: Sequence[LabelClass]) -> list[LabelClass]:
    """Classes with a colour each: their own, else the palette's."""
    return [c if c.color_hint else replace(c, color_hint=PALETTE[i % len(PALETTE)]) for i, c in enumerate(classes)]


def parse_classes(spec: str) -> list[LabelClass]:
    """Classes from `0=water,1=vegetation` or a JSON file of [{value, name, color_hint}]."""
    if spec.endswith(".json") and Path(spec).exists():
        try:
            entries = json.loads(Path(spec).read_text(encoding="utf-8"))
            classes = [LabelClass(int(e["value"]), str(e["name"]), e.get("color_hint")) for e in entries]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(f"{spec}: {exc}; expected a JSON list of {{value, name, color_hint}}") from exc
    else:
        try:
            pairs = [part.split("=", 1) for part in spec.split(",") if part.strip()]
            classes = [LabelClass(int(value), name.strip()) for value, name in pairs]
        except ValueError as exc:
            raise InvalidArgument(f"classes {spec!r} are not VALUE=NAME pairs; "
                               "expected e.g. 0=water,1=vegetation") from exc
    if not classes:
        raise InvalidArgument("no classes given; expected e.g. 0=water,1=vegetation")
    if len({c.value for c in classes}) != len(classes) or len({c.name for c in classes}) != len(classes):
        raise InvalidArgument(f"classes {spec!r} repeat a value or a name; expected unique values and names")
    machine_names([(c.value, c.name) for c in classes], f"classes {spec!r}", InvalidArgument)
    return with_colours(sorted(classes, key=lambda c: c.value))


def write_cog(path: Path, array: np.ndarray, crs, transform, nodata=None) -> None:
    """Write a (bands, rows, cols) chip as a COG: tiled, deflate, IFD first; chips need no overviews."""
    block = min(512, -(-max(array.shape[1:]) // 16) * 16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", count=array.shape[0], height=array.shape[1], width=array.shape[2],
                       dtype=array.dtype.name, crs=crs, transform=transform, nodata=nodata, tiled=True,
                       blockxsize=block, blockysize=block, compress="deflate") as dst:
        dst.write(array)


@dataclass
class ChipInfo:
    """Where a chip lies and what it holds, for its Item."""

    chip_id: str
    split: str
    crs: rasterio.crs.CRS
    transform: rasterio.Affine
    shape: tuple[int, int]
    datetime: datetime | None
    class_counts: dict[int, int]
    source_href: str | None = None
    source_type: str | None = None
    extra_properties: dict = field(default_factory=dict)

    def wgs84_bbox(self) -> list[float]:
        rows, cols = self.shape
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (cols, rows)
        return list(transform_bounds(self.crs, "EPSG:4326", min(left, right), min(top, bottom),
                                     max(left, right), max(top, bottom)))


class TrainingCatalogWriter:
    """Writes chips into `root/<split>/<chip>/` and the catalog/collections around them."""

    def __init__(self, root: Path, name: str, task: str, classes: Sequence[LabelClass], bands: Sequence[dict],
                 description: str, final: Path | None = None):
        self.root = root
        self.final = Path(final).absolute() if final else root  # where root is renamed to (source link hrefs)
        self.name = name
        self.task = task
        self.classes = list(classes)
        self.bands = [eo_band_fields(b) for b in bands]
        self.raster_bands = raster_bands(list(bands))
        self.description = description
        self.items: dict[str, list[pystac.Item]] = {split: [] for split in SPLITS}

    def _item_json(self, split: str, item_id: str) -> Path:
        """Where a chip's Item goes: `<split>/<id>/<id>.json`, the id made a safe file name."""
        name = safe_name(item_id)
        return self.root / split / name / f"{name}.json"

    def _item_dir(self, info: ChipInfo) -> Path:
        return self._item_json(info.split, info.chip_id).parent

    def add_segmentation_chip(self, info: ChipInfo, image: np.ndarray, labels: np.ndarray) -> None:
        """Write a chip's image and class raster (LABEL_NODATA where unlabelled)."""
        folder = self._item_dir(info)
        write_cog(folder / "image.tif", image, info.crs, info.transform)
        write_cog(folder / "labels.tif", labels[np.newaxis].astype("uint8"), info.crs, info.transform, LABEL_NODATA)
        self._add_item(info, {"href": "./labels.tif", "type": COG_TYPE, "roles": ["labels", "labels-raster"]})

    def add_scene_chip(self, info: ChipInfo, image_path: Path, class_value: int) -> None:
        """Add a chip whose COG is already at `image_path` (inside the chip folder) with one class."""
        folder = self._item_dir(info)
        name = next(c.name for c in self.classes if c.value == class_value)
        feature = {"type": "Feature", "geometry": bbox_polygon(info.wgs84_bbox()),
                   "properties": {CLASS_PROPERTY: name, "value": class_value}}
        (folder / "labels.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
        self._add_item(info, {"href": "./labels.geojson", "type": GEOJSON_TYPE, "roles": ["labels", "labels-vector"]},
                       image_name=image_path.name)

    def chip_folder(self, info: ChipInfo) -> Path:
        folder = self._item_dir(info)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _label_properties(self, info: ChipInfo) -> dict:
        raster = self.task == SEGMENTATION
        names = {c.value: c.name for c in self.classes}
        values = [c.value for c in self.classes] if raster else [c.name for c in self.classes]
        return {
            "label:type": "raster" if raster else "vector",
            "label:properties": None if raster else [CLASS_PROPERTY],
            "label:tasks": ["segmentation"] if raster else ["classification"],
            "label:description": self.description,
            "label:classes": [{"name": None if raster else CLASS_PROPERTY,
                               "classes": values}],
            "label:overviews": [{"property_key": CLASS_PROPERTY, "counts": [
                {"name": names[value], "count": int(count)} for value, count in sorted(info.class_counts.items())]}],
            "ml-aoi:split": info.split,
        }

    def _add_item(self, info: ChipInfo, label_asset: dict, image_name: str = "image.tif") -> None:
        bbox = info.wgs84_bbox()
        properties = {**self._label_properties(info), **info.extra_properties,
                      "proj:code": info.crs.to_string() if info.crs else None,
                      "proj:shape": list(info.shape), "proj:transform": list(info.transform)[:6]}
        extensions = [LABEL_EXT, ML_AOI_EXT, EO_EXT, PROJ_EXT, CLASSIFICATION_EXT]
        image_fields: dict = {"eo:bands": self.bands, "ml-aoi:role": "feature"}
        if self.raster_bands:
            image_fields["raster:bands"] = self.raster_bands
            extensions.append(RASTER_SCHEMA_URL)
        if any(key in properties for key in PROCESSING_FIELDS):
            extensions.append(PROCESSING_EXT)
        item = pystac.Item(info.chip_id, bbox_polygon(bbox), bbox, info.datetime, properties,
                           stac_extensions=extensions)
        item.add_asset(IMAGE_KEY, pystac.Asset(f"./{image_name}", "chip imagery", media_type=COG_TYPE, roles=["data"],
                                               extra_fields=image_fields))
        label_extra = {"ml-aoi:role": "label",
                       "classification:classes": class_objects(map(asdict, self.classes), "classes")}
        item.add_asset(LABELS_KEY, pystac.Asset(label_asset["href"], "labels", media_type=label_asset["type"],
                                                roles=label_asset["roles"], extra_fields=label_extra))
        document = self._item_json(info.split, info.chip_id)
        source = lineage_href(info.source_href, document, "the chips' imagery", "the source_href option",
                              (self.root, self.final)) if info.source_href else None
        if source:
            item.add_link(pystac.Link("source", source, media_type=info.source_type,
                                      title="imagery the labels were drawn on",
                                      extra_fields={"label:assets": [LABELS_KEY]}))
        item.set_self_href(str(document))
        self.items[info.split].append(item)

    def finish(self) -> pystac.Catalog:
        """Write catalog.json and one collection per non-empty split."""
        if not self.items["train"]:
            raise InvalidInput("no chip fell into the train split; expected more chips or a larger train fraction")
        catalog = pystac.Catalog(self.name, self.description)
        catalog.set_self_href(str(self.root / "catalog.json"))
        for split, items in self.items.items():
            if items:
                self._add_collection(catalog, split, items)
        save_catalog(catalog)
        return catalog

    def _add_collection(self, catalog: pystac.Catalog, split: str, items: list[pystac.Item]) -> None:
        extent = pystac.Extent.from_items(items)
        collection = pystac.Collection(f"{self.name}-{split}", f"{self.description} ({split} split)", extent,
                                       stac_extensions=[ML_AOI_EXT, LABEL_EXT],
                                       summaries=pystac.Summaries({"ml-aoi:split": [split]}),
                                       extra_fields={"ml-aoi:split": split})
        catalog.add_child(collection)
        collection.set_self_href(str(self.root / split / "collection.json"))
        for item in items:
            collection.add_item(item)
            item.set_self_href(str(self._item_json(split, item.id)))


def bbox_polygon(bbox: Sequence[float]) -> dict:
    """The GeoJSON Polygon of a (west, south, east, north) bbox."""
    west, south, east, north = bbox
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}
