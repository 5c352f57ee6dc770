"""The real EarthDial outputs (../shared/data/real/model_outputs) scored end to end."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rscovlm.eval.metrics.captions import (
    SPICE_UNAVAILABLE,
    STRICT_METRICS,
    caption_report,
    java_path,
    score_caption_sets,
)
from rscovlm.eval.metrics.classification import SceneClassifier, scene_report
from rscovlm.eval.metrics.geochat_referring import (
    geochat_referring_report,
    score_geochat_referring,
)

Rows = Callable[[str], list[dict]]


def _caption_set(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    refs = [[r[f"caption{i}"] for i in range(5) if r.get(f"caption{i}")] for r in rows]
    return [r["answer"] for r in rows], refs


@pytest.fixture(scope="module")
def caption_results(earthdial: Rows, fuzz_outputs: list[str]) -> dict[str, Any]:
    """UCM, RSITMD and 300 fuzzed captions in one Java run (tokeniser + METEOR start once)."""
    if java_path() is None:
        pytest.fail("java is not on PATH; the caption metrics need it")
    odd = fuzz_outputs[:300]
    sets = {
        "ucm": _caption_set(earthdial("ucm_captions")),
        "rsitmd": _caption_set(earthdial("rsitmd_captions")),
        "odd": (odd, [["a road next to a river ."]] * len(odd)),
    }
    return score_caption_sets(sets)


@pytest.mark.parametrize(
    ("name", "n", "cider_range"), [("ucm", 210, (60.0, 250.0)), ("rsitmd", 452, (15.0, 150.0))]
)
def test_earthdial_captions(
    caption_results: dict[str, Any], name: str, n: int, cider_range: tuple[float, float]
) -> None:
    scores, corpus = caption_results[name]
    report = caption_report(scores, corpus)
    strict = report["strict"]
    assert len(scores) == n == report["counts"]["n_in"]
    for metric in STRICT_METRICS:
        assert 0.0 < strict[metric] < 100.0 or metric == "CIDEr", (metric, strict[metric])
    b = [strict[f"Bleu_{k}"] for k in range(1, 5)]
    assert b == sorted(b, reverse=True)  # BLEU-n falls with n
    assert 5.0 < strict["METEOR"] < 50.0 and 20.0 < strict["ROUGE_L"] < 80.0
    assert cider_range[0] < strict["CIDEr"] < cider_range[1]
    assert strict["SPICE"] == SPICE_UNAVAILABLE
    official = report["official"]["CIDEr"]
    assert cider_range[0] / 2 < official < cider_range[1]
    assert abs(official - strict["CIDEr"]) > 0.5  # tokenisation changes the score
    lo, hi = report["ci95"]["strict"]["CIDEr"]
    assert lo < sum(s.strict for s in scores) / n < hi


def test_fuzzed_captions_through_java(caption_results: dict[str, Any]) -> None:
    scores, corpus = caption_results["odd"]
    assert len(scores) == 300
    assert all(v >= 0.0 for v in corpus["strict"].values() if isinstance(v, float))
    assert all(s.parsed or s.reason == "empty caption" for s in scores)


def test_earthdial_aid_classification(earthdial: Rows, real_data: Path) -> None:
    classes = json.loads((real_data / "scene_cls" / "class_lists.json").read_text())["AID"]
    classifier = SceneClassifier(classes["classes"])
    rows = earthdial("aid_classification")
    scores = [classifier.score(r["answer"], r["annotation"]) for r in rows]
    report = scene_report(scores, classifier.classes)
    strict, official = report["strict"]["acc"], report["official"]["acc"]
    # "Medium Residential" is the class MediumResidential for strict, not "in" it for official
    assert 0.6 < strict < 1.0
    assert official < strict - 0.1
    assert report["strict"]["acc_MediumResidential"] > 0.5
    assert report["official"]["acc_MediumResidential"] == 0.0
    counts = report["counts"]
    assert counts["n_in"] == 3000 == counts["n_scored"] + counts["n_failed"]
    assert counts["n_failed"] > 0  # "Medical Residential", "Tennis court", ...
    assert sum(map(sum, report["confusion"]["matrix"])) == 3000


def _gt_boxes(text: str) -> list[list[float]]:
    return [json.loads(m) for m in re.findall(r"\[[^\[\]]*\]", text)]


def test_earthdial_geochat_referring(earthdial: Rows) -> None:
    rows = earthdial("geochat_referring_300")
    scores = [score_geochat_referring(r["answer"], _gt_boxes(r["gt_bbox"])) for r in rows]
    report = geochat_referring_report(
        scores, [r["size_group"] for r in rows], [r["task_type"] for r in rows]
    )
    pr = report["strict"]["Pr(F1=1, IoU=0.5)"]
    assert 0.02 < pr < 0.5
    assert report["strict"]["type_ref"] is not None and report["strict"]["size_small"] == pr
    # EarthDial writes "[[x1, y1, x2, y2, angle]]" with spaces: the official parser finds no
    # "\d+,\d+,..." run and the original crashes on every sample
    assert report["official"]["Pr(F1=1, IoU=0.5)"] is None
    assert report["counts"]["n_official_missing"] == 300
    assert report["counts"]["n_in"] == 300
