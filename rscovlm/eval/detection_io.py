"""Detection evaluation inputs: ground truth folders or json, and prediction files.

Ground truth: a DOTA ``labelTxt`` folder (one ``<image>.txt`` per image) or one such file
(read with :func:`rscovlm.data.sources.dota.read_dota_columns`) or a COCO detection json (read with
:func:`rscovlm.data.sources.coco.read_coco_detection`). Image ids are file stems (``P0001``);
for COCO the numeric image id is accepted as an alias.

Predictions, three formats (``fmt``), each read by its reader in :mod:`rscovlm.formats.results`
(next to the writer ``rscovlm detect`` uses):

- ``task1``: DOTA Task1 files ``Task1_<class>.txt`` (a folder of them, or one file), lines
  ``image_id score x1 y1 x2 y2 x3 y3 x4 y4`` in original pixels
  (:mod:`~rscovlm.formats.results.task1`).
- ``jsonl``: rscovlm's own predictions, one box per line (:mod:`~rscovlm.formats.results.jsonl`;
  ``quad``, ``hbb`` or ``obb``; a box without ``score`` scores 1 and is counted).
- ``vlm``: raw model outputs, one image per line (:mod:`~rscovlm.formats.results.raw`), decoded
  by :func:`rscovlm.formats.decode.decode_detections` — the decode of ``rscovlm detect`` —
  every box scoring 1; boxes of zero area count as unreadable.

Nothing is dropped silently: every reader fills a :class:`ReadReport` with unreadable lines,
unknown classes and (after :func:`align_to_gt`) predictions on images absent from the ground
truth, and the counts add up (``n_boxes = n_kept + n_unknown_class + n_missing_image``).

Speed: the files are read in bulk (:class:`~rscovlm.formats.results.ResultColumns`: numbers
converted in one numpy call per file, image ids and labels interned), so matching a class and
taking an image's :func:`image_key` happen once per distinct name, not once per box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rscovlm import geometry
from rscovlm.data.sources.dota import read_dota_columns, read_dota_folder
from rscovlm.errors import InputError
from rscovlm.eval.metrics.boxes import DetBoxes
from rscovlm.eval.read_report import ReadReport, image_key
from rscovlm.formats.decode import decode_detections
from rscovlm.formats.labels import LabelMatcher
from rscovlm.formats.results import (
    ResultColumns,
    intern,
    iter_raw_outputs,
    read_jsonl,
    read_task1,
)

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
    seen: frozenset[str] = frozenset()
    """Every image id a prediction line names, even one whose boxes were all unusable: a ground
    truth image outside it had no line at all (a crashed inference job looks like that)."""


class _Builder:
    """Collects boxes column by column, with image and class lookup once per distinct name,
    counting what cannot be used."""

    def __init__(self, classes: Sequence[str], report: ReadReport) -> None:
        self.classes = tuple(classes)
        self.matcher = LabelMatcher(self.classes)
        self._index = {name: i for i, name in enumerate(self.classes)}
        self.report = report
        self.fuzzy = False  # machine-written names match exactly or after normalising only
        self.image_index: dict[str, int] = {}
        self.seen: set[str] = set()
        self.parts: list[tuple[np.ndarray, ...]] = []

    def class_of(self, text: str) -> int | None:
        found = self.matcher.match(text)
        if found.label is None or (found.how == "fuzzy" and not self.fuzzy):
            return None
        return self._index[found.label]

    def image(self, name: str) -> int:
        return self.image_index.setdefault(name, len(self.image_index))

    def add_columns(
        self,
        names: Sequence[str],
        image: np.ndarray,
        labels: Sequence[str],
        label: np.ndarray,
        quads: Any,
        scores: Any = None,
        difficult: Any = None,
        *,
        key: bool = True,
    ) -> None:
        """Add boxes given as interned columns (``image`` indexes ``names``, ``label`` indexes
        ``labels``); an image enters the list with its first box of a known class."""
        q = geometry.as_quads(quads)
        n = len(q)
        self.report.n_boxes += n
        if not n:
            return
        cls = np.array([-1 if (c := self.class_of(t)) is None else c for t in labels], np.int64)
        box_cls = cls[label]
        known = box_cls >= 0
        if not known.all():
            counts = np.bincount(label[~known], minlength=len(labels))
            for j in np.flatnonzero(counts).tolist():
                self.report.unknown_classes[labels[j]] += int(counts[j])
        used, first = np.unique(image[known], return_index=True)
        img_map = np.full(len(names), -1, np.int64)
        for j in used[np.argsort(first)].tolist():  # first-seen order, as rows came
            img_map[j] = self.image(image_key(names[j]) if key else names[j])
        s = np.ones(n) if scores is None else np.asarray(scores, np.float64).reshape(-1)
        d = np.zeros(n, bool) if difficult is None else np.asarray(difficult, bool).reshape(-1)
        self.parts.append((img_map[image[known]], box_cls[known], q[known], s[known], d[known]))

    def add(
        self, image: str, label: str, quads: Any, score: float = 1.0, difficult: bool = False
    ) -> None:
        """Add the boxes of one image and one class (``image`` used as given)."""
        n = len(geometry.as_quads(quads))
        zeros = np.zeros(n, np.int64)
        self.add_columns(
            [image], zeros, [label], zeros, quads, np.full(n, float(score)),
            np.full(n, bool(difficult)), key=False,
        )  # fmt: skip

    def boxes(self) -> DetBoxes:
        parts = [p for p in self.parts if len(p[0])]
        if not parts:
            return DetBoxes.empty()
        img, lab, quads, score, diff = (np.concatenate(cols) for cols in zip(*parts, strict=True))
        self.report.n_kept = len(img)
        return DetBoxes.create(img, lab, quads.reshape(-1, 4, 2), score, diff)

    def names(self) -> tuple[str, ...]:
        return tuple(self.image_index)


def read_ground_truth(path: str | Path, classes: Sequence[str] | None = None) -> GroundTruth:
    """Read a DOTA ``labelTxt`` folder, one labelTxt file, or a COCO json.

    Args:
        path: The folder (``*.txt`` label files), one ``.txt`` label file (its stem is the
            image id) or the ``.json`` file.
        classes: The class list; default: the COCO categories (required for DOTA folders).

    Raises:
        InputError: the path does not exist, holds no label file, or no class list is known.
    """
    path = Path(path)
    report = ReadReport(f"ground truth {path}")
    label_file = path.is_file() and path.suffix.lower() == ".txt"  # one labelTxt, not COCO
    if path.is_dir() or label_file:
        files = [path] if label_file else sorted(path.glob("*.txt"))
        if not files:
            raise InputError(f"{path} holds no DOTA label file (*.txt)")
        if classes is None:
            raise InputError("a class list is needed for DOTA labels (e.g. --classes dota1.0)")
        build = _Builder(classes, report)
        folder = read_dota_folder(files)
        if folder is not None:  # every file clean: one C parse, one add
            for k, lineno, _raw, reason in folder.header_bad:
                report.bad(f"{files[k].name}:{lineno}", reason)
            stems = [file.stem for file in files]
            for stem in stems:
                build.image(stem)  # an image without objects still counts
            build.add_columns(
                stems, folder.image, folder.class_names,
                folder.label, folder.quads, None, folder.difficult, key=False,
            )  # fmt: skip
            files = []
        for file in files:
            labels = read_dota_columns(file)
            build.image(file.stem)  # an image without objects still counts
            for lineno, _raw, reason in labels.bad_lines:
                report.bad(f"{file.name}:{lineno}", reason)
            names, codes = intern(labels.class_names)
            image = np.zeros(len(codes), np.int64)
            build.add_columns(
                [file.stem], image, names, codes, labels.quads, None, labels.difficult, key=False
            )
        aliases: dict[str, int] = {}
    elif path.is_file():
        from rscovlm.data.sources.coco import read_coco_detection  # pydantic: only for COCO

        coco = read_coco_detection(path)
        classes = coco.class_names if classes is None else classes
        if not classes:
            raise InputError(f"{path} has no categories; pass a class list")
        build = _Builder(classes, report)
        aliases = {}
        names, labels, quads, difficult = [], [], [], []
        for image_id, image in coco.images.items():
            name = image_key(image.file_name)
            aliases[str(image_id)] = build.image(name)
            for obj in coco.objects.get(image_id, []):
                names.append(name)
                labels.append(obj.class_name)
                quads.append(geometry.as_quads(obj.quad))
                difficult.append(np.full(len(quads[-1]), obj.difficult))
        if names:
            image_names, image_codes = intern(names)
            label_names, label_codes = intern(labels)
            counts = [len(q) for q in quads]
            build.add_columns(
                image_names, np.repeat(image_codes, counts), label_names,
                np.repeat(label_codes, counts), np.concatenate(quads), None,
                np.concatenate(difficult), key=False,
            )  # fmt: skip
        for entry, reason in coco.bad_entries:
            report.bad(entry, reason)
    else:
        raise InputError(f"ground truth {path} does not exist")
    boxes = build.boxes()
    images = build.names()
    aliases.update({name: i for i, name in enumerate(images)})
    return GroundTruth(images, tuple(build.classes), boxes, report, aliases)


def _add_columns(cols: ResultColumns, build: _Builder) -> bool:
    """Add the boxes a bulk result-file reader read, count its bad rows; whether any was scored."""
    for position, reason in cols.bad:
        build.report.bad(cols.where(position), reason)
    build.report.n_unscored += int((~cols.scored).sum())
    # bincount, not np.unique: the distinct ids sorted all the same, without the numpy.ma
    # import (12-70 ms) that np.unique's plain path pays for ``np.ma.is_masked``
    named = np.flatnonzero(np.bincount(cols.image, minlength=len(cols.names)))
    build.seen.update(image_key(cols.names[j]) for j in named.tolist())
    build.add_columns(cols.names, cols.image, cols.labels, cols.label, cols.quads, cols.scores)
    return bool(cols.scored.any())


def _vlm_lines(path: Path, build: _Builder, default_family: str | None) -> None:
    """Raw outputs, decoded by :func:`rscovlm.formats.decode.decode_detections` (the decode of
    ``rscovlm detect``): unknown labels and zero-area boxes are counted, never forced."""
    for where, raw in iter_raw_outputs(path, default_family):
        if isinstance(raw, str):
            build.report.bad(where, raw)
            continue
        decoded = decode_detections(raw.output, raw.coord_map(), build.matcher)
        build.report.n_outputs += 1
        build.report.n_empty_outputs += decoded.empty and not decoded.n_read
        name = image_key(raw.image_id)
        build.seen.add(name)
        build.image(name)  # an image with no box still was predicted
        for rejected in decoded.rejected:
            build.report.bad(where, f"{rejected.reason}: {rejected.line[:60]}")
        for _ in range(decoded.n_degenerate):
            build.report.bad(where, "box of zero area or non-finite numbers")
        build.report.n_boxes += decoded.n_unknown_label
        build.report.unknown_classes.update(decoded.unknown_labels)
        for label, quad in zip(decoded.labels, decoded.quads, strict=True):
            build.add(name, label, quad)


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
            has_scores |= _add_columns(read_task1(file), build)
        elif fmt == "jsonl":
            has_scores |= _add_columns(read_jsonl(file), build)
        else:
            _vlm_lines(file, build, default_family)
    return Predictions(build.names(), build.boxes(), has_scores, report, frozenset(build.seen))


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
    if known.all():  # the usual case: no 200,000-row copy of every column
        return pred.boxes.with_image(new_image)
    return pred.boxes.take(known).with_image(new_image[known])
