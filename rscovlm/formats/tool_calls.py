"""The Zoom-in Chain tool call as text, and the ``<think>`` cleanup of model outputs.

The encoder writes the exact assistant turn of WIRE §4.2. The parser replaces the original's
``lstrip``/``rstrip`` with character sets (any prose before the call broke it, WIRE §4.6, §9).
Tolerance decisions:

- The first ``<tool_call>`` block is read, with prose around it, and an unterminated block (no
  ``</tool_call>``: generation stopped) is read to the end of the text.
- The body is the first ``{…}`` JSON value in it, read strictly, then retried without trailing
  commas. Failing that (single quotes, a cut-off closing brace, Python literals), the name and
  the bbox are taken with a key/value regex that accepts either quote. ``arguments`` may be an
  object or a JSON string holding one (OpenAI style); the box may be under ``bbox`` or
  ``bbox_2d``.
- The name must be ``image_zoom_in``; the box must be 4 finite numbers (ints or floats) with
  x2 > x1 and y2 > y1. Negative or out-of-image values are kept: clipping to the image is the
  agent's job, which knows the image size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rscovlm.errors import InputError
from rscovlm.formats import _coords, _text

__all__ = [
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "ZOOM_TOOL_NAME",
    "ZoomCallParse",
    "encode_zoom_call",
    "parse_zoom_call",
    "parse_zoom_call_official",
    "stable_reply_prefix",
    "strip_think",
]

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
ZOOM_TOOL_NAME = "image_zoom_in"

_THINK_RE = re.compile(r"^\s*<think>(.*?)</think>", re.DOTALL)
_NAME_RE = re.compile(r"""["']name["']\s*:\s*(?P<q>["'])(?P<name>.*?)(?P=q)""")
_BBOX_RE = re.compile(r"""["']bbox(?:_2d)?["']\s*:\s*\[(?P<nums>[^\[\]]*)\]""")


@dataclass(frozen=True)
class ZoomCallParse:
    """The zoom box read from one model output.

    Attributes:
        bbox: ``(x1, y1, x2, y2)`` on the image the model saw, or ``None``.
        reason: Why no box was read, ``None`` when one was (and when there was no call at all).
        has_call: The output contains ``<tool_call>``: the model wants a tool, so the agent
            must answer the turn even when the call is unreadable.
    """

    bbox: tuple[int | float, ...] | None
    reason: str | None
    has_call: bool


def encode_zoom_call(bbox: Sequence[int]) -> str:
    """The trained assistant tool-call turn for a zoom box (model coordinates, ints).

    Raises:
        InputError: Not 4 ints, or a degenerate box (the parser would refuse it, so training
            on it would teach a call the agent cannot follow).

    Examples:
        >>> print(encode_zoom_call([234, 582, 344, 688]))
        <tool_call>
        {"name": "image_zoom_in", "arguments": {"bbox": [234, 582, 344, 688]}}
        </tool_call>
    """
    coords = _coords.int_coords(bbox, "zoom box")
    _coords.check_count("hbb", coords, "zoom box")
    x1, y1, x2, y2 = coords
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"zoom box {coords} is degenerate (needs x2 > x1 and y2 > y1)")
    call = json.dumps({"name": ZOOM_TOOL_NAME, "arguments": {"bbox": coords}})
    return f"{TOOL_CALL_OPEN}\n{call}\n{TOOL_CALL_CLOSE}"


def _body(text: str) -> str | None:
    start = text.find(TOOL_CALL_OPEN)
    if start < 0:
        return None
    start += len(TOOL_CALL_OPEN)
    end = text.find(TOOL_CALL_CLOSE, start)
    return text[start:] if end < 0 else text[start:end]


def _from_json(body: str) -> tuple[object, object] | None:
    """(name, box value) from the first JSON object of the body, or ``None``."""
    first = body.find("{")
    if first < 0:
        return None
    scanner = _text.BraceScanner()
    for index, line in enumerate(body[first:].splitlines()):
        scanner.feed(line, index)
        if scanner.done:
            break
    if not scanner.done:
        return None
    data = _text.loads_tolerant(scanner.done[0][0])
    if not isinstance(data, dict):
        return None
    arguments = data.get("arguments")
    if isinstance(arguments, str):
        arguments = _text.loads_tolerant(arguments)
    if not isinstance(arguments, dict):
        return data.get("name"), None
    return data.get("name"), arguments.get("bbox", arguments.get("bbox_2d"))


