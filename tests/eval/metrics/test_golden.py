"""Every golden value of EVAL_SUITE.md §2–§3 marked [RUN], reproduced by the official scorers.

The official code's outputs are the expected values; the inputs are those EVAL_SUITE.md gives,
or (where it only gives the result of a small set) inputs built to have exactly the described
make-up (e.g. "3 samples: hit / no box / IoU 0.47").
"""

from __future__ import annotations

import pytest

from rscovlm.eval.metrics.classification import score_teochat, teochat_report
from rscovlm.eval.metrics.geochat_referring import (
    geochat_referring_report,
    score_geochat_referring,
)
from rscovlm.eval.metrics.mcq import score_mcq_contain, score_mcq_vhm
from rscovlm.eval.metrics.rec import (
    RepeatedDigits,
    geoground_report,
    official_extract_box,
    official_iou,
    rec_report,
    score_rec,
)
from rscovlm.eval.metrics.text import contain_match, score_two_way
from rscovlm.eval.metrics.vhm import (
    score_colour,
    score_count,
    score_measure,
    score_presence,
    vhm_presence_label,
    vhm_report,
)
from rscovlm.eval.metrics.vqa import mme_report


@pytest.mark.parametrize(
    ("gt", "out", "correct"),
    [
        ("Park", "Parking", True),
        ("no", "Not sure", True),
        ("A", "The answer is (C) because a...", True),
        ("Port", "Airport", True),
        ("Airport", "Port", False),
    ],
)
def test_contain_acc_table(gt: str, out: str, correct: bool) -> None:
    assert contain_match(out, gt) is correct


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 5, 15, 15], 0.14285714285714285),
        ([0, 0, 10, 10], [9, 0, 20, 10], 0.0),
        ([0, 0, 10, 10], [8.5, 0, 20, 10], 0.075),
        ([0, 0, 10.5, 10.5], [0.5, 0.5, 10, 10], 0.81859410430839),
    ],
)
def test_official_rec_iou_table(a: list[float], b: list[float], expected: float) -> None:
    assert official_iou(a, b) == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.parametrize(
    ("mode", "output", "box", "normalized"),
    [
        ("plain", "12,34,56,78 the car\n", (12, 34, 56, 78), False),
        ("plain", "12, 34, 56, 78 the car", (0, 0, 0, 0), False),
        ("plain", "12,34,56,78", (0, 0, 0, 0), False),
        ("plain", "junk\n12,34,56,78 car", (0, 0, 0, 0), False),
        ("plain", "12.5,34,56,78 car", (0, 0, 0, 0), False),
        (
            "json",
            '```json\n[{"bbox_2d": [12, 34.5, 56, 78], "label": "car"}]\n```',
            (12.0, 34.5, 56.0, 78.0),
            False,
        ),
        ("json", "[0.1, 0.2, 0.5, 0.6]", (100, 200, 500, 600), True),
    ],
)
def test_extract_qwen25vl_bbox_answer_table(
    mode: str, output: str, box: tuple, normalized: bool
) -> None:
    got = official_extract_box(output, mode)  # type: ignore[arg-type]
    assert got.box == box
    assert got.normalized is normalized
    assert all(type(v) is type(w) for v, w in zip(got.box, box, strict=True))


def test_plain_normalised_bug_is_a_1000_digit_int_never_built() -> None:
    got = official_extract_box("0,0,1,1 car", "plain")
    assert got.normalized
    assert got.box[:2] == (0, 0)
    assert got.box[2] == got.box[3] == RepeatedDigits("1", 1000)
    assert got.box[2].n_digits == len(str(int("1" * 1000))) == 1000
    # its official score is computed without the int: wrong, with the reason noted
    s = score_rec("0,0,1,1 car", [0, 0, 1, 1])
    assert s.official == 0.0 and "1000-digit" in s.extra["official_note"]


def test_vlm_r1_three_samples() -> None:
    # predictions at ×2 scale: a hit, no box, and a box of official IoU 0.47
    half = (0.5, 0.5)
    scores = [
        score_rec("20,20,60,60 car", [10, 10, 30, 30], half),
        score_rec("I cannot find it", [10, 10, 30, 30], half),
        score_rec("0,0,200,94 car", [0, 0, 100, 100], half),
    ]
    assert scores[2].extra["official_iou"] == pytest.approx(0.47)
    report = rec_report(scores)
    assert report["official"]["acc@0.5"] == pytest.approx(100 / 3)
    assert report["counts"]["n_failed"] == 1


