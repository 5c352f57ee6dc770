"""GeoJSON FeatureCollection of detections, one Polygon per box.

A georeferenced raster gives, by default (``crs="wgs84"``), RFC 7946 GeoJSON: the quad's
vertices (pixel corners at integers) reprojected to WGS 84 longitude, latitude
(:func:`rscovlm.imaging.pixel_to_lonlat`), rings counter-clockwise, and no ``crs`` member — what
geojson.io, Leaflet and web maps place correctly (map coordinates in a projected CRS are
misplaced by all of them). ``crs="native"`` keeps the raster's own map coordinates
(:func:`rscovlm.imaging.pixel_to_map`) and names the CRS in the pre-RFC 7946 ``crs`` member (the
2008 form GDAL and QGIS still read); that file is NOT RFC 7946. A raster without georeferencing
gives pixel coordinates (y down) and no ``crs``. The collection's ``properties.coordinates``
says which (``wgs84``, ``map`` or ``pixel``). Each feature keeps its pixel ``quad``,
``image_id``, ``class`` and ``score``, which is what :func:`read_geojson` reads back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from rscovlm.errors import InputError
from rscovlm.files import atomic_write_text
from rscovlm.formats.results._table import DetectionTable, ResultBox
from rscovlm.safe_read import read_json

__all__ = ["GEOJSON_CRS", "GeoJsonCrs", "read_geojson", "write_geojson"]

GeoJsonCrs = Literal["wgs84", "native"]
GEOJSON_CRS: tuple[GeoJsonCrs, ...] = ("wgs84", "native")

_EPSG = re.compile(r"^EPSG:(\d+)$", re.IGNORECASE)


def _ring(points: NDArray[np.float64]) -> list[list[float]]:
    """A closed ring, counter-clockwise in its own axes (the GeoJSON right-hand rule)."""
    x, y = points[:, 0], points[:, 1]
    signed = float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    if signed < 0:
        points = points[::-1]
    ring = points.tolist()
    return [*ring, ring[0]]


def write_geojson(table: DetectionTable, path: str | Path, crs: GeoJsonCrs = "wgs84") -> Path:
    """Write ``table`` as one FeatureCollection (``crs``: see the module docstring).

    Map coordinates need every image to share one georeferenced raster (a single scene);
    otherwise the collection is in pixels.

    Raises:
        InputError: An unknown ``crs``, or a CRS that cannot be reprojected to WGS 84.
    """
    if crs not in GEOJSON_CRS:
        raise InputError(f"GeoJSON crs must be one of {', '.join(GEOJSON_CRS)}, got {crs!r}")
    rasters = {i.raster for i in table.images}
    raster = next(iter(rasters)) if len(rasters) == 1 else None
    geo = raster is not None and raster.georeferenced
    # imported here: rscovlm.imaging brings PIL (11 ms) to every reader of result files
    from rscovlm.imaging import pixel_to_lonlat, pixel_to_map

    to_map = pixel_to_lonlat if crs == "wgs84" else pixel_to_map
    ids = table.image_ids
    features = []
    for img, quad, name, score in zip(
        table.image.tolist(), table.quads, table.class_names(), table.scores.tolist(), strict=True
    ):
        points = to_map(raster, quad) if geo else np.asarray(quad, dtype=np.float64)  # type: ignore[arg-type]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [_ring(points)]},
                "properties": {
                    "image_id": ids[img],
                    "class": name,
                    "score": score,
                    "quad": quad.reshape(-1).tolist(),
                },
            }
        )
    doc: dict[str, Any] = {"type": "FeatureCollection"}
    if geo and crs == "native" and raster is not None and raster.crs is not None:
        match = _EPSG.match(raster.crs)
        name = f"urn:ogc:def:crs:EPSG::{match.group(1)}" if match else raster.crs
        doc["crs"] = {"type": "name", "properties": {"name": name}}
    doc["properties"] = {"coordinates": ("wgs84" if crs == "wgs84" else "map") if geo else "pixel"}
    if len(ids) == 1:
        doc["properties"]["image_id"] = ids[0]
    doc["features"] = features
    return atomic_write_text(path, json.dumps(doc) + "\n")


def read_geojson(path: str | Path) -> Iterator[tuple[str, ResultBox | str]]:
    """``(where, box)`` per feature (from its pixel ``quad`` property), ``(where, reason)``
    for a feature without one.

    Raises:
        InputError: The file is not JSON or not a FeatureCollection.
    """
    path = Path(path)
    doc = read_json(path, "GeoJSON")
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise InputError(f"{path} is not a GeoJSON FeatureCollection")
    default_id = (doc.get("properties") or {}).get("image_id")
    for k, feature in enumerate(doc["features"]):
        where = f"{path.name}:feature {k}"
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            yield where, "feature without properties"
            continue
        try:
            quad = np.asarray(props.get("quad"), dtype=np.float64).reshape(4, 2)
        except (TypeError, ValueError):
            yield where, "needs an 8-value pixel quad"
            continue
        image_id, label = props.get("image_id", default_id), props.get("class")
        if image_id is None or not isinstance(label, str) or not np.isfinite(quad).all():
            yield where, "needs image_id, class and a finite quad"
            continue
        score = props.get("score", 1.0)
        yield where, ResultBox(str(image_id), label, quad, float(score), "score" in props)
