"""Detection and grounding codecs: byte identity with WIRE §2-§3 and what the parsers accept."""

from __future__ import annotations

import numpy as np
import pytest

from rscovlm.errors import InputError
from rscovlm.formats import (
    DOTA_V1_0,
    DetObject,
    LabelMatcher,
    Rejected,
    encode_detections,
    encode_grounding,
    parse_detections,
    parse_grounding,
)
from rscovlm.formats import boxes as boxes_module

# WIRE §2.9: DOTA tile, small-vehicle polygon after int(v*504/512).
WORKED_QUAD = (147, 227, 98, 227, 98, 196, 147, 196)


def sv(kind: str, coords: tuple[int, ...], label: str = "small vehicle") -> DetObject:
    return DetObject(label, kind, coords)  # type: ignore[arg-type]


# --- encoding ----------------------------------------------------------------------------------


def test_worked_example_plain_quad() -> None:
    assert encode_detections([sv("quad", WORKED_QUAD)], "quad") == (
        "98,196,147,196,147,227,98,227 small vehicle\n"
    )


def test_worked_example_refgeo_counter_clockwise() -> None:
    assert encode_grounding(WORKED_QUAD, "small vehicle", "quad") == (
        "98,196,98,227,147,227,147,196 small vehicle\n"
    )
    assert encode_detections([sv("quad", WORKED_QUAD)], "quad", clockwise=False) == (
        "98,196,98,227,147,227,147,196 small vehicle\n"
    )


def test_worked_example_obb() -> None:
    assert encode_detections([sv("obb", (122, 211, 49, 31, 0))], "obb") == (
        "122,211,49,31,0 small vehicle\n"
    )


def test_plain_hbb_order_label_then_y_then_x_stable() -> None:
    objects = [
        sv("hbb", (50, 10, 60, 20), "ship"),
        sv("hbb", (5, 30, 9, 40), "baseball diamond"),
        sv("hbb", (40, 10, 45, 20), "ship"),
        sv("hbb", (1, 5, 2, 6), "ship"),
        sv("hbb", (40, 10, 99, 99), "ship"),  # ties (label, y1, x1) with the third: kept after it
        sv("hbb", (7, 8, 9, 10), "large vehicle"),
    ]
    assert encode_detections(objects, "hbb") == (
        "5,30,9,40 baseball diamond\n"
        "7,8,9,10 large vehicle\n"
        "1,5,2,6 ship\n"
        "40,10,45,20 ship\n"
        "40,10,99,99 ship\n"
        "50,10,60,20 ship\n"
    )
    assert encode_detections(objects[:2], "hbb", sort=False) == (
        "50,10,60,20 ship\n5,30,9,40 baseball diamond\n"
    )


def test_quads_sort_by_their_horizontal_box() -> None:
    low = sv("quad", (10, 50, 20, 50, 20, 60, 10, 60), "ship")
    high = sv("quad", (30, 5, 40, 5, 40, 15, 30, 15), "ship")
    assert encode_detections([low, high], "quad") == (
        "30,5,40,5,40,15,30,15 ship\n10,50,20,50,20,60,10,60 ship\n"
    )


def test_json_layouts_byte_exact() -> None:
    hbb = [sv("hbb", (1, 2, 3, 4), "ship"), sv("hbb", (5, 6, 7, 8), "harbor")]
    assert encode_detections(hbb, "hbb", style="json") == (
        '```json\n[\n\t{"bbox_2d": [5, 6, 7, 8], "label": "harbor"},\n'
        '\t{"bbox_2d": [1, 2, 3, 4], "label": "ship"}\n]\n```'
    )
    assert encode_detections([sv("obb", (122, 211, 49, 31, -90))], "obb", style="json") == (
        '```json\n[\n\t{"oriented bbox": [122, 211, 49, 31, -90], "label": "small vehicle"}\n]\n```'
    )
    assert encode_detections([sv("quad", WORKED_QUAD)], "quad", style="json") == (
        '```json\n[\n\t{"quadrant bbox": [98, 196, 147, 196, 147, 227, 98, 227], '
        '"label": "small vehicle"}\n]\n```'
    )


