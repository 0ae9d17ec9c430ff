"""A training catalog (local directory, catalog.json or URL) -> validated chip arrays per split.

Everything a trainer would otherwise discover mid-epoch is checked here first, with one clear error:
no label items, no classes, chips of mixed sizes or bands, imagery lacking a band, a class absent
from the train or validate split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pystac
import rasterio

from mlmkit.stac.bands import raster_fields
from mlmkit.errors import InvalidArgument, InvalidInput, InvalidMetadata
from mlmkit.catalog.provenance import reference
from mlmkit.stac.read import is_url, read_json, read_stac, resolve_href
from mlmkit.training.layout import (CLASS_PROPERTY, IMAGE_KEY, LABELS_KEY, PROCESSING_FIELDS, SCENE_CLASSIFICATION,
                                    SEGMENTATION, SPLITS, LabelClass, with_colours)

IGNORE_INDEX = -100


@dataclass
class SplitData:
    """One split's chips: raw imagery (N, C, H, W) and class indices ((N,) or (N, H, W), IGNORE_INDEX unlabelled)."""

    images: np.ndarray
    labels: np.ndarray
    collections: list[str]
    bboxes: list[list[float]]
    periods: list[tuple[datetime | None, datetime | None]]


@dataclass
class TrainingData:
    """What training needs to know about a training catalog."""

    source: str                 # the catalog's best href (mlmkit.catalog.provenance.reference): its URL where known
    task: str
    classes: list[LabelClass]
    bands: list[dict]  # eo fields, and raster ones (nodata, data_type, scale, offset) where the chips have them
    splits: dict[str, SplitData] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # every local document and chip file read: inputs to keep
    processing: dict[str, str] = field(default_factory=dict)  # processing:level/lineage of the chips' imagery
    catalog_id: str = ""

    @property
    def chip_shape(self) -> tuple[int, int, int]:
        return tuple(self.splits["train"].images.shape[1:])  # type: ignore[return-value]


@dataclass
class _Chip:
    item: pystac.Item
    split: str
    collection: str
    image_href: str
    bands: list[dict]
    labels_href: str
    classes: list[LabelClass]


def _split_of(item: pystac.Item, collection: pystac.Collection | None) -> str | None:
    split = item.properties.get("ml-aoi:split")
    if split is None and collection is not None:
        split = collection.extra_fields.get("ml-aoi:split")
        if split is None and collection.summaries.get_list("ml-aoi:split"):
            values = collection.summaries.get_list("ml-aoi:split")
            split = values[0] if len(values) == 1 else None
    return split


def _classes(item: pystac.Item, labels: pystac.Asset) -> list[LabelClass]:
    entries = labels.extra_fields.get("classification:classes") or item.properties.get("classification:classes")
    if entries:
        return with_colours(sorted((LabelClass(int(e["value"]), str(e.get("name", e["value"])), e.get("color_hint"),
                                               e.get("title")) for e in entries), key=lambda c: c.value))
    label_classes = item.properties.get("label:classes") or []
    values = [v for entry in label_classes for v in entry.get("classes") or []]
    if not values:
        raise InvalidMetadata(f"label item {item.id} declares no classes; "
                           "expected label:classes or classification:classes")
    if all(isinstance(v, (int, float)) for v in values):
        return with_colours([LabelClass(int(v), str(int(v))) for v in sorted(values)])
    return with_colours([LabelClass(i, str(v)) for i, v in enumerate(values)])


def _feature_asset(item: pystac.Item) -> tuple[str, list[dict]] | None:
    for key, asset in item.assets.items():
        bands = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands")
        role = asset.extra_fields.get("ml-aoi:role")
        if bands and (key == IMAGE_KEY or role == "feature" or "data" in (asset.roles or [])):
            stored = asset.extra_fields.get("raster:bands") or []
            bands = [{**(raster_fields(stored[i]) if i < len(stored) else {}), **band} for i, band in enumerate(bands)]
            return resolve_href(asset.href, item.get_self_href()), bands
    return None


def _image_asset(item: pystac.Item) -> tuple[str, list[dict]]:
    """The chip imagery: the `image`/feature asset of the label item, else that of its `source` item."""
    found = _feature_asset(item)
    if found is None:
        source = _source_item(item)
        found = _feature_asset(source) if source is not None else None
    if found is None:
        raise InvalidMetadata(f"label item {item.id} has no imagery asset with eo:bands (own or via its source link); "
                           "expected an `image` asset with eo:bands")
    return found


