"""Detection evaluation inputs: ground truth folders or json, and prediction files.

Ground truth: a DOTA ``labelTxt`` folder (one ``<image>.txt`` per image, read with
:func:`rscovlm.data.sources.dota.read_dota_labels`) or a COCO detection json (read with
:func:`rscovlm.data.sources.coco.read_coco_detection`). Image ids are file stems (``P0001``);
for COCO the numeric image id is accepted as an alias.

Predictions, three formats (``fmt``):

- ``task1``: DOTA Task1 files ``Task1_<class>.txt`` (a folder of them, or one file), lines
  ``image_id score x1 y1 x2 y2 x3 y3 x4 y4`` in original pixels.
- ``jsonl``: rscovlm's own predictions, one box per line::

      {"image_id": "P0001", "class": "plane", "score": 0.93, "quad": [x1, y1, ..., x4, y4]}

  with exactly one of ``"quad"`` (8 numbers or 4 ``[x, y]`` points), ``"hbb"`` ``[x1, y1, x2,
  y2]`` or ``"obb"`` ``[cx, cy, w, h, angle_deg]`` (the :mod:`rscovlm.geometry` convention), in
  original pixels. ``"score"`` is optional; a box without one scores 1 (and is counted).
- ``vlm``: raw model outputs, one image per line (see :mod:`rscovlm.eval.vlm_outputs`);
  every box scores 1.

Nothing is dropped silently: every reader fills a :class:`ReadReport` with unreadable lines,
unknown classes and (after :func:`align_to_gt`) predictions on images absent from the ground
truth, and the counts add up (``n_boxes = n_kept + n_unknown_class + n_missing_image``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rscovlm import geometry
from rscovlm.data.sources.coco import read_coco_detection
from rscovlm.data.sources.dota import read_dota_labels
from rscovlm.errors import InputError
from rscovlm.eval.metrics.boxes import DetBoxes
from rscovlm.eval.read_report import ReadReport, image_key
from rscovlm.eval.task1 import parse_task1_line, task1_class
from rscovlm.eval.vlm_outputs import vlm_record_boxes
from rscovlm.formats.labels import LabelMatcher

__all__ = [
    "PRED_FORMATS",
    "GroundTruth",
    "PredFormat",
    "Predictions",
    "ReadReport",
    "align_to_gt",
    "image_key",
    "read_ground_truth",
    "read_predictions",
]

PredFormat = Literal["task1", "vlm", "jsonl"]
PRED_FORMATS: tuple[PredFormat, ...] = ("task1", "vlm", "jsonl")


@dataclass
class GroundTruth:
    """Ground truth of a set of images: ``boxes.image`` indexes ``images``."""

    images: tuple[str, ...]
    classes: tuple[str, ...]
    boxes: DetBoxes
    report: ReadReport
    aliases: dict[str, int] = field(default_factory=dict)

    def index_of(self, name: str) -> int | None:
        """The index of image ``name`` (an id, a file name or a COCO image id)."""
        return self.aliases.get(name, self.aliases.get(image_key(name)))


@dataclass
class Predictions:
    """Predictions in their own image list; ``has_scores`` is false for score-less models."""

    images: tuple[str, ...]
    boxes: DetBoxes
    has_scores: bool
    report: ReadReport


class _Builder:
    """Collects boxes with image and class lookup, counting what cannot be used."""

    def __init__(self, classes: Sequence[str], report: ReadReport) -> None:
        self.classes = tuple(classes)
        self.matcher = LabelMatcher(self.classes)
        self._index = {name: i for i, name in enumerate(self.classes)}
        self.report = report
        self.fuzzy = False  # machine-written names match exactly or after normalising only
        self.image_index: dict[str, int] = {}
        self.rows: list[tuple[int, int, float, bool]] = []
        self.quads: list[np.ndarray] = []

    def class_of(self, text: str) -> int | None:
        found = self.matcher.match(text)
        if found.label is None or (found.how == "fuzzy" and not self.fuzzy):
            return None
        return self._index[found.label]

    def image(self, name: str) -> int:
        return self.image_index.setdefault(name, len(self.image_index))

    def add(
        self, image: str, label: str, quads: Any, score: float = 1.0, difficult: bool = False
    ) -> None:
        q = geometry.as_quads(quads)
        self.report.n_boxes += len(q)
        c = self.class_of(label)
        if c is None:
            self.report.unknown_classes[label] += len(q)
            return
        i = self.image(image)
        self.rows.extend([(i, c, float(score), bool(difficult))] * len(q))
        self.quads.extend(q)

    def boxes(self) -> DetBoxes:
        if not self.rows:
            return DetBoxes.empty()
        img, lab, score, diff = zip(*self.rows, strict=True)
        self.report.n_kept = len(self.rows)
        return DetBoxes.create(img, lab, np.stack(self.quads), score, diff)

    def names(self) -> tuple[str, ...]:
        return tuple(self.image_index)


def read_ground_truth(path: str | Path, classes: Sequence[str] | None = None) -> GroundTruth:
    """Read a DOTA ``labelTxt`` folder or a COCO json.

    Args:
        path: The folder (``*.txt`` label files) or the ``.json`` file.
        classes: The class list; default: the COCO categories (required for DOTA folders).

    Raises:
        InputError: the path does not exist, holds no label file, or no class list is known.
    """
    path = Path(path)
    report = ReadReport(f"ground truth {path}")
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise InputError(f"{path} holds no DOTA label file (*.txt)")
        if classes is None:
            raise InputError("a class list is needed for DOTA labels (e.g. --classes dota1.0)")
        build = _Builder(classes, report)
        for file in files:
            labels = read_dota_labels(file)
            build.image(file.stem)  # an image without objects still counts
            for lineno, _raw, reason in labels.bad_lines:
                report.bad(f"{file.name}:{lineno}", reason)
            for obj in labels.objects:
                build.add(file.stem, obj.class_name, obj.quad, difficult=obj.difficult)
        aliases: dict[str, int] = {}
    elif path.is_file():
        coco = read_coco_detection(path)
        classes = coco.class_names if classes is None else classes
        if not classes:
            raise InputError(f"{path} has no categories; pass a class list")
        build = _Builder(classes, report)
        aliases = {}
        for image_id, image in coco.images.items():
            name = image_key(image.file_name)
            aliases[str(image_id)] = build.image(name)
            for obj in coco.objects.get(image_id, []):
                build.add(name, obj.class_name, obj.quad, difficult=obj.difficult)
        for entry, reason in coco.bad_entries:
            report.bad(entry, reason)
    else:
        raise InputError(f"ground truth {path} does not exist")
    boxes = build.boxes()
    images = build.names()
    aliases.update({name: i for i, name in enumerate(images)})
    return GroundTruth(images, tuple(build.classes), boxes, report, aliases)


def _task1_lines(path: Path, build: _Builder) -> bool:
    """Read one Task1 file; the class comes from the file name ``Task1_<class>.txt``."""
    label = task1_class(path)
    with path.open(encoding="utf-8", errors="replace") as handle:
        for lineno, raw in enumerate(handle, start=1):
            parsed = parse_task1_line(raw)
            if isinstance(parsed, str):
                build.report.bad(f"{path.name}:{lineno}", parsed)
            elif parsed is not None:
                build.add(image_key(parsed[0]), label, parsed[2], parsed[1])
    return True


def _jsonl_box(record: dict[str, Any]) -> tuple[np.ndarray, str] | str:
    kinds = [k for k in ("quad", "hbb", "obb") if k in record]
    if len(kinds) != 1:
        return "needs exactly one of quad, hbb, obb"
    try:
        values = np.asarray(record[kinds[0]], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return f"{kinds[0]} is not a list of numbers"
    want = {"quad": 8, "hbb": 4, "obb": 5}[kinds[0]]
    if len(values) != want or not np.isfinite(values).all():
        return f"{kinds[0]} needs {want} finite numbers"
    convert: dict[str, Callable[[Any], np.ndarray]] = {
        "quad": geometry.as_quads,
        "hbb": geometry.hbb_to_quad,
        "obb": geometry.obb_to_quad,
    }
    return geometry.as_quads(convert[kinds[0]](values)), kinds[0]


def _jsonl_lines(path: Path, build: _Builder) -> bool:
    scored = False
    for lineno, record in _json_records(path, build.report):
        box = _jsonl_box(record)
        name, label = record.get("image_id"), record.get("class")
        score = record.get("score", 1.0)
        if isinstance(box, str) or name is None or not isinstance(label, str):
            why = box if isinstance(box, str) else "needs image_id and class"
            build.report.bad(f"{path.name}:{lineno}", why)
            continue
        if (
            isinstance(score, bool)
            or not isinstance(score, (int, float))
            or not math.isfinite(score)
        ):
            build.report.bad(f"{path.name}:{lineno}", "score is not a finite number")
            continue
        if "score" in record:
            scored = True
        else:
            build.report.n_unscored += 1
        build.add(image_key(name), label, box[0], float(score))
    return scored


def _vlm_lines(path: Path, build: _Builder, default_family: str | None) -> None:
    build.fuzzy = True  # model text: typos and plurals are matched, with a cutoff
    for lineno, record in _json_records(path, build.report):
        try:
            parsed = vlm_record_boxes(record, default_family)
        except InputError as exc:
            build.report.bad(f"{path.name}:{lineno}", str(exc))
            continue
        build.report.n_outputs += 1
        build.report.n_empty_outputs += parsed.empty and not parsed.boxes
        build.image(image_key(parsed.image_id))  # an image with no box still was predicted
        for rejected in parsed.rejected:
            build.report.bad(f"{path.name}:{lineno}", f"{rejected.reason}: {rejected.line[:60]}")
        for label, quad in parsed.boxes:
            build.add(image_key(parsed.image_id), label, quad)


def _json_records(path: Path, report: ReadReport) -> Iterable[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of each JSON-object line; other lines are counted as bad."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                report.bad(f"{path.name}:{lineno}", f"not JSON ({exc.msg})")
                continue
            if not isinstance(record, dict):
                report.bad(f"{path.name}:{lineno}", "not a JSON object")
                continue
            yield lineno, record


def read_predictions(
    path: str | Path, fmt: PredFormat, classes: Sequence[str], *, default_family: str | None = None
) -> Predictions:
    """Read predictions in any of :data:`PRED_FORMATS` (see the module header).

    Raises:
        InputError: unknown format, a missing path, or a folder without prediction files.
    """
    path = Path(path)
    if fmt not in PRED_FORMATS:
        raise InputError(f"unknown prediction format {fmt!r}; expected one of {PRED_FORMATS}")
    if not path.exists():
        raise InputError(f"predictions {path} do not exist")
    pattern = "Task1_*.txt" if fmt == "task1" else "*.jsonl"
    files = sorted(path.glob(pattern)) if path.is_dir() else [path]
    if not files:
        raise InputError(f"{path} holds no prediction file ({pattern})")
    report = ReadReport(f"predictions {path}")
    build = _Builder(classes, report)
    has_scores = False
    for file in files:
        if fmt == "task1":
            has_scores |= _task1_lines(file, build)
        elif fmt == "jsonl":
            has_scores |= _jsonl_lines(file, build)
        else:
            _vlm_lines(file, build, default_family)
    return Predictions(build.names(), build.boxes(), has_scores, report)


def align_to_gt(pred: Predictions, gt: GroundTruth) -> DetBoxes:
    """The predictions re-indexed to the ground truth's images; the others are counted.

    Updates ``pred.report``: ``missing_images`` (boxes per image the ground truth does not
    have, 0 for an answer without boxes) and ``n_kept``.
    """
    lookup = np.array([-1 if (i := gt.index_of(n)) is None else i for n in pred.images], np.int64)
    new_image = lookup[pred.boxes.image] if len(pred.boxes) else np.zeros(0, np.int64)
    known = new_image >= 0
    counts = np.bincount(pred.boxes.image[~known], minlength=len(pred.images))
    for idx in np.flatnonzero(lookup < 0):  # every unknown image, even one without boxes
        pred.report.missing_images[pred.images[idx]] = int(counts[idx])
    pred.report.n_kept = int(known.sum())
    return pred.boxes.take(known).with_image(new_image[known])