def test_json_labels_are_json_dumps_with_ascii_escapes() -> None:
    item = sv("hbb", (1, 2, 3, 4), 'caf\u00e9 "x"')
    assert encode_detections([item], "hbb", style="json") == (
        '```json\n[\n\t{"bbox_2d": [1, 2, 3, 4], "label": "caf\\u00e9 \\"x\\""}\n]\n```'
    )


@pytest.mark.parametrize("style", ["plain", "json"])
@pytest.mark.parametrize("kind", ["hbb", "obb", "quad"])
def test_no_objects(style: str, kind: str) -> None:
    assert encode_detections([], kind, style=style) == "There are none."  # type: ignore[arg-type]


def test_numpy_ints_are_accepted() -> None:
    obj = DetObject("ship", "hbb", tuple(np.array([1, 2, 3, 4], dtype=np.int32)))
    assert encode_detections([obj], "hbb") == "1,2,3,4 ship\n"


@pytest.mark.parametrize(
    ("objects", "kind", "match"),
    [
        ([sv("hbb", (1.0, 2, 3, 4))], "hbb", "must be ints"),
        ([sv("hbb", (True, 2, 3, 4))], "hbb", "must be ints"),
        ([sv("hbb", (1, 2, 3, 4))], "quad", "cannot write a hbb object"),
        ([sv("hbb", (1, 2, 3, 4), "")], "hbb", "non-empty"),
        ([sv("hbb", (1, 2, 3, 4), " ship")], "hbb", "outer spaces"),
        ([sv("hbb", (1, 2, 3, 4), "sh\nip")], "hbb", "single line"),
        ([], "box", "unsupported kind"),
    ],
)
def test_encode_errors(objects: list[DetObject], kind: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        encode_detections(objects, kind)  # type: ignore[arg-type]


def test_det_object_checks_counts_and_builds_from_classes() -> None:
    with pytest.raises(InputError, match="quad needs 8"):
        DetObject("ship", "quad", (1, 2, 3, 4))
    with pytest.raises(InputError, match="unknown box kind"):
        DetObject("ship", "circle", (1, 2, 3))  # type: ignore[arg-type]
    obj = DetObject.for_class("small-vehicle", "hbb", [1, 2, 3, 4])
    assert obj == DetObject("small vehicle", "hbb", (1, 2, 3, 4), "small-vehicle")


def test_grounding_encoding_byte_exact() -> None:
    assert encode_grounding([10, 20, 30, 40], "the red car") == "10,20,30,40 the red car\n"
    assert encode_grounding([10, 20, 30, 40], 'the "red" caf\u00e9', style="json") == (
        '```json\n[\n\t{"bbox_2d": [10, 20, 30, 40], "label": "the "red" caf\u00e9"}\n]\n```'
    )
    assert encode_grounding(WORKED_QUAD, "car", "quad", "json") == (
        '```json\n[\n\t{"quadrant bbox": [98, 196, 98, 227, 147, 227, 147, 196], '
        '"label": "car"}\n]\n```'
    )
    assert encode_grounding((1, 2, 3, 4, 5), "car", "obb") == "1,2,3,4,5 car\n"
    with pytest.raises(InputError, match="hbb needs 4"):
        encode_grounding([1, 2, 3], "car")
    with pytest.raises(InputError, match="must be ints"):
        encode_grounding([1.5, 2, 3, 4], "car")
    with pytest.raises(InputError, match="unknown grounding style"):
        encode_grounding([1, 2, 3, 4], "car", style="xml")  # type: ignore[arg-type]


# --- parsing -----------------------------------------------------------------------------------


def test_parse_plain_lines_with_tolerances() -> None:
    text = (
        "Sure! Here are the objects:\n"
        "98,196,147,196,147,227,98,227 small vehicle\n"
        "1, 2, 3, 4 ship\n"
        "[10,20,30,40] harbor\n"
        "- 1.5,2.25,3,4 plane\n"
        "-5,-6,30,40 ship\n"
        "1,2,3 ship\n"
        "1,2,3,4\n"
        "\n"
        "122,211,49,31,0 large vehicle\n"
    )
    parsed = parse_detections(text)
    assert [(o.kind, o.coords, o.label) for o in parsed.objects] == [
        ("quad", (98, 196, 147, 196, 147, 227, 98, 227), "small vehicle"),
        ("hbb", (1, 2, 3, 4), "ship"),
        ("hbb", (10, 20, 30, 40), "harbor"),
        ("hbb", (1.5, 2.25, 3, 4), "plane"),
        ("hbb", (-5, -6, 30, 40), "ship"),
        ("obb", (122, 211, 49, 31, 0), "large vehicle"),
    ]
    assert parsed.rejected == [
        Rejected("Sure! Here are the objects:", "not a detection line"),
        Rejected("1,2,3 ship", "expected 4, 5 or 8 numbers, got 3"),
        Rejected("1,2,3,4", "missing label"),
    ]
    assert parsed.line_fates == (
        "rejected",
        "object",
        "object",
        "object",
        "object",
        "object",
        "rejected",
        "rejected",
        "object",
    )
    assert not parsed.empty and parsed.n_unread == 3
    assert all(o.score == 1.0 and o.class_name is None for o in parsed.objects)


def test_parse_with_kind_rejects_other_counts() -> None:
    parsed = parse_detections("1,2,3,4 ship\n1,2,3,4,5,6,7,8 ship\n", kind="quad")
    assert [o.kind for o in parsed.objects] == ["quad"]
    assert parsed.rejected == [Rejected("1,2,3,4 ship", "expected 8 numbers for quad, got 4")]


def test_parse_with_matcher_sets_class_and_rejects_unknown_labels() -> None:
    parsed = parse_detections(
        "1,2,3,4 small vehicle\n1,2,3,4 Small-Vehicles\n1,2,3,4 airplane\n",
        matcher=LabelMatcher(DOTA_V1_0),
    )
    assert [(o.label, o.class_name) for o in parsed.objects] == [
        ("small vehicle", "small-vehicle"),
        ("Small-Vehicles", "small-vehicle"),
    ]
    assert parsed.rejected == [Rejected("1,2,3,4 airplane", "unknown label 'airplane'")]


@pytest.mark.parametrize(
    "text",
    ["There are none.", "there are none", "  THERE ARE NONE..  \n", "```\nThere are none.\n```"],
)
def test_parse_empty_marker(text: str) -> None:
    parsed = parse_detections(text)
    assert parsed.empty and not parsed.objects and not parsed.rejected
    assert "empty" in parsed.line_fates


def test_parse_json_trained_layout_and_variants() -> None:
    trained = encode_detections(
        [sv("hbb", (1, 2, 3, 4), "ship"), sv("hbb", (5, 6, 7, 8), "harbor")], "hbb", style="json"
    )
    parsed = parse_detections(trained)
    assert [(o.label, o.coords) for o in parsed.objects] == [
        ("harbor", (5, 6, 7, 8)),
        ("ship", (1, 2, 3, 4)),
    ]
    assert parsed.line_fates == ("syntax", "syntax", "object", "object", "syntax", "syntax")
    assert not parsed.rejected

    pretty = '[\n  {\n    "bbox": [1, 2, 3, 4,],\n    "label": "ship",\n  },\n]'
    parsed = parse_detections(pretty)
    assert [(o.kind, o.coords) for o in parsed.objects] == [("hbb", (1, 2, 3, 4))]
    assert parsed.line_fates == ("syntax", "object", "syntax", "syntax", "syntax", "syntax")

    single = "{'quadrant bbox': [[1, 2], [3, 4], [5, 6], [7, 8]], 'label': 'ship'}"
    assert parse_detections(single).objects == [DetObject("ship", "quad", (1, 2, 3, 4, 5, 6, 7, 8))]
    one_line = '[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6, 7, 8], "label": "b"}]'
    assert [o.label for o in parse_detections(one_line).objects] == ["a", "b"]


def test_parse_truncated_json_keeps_complete_items() -> None:
    text = (
        '```json\n[\n\t{"bbox_2d": [1, 2, 3, 4], "label": "ship"},\n'
        '\t{"bbox_2d": [5, 6, 7, 8], "label": "harbor"},\n\t{"bbox_2d": [9, 10, 1'
    )
    parsed = parse_detections(text)
    assert [o.label for o in parsed.objects] == ["ship", "harbor"]
    assert parsed.rejected == [Rejected('{"bbox_2d": [9, 10, 1', "truncated JSON item")]
    assert parsed.line_fates == ("syntax", "syntax", "object", "object", "rejected")


def test_parse_json_items_with_problems_are_rejected_with_reasons() -> None:
    text = (
        '{"bbox_2d": [1, 2, 3], "label": "ship"}\n'
        '{"label": "ship"}\n'
        '{"bbox_2d": [1, 2, 3, 4]}\n'
        '{"bbox_2d": ["1", 2, 3, 4], "label": "ship"}\n'
        "{not json at all}\n"
        '{"bbox_2d": [1, 2, 3, 4], "label": "ship"} and some words\n'
    )
    parsed = parse_detections(text)
    assert [r.reason for r in parsed.rejected] == [
        "expected 4, 5 or 8 numbers, got 3",
        "JSON item has no box key",
        "missing label",
        "box is not a list of numbers",
        "unreadable JSON item",
    ]
    assert len(parsed.objects) == 1
    assert parsed.line_fates[-1] == "object"


def test_unclosed_brace_does_not_swallow_later_lines() -> None:
    parsed = parse_detections('{"bbox_2d": [1, 2, 3, 4], "label": "sh\n5,6,7,8 ship\n')
    assert [o.coords for o in parsed.objects] == [(5, 6, 7, 8)]
    assert parsed.line_fates == ("rejected", "object")


def test_stray_quote_does_not_hide_the_rest_of_an_item() -> None:
    # A JSON string cannot span lines, so the odd quote on line 2 ends with its line.
    parsed = parse_detections('{\n  "label": "it\'s a "big" ship,\n  "bbox_2d": [1, 2, 3, 4]\n}')
    assert [(o.label, o.coords) for o in parsed.objects] == [("it's a", (1, 2, 3, 4))]
    assert parsed.line_fates == ("object", "syntax", "syntax", "syntax")


def test_parser_guard_turns_bugs_into_rejections(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str, reader: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(boxes_module, "_read", broken)
    parsed = parse_detections("1,2,3,4 ship\n\nmore\n")
    assert parsed.rejected[0].reason == "parser error: RuntimeError: boom"
    assert parsed.line_fates == ("rejected", "rejected")


def test_parse_detections_refuses_non_text() -> None:
    with pytest.raises(InputError, match="reads str"):
        parse_detections(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown box kind 'box'"):
        parse_detections("1,2,3,4 ship", kind="box")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "box", "kind"),
    [
        ("98,196,147,227 the red car\n", (98, 196, 147, 227), "hbb"),
        ("98, 196, 147, 227", (98, 196, 147, 227), "hbb"),
        ("The car is at [10, 20, 30.5, 40].", (10, 20, 30.5, 40), "hbb"),
        ('```json\n[\n\t{"bbox_2d": [1, 2, 3, 4], "label": "a"}\n]\n```', (1, 2, 3, 4), "hbb"),
        ("98,196,98,227,147,227,147,196 car", (98, 196, 98, 227, 147, 227, 147, 196), "quad"),
        ("[[1, 2], [3, 4], [5, 6], [7, 8]]", (1, 2, 3, 4, 5, 6, 7, 8), "quad"),
        ("(1, 2), (3, 4), (5, 6), (7, 8)", (1, 2, 3, 4, 5, 6, 7, 8), "quad"),
        ("122,211,49,31,-30 ship", (122, 211, 49, 31, -30), "obb"),
        ("-3,-4,10,20 edge", (-3, -4, 10, 20), "hbb"),
        ("1,2 and then 3,4,5,6 x", (3, 4, 5, 6), "hbb"),
        ("Boeing737 at 1,2,3,4", (1, 2, 3, 4), "hbb"),
    ],
)
def test_parse_grounding_finds_the_first_box(text: str, box: tuple[float, ...], kind: str) -> None:
    parsed = parse_grounding(text)
    assert (parsed.box, parsed.kind, parsed.reason) == (box, kind, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no box found"),
        ("I cannot find it.", "no box found"),
        ("1,2,3 car", "found 3 numbers, expected 4, 5 or 8"),
        ("There are none.", "the answer says there are no objects"),
        ("1" * 100 + ",2,3,4 car", "unreadable numbers in '" + "1" * 40 + "'"),
    ],
)
def test_parse_grounding_reasons(text: str, reason: str) -> None:
    parsed = parse_grounding(text)
    assert (parsed.box, parsed.kind, parsed.reason) == (None, None, reason)
