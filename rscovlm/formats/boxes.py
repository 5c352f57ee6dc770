"""Detection answers as text: the trained encoder and a parser that never gives up on a line.

The encoder is byte-identical with WIRE §2.3 (plain) and §2.6 (JSON). Coordinates are in MODEL
space (pixels of the resized image, or the 0-1000 grid) and must already be ints: truncation is
the job of ``CoordMap`` in ``rscovlm.resolution``, never of a string formatter.

The parser reads what checkpoints, other VLMs and half-broken generations write, and accounts
for every non-blank line. Tolerance decisions:

- Plain lines: 4, 5 or 8 numbers (kind from the count unless ``kind`` is given), ints or floats,
  spaces allowed around commas, optional ``[ ]``/``( )`` around the list, an optional list
  bullet, then the label (required). Negative numbers are kept: a box may poke out of the image,
  and clipping is the metric's business, not the reader's.
- JSON: fences anywhere, single items or lists, items spread over lines, trailing commas, a
  missing closing bracket (the complete items of a truncated answer are kept, the cut one is
  rejected), keys ``bbox_2d``/``oriented bbox``/``quadrant bbox``/``bbox`` (the kind still comes
  from the count, as the original eval mixed keys), ``[[x, y], …]`` point lists. Text around an
  item on the same line is ignored.
- Prose lines, wrong counts, labels that match no class (with a matcher): :class:`Rejected`,
  each with a reason; never forced onto a class.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Literal

from rscovlm.errors import InputError
from rscovlm.formats import _coords, _text
from rscovlm.formats._coords import BOX_KEYS, COORD_COUNTS
from rscovlm.formats.grounding import GroundingParse, encode_grounding, parse_grounding
from rscovlm.formats.labels import LabelMatcher
from rscovlm.formats.objects import DetObject, DetParse, LineFate, Rejected
from rscovlm.formats.prompts import NO_OBJECTS
from rscovlm.geometry import BoxKind

__all__ = [
    "BOX_KEYS",
    "DetObject",
    "DetParse",
    "GroundingParse",
    "LineFate",
    "Rejected",
    "encode_detections",
    "encode_grounding",
    "parse_detections",
    "parse_grounding",
]

_READ_KEYS = ("bbox_2d", "oriented bbox", "quadrant bbox", "bbox")
_JSON_PREFIX, _JSON_SEP, _JSON_SUFFIX = "```json\n[\n\t", ",\n\t", "\n]\n```"

_FATE_RANK = {"syntax": 0, "empty": 1, "rejected": 2, "object": 3}

_PLAIN_RE = re.compile(
    rf"^(?:[-*\u2022]\s+)?[\[(]?\s*(?P<nums>{_text.NUM}(?:\s*,\s*{_text.NUM})*)\s*[\])]?"
    r"(?:[\s:]+(?P<label>.*\S))?\s*$"
)
_SYNTAX_RE = re.compile(r"^[\s\[\]{}(),:;]*$")
_MAX_ITEM_LINES = 32  # longer is not one item (pretty quads need ~21 lines); bounds rescans


def _top_left(kind: str, c: Sequence[float]) -> tuple[float, float]:
    """(y1, x1) of the object's horizontal box: the training order's tie-breakers (WIRE §2.2)."""
    if kind == "hbb":
        return c[1], c[0]
    if kind == "quad":
        return min(c[1::2]), min(c[0::2])
    cx, cy, w, h, angle = c
    cos, sin = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    return cy - (w * sin + h * cos) / 2, cx - (w * cos + h * sin) / 2


def _check_label(label: object) -> str:
    if not isinstance(label, str) or not label or label != label.strip():
        raise InputError(f"label must be non-empty text without outer spaces, got {label!r}")
    if len(label.splitlines()) != 1:
        raise InputError(f"label must be a single line, got {label!r}")
    return label


def encode_detections(
    objects: Iterable[DetObject],
    kind: BoxKind,
    *,
    style: Literal["plain", "json"] = "plain",
    clockwise: bool = True,
    sort: bool = True,
) -> str:
    """Write a detection answer exactly as the checkpoints were trained (WIRE §2.3, §2.6).

    Args:
        objects: Objects of ``kind`` with int model-space coordinates.
        kind: The box kind of the answer.
        style: ``"plain"`` lines (the trained format) or the JSON layout.
        clockwise: Vertex order of quads (dense detection trained clockwise).
        sort: Order by (label, y1, x1) of each box's horizontal box with a stable sort, as
            training did; ``False`` keeps the given order.

    Returns:
        The answer; ``"There are none."`` for no objects.

    Raises:
        InputError: Unknown kind or style, an object of another kind, non-int coordinates, or a
            label that the parser could not read back (empty, outer spaces, line breaks).

    Examples:
        >>> quad = DetObject("small vehicle", "quad", (147, 227, 98, 227, 98, 196, 147, 196))
        >>> encode_detections([quad], "quad")
        '98,196,147,196,147,227,98,227 small vehicle\\n'
    """
    if kind not in COORD_COUNTS or style not in ("plain", "json"):
        raise InputError(f"unsupported kind={kind!r} / style={style!r}")
    rows: list[tuple[str, list[int]]] = []
    for obj in objects:
        if obj.kind != kind:
            raise InputError(f"cannot write a {obj.kind} object in a {kind} answer")
        coords = _coords.int_coords(obj.coords, f"object {obj.label!r}")
        if kind == "quad":
            coords = _coords.canonical_ints(coords, clockwise)
        rows.append((_check_label(obj.label), coords))
    if not rows:
        return NO_OBJECTS
    if sort:
        rows.sort(key=lambda row: (row[0], *_top_left(kind, row[1])))
    if style == "plain":
        return "".join(",".join(map(str, c)) + " " + label + "\n" for label, c in rows)
    items = (json.dumps({BOX_KEYS[kind]: c, "label": label}) for label, c in rows)
    return _JSON_PREFIX + _JSON_SEP.join(items) + _JSON_SUFFIX


class _Reader:
    """State of one :func:`parse_detections` call."""

    def __init__(self, kind: BoxKind | None, matcher: LabelMatcher | None) -> None:
        self.kind, self.matcher = kind, matcher
        self.result = DetParse()
        self.fates: dict[int, LineFate] = {}

    def mark(self, index: int, fate: LineFate) -> None:
        if _FATE_RANK[fate] >= _FATE_RANK[self.fates.get(index, "syntax")]:
            self.fates[index] = fate

    def reject(self, index: int, text: str, reason: str) -> None:
        self.result.rejected.append(Rejected(text, reason))
        self.mark(index, "rejected")

    def add(self, index: int, source: str, numbers: list[_text.Number], label: str) -> None:
        """Check count, kind and label of one candidate box, then keep or reject it."""
        found = _coords.KIND_OF_COUNT.get(len(numbers))
        if found is None:
            return self.reject(index, source, f"expected 4, 5 or 8 numbers, got {len(numbers)}")
        if self.kind is not None and found != self.kind:
            want = COORD_COUNTS[self.kind]
            return self.reject(
                index, source, f"expected {want} numbers for {self.kind}, got {len(numbers)}"
            )
        if not label:
            return self.reject(index, source, "missing label")
        class_name = None
        if self.matcher is not None:
            class_name = self.matcher.match(label).label
            if class_name is None:
                return self.reject(index, source, f"unknown label {label!r}")
        self.result.objects.append(DetObject(label, found, tuple(numbers), class_name))
        self.mark(index, "object")
        return None

    def json_item(self, index: int, text: str) -> None:
        """Read one ``{…}`` item: strict JSON first, then a key/value regex for broken items."""
        data = _text.loads_tolerant(text)
        numbers: list[_text.Number] | None = None
        label = ""
        if isinstance(data, dict):
            key = next((k for k in _READ_KEYS if k in data), None)
            if key is None:
                return self.reject(index, text, "JSON item has no box key")
            numbers = _text.flat_numbers(data[key])
            raw_label = data.get("label")
            label = raw_label.strip() if isinstance(raw_label, str) else ""
        else:
            box = _ITEM_BOX_RE.search(text)
            if box is None:
                return self.reject(index, text, "unreadable JSON item")
            numbers = _text.numbers_in(box.group("nums"))
            found = _ITEM_LABEL_RE.search(text)
            label = found.group("label").strip() if found else ""
        if numbers is None:
            return self.reject(index, text, "box is not a list of numbers")
        return self.add(index, text, numbers, label)


_KEYS_RE = "|".join(re.escape(k) for k in _READ_KEYS)
_ITEM_BOX_RE = re.compile(
    rf"""["']?(?:{_KEYS_RE})["']?\s*:\s*\[(?P<nums>(?:[^\[\]]|\[[^\[\]]*\])*)\]"""
)
_ITEM_LABEL_RE = re.compile(r"""["']label["']\s*:\s*(?P<q>["'])(?P<label>.*?)(?P=q)""")


