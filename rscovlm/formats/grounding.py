"""Referring-expression answers: the trained refGeo encoder and a robust first-box reader.

Re-exported by :mod:`rscovlm.formats.boxes`. The encoder reproduces WIRE §3.1 byte for byte,
including two quirks the checkpoints learned: refGeo polygons are counter-clockwise
(``clockwise=False`` by default for quads) and the JSON answer is glued from strings, so the
expression is NOT JSON-escaped.

The reader takes the first box-like thing anywhere in the output: a plain line, a JSON value, a
bracketed list, ``[[x, y], …]`` or ``(x, y), …`` points. It accepts 4 (hbb), 5 (obb) or 8
(quad) numbers, ints or floats, negative or not, with or without a label; it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rscovlm.errors import InputError
from rscovlm.formats import _coords, _text
from rscovlm.geometry import BoxKind

__all__ = ["GroundingParse", "encode_grounding", "parse_grounding"]

_N = _text.NUM
# A run of comma-separated numbers on one line, not glued to a word or another number.
_RUN_RE = re.compile(rf"(?<![0-9A-Za-z_.])(?:{_N})(?:[ \t]*,[ \t]*{_N})*")
_PAIR = rf"[ \t]*{_N}[ \t]*,[ \t]*{_N}[ \t]*"
_POINTS_RE = re.compile(
    rf"\[[ \t]*\[{_PAIR}\](?:[ \t]*,[ \t]*\[{_PAIR}\]){{3}}[ \t]*\]"
    rf"|\({_PAIR}\)(?:[ \t]*,[ \t]*\({_PAIR}\)){{3}}"
)


@dataclass(frozen=True)
class GroundingParse:
    """The box read from a grounding answer.

    Attributes:
        box: The numbers of the first box found (model coordinates), or ``None``.
        kind: Its kind from the count, or ``None`` when no box was found.
        reason: Why no box was read (``None`` when one was).
    """

    box: tuple[float, ...] | None
    kind: BoxKind | None
    reason: str | None


def encode_grounding(
    box_coords: Sequence[int],
    expression: str,
    kind: BoxKind = "hbb",
    style: Literal["plain", "json"] = "plain",
    clockwise: bool = False,
) -> str:
    """Write a referring answer as refGeo training did (WIRE §3.1).

    Args:
        box_coords: 4 (hbb), 5 (obb) or 8 (quad) int model-space coordinates.
        expression: The whole referring expression, used as the label verbatim.
        kind: Box kind.
        style: ``"plain"`` (trained) or ``"json"`` (string-concatenated, label unescaped).
        clockwise: Quad vertex order; refGeo trained counter-clockwise, hence ``False``.

    Raises:
        InputError: Wrong count for the kind, non-int coordinates, or an unknown style.

    Examples:
        >>> encode_grounding([98, 196, 147, 196, 147, 227, 98, 227], "small car", "quad")
        '98,196,98,227,147,227,147,196 small car\\n'
        >>> encode_grounding([1, 2, 3, 4], 'the "red" car', style="json")
        '```json\\n[\\n\\t{"bbox_2d": [1, 2, 3, 4], "label": "the "red" car"}\\n]\\n```'
    """
    coords = _coords.int_coords(box_coords, "grounding box")
    _coords.check_count(kind, coords, "grounding box")
    if kind == "quad":
        coords = _coords.canonical_ints(coords, clockwise)
    if style == "plain":
        return ",".join(map(str, coords)) + " " + expression + "\n"
    if style == "json":
        numbers = ", ".join(map(str, coords))
        return (
            '```json\n[\n\t{"'
            + _coords.BOX_KEYS[kind]
            + '": ['
            + numbers
            + '], "label": "'
            + expression
            + '"}\n]\n```'
        )
    raise InputError(f"unknown grounding style {style!r}; expected plain or json")


def _first_box(text: str) -> GroundingParse:
    candidates = [(m.start(), m.group(0)) for m in _POINTS_RE.finditer(text)]
    candidates += [(m.start(), m.group(0)) for m in _RUN_RE.finditer(text) if "," in m.group(0)]
    candidates.sort(key=lambda c: c[0])
    first_bad: str | None = None
    for _, found in candidates:
        numbers = _text.numbers_in(found)
        if numbers is None:
            first_bad = first_bad or f"unreadable numbers in {found[:40]!r}"
            continue
        kind = _coords.KIND_OF_COUNT.get(len(numbers))
        if kind is None:
            first_bad = first_bad or f"found {len(numbers)} numbers, expected 4, 5 or 8"
            continue
        return GroundingParse(tuple(numbers), kind, None)
    return GroundingParse(None, None, first_bad or "no box found")


def parse_grounding(text: str) -> GroundingParse:
    """Read the first box of a grounding answer; never raises on any ``str``.

    Examples:
        >>> parse_grounding("98,196,147,227 the small car\\n")
        GroundingParse(box=(98, 196, 147, 227), kind='hbb', reason=None)
        >>> parse_grounding('```json\\n[{"bbox_2d": [1.5, 2, 3, 4], "label": "x"}]\\n```').box
        (1.5, 2, 3, 4)
        >>> parse_grounding("There are none.").reason
        'the answer says there are no objects'
    """
    if not isinstance(text, str):
        raise InputError(f"parse_grounding reads str, got {type(text).__name__}")
    try:
        found = _first_box(text)
        if found.box is None and any(
            _text.is_empty_marker(_text.strip_fence(line)) for line in text.splitlines()
        ):
            return GroundingParse(None, None, "the answer says there are no objects")
        return found
    except Exception as err:  # last line of defence for long evaluation runs
        return GroundingParse(None, None, f"parser error: {type(err).__name__}: {err}")
