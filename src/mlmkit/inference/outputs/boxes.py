"""Object detection: the model's boxes per tile → boxes in the grid's CRS, merged across overlapping tiles.

Two ONNX layouts are read, as docs/model-shapes.md defines them from the MLM outputs' dims and classes:
separate boxes [N, 4] + labels [N] + scores [N] (torchvision/Detectron style, per image or with a batch
axis), and one YOLO tensor [batch, 4 + K, N] (class scores after the box; 5 + K with an objectness score, as a
dim name states it or the sizes alone tell: `mlm.shapes.yolo_objectness`).
Boxes are in pixels of the tile the model was fed. Class-aware greedy non-maximum suppression runs over
all tiles; it is streamed: at the end of each tile row, groups of overlapping boxes that no later tile
can reach are final, so memory holds about one strip of boxes and the result equals one global NMS.
Boxes in the grid's CRS are written as GeoParquet 1.1 (streamed, row group by row group; polygons encoded as WKB
with numpy directly: five points per ring need no geometry library, and pyarrow writes the file; the geometry
column has a bbox covering column, as GeoParquet 1.1 allows), as GeoJSON (WGS84, RFC 7946) while they are few,
and drawn on the imagery for the quicklook; the `boxes` output kind.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from rasterio.crs import CRS
from rasterio.warp import transform_geom

from mlmkit.drawing import titled
from mlmkit.errors import InvalidArgument, InvalidMetadata, ModelRefused
from mlmkit.inference.catalog import FileResult, Result
from mlmkit.inference.outputs.base import (Plan, PlanRequest, Sink, SinkContext, class_entries, class_table,
                                           grey_stretch, save_png)
from mlmkit.mlm.shapes import (BOX_FORMATS, box_format, detection_layout, detection_outputs, yolo_attribute_axis,
                               yolo_objectness)
from mlmkit.mlm.spec import DimRole, ModelClass, ModelOutput

GEOJSON_MAX = 10000  # boxes up to which a GeoJSON copy is written beside the GeoParquet file
DEFAULT_SCORE, DEFAULT_IOU = 0.25, 0.5
_SCORE_KEYS = ("score_threshold", "confidence_threshold", "conf_threshold")
ROW_GROUP = 65536
GEOPARQUET_TYPE = "application/vnd.apache.parquet"
_WKB_POLYGON = np.dtype([("order", "u1"), ("type", "<u4"), ("rings", "<u4"), ("points", "<u4"), ("xy", "<f8", (10,))])
_BBOX = ("xmin", "ymin", "xmax", "ymax")


def thresholds(hyperparameters: dict | None, score: float | None, iou: float | None) -> tuple[float, float]:
    """Score and IoU thresholds: as given, else the Item's mlm:hyperparameters (score_threshold/iou_threshold,
    as in the MLM README's example), else 0.25 and 0.5; all between 0 and 1."""
    found = hyperparameters if isinstance(hyperparameters, dict) else {}
    chosen = score, iou
    if score is None:
        score = next((found[key] for key in _SCORE_KEYS if isinstance(found.get(key), (int, float))), DEFAULT_SCORE)
    if iou is None:
        iou = found["iou_threshold"] if isinstance(found.get("iou_threshold"), (int, float)) else DEFAULT_IOU
    wrong = [given for given, value in zip(chosen, (score, iou)) if not 0 <= value <= 1]
    if wrong:
        error, where = (InvalidArgument, "arguments") if all(given is not None for given in wrong) else \
            (InvalidMetadata, "mlm:hyperparameters")
        raise error(f"score threshold {score} / IoU threshold {iou} ({where}); expected values between 0 and 1")
    return float(score), float(iou)


