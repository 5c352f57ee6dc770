"""WordNet from Debian's dict files, read by nltk, and the LRS-VQA official rule on top."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rscovlm.eval.metrics import wordnet as wordnet_mod
from rscovlm.eval.metrics.lrsvqa import lrsvqa_report, score_lrsvqa
from rscovlm.eval.metrics.wordnet import load_wordnet, share_synset, wordnet_status
from rscovlm.eval.metrics.wordnet_data import LEXNAMES, install_wordnet, lexnames_text

DEBIAN_WORDNET = Path("/usr/share/wordnet")


@pytest.fixture(scope="module")
def wn():
    reader = load_wordnet()
    if reader is None:
        pytest.fail(f"WordNet unavailable ({wordnet_status()}); run `make wordnet`")
    return reader


def test_lexnames_table() -> None:
    lines = lexnames_text().splitlines()
    assert len(lines) == len(LEXNAMES) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1"
    assert lines[44] == "44\tadj.ppl\t3"
    assert {int(line.split("\t")[2]) for line in lines} == {1, 2, 3, 4}


def test_debian_files_work_with_nltk(wn) -> None:
    car = wn.synsets("car")
    assert car and car[0].name() == "car.n.01"
    assert car[0].path_similarity(wn.synsets("automobile")[0]) == 1.0
    assert car[0].path_similarity(wn.synsets("dog")[0]) < 0.2
    assert car[0].lexname() == "noun.artifact"  # the lexnames table is read correctly
    assert wn.synsets("tennis court") == []  # spaces are not underscores


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [("car", "automobile", True), ("3", "three", True), ("red", "blue", False), ("", "x", False)],
)
def test_shared_synset_rule(wn, a: str, b: str, same: bool) -> None:
    assert share_synset(a, b, wn) is same


def test_lrsvqa_scores_and_aggregates(wn) -> None:
    cases = [("Three", "3", "FAIR_1", "count"), ("automobile", "car", "STAR_2", "object category")]
    cases += [
        ("tennis court", "tennis courts", "GLH-3", "object category"),
        ("", "urban", "STAR_4", "rural or urban"),
    ]
    scores = [score_lrsvqa(a, g, wn=wn) for a, g, _, _ in cases]
    assert [s.official for s in scores] == [1.0, 1.0, 0.0, 0.0]
    assert [s.strict for s in scores] == [1.0, 0.0, 0.0, 0.0]
    r = lrsvqa_report(scores, [c[2] for c in cases], [c[3] for c in cases])
    off = r["official"]
    assert off["overall acc"] == 0.5
    assert off["Overall Acc (Source STAR)"] == 0.5 and off["Overall Acc (Source GLH)"] == 0.0
    assert off["Overall Acc (Task object category)"] == 0.5
    assert off["Average Acc"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert off["Average Acc (Source STAR)"] == 0.5  # tasks in STAR: category 1.0, rural 0.0
    assert r["counts"]["n_failed"] == 1


def test_unavailable_wordnet_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    s = score_lrsvqa("automobile", "car", wn=None)
    assert s.official is None and "unavailable" in s.extra["official_reason"]
    assert score_lrsvqa("car", "car", wn=None).official == 1.0  # exact match needs no WordNet
    monkeypatch.setenv(wordnet_mod.ENV_VAR, "/nonexistent")
    monkeypatch.setattr(sys, "prefix", "/nonexistent")
    monkeypatch.setattr(wordnet_mod, "candidate_dirs", lambda: [Path("/nonexistent")])
    wordnet_mod._load.cache_clear()
    try:
        assert load_wordnet() is None and "not found" in wordnet_status()
    finally:
        wordnet_mod._load.cache_clear()


def test_install_is_idempotent(tmp_path: Path) -> None:
    if not (DEBIAN_WORDNET / "data.noun").is_file():
        pytest.fail("Debian's wordnet-base is not installed; run `make wordnet`")
    first = install_wordnet(DEBIAN_WORDNET, tmp_path)
    again = install_wordnet(DEBIAN_WORDNET, tmp_path)
    assert first == again == tmp_path / "corpora" / "wordnet"
    assert (first / "lexnames").read_text() == lexnames_text()
    assert (first / "index.sense").stat().st_size > 0
