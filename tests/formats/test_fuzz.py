"""Fuzz every parser with 20 000 seeded, mutated model outputs: no exception, nothing lost.

Each input starts from a real answer (detections in every kind and style, grounding, tool calls,
``There are none.``) and gets 1-4 mutations: truncation, stray prose, dropped or extra numbers,
floats, negatives, over-long digit runs, unicode (line separators included), trailing commas,
fences, unbalanced braces, deep nesting, and random bytes decoded as text.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rscovlm.formats import (
    CLASS_LISTS,
    DetObject,
    DetParse,
    LabelMatcher,
    encode_detections,
    encode_grounding,
    encode_zoom_call,
    parse_detections,
    parse_grounding,
    parse_rle,
    parse_zoom_call,
    strip_think,
)

N_SAMPLES = 20_000
KINDS = ("hbb", "obb", "quad")
CLASSES = CLASS_LISTS["dota1.0"] + CLASS_LISTS["fair1m1.0"]
MATCHER = LabelMatcher(CLASS_LISTS["dota1.0"])
PROSE = [
    "Sure, here are the detected objects:",
    "I found the following.",
    "The image shows a harbor with ships.",
    "Note: some objects may be occluded.",
    "ship",
    "1, 2, 3",
    "[",
    "]",
    "},",
    "```",
    "```json",
    "There are none.",
    "there are none",
    '"label": "ship"',
    "<think>let me see</think>",
    "<tool_call>",
    "</tool_call>",
]
UNICODE = "\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e\u00e9\u4e2d\U0001f6f0\u0663\uff11\u200b\u202e\t\r"


def _answer(rng: random.Random) -> str:
    kind = rng.choice(KINDS)
    n = rng.randint(0, 6)
    objects = []
    for _ in range(n):
        count = {"hbb": 4, "obb": 5, "quad": 8}[kind]
        coords = tuple(rng.randint(0, 1008) for _ in range(count))
        objects.append(DetObject.for_class(rng.choice(CLASSES), kind, coords))  # type: ignore[arg-type]
    roll = rng.random()
    if roll < 0.6:
        return encode_detections(objects, kind, style=rng.choice(["plain", "json"]))  # type: ignore[arg-type]
    if roll < 0.8:
        coords4 = [rng.randint(0, 500) for _ in range(4)]
        return encode_grounding(coords4, rng.choice(CLASSES), style=rng.choice(["plain", "json"]))
    x, y = rng.randint(0, 500), rng.randint(0, 500)
    return encode_zoom_call([x, y, x + rng.randint(1, 300), y + rng.randint(1, 300)])


def _truncate(rng: random.Random, text: str) -> str:
    return text[: rng.randint(0, len(text))]


def _prose(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    lines.insert(rng.randint(0, len(lines)), rng.choice(PROSE))
    return "\n".join(lines)


def _numbers(rng: random.Random, text: str) -> str:
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    if not digits:
        return text + ",".join(str(rng.randint(-9, 9)) for _ in range(rng.randint(1, 9)))
    i = rng.choice(digits)
    new = rng.choice(
        [".5", "-", "-1", ",7", ",", "", "1" * rng.randint(20, 5000), "e9", "1.2.3", " , ", "nan"]
    )
    return text[:i] + new + text[i + 1 :]


def _unicode(rng: random.Random, text: str) -> str:
    i = rng.randint(0, len(text))
    junk = "".join(rng.choice(UNICODE) for _ in range(rng.randint(1, 4)))
    return text[:i] + junk + text[i:]


def _json_noise(rng: random.Random, text: str) -> str:
    i = rng.randint(0, len(text))
    junk = rng.choice(
        [",", ",]", ",}", "{", "}", "[", "]", '"', "'", "\\", "```", "{" * 300, "[" * 2000, '{"a":']
    )
    return text[:i] + junk + text[i:]


def _edit(rng: random.Random, text: str) -> str:
    if not text:
        return text
    i = rng.randrange(len(text))
    op = rng.randrange(3)
    if op == 0:
        return text[:i] + text[i + 1 :]
    if op == 1:
        return text[:i] + text[i] * rng.randint(2, 5) + text[i:]
    j = rng.randrange(len(text))
    chars = list(text)
    chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def _bytes(rng: random.Random, text: str) -> str:
    raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    decoded = raw.decode(rng.choice(["utf-8", "latin-1"]), errors="replace")
    return rng.choice([decoded, text + decoded, decoded + text])


def _wrap(rng: random.Random, text: str) -> str:
    return rng.choice(
        [
            "<think>" + text + "</think>",
            "<tool_call>" + text,
            "```json\n" + text + "\n```",
            text.replace("\n", "\r\n"),
            text.replace(", ", ","),
            text.upper(),
        ]
    )


MUTATIONS: list[Callable[[random.Random, str], str]] = [
    _truncate,
    _prose,
    _numbers,
    _unicode,
    _json_noise,
    _edit,
    _bytes,
    _wrap,
]


def _samples() -> list[str]:
    rng = random.Random(20_260_222)
    out = []
    for _ in range(N_SAMPLES):
        text = _answer(rng)
        for _ in range(rng.randint(1, 4)):
            text = rng.choice(MUTATIONS)(rng, text)
        out.append(text)
    return out


def _check_accounting(text: str, parsed: DetParse) -> None:
    nonblank = [line for line in text.splitlines() if line.strip()]
    assert len(parsed.line_fates) == len(nonblank)
    fates = Counter(parsed.line_fates)
    assert set(fates) <= {"object", "rejected", "empty", "syntax"}
    assert fates["object"] <= len(parsed.objects)
    assert (fates["object"] > 0) == bool(parsed.objects)
    assert fates["rejected"] <= len(parsed.rejected)
    if parsed.rejected:
        assert fates["rejected"] + fates["object"] > 0
    assert parsed.empty == (fates["empty"] > 0)
    assert all(r.line and r.reason for r in parsed.rejected)
    assert not any(r.reason.startswith("parser error") for r in parsed.rejected)
    if not any(ch in text for ch in "{}"):
        # Without JSON every line stands alone: exactly one object, rejection or marker each.
        assert fates["object"] == len(parsed.objects)
        assert fates["rejected"] == len(parsed.rejected)


@pytest.fixture(scope="module")
def samples() -> list[str]:
    return _samples()


def test_fuzz_parse_detections(samples: list[str]) -> None:
    rng = random.Random(7)
    for text in samples:
        kind = rng.choice(KINDS)
        for parsed in (
            parse_detections(text),
            parse_detections(text, kind=kind),  # type: ignore[arg-type]
            parse_detections(text, matcher=MATCHER),
        ):
            _check_accounting(text, parsed)
        for obj in parsed.objects:
            assert obj.class_name in CLASS_LISTS["dota1.0"]
            assert all(isinstance(v, int | float) for v in obj.coords)


def test_fuzz_other_parsers(samples: list[str]) -> None:
    for text in samples:
        grounding = parse_grounding(text)
        assert (grounding.box is None) == (grounding.reason is not None)
        assert grounding.reason is None or not grounding.reason.startswith("parser error")
        call = parse_zoom_call(text)
        assert call.has_call == ("<tool_call>" in text)
        if call.bbox is not None:
            x1, y1, x2, y2 = call.bbox
            assert x2 > x1 and y2 > y1 and call.reason is None
        assert call.reason is None or not call.reason.startswith("parser error")
        assert isinstance(strip_think(text), str)
        rle = parse_rle(text)
        assert (rle.mask is None) == (rle.reason is not None)


def test_fuzz_corpus_exercises_the_interesting_paths(samples: list[str]) -> None:
    """The mutations must reach objects, rejections, empties, truncation and tool-call errors."""
    reasons: Counter[str] = Counter()
    fates: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for text in samples[:5000]:
        parsed = parse_detections(text)
        reasons.update(r.reason.split(" ")[0] for r in parsed.rejected)
        fates.update(parsed.line_fates)
        call = parse_zoom_call(text)
        calls.update(["ok" if call.bbox else (call.reason or "none").split(" ")[0]])
    assert fates["object"] > 1000 and fates["rejected"] > 1000 and fates["empty"] > 50
    for reason in ("not", "expected", "truncated", "missing", "unreadable"):
        assert reasons[reason] > 0, reason
    assert calls["ok"] > 100 and calls["tool"] > 0 and calls["degenerate"] > 0


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_breaks_a_parser(text: str) -> None:
    for parsed in (parse_detections(text), parse_detections(text, kind="quad", matcher=MATCHER)):
        _check_accounting(text, parsed)
    assert not (parse_grounding(text).reason or "").startswith("parser error")
    assert parse_zoom_call(text).has_call == ("<tool_call>" in text)
    assert isinstance(strip_think(text), str)
    parse_rle(text)