@dataclass
class Detections:
    """One tile's boxes: (n, 4) x0, y0, x1, y1 in the tile's pixels, class values, scores; and, for smoke runs,
    the lowest and highest finite score of every candidate box before the threshold (NaN when there was none)
    and how many candidates scored NaN."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    candidates: tuple[float, float, int] = (float("nan"), float("nan"), 0)

    def scaled(self, y: float, x: float) -> Detections:
        """The same boxes with x coordinates times `x` and y coordinates times `y`."""
        return Detections(self.boxes * (x, y, x, y), self.labels, self.scores, self.candidates)


def to_xyxy(coords: np.ndarray, fmt: str) -> np.ndarray:
    """(n, 4) boxes in `fmt` (one of BOX_FORMATS) as x0, y0, x1, y1."""
    a, b, c, d = coords.astype(np.float64).T
    if fmt == "xyxy":
        corners = (a, b, c, d)
    elif fmt == "yxyx":
        corners = (b, a, d, c)
    elif fmt == "xywh":
        corners = (a, b, a + c, b + d)
    else:  # cxcywh
        corners = (a - c / 2, b - d / 2, a + c / 2, b + d / 2)
    return np.stack(corners, axis=1)


def _range(scores: np.ndarray) -> tuple[float, float, int]:
    """Lowest and highest finite score (NaNs when there are none) and the count of NaN scores."""
    finite = np.isfinite(scores)
    nan = int(np.isnan(scores).sum())
    if not finite.any():
        return float("nan"), float("nan"), nan
    return float(np.min(scores[finite])), float(np.max(scores[finite])), nan


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one x0, y0, x1, y1 box with each of (n, 4) boxes."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def nms(boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indexes kept by class-aware greedy NMS (highest score first; ties in input order)."""
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for index in order:
        if suppressed[index]:
            continue
        keep.append(index)
        suppressed |= (labels == labels[index]) & (iou(boxes[index], boxes) > threshold)
    return np.asarray(keep, dtype=np.int64)


