"""Result files, each reader next to its writer, over one plain container.

Every floor that writes or reads detection results goes through here: tiled detection
(``rscovlm detect``) writes them, the evaluation (``rscovlm eval det`` / ``merge``) reads and
writes them, the demo writes them. The formats:

- :mod:`~rscovlm.formats.results.task1` — DOTA Task1 ``Task1_<class>.txt`` files (and the zip
  for the evaluation server);
- :mod:`~rscovlm.formats.results.jsonl` — rscovlm predictions, one box per JSON line;
- :mod:`~rscovlm.formats.results.coco` — a COCO detection json with scores;
- :mod:`~rscovlm.formats.results.geojson` — a GeoJSON FeatureCollection (map coordinates for a
  georeferenced raster);
- :mod:`~rscovlm.formats.results.raw` — raw model outputs with the sizes that decode them
  (the ``vlm`` prediction format).

The box formats take a :class:`DetectionTable` (image ids, classes, quads, labels, scores, and
what each image is) and their readers yield :class:`ResultBox` rows or reasons, so this floor
never knows the pipelines' or the evaluation's own result classes. The bulk readers
(``read_task1``, ``read_jsonl``, ``read_coco_columns``) return the same rows as
:class:`ResultColumns` (arrays, names interned), which is what ``rscovlm eval det`` reads: a
DOTA-scale file is split and converted in a few numpy calls, not one object per box.
"""

from __future__ import annotations

from rscovlm.formats.results._table import (
    DetectionTable,
    ResultBox,
    ResultColumns,
    ResultImage,
    intern,
    json_lines,
)
from rscovlm.formats.results.coco import read_coco_columns, read_coco_results, write_coco
from rscovlm.formats.results.geojson import GEOJSON_CRS, GeoJsonCrs, read_geojson, write_geojson
from rscovlm.formats.results.jsonl import iter_jsonl, read_jsonl, write_jsonl
from rscovlm.formats.results.raw import RawOutput, iter_raw_outputs, write_raw_outputs
from rscovlm.formats.results.task1 import (
    iter_task1,
    parse_task1_line,
    read_task1,
    task1_class,
    write_task1,
)

__all__ = [
    "GEOJSON_CRS",
    "DetectionTable",
    "GeoJsonCrs",
    "RawOutput",
    "ResultBox",
    "ResultColumns",
    "ResultImage",
    "intern",
    "iter_jsonl",
    "iter_raw_outputs",
    "iter_task1",
    "json_lines",
    "parse_task1_line",
    "read_coco_columns",
    "read_coco_results",
    "read_geojson",
    "read_jsonl",
    "read_task1",
    "task1_class",
    "write_coco",
    "write_geojson",
    "write_jsonl",
    "write_raw_outputs",
    "write_task1",
]