def _read(body: str) -> ZoomCallParse:
    found = _from_json(body)
    if found is not None:
        name, box = found
        numbers = _text.flat_numbers(box) if box is not None else None
    else:
        name_match, box_match = _NAME_RE.search(body), _BBOX_RE.search(body)
        if name_match is None and box_match is None:
            return ZoomCallParse(None, "tool call body is not readable JSON", True)
        name = name_match.group("name") if name_match else None
        numbers = _text.numbers_in(box_match.group("nums")) if box_match else None
    if not isinstance(name, str):
        return ZoomCallParse(None, "tool call has no name", True)
    if name != ZOOM_TOOL_NAME:
        return ZoomCallParse(None, f"unknown tool {str(name)[:40]!r}", True)
    if numbers is None:
        return ZoomCallParse(None, "no bbox list of numbers in the arguments", True)
    if len(numbers) != 4:
        return ZoomCallParse(None, f"bbox needs 4 numbers, got {len(numbers)}", True)
    x1, y1, x2, y2 = numbers
    if x2 <= x1 or y2 <= y1:
        return ZoomCallParse(None, f"degenerate bbox {numbers} (needs x2 > x1 and y2 > y1)", True)
    return ZoomCallParse(tuple(numbers), None, True)


def parse_zoom_call(text: str) -> ZoomCallParse:
    """Read the zoom box of the first ``<tool_call>`` in a model output; never raises on a str.

    Examples:
        >>> parse_zoom_call('Let me look. <tool_call>{"name": "image_zoom_in", '
        ...                 '"arguments": {"bbox": [10, 20, 110, 220]}}').bbox
        (10, 20, 110, 220)
        >>> parse_zoom_call("The answer is B.")
        ZoomCallParse(bbox=None, reason=None, has_call=False)
    """
    if not isinstance(text, str):
        raise InputError(f"parse_zoom_call reads str, got {type(text).__name__}")
    body = _body(text)
    if body is None:
        return ZoomCallParse(None, None, False)
    try:
        return _read(body)
    except Exception as err:  # last line of defence for the agent loop
        return ZoomCallParse(None, f"parser error: {type(err).__name__}: {err}", True)


def strip_think(text: str) -> str:
    """Drop a leading ``<think>…</think>`` block and strip, as the evaluation did (WIRE §1.4).

    An unterminated ``<think>`` is left in place, as in the original.

    Examples:
        >>> strip_think("<think>the roof is red</think>\\n A \\n")
        'A'
    """
    return _THINK_RE.sub("", text, count=1).strip()


def stable_reply_prefix(partial: str) -> str:
    """The part of ``strip_think(final)`` already certain when the reply so far is ``partial``.

    A streamed reply must add up to the reply a non-streamed request gets, yet
    :func:`strip_think` drops a leading think block and strips both ends. So a stream holds back
    what may still change: a possible or unterminated ``<think>`` opening (it would vanish
    once closed, or stay when it never is), trailing whitespace (stripped if nothing follows)
    and a trailing U+FFFD (half of a multi-byte character still being generated).

    Examples:
        >>> stable_reply_prefix("  A b ")
        'A b'
        >>> stable_reply_prefix("<thi"), stable_reply_prefix("<think>x")
        ('', '')
        >>> stable_reply_prefix("<think>x</think>\\n Yes")
        'Yes'
    """
    text = partial.lstrip()
    if text and "<think>".startswith(text):
        return ""
    if text.startswith("<think>"):
        closed = _THINK_RE.match(text)
        if closed is None:
            return ""
        text = text[closed.end() :].lstrip()
    return text.rstrip().rstrip("\ufffd").rstrip()


def parse_zoom_call_official(text: str) -> list[float] | None:
    """The zoom box as the ORIGINAL loop read it (EVAL_SUITE.md §1.7.2), bugs kept.

    The trigger is ``'<tool_call>'`` anywhere in the output; the body is what remains after
    stripping the CHARACTER SETS of ``'</tool_call>\\n'`` from the left and
    ``'\\n</tool_call>'`` from the right, so any prose before the call breaks it. ``None``
    stands for the original's exception (it then fed the whole resized image again).

    Examples:
        >>> parse_zoom_call_official('<tool_call>\\n{"name": "image_zoom_in", '
        ...                          '"arguments": {"bbox": [1, 2, 30, 40]}}\\n</tool_call>')
        [1, 2, 30, 40]
        >>> parse_zoom_call_official('Look: <tool_call>{"name": "image_zoom_in"}</tool_call>')
    """
    if not isinstance(text, str) or TOOL_CALL_OPEN not in text:
        return None
    try:
        call = json.loads(text.lstrip("</tool_call>\n").rstrip("\n</tool_call>"))  # noqa: B005
        if call["name"] != ZOOM_TOOL_NAME:
            return None
        bbox = call["arguments"]["bbox"]
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None
    if not isinstance(bbox, list) or len(bbox) != 4:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox):
        return None
    return bbox