def components(boxes: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """A group id per box: boxes of one class linked by IoU > threshold, transitively (NMS never looks further)."""
    parent = np.arange(len(boxes))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = np.argsort(boxes[:, 0], kind="stable")
    starts = boxes[order, 0]
    for position, index in enumerate(order):
        end = np.searchsorted(starts, boxes[index, 2], side="left")  # later boxes starting left of its right edge
        if end <= position + 1:
            continue
        others = order[position + 1:end]
        linked = others[(labels[others] == labels[index]) & (iou(boxes[index], boxes[others]) > threshold)]
        for other in linked:
            parent[root(other)] = root(index)
    return np.array([root(i) for i in range(len(boxes))], dtype=np.int64)


def _axis_named(output: ModelOutput, names: set[str], rank: int) -> int | None:
    """The per-tile axis (batch dropped) whose dim name is in `names`."""
    dims = [d.lower() for i, d in enumerate(output.dim_order) if output.roles[i] != DimRole.BATCH]
    if len(dims) != rank:
        return None
    found = [i for i, dim in enumerate(dims) if dim in names or any(t in dim.split("+") for t in names)]
    return found[0] if found else None


class DetectionPlan:
    """How the detection outputs of a model become per-tile boxes, and the sink that merges them."""

    key = "detections"
    allows_overlap = True
    alone = True  # its key is `detections` either way

    def __init__(self, outputs: list[ModelOutput], indexes: list[int], probe: list, score_threshold: float,
                 iou_threshold: float) -> None:
        self.outputs, self.indexes = outputs, indexes
        self.layout = detection_layout(outputs)
        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold
        self.classes: tuple[ModelClass, ...] = next((o.classes for o in outputs if o.classes), ())
        real = [c for c in self.classes if not c.nodata]
        if self.layout.yolo is not None:
            self._plan_yolo(np.asarray(probe[indexes[0]][0]), real)
        else:
            self._plan_boxes(probe)

    def _plan_yolo(self, sample: np.ndarray, real: list[ModelClass]) -> None:
        output = self.outputs[0]
        if sample.ndim != 2:
            raise ModelRefused(f"output {output.name!r} gives {list(sample.shape)} per tile; expected [4 + classes, N] "
                               "(YOLO layout) or separate boxes/labels/scores outputs")
        axis = yolo_attribute_axis(output, sample.shape, len(real))
        if axis is None:
            raise ModelRefused(f"output {output.name!r} is {list(sample.shape)} per tile; cannot tell its box axis "
                               f"with {len(real)} classes; expected one axis of 4 + {len(real)} (box, class scores) "
                               "or a dim named 'detection'")
        self.attribute_axis = axis
        width = sample.shape[axis]
        self.objectness = yolo_objectness(output, width, len(real))
        count = width - 5 if self.objectness else width - 4
        self.values = np.array([c.value for c in real] if len(real) == count else range(count), dtype=np.int64)
        self.format = box_format(output, "cxcywh")

    def _plan_boxes(self, probe: list) -> None:
        output = self.outputs[self.layout.boxes]
        sample = np.asarray(probe[self.indexes[self.layout.boxes]][0])
        named = _axis_named(output, set(BOX_FORMATS) | {"coordinate", "coordinates", "coords"}, sample.ndim)
        fours = [axis for axis in range(sample.ndim) if sample.shape[axis] == 4]
        if sample.ndim != 2 or (named is None and not fours):
            raise ModelRefused(f"boxes output {output.name!r} gives {list(sample.shape)} per tile; expected [N, 4]")
        self.coordinate_axis = named if named is not None else fours[-1]
        self.format = box_format(output, "xyxy")
        real = [c for c in self.classes if not c.nodata]
        if self.layout.labels is None and len(real) != 1:
            raise InvalidMetadata(f"boxes output {output.name!r} comes without a labels output, so exactly one class "
                                  f"is needed in its classification:classes; the Item lists {len(real)}")
        self.single = real[0].value if self.layout.labels is None else None

    @property
    def reads(self) -> tuple[int, ...]:
        return tuple(self.indexes)

    def results(self, raw: list) -> list[Detections]:
        """Per tile of the batch: its boxes with a score ≥ the threshold, in the tile's pixels."""
        first = raw[self.indexes[0]]
        return [self._tile([raw[index][slot] for index in self.indexes]) for slot in range(len(first))]

    def _tile(self, arrays: list) -> Detections:
        if self.layout.yolo is not None:
            table = np.asarray(arrays[0])
            table = table if self.attribute_axis == 0 else table.T
            class_scores = table[5:] * table[4] if self.objectness else table[4:]
            best = class_scores.argmax(axis=0)
            scores = class_scores[best, np.arange(class_scores.shape[1])]
            candidates = _range(scores)
            keep = scores >= self.score_threshold
            boxes, labels, scores = table[:4, keep].T, self.values[best[keep]], scores[keep]
        else:
            boxes = np.asarray(arrays[self.layout.boxes])
            boxes = boxes if self.coordinate_axis == 1 else boxes.T
            count = len(boxes)
            labels = (np.full(count, self.single, dtype=np.int64) if self.layout.labels is None
                      else np.rint(np.asarray(arrays[self.layout.labels], dtype=np.float64)).astype(np.int64).ravel())
            scores = (np.ones(count, dtype=np.float32) if self.layout.scores is None
                      else np.asarray(arrays[self.layout.scores], dtype=np.float32).ravel())
            candidates = _range(scores)
            keep = scores >= self.score_threshold
            boxes, labels, scores = boxes[keep], labels[keep], scores[keep]
        return Detections(to_xyxy(np.asarray(boxes).reshape(-1, 4), self.format), labels,
                          np.asarray(scores, dtype=np.float32), candidates)

    def sink(self, context: SinkContext) -> Sink:
        return DetectionSink(self, context)


class DetectionSink(Sink):
    """Boxes from every tile → CRS, class-aware NMS streamed strip by strip, GeoParquet (+ GeoJSON) out."""

    def __init__(self, plan: DetectionPlan, context: SinkContext) -> None:
        self.plan, self.key, self.context = plan, plan.key, context
        self.grid, self.rows = context.grid, context.layout.rows
        self.window = (context.layout.window_h, context.layout.window_w)  # the tile, but in scenes smaller than it
        self.names = {int(c.value): c.name for c in plan.classes}
        self.writer = GeoParquetWriter(context.directory / f"{self.key}.parquet", self.grid.crs)
        self._boxes: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []

    def add(self, row: int, col: int, y: int, x: int, result, valid: np.ndarray | None) -> None:
        if result is None or not len(result.scores):
            return
        boxes = result.boxes.copy()
        np.clip(boxes[:, 0::2], 0, self.window[1], out=boxes[:, 0::2])  # boxes in padding are left empty
        np.clip(boxes[:, 1::2], 0, self.window[0], out=boxes[:, 1::2])
        kept = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        self._boxes.append(boxes[kept] + (x, y, x, y))
        self._labels.append(result.labels[kept])
        self._scores.append(result.scores[kept])

    def end_row(self, row: int) -> None:
        if not self._boxes:
            return
        boxes, labels, scores = (np.concatenate(parts) for parts in (self._boxes, self._labels, self._scores))
        limit = self.rows[row + 1] if row + 1 < len(self.rows) else np.inf  # later tiles start at this row
        group = components(boxes, labels, self.plan.iou_threshold)
        closed = ~np.isin(group, group[boxes[:, 3] > limit])
        final = np.flatnonzero(closed)[nms(boxes[closed], labels[closed], scores[closed], self.plan.iou_threshold)]
        self._emit(boxes[final], labels[final], scores[final])
        self._boxes, self._labels, self._scores = [boxes[~closed]], [labels[~closed]], [scores[~closed]]

    def _emit(self, boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> None:
        t = self.grid.transform
        xs, ys = t.c + t.a * boxes[:, 0::2], t.f + t.e * boxes[:, 1::2]
        bounds = np.stack([xs.min(axis=1), ys.min(axis=1), xs.max(axis=1), ys.max(axis=1)], axis=1)
        names = [self.names.get(int(value), f"class-{value}") for value in labels.tolist()]
        self.writer.write(bounds, labels, names, scores)

    def close(self) -> None:
        self.writer.close()

    def finish(self, preview: bool) -> tuple[list[Result], Path | None]:
        self.close()
        table = class_table(self.plan.classes, [c.value for c in self.plan.classes if not c.nodata])
        fields = {"classification:classes": class_entries(table)} if table else {}
        path, count = self.writer.path, self.writer.rows
        results: list[Result] = [FileResult(self.key, path, f"{count} detected objects (GeoParquet)",
                                            GEOPARQUET_TYPE, fields)]
        if count <= GEOJSON_MAX:
            geojson = write_geojson(path, self.context.directory / f"{self.key}.geojson", self.grid.crs)
            results.append(FileResult(f"{self.key}-geojson", geojson, f"{count} detected objects (GeoJSON, WGS84)",
                                      "application/geo+json", fields))
        look = None
        if preview and self.context.background is not None:
            colours = {int(model_class.value): rgb for model_class, rgb in table}
            look = boxes_quicklook(path, self.context.directory / "quicklook.png",
                                   self.context.background(), self.grid.transform,
                                   (self.grid.height, self.grid.width), colours,
                                   f"{self.context.title}, {self.key}")
        return results, look


def box_wkb(bounds: np.ndarray) -> tuple[np.ndarray, bytes]:
    """(offsets, data) of little-endian WKB polygons for (n, 4) xmin, ymin, xmax, ymax (counter-clockwise)."""
    records = np.zeros(len(bounds), dtype=_WKB_POLYGON)
    records["order"], records["type"], records["rings"], records["points"] = 1, 3, 1, 5
    xmin, ymin, xmax, ymax = bounds.T
    records["xy"] = np.stack([xmin, ymin, xmax, ymin, xmax, ymax, xmin, ymax, xmin, ymin], axis=1)
    offsets = np.arange(len(bounds) + 1, dtype=np.int32) * _WKB_POLYGON.itemsize
    return offsets, records.tobytes()


def _schema(crs: CRS):
    import pyarrow as pa  # only vector outputs need pyarrow

    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": {
        "encoding": "WKB", "geometry_types": ["Polygon"], "crs": crs.to_dict(projjson=True),
        "orientation": "counterclockwise", "covering": {"bbox": {key: ["bbox", key] for key in _BBOX}}}}}
    fields = [pa.field("geometry", pa.binary()), pa.field("class", pa.int64()), pa.field("class_name", pa.string()),
              pa.field("score", pa.float32()),
              pa.field("bbox", pa.struct([pa.field(key, pa.float64()) for key in _BBOX]))]
    return pa.schema(fields, metadata={"geo": json.dumps(geo)})