def _source_item(item: pystac.Item) -> pystac.Item | None:
    for link in item.links:
        if link.rel == "source" and (link.media_type or "").endswith("json"):
            href = resolve_href(link.href, item.get_self_href())
            source = read_stac(href)
            if not isinstance(source, pystac.Item):
                raise InvalidMetadata(f"label item {item.id}: source link {href} is not a STAC Item")
            return source
    return None


def _label_asset(item: pystac.Item) -> pystac.Asset:
    if LABELS_KEY in item.assets:
        return item.assets[LABELS_KEY]
    for asset in item.assets.values():
        if "labels" in (asset.roles or []) or asset.extra_fields.get("ml-aoi:role") == "label":
            return asset
    raise InvalidMetadata(f"label item {item.id} has no labels asset; expected an asset `labels` (role labels)")


def _chips(root: pystac.Catalog, published: str | None) -> list[_Chip]:
    chips = []
    for collection_or_catalog, _, items in root.walk():
        collection = collection_or_catalog if isinstance(collection_or_catalog, pystac.Collection) else None
        for item in items:
            if "label:type" not in item.properties:
                continue
            split = _split_of(item, collection)
            if split not in SPLITS:
                raise InvalidMetadata(f"label item {item.id} has ml-aoi:split {split!r}; expected one of {SPLITS} "
                                   "on the item or its collection")
            labels = _label_asset(item)
            image_href, bands = _image_asset(item)
            collection_href = reference(collection_or_catalog, root.get_self_href(), published)
            chips.append(_Chip(item, split, collection_href, image_href, bands,
                               resolve_href(labels.href, item.get_self_href()), _classes(item, labels)))
    return chips


def _period(item: pystac.Item) -> tuple[datetime | None, datetime | None]:
    return (item.datetime or item.common_metadata.start_datetime, item.datetime or item.common_metadata.end_datetime)


def _task(chips: Sequence[_Chip], wanted: str | None) -> str:
    kinds = {chip.item.properties["label:type"] for chip in chips}
    if len(kinds) != 1 or kinds - {"raster", "vector"}:
        raise InvalidMetadata(f"label items mix label:type {sorted(kinds)}; expected all raster or all vector")
    task = SEGMENTATION if kinds == {"raster"} else SCENE_CLASSIFICATION
    if wanted and wanted != task:
        raise InvalidArgument(f"the catalog's labels are {kinds.pop()} labels for {task}; expected task {task!r}")
    return task


def _select(bands: list[dict], wanted: Sequence[str], chip: _Chip) -> list[int]:
    names = [b.get("name") for b in bands]
    commons = [b.get("common_name") for b in bands]
    if not wanted:
        return list(range(len(bands)))
    indices = []
    for name in wanted:
        if name in names:
            indices.append(names.index(name))
        elif name in commons:
            indices.append(commons.index(name))
        else:
            raise InvalidMetadata(f"imagery of chip {chip.item.id} lacks band {name!r}; it has {names}")
    return indices


def _read_image(chip: _Chip, indices: list[int], expected: tuple | None) -> np.ndarray:
    try:
        with rasterio.open(chip.image_href) as src:
            if src.count != len(chip.bands):
                raise InvalidMetadata(f"imagery of chip {chip.item.id} has {src.count} bands but eo:bands lists "
                                   f"{len(chip.bands)}; expected one eo:bands entry per band")
            image = src.read([i + 1 for i in indices])
    except rasterio.RasterioIOError as exc:
        raise InvalidInput(f"cannot read imagery of chip {chip.item.id} at {chip.image_href}: {exc}") from exc
    layout = (image.shape, image.dtype.name)
    if expected is not None and layout != expected:
        raise InvalidInput(f"chip {chip.item.id} is {image.shape} {image.dtype.name}; expected {expected[0]} "
                           f"{expected[1]} like the first chip (all chips must share size, bands and type)")
    return image


def _read_labels(chip: _Chip, task: str, lut: np.ndarray, index_of_name: dict[str, int], shape) -> np.ndarray:
    if task == SCENE_CLASSIFICATION:
        feature = read_json(chip.labels_href)["features"][0]["properties"]
        name = str(feature.get(CLASS_PROPERTY))
        if name not in index_of_name:
            raise InvalidMetadata(f"chip {chip.item.id} has class {name!r}; expected one of {sorted(index_of_name)}")
        return np.int64(index_of_name[name])
    try:
        with rasterio.open(chip.labels_href) as src:
            raw = src.read(1)
            nodata = src.nodata
    except rasterio.RasterioIOError as exc:
        raise InvalidInput(f"cannot read labels of chip {chip.item.id} at {chip.labels_href}: {exc}") from exc
    if raw.shape != shape:
        raise InvalidInput(f"labels of chip {chip.item.id} are {raw.shape}; expected {shape} like its imagery")
    labels = lut[np.clip(raw.astype("int64"), 0, len(lut) - 1)]
    if nodata is not None:
        labels[raw == nodata] = IGNORE_INDEX
    return labels


