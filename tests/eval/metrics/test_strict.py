"""rscovlm's strict rules: the traps the official containment falls into, and the summaries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rscovlm.errors import RscovlmError
from rscovlm.eval.metrics import captions
from rscovlm.eval.metrics.classification import SceneClassifier, confusion_matrix
from rscovlm.eval.metrics.mcq import extract_letter, score_mcq_contain
from rscovlm.eval.metrics.rec import iou, score_rec
from rscovlm.eval.metrics.score import SampleScore, bootstrap_ci, summarize
from rscovlm.eval.metrics.segmentation import score_mask, score_rle, segmentation_report
from rscovlm.eval.metrics.text import score_contain, strict_match
from rscovlm.eval.metrics.vhm import score_colour, score_count, score_presence
from rscovlm.eval.metrics.vqa import rsvqa_report


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("", None),
        ("   ", None),
        ("Based on the image, C", "C"),
        ("The correct option is B", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("b", "B"),
        ("(D) White", "D"),
        ("Answer: C", "C"),
        ("A large building, so E", "E"),
        ("B or C", None),
        ("The answer is a car.", None),
        ("the answer is c.", "C"),
        ("I am not sure", None),
    ],
)
def test_letter_extraction(answer: str, letter: str | None) -> None:
    assert extract_letter(answer) == letter


def test_rsvqa_per_type_aa_oa_on_real_questions(real_data: Path) -> None:
    folder = real_data / "rsvqa" / "LR"
    questions = json.loads((folder / "LR_split_test_questions.json").read_text())["questions"]
    answers = json.loads((folder / "LR_split_test_answers.json").read_text())["answers"]
    by_id = {a["id"]: a["answer"] for a in answers}
    qs = [q for q in questions if q.get("active", True) and q["answers_ids"][0] in by_id]
    gts = [by_id[q["answers_ids"][0]] for q in qs]
    scores = [score_contain("yes", gt) for gt in gts]  # the all-"yes" baseline
    report = rsvqa_report(scores, [q["type"] for q in qs])
    strict = report["strict"]
    types = sorted({q["type"] for q in qs})
    assert types == ["comp", "count", "presence", "rural_urban"]
    for t in types:
        expected = 100 * np.mean(
            [gt == "yes" for gt, q in zip(gts, qs, strict=True) if q["type"] == t]
        )
        assert strict[t] == pytest.approx(expected)
    assert strict["AA"] == pytest.approx(np.mean([strict[t] for t in types]))
    assert strict["OA"] == pytest.approx(100 * np.mean([gt == "yes" for gt in gts]))
    assert strict["count"] == 0.0 and report["counts"]["n_in"] == len(qs)


def test_java_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(captions.shutil, "which", lambda name: None)
    with pytest.raises(RscovlmError, match="java not found"):
        captions.score_captions(["a road"], [["a road"]])
    _, per = captions.official_cider(["a road"], [["a road"]])  # pure Python: still works
    assert len(per) == 1


def test_empty_answer_is_wrong_not_a() -> None:
    s = score_mcq_contain("", "A")
    assert s.strict == 0.0 and not s.parsed and s.reason == "empty answer"
    assert s.official == 0.0


@pytest.mark.parametrize(
    ("pred", "gt"),
    [("12", "2"), ("no", "not sure"), ("not sure", "no"), ("Airport", "Port"), ("Port", "Airport")],
)
def test_strict_traps_do_not_match(pred: str, gt: str) -> None:
    assert not strict_match(pred, gt)


def test_contain_trap_is_official_only() -> None:
    s = score_contain("12", "2")
    assert (s.strict, s.official) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("pred", "gt"),
    [("Yes.", "yes"), (" The Airport ", "airport"), ("two", "2"), ("2.0", "2"), ("“Red”", "red")],
)
def test_strict_normalisation_matches(pred: str, gt: str) -> None:
    assert strict_match(pred, gt)


def test_scene_classes_folder_style_and_confusion() -> None:
    c = SceneClassifier(["Airport", "MediumResidential", "Port", "Park", "Parking"])
    scores = [
        c.score("Medium Residential", "MediumResidential"),
        c.score("medium_residential", "MediumResidential"),
        c.score("Airport", "Port"),
        c.score("Parking", "Park"),
        c.score("", "Park"),
    ]
    assert [s.strict for s in scores] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert [s.official for s in scores] == [0.0, 0.0, 1.0, 1.0, 0.0]
    m, cols = confusion_matrix(scores, c.classes)
    assert m.sum() == len(scores)
    assert m[c.classes.index("Park"), cols.index("<unparsed>")] == 1
    assert m[c.classes.index("Port"), cols.index("Airport")] == 1


def test_rec_strict_reads_any_box_and_uses_continuous_iou() -> None:
    s = score_rec("The box is [10, 10, 20, 20].", [10, 10, 20, 20])
    assert s.strict == 1.0 and s.official == 0.0  # plain official needs "x1,y1,x2,y2 label"
    assert iou([0, 0, 10, 10], [9, 0, 20, 10]) == pytest.approx(10 / 200)


def test_vhm_strict_rules() -> None:
    assert score_presence("I don't know", "no").strict == 0.0
    assert score_colour("white and red", "red, white").strict == 1.0
    s = score_count("I see 3 cars and 4 trucks", 3)
    assert s.strict is None and not s.parsed and s.official == 0.0


def test_segmentation_metrics() -> None:
    gt = np.zeros((56, 56), dtype=bool)
    gt[:28, :] = True
    scores = [score_rle("<seg>1*2;0*2;</seg>", gt), score_rle("junk", gt), score_mask(gt, gt)]
    assert [round(s.strict, 6) for s in scores] == [1.0, 0.0, 1.0]
    r = segmentation_report(scores)
    assert r["strict"]["mIoU"] == pytest.approx(200 / 3)
    assert r["strict"]["oIoU"] == pytest.approx(100 * 2 * 28 * 56 / (3 * 28 * 56))
    assert r["strict"]["P@0.9"] == pytest.approx(200 / 3)
    assert r["counts"]["n_failed"] == 1


def test_counts_add_up_and_bootstrap_is_seeded() -> None:
    rng = np.random.default_rng(7)
    scores = [
        SampleScore(float(v), float(v), bool(p), None if p else "empty answer")
        for v, p in zip(rng.integers(0, 2, 500), rng.integers(0, 4, 500), strict=True)
    ]
    s = summarize(scores)
    assert s.counts.n_in == s.counts.n_scored + s.counts.n_failed == 500
    assert sum(s.counts.reasons.values()) == s.counts.n_failed
    assert s.strict_ci95 == summarize(scores).strict_ci95  # same seed, same CI
    lo, hi = s.strict_ci95
    assert lo < s.strict < hi and hi - lo < 0.15
    assert bootstrap_ci([1.0, 0.0], seed=1) != bootstrap_ci([1.0, 0.0] * 50, seed=1)
    assert bootstrap_ci([]) is None
    assert not math.isnan(summarize([]).counts.n_in)
