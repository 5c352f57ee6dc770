"""A guess at what a prediction file is, for the error ``eval det`` gives when it read nothing.

A wrong ``--pred-format`` used to read zero boxes and print ``mAP 0.0000`` with exit 0, which
looks exactly like a model that found nothing. :func:`sniff_predictions` looks at the first
lines only (never the whole of a big file) and names the format they look like, so the error can
say which ``--pred-format`` to pass instead — or that the file is ground truth, or a COCO json
that ``eval det`` does not read as predictions.

Examples:
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "Task1_plane.txt"
    >>> _ = f.write_text("P0001 0.9 1 1 9 1 9 9 1 9\\n")
    >>> sniff_predictions(f).format
    'task1'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rscovlm.errors import InputError
from rscovlm.safe_read import read_json

__all__ = ["Sniffed", "sniff_predictions"]

_HEAD_BYTES = 64 * 1024  # the first lines are enough to tell the formats apart
_HEAD_LINES = 5
_BOX_KEYS = ("quad", "hbb", "obb")
_RAW_KEYS = ("output", "response", "text", "prediction")
_COCO_KEYS = ("images", "annotations", "categories")


@dataclass(frozen=True)
class Sniffed:
    """What a prediction file looks like.

    Attributes:
        format: The ``--pred-format`` that reads it (``task1``, ``jsonl``, ``vlm``), or ``None``
            when no prediction format does.
        what: A short description for the message (``"DOTA Task1 lines"``, ``"COCO ground
            truth json"``, ...).
    """

    format: str | None
    what: str

    def hint(self) -> str:
        """The advice for an error message."""
        if self.format is not None:
            return f"it looks like {self.what}: try --pred-format {self.format}"
        return f"it looks like {self.what}, which is not a prediction format eval det reads"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _head_lines(path: Path) -> list[str]:
    """The first non-blank lines of a file (bounded read; undecodable bytes replaced)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = [ln.strip() for ln in head.decode("utf-8", errors="replace").splitlines()]
    return [ln for ln in lines if ln][:_HEAD_LINES]


def _sniff_json_line(record: object) -> Sniffed | None:
    if not isinstance(record, dict):
        return None
    if any(k in record for k in _BOX_KEYS) and ("class" in record or "label" in record):
        return Sniffed("jsonl", "rscovlm prediction JSONL (one box per line)")
    if any(k in record for k in _RAW_KEYS):
        return Sniffed("vlm", "raw model outputs (one answer per line)")
    if "bbox" in record and "category_id" in record:
        return Sniffed(None, "COCO results (bbox, category_id)")
    return None


def _sniff_coco(path: Path) -> Sniffed | None:
    try:
        doc = read_json(path, "predictions")
    except InputError:
        return None
    if isinstance(doc, dict) and all(k in doc for k in _COCO_KEYS[:2]):
        return Sniffed(None, "COCO ground truth json (images, annotations)")
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        return Sniffed(None, "a GeoJSON FeatureCollection")
    if isinstance(doc, list) and doc and isinstance(doc[0], dict) and "bbox" in doc[0]:
        return Sniffed(None, "COCO results json (bbox, category_id)")
    return None


def _sniff_file(path: Path) -> Sniffed | None:
    lines = _head_lines(path)
    if not lines:
        return Sniffed(None, "an empty file")
    first = lines[0]
    if first.startswith(("{", "[")):
        try:
            found = _sniff_json_line(json.loads(first))
        except json.JSONDecodeError:
            found = None
        return found or _sniff_coco(path)
    for line in lines:
        tokens = line.split()
        if len(tokens) == 10 and all(_is_number(t) for t in tokens[1:]):
            return Sniffed("task1", "DOTA Task1 lines (image score x1 y1 ... y4)")
        if len(tokens) in (9, 10) and all(_is_number(t) for t in tokens[:8]):
            return Sniffed(None, "DOTA labelTxt ground truth (x1 y1 ... y4 class difficult)")
    return None


def sniff_predictions(path: str | Path) -> Sniffed | None:
    """Guess the format of a prediction file or folder (``None``: no idea).

    A folder is judged by its files: ``Task1_*.txt`` files mean ``task1``; otherwise its first
    ``*.jsonl``, ``*.json`` or ``*.txt`` file is looked at.
    """
    path = Path(path)
    if path.is_dir():
        if next(path.glob("Task1_*.txt"), None) is not None:
            return Sniffed("task1", "a folder of DOTA Task1 files")
        for pattern in ("*.jsonl", "*.json", "*.txt"):
            first = next(iter(sorted(path.glob(pattern))), None)
            if first is not None:
                return _sniff_file(first)
        return None
    if path.is_file():
        return _sniff_file(path)
    return None