def _check_coverage(data: TrainingData) -> None:
    """Refuse what would train a model that cannot be wrong: one class, or a split holding a single class.

    Train and validate must hold every class; an optional test split at least two of them.
    """
    if len(data.classes) < 2:
        raise InvalidInput(f"the catalog declares {len(data.classes)} class ({', '.join(c.name for c in data.classes)}); "
                           "expected at least 2 classes to learn to tell apart")
    for split in ("train", "validate"):
        if split not in data.splits:
            raise InvalidInput(f"the catalog has no {split!r} split; expected label items with ml-aoi:split "
                               f"{split!r} (train and validate are required)")
    for split, split_data in data.splits.items():
        present = set(np.unique(split_data.labels).tolist()) - {IGNORE_INDEX}
        missing = [c.name for i, c in enumerate(data.classes) if i not in present]
        if split != "test" and missing:
            raise InvalidInput(f"classes {missing} have no samples in the {split!r} split; expected every class "
                               "in train and validate (re-split with another seed, or drop the class)")
        if len(present) < 2:
            raise InvalidInput(f"the {split!r} split's labels hold {len(present)} of the {len(data.classes)} declared "
                               "classes; expected at least 2 (its accuracy would say nothing)")


def read_training_data(source: str, task: str | None = None, bands: Sequence[str] = (),
                       published: str | None = None) -> TrainingData:
    """Read and check every chip of the training catalog at `source` (directory, catalog.json or URL);
    `published`: the URL the catalog is published at, where `source` is a copy of it."""
    root = read_stac(source)
    if isinstance(root, pystac.Item):
        raise InvalidArgument(f"{source} is an Item; expected a training catalog (catalog.json with split collections)")
    chips = _chips(root, published)
    if not chips:
        raise InvalidMetadata(f"{source} holds no label items; expected items with the label extension (label:type)")
    task = _task(chips, task)
    classes = chips[0].classes
    for chip in chips:
        if [(c.value, c.name) for c in chip.classes] != [(c.value, c.name) for c in classes]:
            raise InvalidMetadata(f"chip {chip.item.id} declares classes {[c.name for c in chip.classes]}; "
                               f"expected {[c.name for c in classes]} like the first chip")
    first_bands = [b.get("name") for b in chips[0].bands]
    indices = _select(chips[0].bands, bands, chips[0])
    lut = np.full(256, IGNORE_INDEX, dtype="int64")
    for index, cls in enumerate(classes):
        if 0 <= cls.value < len(lut) - 1:
            lut[cls.value] = index
    index_of_name = {c.name: i for i, c in enumerate(classes)}
    grouped: dict[str, list] = {}
    expected = None
    for chip in chips:
        if [b.get("name") for b in chip.bands] != first_bands:
            raise InvalidMetadata(f"chip {chip.item.id} has bands {[b.get('name') for b in chip.bands]}; "
                               f"expected {first_bands} like the first chip")
        image = _read_image(chip, indices, expected)
        expected = (image.shape, image.dtype.name)
        label = _read_labels(chip, task, lut, index_of_name, image.shape[1:])
        grouped.setdefault(chip.split, []).append((chip, image, label))
    data = TrainingData(reference(root, root.get_self_href(), published) or source, task, classes,
                        [chips[0].bands[i] for i in indices], catalog_id=root.id,
                        files=[href for chip in chips for href in (chip.item.get_self_href(), chip.image_href,
                                                                   chip.labels_href) if href and not is_url(href)],
                        processing={k: chips[0].item.properties[k] for k in PROCESSING_FIELDS
                                    if chips[0].item.properties.get(k)})
    for split in SPLITS:
        if split in grouped:
            entries = grouped[split]
            data.splits[split] = SplitData(
                np.stack([e[1] for e in entries]), np.stack([e[2] for e in entries]),
                sorted({e[0].collection for e in entries}), [list(e[0].item.bbox) for e in entries],
                [_period(e[0].item) for e in entries])
    _check_coverage(data)
    return data
