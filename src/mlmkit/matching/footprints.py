"""Whether an Item's footprint meets a model's geometry: GeoJSON polygons in WGS84, compared as plane figures.

Only the outer rings count (holes are ignored) and coordinates are taken as they are written (no antimeridian
splitting), which is how STAC geometries of scenes and training areas are drawn. Other geometry types are
compared by their bounding boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]
Ring = list[Point]


def rings(geometry: dict | None) -> list[Ring] | None:
    """The outer rings of a Polygon or MultiPolygon; None for other (or malformed) geometries."""
    if not isinstance(geometry, dict):
        return None
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates if kind == "MultiPolygon" else None
    try:
        return [[(float(x), float(y)) for x, y, *_ in polygon[0]] for polygon in polygons]
    except (TypeError, ValueError, IndexError):
        return None


def bbox_of(geometry: dict | None, bbox: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) from a stated bbox, else from the geometry's coordinates."""
    if bbox and len(bbox) in (4, 6):
        half = len(bbox) // 2
        return float(bbox[0]), float(bbox[1]), float(bbox[half]), float(bbox[half + 1])
    shapes = rings(geometry)
    points = [point for ring in shapes or [] for point in ring]
    if not points:
        return None
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


def _boxes_meet(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _inside(point: Point, ring: Ring) -> bool:
    """Ray casting; a point on the boundary may fall either way (edges crossing catch that case)."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _turn(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on(point: Point, a: Point, b: Point) -> bool:
    """Whether a point lies on segment a-b."""
    return _turn(a, b, point) == 0 and min(a[0], b[0]) <= point[0] <= max(a[0], b[0]) \
        and min(a[1], b[1]) <= point[1] <= max(a[1], b[1])


def _proper(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Whether two segments cross each other at a point inside both."""
    return _turn(q1, q2, p1) * _turn(q1, q2, p2) < 0 and _turn(p1, p2, q1) * _turn(p1, p2, q2) < 0


def _cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Whether two segments touch or cross."""
    return _proper(p1, p2, q1, q2) or any(_on(*args) for args in ((p1, q1, q2), (p2, q1, q2), (q1, p1, p2),
                                                                   (q2, p1, p2)))


def _covered(point: Point, ring: Ring) -> bool:
    return _inside(point, ring) or any(_on(point, a, b) for a, b in _edges(ring))


def _edges(ring: Ring) -> list[tuple[Point, Point]]:
    return list(zip(ring, ring[1:] + ring[:1]))


def _rings_meet(a: Ring, b: Ring) -> bool:
    if any(_cross(p1, p2, q1, q2) for p1, p2 in _edges(a) for q1, q2 in _edges(b)):
        return True
    return _inside(a[0], b) or _inside(b[0], a)


def _is_box(ring: Ring, box: Sequence[float]) -> bool:
    corners = {(box[0], box[1]), (box[2], box[1]), (box[2], box[3]), (box[0], box[3])}
    return len(ring) <= 5 and set(ring) == corners


def relation(model: dict | None, model_bbox: Sequence[float] | None, item: dict | None,
             item_bbox: Sequence[float] | None) -> str | None:
    """'inside', 'partly' or 'outside': where the Item's footprint lies against the model's geometry;
    None when either side states neither geometry nor bbox."""
    box_m, box_i = bbox_of(model, model_bbox), bbox_of(item, item_bbox)
    if box_m is None or box_i is None:
        return None
    if not _boxes_meet(box_m, box_i):
        return "outside"
    model_rings, item_rings = rings(model), rings(item)
    if model_rings is not None and len(model_rings) == 1 and _is_box(model_rings[0], box_m):
        model_rings = None  # a rectangle: its bbox says it all, faster
    if model_rings is None or item_rings is None:
        inside = box_m[0] <= box_i[0] and box_m[1] <= box_i[1] and box_i[2] <= box_m[2] and box_i[3] <= box_m[3]
        return "inside" if inside else "partly"
    if not any(_rings_meet(a, b) for a in model_rings for b in item_rings):
        return "outside"
    crossing = any(_proper(p1, p2, q1, q2) for a in model_rings for b in item_rings
                   for p1, p2 in _edges(a) for q1, q2 in _edges(b))
    inside = all(any(_covered(point, ring) for ring in model_rings) for item_ring in item_rings for point in item_ring)
    return "inside" if inside and not crossing else "partly"
