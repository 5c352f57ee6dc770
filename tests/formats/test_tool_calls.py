"""Zoom-in Chain tool calls (WIRE §4.2, §4.6), ``<think>`` cleanup (§1.4) and RLE masks (§3.1)."""

from __future__ import annotations

import numpy as np
import pytest

from rscovlm.errors import InputError
from rscovlm.formats import (
    ZoomCallParse,
    encode_rle,
    encode_zoom_call,
    parse_rle,
    parse_zoom_call,
    strip_think,
)

TRAINED_CALL = (
    '<tool_call>\n{"name": "image_zoom_in", "arguments": {"bbox": [234, 582, 344, 688]}}\n'
    "</tool_call>"
)


def test_encode_zoom_call_is_byte_exact() -> None:
    assert encode_zoom_call([234, 582, 344, 688]) == TRAINED_CALL
    assert encode_zoom_call(np.array([234, 582, 344, 688])) == TRAINED_CALL


@pytest.mark.parametrize(
    ("bbox", "match"),
    [
        ([1, 2, 3], "hbb needs 4"),
        ([1.0, 2, 3, 4], "must be ints"),
        ([10, 2, 10, 4], "degenerate"),
        ([1, 20, 3, 4], "degenerate"),
    ],
)
def test_encode_zoom_call_errors(bbox: list[float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        encode_zoom_call(bbox)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "bbox"),
    [
        (TRAINED_CALL, (234, 582, 344, 688)),
        ("Let me zoom.\n" + TRAINED_CALL + "\nthen answer", (234, 582, 344, 688)),
        ('<tool_call>{"name": "image_zoom_in", "arguments": {"bbox": [1, 2, 3, 4]}}', (1, 2, 3, 4)),
        (
            '<tool_call>\n{"name": "image_zoom_in", "arguments": {"bbox": [1, 2, 3, 4]}',
            (1, 2, 3, 4),
        ),
        ("<tool_call>{'name': 'image_zoom_in', 'arguments': {'bbox': [1, 2, 3, 4]}}", (1, 2, 3, 4)),
        (
            '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox": [1, 2, 3, 4,],},}',
            (1, 2, 3, 4),
        ),
        (
            '<tool_call>{"name": "image_zoom_in", "arguments": "{\\"bbox\\": [1.5, 2, 3, 4]}"}',
            (1.5, 2, 3, 4),
        ),
        (
            '<tool_call>```json\n{"name": "image_zoom_in", "arguments": {"bbox_2d": [1, 2, 3, 4]}}'
            "\n```</tool_call>",
            (1, 2, 3, 4),
        ),
        (
            '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox": [-5, 2, 3, 4]}}',
            (-5, 2, 3, 4),
        ),
    ],
)
def test_parse_zoom_call_reads_tolerated_forms(text: str, bbox: tuple[float, ...]) -> None:
    assert parse_zoom_call(text) == ZoomCallParse(bbox, None, True)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('<tool_call>{"name": "crop", "arguments": {"bbox": [1, 2, 3, 4]}}', "unknown tool 'crop'"),
        ("<tool_call>\n</tool_call>", "tool call body is not readable JSON"),
        ('<tool_call>{"arguments": {"bbox": [1, 2, 3, 4]}}', "tool call has no name"),
        ("<tool_call>zoom please</tool_call>", "tool call body is not readable JSON"),
        (
            '<tool_call>{"name": "image_zoom_in", "arguments": {"region": [1, 2, 3, 4]}}',
            "no bbox list of numbers in the arguments",
        ),
        (
            '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox": [1, 2, 3]}}',
            "bbox needs 4 numbers, got 3",
        ),
        (
            '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox": [1, 2, true, 4]}}',
            "no bbox list of numbers in the arguments",
        ),
        (
            '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox": [1, 2, 1e999, 4]}}',
            "no bbox list of numbers in the arguments",
        ),
        (
            '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox": [30, 2, 3, 4]}}',
            "degenerate bbox [30, 2, 3, 4] (needs x2 > x1 and y2 > y1)",
        ),
        (
            '<tool_call>{"name": "image_zoom_in", "arguments": {"bbox": [3, 4, 3, 9]}}',
            "degenerate bbox [3, 4, 3, 9] (needs x2 > x1 and y2 > y1)",
        ),
    ],
)
def test_parse_zoom_call_reasons(text: str, reason: str) -> None:
    assert parse_zoom_call(text) == ZoomCallParse(None, reason, True)


def test_no_call_is_not_an_error() -> None:
    assert parse_zoom_call("The answer is (B).") == ZoomCallParse(None, None, False)
    assert parse_zoom_call("") == ZoomCallParse(None, None, False)


def test_original_char_set_strip_bug_is_gone() -> None:
    # The original lstrip('</tool_call>\n') broke on prose before the call (WIRE §4.6).
    assert parse_zoom_call("actually " + TRAINED_CALL).bbox == (234, 582, 344, 688)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>why</think>answer", "answer"),
        ("  \n<think>a\nb</think>\n  B  \n", "B"),
        ("<think>one</think>x<think>two</think>y", "x<think>two</think>y"),
        ("no think here  ", "no think here"),
        ("<think>unterminated", "<think>unterminated"),
        ("answer <think>late</think>", "answer <think>late</think>"),
    ],
)
def test_strip_think(text: str, expected: str) -> None:
    assert strip_think(text) == expected


def test_rle_round_trip_and_spec_example() -> None:
    assert encode_rle([[0, 1, 1], [0, 0, 0]]) == "<seg>0*1,1*2;0*3;</seg>"
    grid = np.random.default_rng(0).integers(0, 2, size=(12, 17))
    assert np.array_equal(parse_rle(encode_rle(grid), shape=(12, 17)).mask, grid)
    with pytest.raises(InputError, match="2-D int grid"):
        encode_rle([[0.5]])
    with pytest.raises(InputError, match="non-negative"):
        encode_rle([[-1]])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<seg></seg>", "no rows"),
        ("<seg>0*1;0*3;</seg>", "rows have different lengths"),
        ("<seg>0*1,x;</seg>", "row 0: bad run 'x'"),
        ("<seg>1*9999999;1*9999999;</seg>", "mask too large"),
        ("<seg>0*2;</seg>", "mask is (1, 2), expected (2, 2)"),
    ],
)
def test_rle_reasons(text: str, reason: str) -> None:
    assert parse_rle(text, shape=(2, 2)).reason == reason