class GeoParquetWriter:
    """Boxes with class, class name and score, buffered into row groups of ROW_GROUP rows."""

    def __init__(self, path: Path, crs: CRS) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self.schema = _schema(crs)
        self.rows = 0
        self._pending: list[tuple[np.ndarray, np.ndarray, list[str], np.ndarray]] = []
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(str(path), self.schema, compression="zstd")

    def write(self, bounds: np.ndarray, classes: np.ndarray, names: list[str], scores: np.ndarray) -> None:
        if not len(bounds):
            return
        self._pending.append((bounds, classes, names, scores))
        self._pending_rows += len(bounds)
        self.rows += len(bounds)
        if self._pending_rows >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        bounds = np.concatenate([part[0] for part in self._pending])
        offsets, data = box_wkb(bounds)
        geometry = pa.BinaryArray.from_buffers(pa.binary(), len(bounds), [None, pa.py_buffer(offsets),
                                                                          pa.py_buffer(data)])
        bbox = pa.StructArray.from_arrays([pa.array(bounds[:, i]) for i in range(4)], names=list(_BBOX))
        columns = [geometry, pa.array(np.concatenate([p[1] for p in self._pending]), pa.int64()),
                   pa.array([name for p in self._pending for name in p[2]], pa.string()),
                   pa.array(np.concatenate([p[3] for p in self._pending]), pa.float32()), bbox]
        self._writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))
        self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        if self._writer is not None:
            self._flush()
            self._writer.close()
            self._writer = None


