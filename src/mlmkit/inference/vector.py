"""Axis-aligned boxes in a projected CRS written as GeoParquet 1.1 (streamed, row group by row group),
GeoJSON (WGS84, RFC 7946) and drawn on a quicklook.

Box polygons are encoded as WKB with numpy directly: five points per ring need no geometry library,
and pyarrow writes the file. The geometry column has a bbox covering column, as GeoParquet 1.1 allows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from rasterio.crs import CRS
from rasterio.warp import transform_geom

from mlmkit.drawing import titled
from mlmkit.inference.writer import grey_stretch, save_png

ROW_GROUP = 65536
GEOPARQUET_TYPE = "application/vnd.apache.parquet"
_WKB_POLYGON = np.dtype([("order", "u1"), ("type", "<u4"), ("rings", "<u4"), ("points", "<u4"), ("xy", "<f8", (10,))])
_BBOX = ("xmin", "ymin", "xmax", "ymax")


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