def test_geoground_per_subset() -> None:
    gt = [0, 0, 10, 10]
    scores = [score_rec("0,0,10,10 x", gt), score_rec("50,50,60,60 x", gt), score_rec("", gt)]
    report = geoground_report(scores, ["a", "a", "b"])
    assert report["official"] == {"a": 50.0, "b": 0.0}


def test_geochat_referring_three_samples() -> None:
    scores = [
        score_geochat_referring("10,10,20,20 car", [[10, 10, 20, 20]]),
        score_geochat_referring("50,50,60,60 car", [[10, 10, 20, 20]]),
        score_geochat_referring("10,10,20,20 car", [[10, 10, 20, 20], [30, 30, 40, 40]]),
    ]
    report = geochat_referring_report(
        scores, size_groups=["small", "small", "large"], n_objects=[1, 1, 2]
    )
    off = report["official"]
    assert off["Pr(F1=1, IoU=0.5)"] == pytest.approx(1 / 3)
    assert off["size_small"] == 0.5
    assert off["count_multiple"] == 0.0


def test_geochat_referring_no_box_crashes_the_original_not_us() -> None:
    s = score_geochat_referring("no objects here", [[1, 1, 5, 5]])
    assert s.official is None and "crashes" in s.extra["official_reason"]
    s = score_geochat_referring("not json", [[1, 1, 5, 5]], prompt_type="json")
    assert s.official is None


def test_vhm_two_way_per_folder() -> None:
    scores = [score_two_way("Airport", "airport"), score_two_way("air", "Airport")]
    assert vhm_report({"cls_AID": scores})["official"] == {"cls_AID": 1.0}


@pytest.mark.parametrize(
    ("pred", "label"),
    [("Yes", "yes"), ("no", "no"), ("I don't know", "no"), ("not sure, yes", "unknown")],
)
def test_vhm_presence(pred: str, label: str) -> None:
    assert vhm_presence_label(pred) == label
    assert score_presence(pred, label).official == 1.0


def test_vhm_colour_fraction() -> None:
    assert score_colour("Red", "red, white").official == 0.5


@pytest.mark.parametrize(
    ("pred", "gt", "official"),
    [("The answer is B", "B", 1.0), ("Answer: C", "C", 0.0), ("c", "C", 0.0)],
)
def test_vhm_mcq(pred: str, gt: str, official: float) -> None:
    assert score_mcq_vhm(pred, gt).official == official


def test_vhm_counting_and_geometric_crashes() -> None:
    assert score_count("no idea", 3).official is None  # int('') in the original
    assert score_count("twenty-one", 20).official == 1.0
    crash = score_measure("3 m and 4 m", "10 m")
    assert crash.official is None and "crashes" in crash.extra["official_reason"]
    drop = score_measure("big", "10 m")
    assert drop.official is None and "drops" in drop.extra["official_reason"]
    report = vhm_report({"obj_meas_dota_test.json": [crash, drop, score_measure("12", "10")]})
    assert report["official"]["geometric_mae"] == 2.0
    assert report["official"]["geometric_mape"] == pytest.approx(0.2)


def test_mme_lenient_contain_and_missing_category() -> None:
    s = score_mcq_contain("B. 12 cars are parked", "A")
    assert s.official == 1.0 and s.strict == 0.0
    report = mme_report([s], ["color"])  # no count/position: the original crashes
    assert set(report["official"]) == {"acc", "color_acc"}


def test_teochat_zero_correct_task_vanishes_officially() -> None:
    scores = [
        score_teochat("beach", "beach"),
        score_teochat("forest", "beach"),
        score_teochat("no", "yes"),
    ]
    report = teochat_report(scores, ["cls", "cls", "qa"])
    assert report["official"] == {"cls_accuracy": 0.5}
    assert report["strict"] == {"cls_accuracy": 0.5, "qa_accuracy": 0.0}


def test_linear_findall_equals_the_official_regex() -> None:
    """The official 8-/4-int ``re.findall`` is replaced by a linear scan: same matches."""
    import random
    import re

    from rscovlm.eval.metrics.geochat_referring import _findall_runs

    patterns = {k: re.compile(",".join([r"(\d+)"] * k)) for k in (4, 8)}
    rng = random.Random(3)
    for _ in range(5000):
        text = "".join(rng.choice("0123456789,, a٣") for _ in range(rng.randrange(60)))
        for k, pattern in patterns.items():
            assert [list(m) for m in pattern.findall(text)] == _findall_runs(text, k)