def read_boxes(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray, list[str], np.ndarray]]:
    """(bounds, classes, class names, scores) of a written file, row group by row group."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(str(path)).iter_batches(columns=["class", "class_name", "score", "bbox"]):
        bbox = batch.column("bbox")
        bounds = np.stack([bbox.field(key).to_numpy() for key in _BBOX], axis=1)
        yield (bounds, batch.column("class").to_numpy(), batch.column("class_name").to_pylist(),
               batch.column("score").to_numpy())


def write_geojson(source: Path, target: Path, crs: CRS) -> Path:
    """The boxes of a GeoParquet file as a WGS84 FeatureCollection (for files small enough to read whole)."""
    features = []
    for bounds, classes, names, scores in read_boxes(source):
        rings = [{"type": "Polygon", "coordinates": [[(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]}
                 for x0, y0, x1, y1 in bounds.tolist()]
        geometries = transform_geom(crs, "EPSG:4326", rings, precision=7) if rings else []
        features += [{"type": "Feature", "geometry": geometry,
                      "properties": {"class": int(value), "class_name": name, "score": round(float(score), 6)}}
                     for geometry, value, name, score in zip(geometries, classes, names, scores)]
    target.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return target


def _stretch(background: np.ndarray) -> np.ndarray:
    """(bands, h, w) imagery as 8-bit RGB with a 2–98 % stretch per band (grey for one band)."""
    bands = background if len(background) >= 3 else np.repeat(background[:1], 3, axis=0)
    return np.stack([grey_stretch(band) for band in bands[:3]], axis=-1)


def boxes_quicklook(source: Path, target: Path, background: np.ndarray, transform, shape: tuple[int, int],
                    colours: dict[int, tuple[int, int, int]], title: str | None = None) -> Path:
    """The imagery preview with every box outlined in its class colour, under its `title`; `transform` maps the
    full grid."""
    image = Image.fromarray(_stretch(background), mode="RGB")
    scale_x, scale_y = image.width / shape[1], image.height / shape[0]
    inverse = ~transform
    draw = ImageDraw.Draw(image)
    for bounds, classes, _, _ in read_boxes(source):
        for (x0, y0, x1, y1), value in zip(bounds.tolist(), classes.tolist()):
            (c0, r0), (c1, r1) = inverse * (x0, y1), inverse * (x1, y0)
            box = [math.floor(min(c0, c1) * scale_x), math.floor(min(r0, r1) * scale_y),
                   math.ceil(max(c0, c1) * scale_x), math.ceil(max(r0, r1) * scale_y)]
            draw.rectangle(box, outline=colours.get(int(value), (255, 255, 0)))
    return save_png(titled(image, title) if title else image, target)


def claim(request: PlanRequest, free: dict[int, ModelOutput]) -> list[Plan]:
    """One detection plan for the outputs that together describe boxes (boxes, labels and scores at once, or a
    YOLO table), as `mlm.shapes.detection_outputs` finds them; none where there are none."""
    indexes = list(free)
    boxes = [indexes[i] for i in detection_outputs(list(free.values()))]
    if not boxes:
        return []
    score, iou = thresholds(request.hyperparameters, request.score_threshold, request.iou_threshold)
    return [DetectionPlan([free[i] for i in boxes], boxes, request.probe, score, iou)]