def _read(text: str, reader: _Reader) -> None:
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        line = _text.strip_fence(raw)
        i += 1
        if not raw.strip():
            continue
        if not line:
            reader.mark(i - 1, "syntax")
        elif _text.is_empty_marker(line):
            reader.result.empty = True
            reader.mark(i - 1, "empty")
        elif (match := _PLAIN_RE.match(line)) is not None:
            numbers = _text.numbers_in(match.group("nums"))
            if numbers is None:
                reader.reject(i - 1, raw.strip(), "number too long or not finite")
            else:
                reader.add(i - 1, raw.strip(), numbers, match.group("label") or "")
        elif "{" in line:
            i = _read_json(lines, i - 1, reader)
        elif _SYNTAX_RE.match(line):
            reader.mark(i - 1, "syntax")
        else:
            reader.reject(i - 1, raw.strip(), "not a detection line")


def _read_json(lines: list[str], start: int, reader: _Reader) -> int:
    """Read the JSON items starting on ``lines[start]``; return the index of the next line."""
    scanner = _text.BraceScanner()
    end = start
    while True:
        scanner.feed(_text.strip_fence(lines[end]), end)
        reader.mark(end, "syntax")
        if not scanner.open or end + 1 >= len(lines) or end + 1 - start >= _MAX_ITEM_LINES:
            break
        end += 1
    for item, first in scanner.done:
        reader.json_item(first, item)
    if scanner.open:
        # Truncated (or never closed): reject the cut item and read its later lines on their own.
        cut = scanner.start_line
        reader.reject(cut, lines[cut].strip(), "truncated JSON item")
        return cut + 1
    return end + 1


