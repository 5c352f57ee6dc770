"""Where tiled detection results go: :func:`write_outputs` orchestrates the result formats.

The formats themselves (readers next to writers) live in :mod:`rscovlm.formats.results`; this
module only picks them and names the files: rscovlm predictions JSONL (``image_id``, ``class``,
``quad``, ``score``; what ``rscovlm eval det --pred-format jsonl`` reads), DOTA Task1 files, COCO
json, GeoJSON (RFC 7946 WGS 84 lon/lat when the raster is georeferenced, or its own CRS with
``crs="native"``), the raw model output of every
patch in the ``vlm`` schema of ``rscovlm eval`` (``raw_outputs.jsonl``, mergeable by ``rscovlm
eval merge`` into the same boxes), and ``summary.json`` with the counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from rscovlm.errors import InputError
from rscovlm.files import atomic_write_text
from rscovlm.formats.results import (
    GeoJsonCrs,
    write_coco,
    write_geojson,
    write_jsonl,
    write_raw_outputs,
    write_task1,
)
from rscovlm.pipelines.detect import DetectionResult

__all__ = ["DETECT_FORMATS", "resolve_formats", "write_outputs"]

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


def write_outputs(
    result: DetectionResult,
    out_dir: str | Path,
    formats: Iterable[str] | None = None,
    *,
    crs: GeoJsonCrs = "wgs84",
) -> dict[str, Path]:
    """Write the chosen formats into ``out_dir`` (created), plus ``raw_outputs.jsonl`` and
    ``summary.json`` always.

    Files: ``predictions.jsonl``, ``task1/Task1_<class>.txt`` (every class), ``coco.json``,
    ``detections.geojson`` (``crs``: ``wgs84`` RFC 7946 lon/lat, or ``native`` map coordinates
    with the pre-RFC ``crs`` member; see :mod:`rscovlm.formats.results.geojson`).

    Returns:
        The path of each written output by name (``task1`` is the folder).
    """
    chosen = resolve_formats(formats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    table = result.table()
    if "jsonl" in chosen:
        written["jsonl"] = write_jsonl(table, out / "predictions.jsonl")
    if "task1" in chosen:
        write_task1(table, out / "task1")
        written["task1"] = out / "task1"
    if "coco" in chosen:
        written["coco"] = write_coco(table, out / "coco.json")
    if "geojson" in chosen:
        written["geojson"] = write_geojson(table, out / "detections.geojson", crs)
    written["raw"] = write_raw_outputs(result.raw_outputs(), out / "raw_outputs.jsonl")
    summary = {**result.to_dict(), "outputs": {k: str(v) for k, v in written.items()}}
    written["summary"] = atomic_write_text(
        out / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    )
    return written
