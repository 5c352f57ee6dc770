"""Class lists, label text and the label matcher (WIRE §2.1, §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rscovlm.errors import InputError
from rscovlm.formats import (
    CLASS_LISTS,
    DEFAULT_SCORE_CUTOFF,
    DIOR,
    DOTA_V1_0,
    DOTA_V1_5,
    DOTA_V2_0,
    FAIR1M_V1_0,
    HRSC,
    RSAR,
    SRSDD,
    LabelMatcher,
    MatchResult,
    categories_str,
    get_classes,
    normalize_label,
)

# The "categories_str as sent" column of WIRE §6, copied verbatim.
WIRE_CATEGORIES = {
    "dota1.0": "baseball diamond, basketball court, bridge, ground track field, harbor, "
    "helicopter, large vehicle, plane, roundabout, ship, small vehicle, soccer ball field, "
    "storage tank, swimming pool, tennis court",
    "dior": "airplane, airport, baseballfield, basketballcourt, bridge, chimney, dam, "
    "expressway service area, expressway toll station, golffield, groundtrackfield, harbor, "
    "overpass, ship, stadium, storagetank, tenniscourt, trainstation, vehicle, windmill",
    "fair1m1.0": "a220, a321, a330, a350, arj21, baseball field, basketball court, boeing737, "
    "boeing747, boeing777, boeing787, bridge, bus, c919, cargo truck, dry cargo ship, dump truck, "
    "engineering ship, excavator, fishing boat, football field, intersection, liquid cargo ship, "
    "motorboat, passenger ship, roundabout, small car, tennis court, tractor, trailer, "
    "truck tractor, tugboat, van, warship",
    "srsdd": "cell container, container, dredger, fishing, lawenforce, ore oil",
    "rsar": "aircraft, bridge, car, harbor, ship, tank",
}


@pytest.mark.parametrize("name", sorted(WIRE_CATEGORIES))
def test_categories_str_matches_wire(name: str) -> None:
    assert categories_str(CLASS_LISTS[name]) == WIRE_CATEGORIES[name]


# The "original order" column of WIRE §6 and the DOTA versions of DATASETS.md, as comma lists.
DOTA_ORDER = (
    "plane, baseball-diamond, bridge, ground-track-field, small-vehicle, large-vehicle, ship, "
    "tennis-court, basketball-court, storage-tank, soccer-ball-field, roundabout, harbor, "
    "swimming-pool, helicopter"
)
WIRE_ORDER = {
    "dota1.0": DOTA_ORDER,
    "dota1.5": DOTA_ORDER + ", container-crane",
    "dota2.0": DOTA_ORDER + ", container-crane, airport, helipad",
    "dior": "airplane, airport, baseballfield, basketballcourt, bridge, chimney, "
    "expressway-service-area, expressway-toll-station, dam, golffield, groundtrackfield, harbor, "
    "overpass, ship, stadium, storagetank, tenniscourt, trainstation, vehicle, windmill",
    "fair1m1.0": "Boeing737, Boeing747, Boeing777, Boeing787, C919, A220, A321, A330, A350, "
    "ARJ21, Passenger Ship, Motorboat, Fishing Boat, Tugboat, Engineering Ship, Liquid Cargo Ship, "
    "Dry Cargo Ship, Warship, Small Car, Bus, Cargo Truck, Dump Truck, Van, Trailer, Tractor, "
    "Excavator, Truck Tractor, Basketball Court, Tennis Court, Football Field, Baseball Field, "
    "Intersection, Roundabout, Bridge",
    "srsdd": "Cell-Container, Container, Dredger, Fishing, LawEnforce, ore-oil",
    "rsar": "ship, aircraft, car, tank, bridge, harbor",
    "hrsc": "ship",
}
SIZES = {"dota1.0": 15, "dota1.5": 16, "dota2.0": 18, "dior": 20, "fair1m1.0": 34, "srsdd": 6}


@pytest.mark.parametrize("name", sorted(WIRE_ORDER))
def test_class_lists_keep_original_spelling_and_order(name: str) -> None:
    assert CLASS_LISTS[name] == tuple(WIRE_ORDER[name].split(", "))
    assert len(CLASS_LISTS[name]) == SIZES.get(name, len(CLASS_LISTS[name]))
    assert len(set(map(normalize_label, CLASS_LISTS[name]))) == len(CLASS_LISTS[name])


def test_named_tuples_are_the_registry_entries() -> None:
    named = (DOTA_V1_0, DOTA_V1_5, DOTA_V2_0, DIOR, FAIR1M_V1_0, SRSDD, RSAR, HRSC)
    assert named == tuple(CLASS_LISTS.values())
    assert HRSC == ("ship",)


def test_dota_category_rank_of_wire() -> None:
    ranked = categories_str(DOTA_V1_0).split(", ")
    assert ranked.index("baseball diamond") == 0
    assert ranked.index("small vehicle") == 10
    assert ranked.index("tennis court") == 14


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("small-vehicle", "small vehicle"),
        ("LawEnforce", "lawenforce"),
        ("Cell-Container", "cell container"),
        ("Small Car", "small car"),
        ("snake_case-Name", "snake_case name"),  # underscores are not touched
    ],
)
def test_normalize_label(name: str, label: str) -> None:
    assert normalize_label(name) == label


def test_get_classes_by_name_and_file(tmp_path: Path) -> None:
    assert get_classes("dota1.0") is DOTA_V1_0
    assert get_classes("DIOR") is DIOR
    path = tmp_path / "classes.txt"
    path.write_text("car\n\n  truck \r\nsmall-boat\n", encoding="utf-8")
    assert get_classes(path) == ("car", "truck", "small-boat")
    assert get_classes(str(path)) == ("car", "truck", "small-boat")


def test_get_classes_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown class list 'dota3'.*dota1\.0, dota1\.5"):
        get_classes("dota3")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(InputError, match="has no class"):
        get_classes(empty)
    clash = tmp_path / "clash.txt"
    clash.write_text("small-vehicle\nSmall Vehicle\n", encoding="utf-8")
    with pytest.raises(InputError, match="same label text"):
        get_classes(clash)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("small vehicle", MatchResult("small-vehicle", "exact", 100.0)),
        ("small-vehicle", MatchResult("small-vehicle", "exact", 100.0)),
        (" ship ", MatchResult("ship", "exact", 100.0)),
        ("Small_Vehicle", MatchResult("small-vehicle", "normalized", 100.0)),
        ("SMALLVEHICLE.", MatchResult("small-vehicle", "normalized", 100.0)),
        ("'storage tank'", MatchResult("storage-tank", "normalized", 100.0)),
    ],
)
def test_matcher_exact_and_normalized(text: str, expected: MatchResult) -> None:
    assert LabelMatcher(DOTA_V1_0).match(text) == expected


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("small vehicles", "small-vehicle"),
        ("harbour", "harbor"),
        ("planes", "plane"),
        ("storage tanks", "storage-tank"),
        ("airplane", None),  # 77 < 85: reported unknown, not forced onto "plane"
        ("vehicle", None),
        ("cat", None),
        ("", None),
        ("   ", None),
    ],
)
def test_matcher_fuzzy_and_unknown(text: str, label: str | None) -> None:
    result = LabelMatcher(DOTA_V1_0).match(text)
    assert result.label == label
    if label is None:
        assert result.how == "unknown" and result.score < DEFAULT_SCORE_CUTOFF
    else:
        assert result.how == "fuzzy" and result.score >= DEFAULT_SCORE_CUTOFF


def test_matcher_does_not_force_generic_words_onto_specific_classes() -> None:
    fair = LabelMatcher(FAIR1M_V1_0)
    assert fair.match("ship").label is None  # WRatio would give 90 to "engineering ship"
    assert fair.match("boeing 737") == MatchResult("Boeing737", "normalized", 100.0)
    assert fair.match("small car").label == "Small Car"
    srsdd = LabelMatcher(SRSDD)
    assert srsdd.match("lawenforce") == MatchResult("LawEnforce", "exact", 100.0)


def test_matcher_cutoff_is_a_parameter() -> None:
    assert LabelMatcher(DOTA_V1_0, score_cutoff=70).match("airplane").label == "plane"
    assert LabelMatcher(DOTA_V1_0, score_cutoff=100).match("harbour").label is None


def test_matcher_rejects_bad_arguments() -> None:
    with pytest.raises(InputError, match="at least one class"):
        LabelMatcher([])
    with pytest.raises(InputError, match="score_cutoff"):
        LabelMatcher(DOTA_V1_0, score_cutoff=101)
    with pytest.raises(InputError, match="cannot be told apart"):
        LabelMatcher(["small-vehicle", "Small_Vehicle"])


def test_matcher_cache_is_bounded_and_consistent() -> None:
    matcher = LabelMatcher(RSAR)
    for i in range(5000):
        matcher.match(f"label {i}")
    assert len(matcher._cache) <= 4096
    assert matcher.match("cars") == matcher.match("cars")
    assert matcher.match("cars").label == "car"
