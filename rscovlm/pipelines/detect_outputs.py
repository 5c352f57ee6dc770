"""Writers of tiled detection results (:class:`rscovlm.pipelines.detect.DetectionResult`).

Outputs (:func:`write_outputs`, each written to a temporary file and renamed): rscovlm
predictions JSONL (``image_id``, ``class``, ``quad``, ``score``; what ``rscovlm eval det
--pred-format jsonl`` reads), DOTA Task1 files, COCO json (8-value segmentation polygons plus
``bbox`` and ``score``), GeoJSON (polygons in the raster's CRS through its geotransform when it
is georeferenced, else pixel coordinates with no CRS), the raw model output of every patch in the
``vlm`` schema of ``rscovlm eval`` (``raw_outputs.jsonl``), and ``summary.json`` with the
counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rscovlm import geometry
from rscovlm.data.sources.dota import write_task1
from rscovlm.errors import InputError
from rscovlm.files import atomic_write_text
from rscovlm.imaging import pixel_to_map
from rscovlm.pipelines.detect import DetectionResult

__all__ = [
    "DETECT_FORMATS",
    "resolve_formats",
    "write_coco",
    "write_geojson",
    "write_jsonl",
    "write_outputs",
    "write_raw_outputs",
]

DETECT_FORMATS = ("jsonl", "task1", "coco", "geojson")
"""Output formats of :func:`write_outputs` (``all`` selects every one)."""


def resolve_formats(values: Iterable[str] | None) -> tuple[str, ...]:
    """Formats named by the user (``all``, repeated names, comma lists) in canonical order.

    Raises:
        InputError: An unknown name.
    """
    names = {n.strip().lower() for v in (values or ["all"]) for n in str(v).split(",")} - {""}
    if not names or "all" in names:
        return DETECT_FORMATS
    unknown = sorted(names - set(DETECT_FORMATS))
    if unknown:
        raise InputError(
            f"unknown output format {', '.join(unknown)}; choose from "
            f"{', '.join(DETECT_FORMATS)} or all"
        )
    return tuple(f for f in DETECT_FORMATS if f in names)


def write_jsonl(result: DetectionResult, path: str | Path) -> Path:
    """rscovlm predictions: one ``{"image_id", "class", "quad", "score"}`` line per box."""
    lines = (
        json.dumps(
            {"image_id": result.image_id, "class": c, "quad": q.reshape(-1).tolist(), "score": s}
        )
        + "\n"
        for c, q, s in zip(result.class_names, result.quads, result.scores.tolist(), strict=True)
    )
    return atomic_write_text(path, "".join(lines))


def write_raw_outputs(result: DetectionResult, path: str | Path) -> Path:
    """Every patch's raw output in the ``vlm`` schema of ``rscovlm eval`` (re-evaluable, and
    mergeable by ``rscovlm eval merge``); unreadable patches are left out (see the summary)."""
    lines = []
    for res, part in zip(result.patches, result.parts, strict=True):
        if res.output is None:
            continue
        record = {
            "image_id": res.name,
            "output": res.output,
            "orig_size": list(part.orig_size),
            "resized_size": list(part.resized_size),
            "family": result.family,
        }
        lines.append(json.dumps(record) + "\n")
    return atomic_write_text(path, "".join(lines))


def write_coco(result: DetectionResult, path: str | Path) -> Path:
    """A COCO detection json: one image, every class as a category (ids from 1), and one
    annotation per box with an 8-value ``segmentation`` polygon, its ``bbox`` ``[x, y, w, h]``,
    ``area`` and ``score`` (readable by :func:`rscovlm.data.sources.coco.read_coco_detection`)."""
    width, height = result.size
    hbb = geometry.quad_to_hbb(result.quads) if len(result.quads) else np.zeros((0, 4))
    area = geometry.quad_area(result.quads) if len(result.quads) else np.zeros(0)
    annotations = [
        {
            "id": k + 1,
            "image_id": 1,
            "category_id": int(label) + 1,
            "segmentation": [quad.reshape(-1).tolist()],
            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
            "area": float(a),
            "score": float(s),
            "iscrowd": 0,
        }
        for k, (quad, label, b, a, s) in enumerate(
            zip(result.quads, result.labels, hbb, area, result.scores, strict=True)
        )
    ]
    doc = {
        "images": [{"id": 1, "file_name": result.image.name, "width": width, "height": height}],
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(result.classes)],
        "annotations": annotations,
    }
    return atomic_write_text(path, json.dumps(doc) + "\n")


_EPSG = re.compile(r"^EPSG:(\d+)$", re.IGNORECASE)


def _ring(points: NDArray[np.float64]) -> list[list[float]]:
    """A closed ring, counter-clockwise in its own axes (the GeoJSON right-hand rule)."""
    x, y = points[:, 0], points[:, 1]
    signed = float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    if signed < 0:
        points = points[::-1]
    ring = points.tolist()
    return [*ring, ring[0]]


def write_geojson(result: DetectionResult, path: str | Path) -> Path:
    """A GeoJSON FeatureCollection, one Polygon per box.

    A georeferenced raster gives map coordinates (:func:`rscovlm.imaging.pixel_to_map` of the
    quad's vertices, pixel corners at integers) in the raster's CRS, named by the collection's
    ``crs`` member (the pre-RFC 7946 form GDAL and QGIS read; RFC 7946 itself only allows
    WGS 84, which would need a reprojection). Otherwise the coordinates are pixels (y down) and
    there is no ``crs``. Each feature keeps its pixel ``quad``, ``class`` and ``score``.
    """
    geo = result.raster.georeferenced
    features = []
    for quad, name, score in zip(
        result.quads, result.class_names, result.scores.tolist(), strict=True
    ):
        points = pixel_to_map(result.raster, quad) if geo else np.asarray(quad, dtype=np.float64)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [_ring(points)]},
                "properties": {
                    "image_id": result.image_id,
                    "class": name,
                    "score": score,
                    "quad": quad.reshape(-1).tolist(),
                },
            }
        )
    doc: dict[str, Any] = {"type": "FeatureCollection"}
    if geo and result.raster.crs is not None:
        match = _EPSG.match(result.raster.crs)
        name = f"urn:ogc:def:crs:EPSG::{match.group(1)}" if match else result.raster.crs
        doc["crs"] = {"type": "name", "properties": {"name": name}}
    doc["properties"] = {"coordinates": "map" if geo else "pixel", "image_id": result.image_id}
    doc["features"] = features
    return atomic_write_text(path, json.dumps(doc) + "\n")


def write_outputs(
    result: DetectionResult, out_dir: str | Path, formats: Iterable[str] | None = None
) -> dict[str, Path]:
    """Write the chosen formats into ``out_dir`` (created), plus ``raw_outputs.jsonl`` and
    ``summary.json`` always.

    Files: ``predictions.jsonl``, ``task1/Task1_<class>.txt`` (every class), ``coco.json``,
    ``detections.geojson``.

    Returns:
        The path of each written output by name (``task1`` is the folder).
    """
    chosen = resolve_formats(formats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if "jsonl" in chosen:
        written["jsonl"] = write_jsonl(result, out / "predictions.jsonl")
    if "task1" in chosen:
        write_task1(
            out / "task1",
            [result.image_id],
            result.classes,
            np.zeros(len(result.quads), dtype=np.int64),
            result.labels,
            result.quads,
            result.scores,
        )
        written["task1"] = out / "task1"
    if "coco" in chosen:
        written["coco"] = write_coco(result, out / "coco.json")
    if "geojson" in chosen:
        written["geojson"] = write_geojson(result, out / "detections.geojson")
    written["raw"] = write_raw_outputs(result, out / "raw_outputs.jsonl")
    summary = {**result.to_dict(), "outputs": {k: str(v) for k, v in written.items()}}
    written["summary"] = atomic_write_text(
        out / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    )
    return written
