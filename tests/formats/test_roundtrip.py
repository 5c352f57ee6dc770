"""Property tests: what an encoder writes, the matching parser reads back unchanged."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from rscovlm.formats import (
    CLASS_LISTS,
    DetObject,
    LabelMatcher,
    encode_detections,
    encode_grounding,
    encode_zoom_call,
    parse_detections,
    parse_grounding,
    parse_zoom_call,
    strip_think,
)
from rscovlm.geometry import canonical_quad

KINDS = ("hbb", "obb", "quad")
MATCHERS = {name: LabelMatcher(classes) for name, classes in CLASS_LISTS.items()}
COORD = st.integers(min_value=-200, max_value=100_000)


def coords_of(kind: str) -> st.SearchStrategy[tuple[int, ...]]:
    if kind == "hbb":
        return st.tuples(COORD, COORD, COORD, COORD)
    if kind == "obb":
        return st.tuples(COORD, COORD, COORD, COORD, st.integers(-90, 89))
    return st.tuples(*([COORD] * 8))


@st.composite
def detections(draw: st.DrawFn) -> tuple[str, str, list[DetObject]]:
    """A class list name, a kind and up to 10 objects of classes from that list."""
    name = draw(st.sampled_from(sorted(CLASS_LISTS)))
    kind = draw(st.sampled_from(KINDS))
    classes = st.sampled_from(CLASS_LISTS[name])
    n = draw(st.integers(0, 10))
    objects = [
        DetObject.for_class(draw(classes), kind, draw(coords_of(kind)))  # type: ignore[arg-type]
        for _ in range(n)
    ]
    return name, kind, objects


def written(obj: DetObject, clockwise: bool = True) -> tuple[int, ...]:
    """The coordinates as the encoder writes them (quads in canonical vertex order)."""
    if obj.kind != "quad":
        return tuple(int(v) for v in obj.coords)
    return tuple(int(v) for v in canonical_quad(obj.coords, clockwise).ravel())


@settings(max_examples=150, deadline=None)
@given(case=detections(), style=st.sampled_from(["plain", "json"]), clockwise=st.booleans())
def test_detections_round_trip_in_given_order(
    case: tuple[str, str, list[DetObject]], style: str, clockwise: bool
) -> None:
    name, kind, objects = case
    text = encode_detections(objects, kind, style=style, clockwise=clockwise, sort=False)  # type: ignore[arg-type]
    expected = [(o.label, kind, written(o, clockwise), o.class_name) for o in objects]

    with_all = parse_detections(text, kind=kind, matcher=MATCHERS[name])  # type: ignore[arg-type]
    got = [(o.label, o.kind, o.coords, o.class_name) for o in with_all.objects]
    assert got == expected
    assert not with_all.rejected
    assert with_all.empty == (not objects)

    bare = parse_detections(text)
    assert [(o.label, o.kind, o.coords) for o in bare.objects] == [e[:3] for e in expected]
    assert all(o.class_name is None for o in bare.objects)


@settings(max_examples=150, deadline=None)
@given(case=detections(), style=st.sampled_from(["plain", "json"]))
def test_sorted_encoding_is_a_stable_sort_by_label_y_x(
    case: tuple[str, str, list[DetObject]], style: str
) -> None:
    _, kind, objects = case
    text = encode_detections(objects, kind, style=style)  # type: ignore[arg-type]
    got = [(o.label, o.coords) for o in parse_detections(text).objects]
    rows = [(o.label, written(o)) for o in objects]
    assert Counter(got) == Counter(rows)
    labels = [label for label, _ in got]
    assert labels == sorted(labels)  # plain str order of the normalised names
    if kind == "hbb":
        assert got == sorted(rows, key=lambda r: (r[0], r[1][1], r[1][0]))  # sorted() is stable
    if kind == "quad":
        key = [(label, min(c[1::2]), min(c[0::2])) for label, c in got]
        assert key == sorted(key)


EXPRESSIONS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    data=st.data(),
    expression=EXPRESSIONS,
    style=st.sampled_from(["plain", "json"]),
)
def test_grounding_round_trip(kind: str, data: st.DataObject, expression: str, style: str) -> None:
    coords = data.draw(coords_of(kind))
    text = encode_grounding(coords, expression, kind, style)  # type: ignore[arg-type]
    parsed = parse_grounding(text)
    want = written(DetObject("x", kind, coords), clockwise=False)  # type: ignore[arg-type]
    assert (parsed.box, parsed.kind, parsed.reason) == (want, kind, None)


@settings(max_examples=150, deadline=None)
@given(
    x1=st.integers(0, 5000),
    y1=st.integers(0, 5000),
    w=st.integers(1, 5000),
    h=st.integers(1, 5000),
    before=st.sampled_from(["", "I will zoom in.\n", "<think>find the roof</think>\n"]),
    after=st.sampled_from(["", "\nWaiting for the image.", "<|im_end|>"]),
)
def test_zoom_call_round_trip(x1: int, y1: int, w: int, h: int, before: str, after: str) -> None:
    box = (x1, y1, x1 + w, y1 + h)
    call = encode_zoom_call(box)
    parsed = parse_zoom_call(before + call + after)
    assert (parsed.bbox, parsed.reason, parsed.has_call) == (box, None, True)
    assert parse_zoom_call(strip_think(before + call)).bbox == box