def parse_detections(
    text: str, *, kind: BoxKind | None = None, matcher: LabelMatcher | None = None
) -> DetParse:
    """Read a detection answer, plain or JSON, never raising on any ``str``.

    Args:
        text: The model output (after :func:`~rscovlm.formats.tool_calls.strip_think`).
        kind: Accept only this box kind; lines with another count are rejected. ``None`` takes
            the kind from each line's count (4 hbb, 5 obb, 8 quad).
        matcher: Set each object's ``class_name``; labels it cannot match are rejected.

    Returns:
        Objects, rejections with reasons, the no-object flag and the fate of every line.

    Examples:
        >>> parsed = parse_detections("1,2,3,4 ship\\nI think that is all.")
        >>> [o.coords for o in parsed.objects], [r.reason for r in parsed.rejected]
        ([(1, 2, 3, 4)], ['not a detection line'])
    """
    if not isinstance(text, str):
        raise InputError(f"parse_detections reads str, got {type(text).__name__}")
    if kind is not None and kind not in COORD_COUNTS:
        raise InputError(f"unknown box kind {kind!r}; expected hbb, obb, quad or None")
    reader = _Reader(kind, matcher)
    n_lines = [i for i, line in enumerate(text.splitlines()) if line.strip()]
    try:
        _read(text, reader)
    except Exception as err:  # last line of defence: a long eval run must not die on one output
        return DetParse(
            rejected=[Rejected(text.strip()[:200], f"parser error: {type(err).__name__}: {err}")],
            line_fates=tuple("rejected" for _ in n_lines),
        )
    for i in n_lines:
        if i not in reader.fates:  # a bug if it ever happens; reported, not hidden
            reader.reject(i, text.splitlines()[i].strip(), "parser error: line not handled")
    reader.result.line_fates = tuple(reader.fates[i] for i in n_lines)
    return reader.result
