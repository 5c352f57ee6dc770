"""Small tolerant readers shared by the box and tool-call parsers (private).

None of these raise on model text: a reader returns ``None`` or an empty result for what it
cannot read, and the public parsers turn that into a reason.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: One number as models write it: optional sign, digits with an optional fraction, or ``.5``.
#: ASCII digits only, so other scripts' digits are never read as coordinates.
NUM = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_NUMBER_RE = re.compile(NUM)
_TRAILING_COMMA_RE = re.compile(r",\s*([}\]])")
_FENCE_OPEN_RE = re.compile(r"^```[A-Za-z0-9_+-]*")
_MAX_DIGITS = 64  # longer tokens are not coordinates; int() of thousands of digits is slow

Number = int | float


def parse_number(token: str) -> Number | None:
    """An ``int`` (no fraction) or finite ``float`` from a token; ``None`` if it is neither."""
    token = token.strip()
    if not token or len(token) > _MAX_DIGITS or not _NUMBER_RE.fullmatch(token):
        return None
    if "." in token:
        value = float(token)
        return value if math.isfinite(value) else None
    return int(token)


def numbers_in(text: str) -> list[Number] | None:
    """All numbers of a comma/space/bracket separated list, or ``None`` if anything else is in it.

    Examples:
        >>> numbers_in("[1, 2.5], [3,4]")
        [1, 2.5, 3, 4]
        >>> numbers_in("1, two") is None
        True
    """
    out: list[Number] = []
    for token in re.split(r"[\s,\[\]()]+", text):
        if not token:
            continue
        value = parse_number(token)
        if value is None:
            return None
        out.append(value)
    return out


def as_number(value: object) -> Number | None:
    """A JSON value as a finite number (``bool`` is not a number here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def flat_numbers(value: object) -> list[Number] | None:
    """A JSON list of numbers, or of ``[x, y]`` pairs, flattened; ``None`` otherwise."""
    if not isinstance(value, list):
        return None
    out: list[Number] = []
    for item in value:
        if isinstance(item, list):
            if len(item) != 2:
                return None
            pair = [as_number(v) for v in item]
            if pair[0] is None or pair[1] is None:
                return None
            out.extend(v for v in pair if v is not None)
        else:
            number = as_number(item)
            if number is None:
                return None
            out.append(number)
    return out


def strip_fence(line: str) -> str:
    """A stripped line without a leading ```` ```json ```` and a trailing ```` ``` ```` marker."""
    line = line.strip()
    if line.startswith("```"):
        line = _FENCE_OPEN_RE.sub("", line, count=1)
    if line.endswith("```"):
        line = line[:-3]
    return line.strip()


def is_empty_marker(line: str) -> bool:
    """Whether a line is the no-object sentence (``There are none.``, any case, dots optional)."""
    return line.strip().lower().rstrip(".").strip() == "there are none"


def loads_tolerant(text: str) -> Any:
    """``json.loads``, retried without trailing commas; ``None`` when both fail.

    Deeply nested or oversized input fails like any other bad JSON.
    """
    for candidate in (text, _TRAILING_COMMA_RE.sub(r"\1", text)):
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            continue
    return None


class BraceScanner:
    """Finds balanced ``{…}`` spans across lines, aware of double-quoted strings.

    A JSON string cannot hold a raw newline, so string state resets at each line end: one stray
    quote never swallows the rest of the output.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.in_str = False
        self.escaped = False
        self.current: list[str] = []
        self.start_line = -1
        self.done: list[tuple[str, int]] = []  # (item text, index of its first line)

    def feed(self, line: str, index: int) -> None:
        """Scan one line; completed items are appended to :attr:`done`."""
        self.in_str = self.escaped = False
        if self.depth:
            self.current.append("\n")
        for ch in line:
            if not self.depth:
                if ch == "{":
                    self.depth, self.current, self.start_line = 1, ["{"], index
                continue
            self.current.append(ch)
            if self.in_str:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.in_str = False
            elif ch == '"':
                self.in_str = True
            elif ch == "{":
                self.depth += 1
            elif ch == "}":
                self.depth -= 1
                if not self.depth:
                    self.done.append(("".join(self.current), self.start_line))
                    self.current = []

    @property
    def open(self) -> bool:
        """Whether an item is still unterminated."""
        return self.depth > 0
