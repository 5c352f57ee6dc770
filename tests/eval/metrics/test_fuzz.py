"""20,000 seeded odd outputs per scorer: never an exception, always a well-formed score."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from rscovlm.eval.metrics.captions import clean_caption, official_cider, score_captions
from rscovlm.eval.metrics.classification import SceneClassifier, score_teochat
from rscovlm.eval.metrics.geochat_referring import score_geochat_referring
from rscovlm.eval.metrics.lrsvqa import score_lrsvqa
from rscovlm.eval.metrics.mcq import score_mcq_contain, score_mcq_vhm
from rscovlm.eval.metrics.rec import score_rec
from rscovlm.eval.metrics.score import SampleScore, build_report
from rscovlm.eval.metrics.segmentation import score_rle
from rscovlm.eval.metrics.text import score_contain, score_two_way
from rscovlm.eval.metrics.vhm import score_colour, score_count, score_measure, score_presence
from rscovlm.eval.metrics.wordnet import load_wordnet

_SCENE = SceneClassifier(["Airport", "Port", "MediumResidential"])
_GT_MASK = np.eye(8, dtype=bool)

SCORERS: dict[str, Callable[[str], SampleScore]] = {
    "contain": lambda o: score_contain(o, "Port"),
    "two_way": lambda o: score_two_way(o, "yes"),
    "mcq_contain": lambda o: score_mcq_contain(o, "B", choices=["(A) red", "(B) blue"]),
    "mcq_vhm": lambda o: score_mcq_vhm(o, "C"),
    "rec_plain": lambda o: score_rec(o, [10, 10, 50, 50], (2.0, 0.5)),
    "rec_json": lambda o: score_rec(o, [10, 10, 50, 50], prompt_type="json"),
    "geochat_plain": lambda o: score_geochat_referring(o, [[10, 10, 20, 20, 45]]),
    "geochat_json": lambda o: score_geochat_referring(o, [[1, 2, 3, 4]], prompt_type="json"),
    "scene": lambda o: _SCENE.score(o, "MediumResidential"),
    "teochat": lambda o: score_teochat(o, "beach"),
    "presence": lambda o: score_presence(o, "yes"),
    "colour": lambda o: score_colour(o, "red, white"),
    "count": lambda o: score_count(o, 3),
    "measure": lambda o: score_measure(o, "12.5 m"),
    "rle": lambda o: score_rle(o, _GT_MASK),
}


def _well_formed(s: SampleScore) -> None:
    assert isinstance(s, SampleScore)
    for value in (s.strict, s.official):
        assert value is None or not math.isnan(value)
    assert s.parsed or s.reason


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_scorer_survives_fuzz(name: str, fuzz_outputs: list[str]) -> None:
    scorer = SCORERS[name]
    scores = [scorer(o) for o in fuzz_outputs]
    for s in scores:
        _well_formed(s)
    report = build_report({"x": scores}, scores, n_resamples=50)
    assert report["counts"]["n_in"] == len(fuzz_outputs)


def test_lrsvqa_survives_fuzz(fuzz_outputs: list[str]) -> None:
    wn = load_wordnet()
    for wordnet in (wn, None):
        for o in fuzz_outputs:
            _well_formed(score_lrsvqa(o, "three", wn=wordnet))


def test_captions_survive_fuzz(fuzz_outputs: list[str]) -> None:
    """All 20,000 through the text cleaning and the official CIDEr; the Java path (PTB
    tokeniser, BLEU, ROUGE-L, CIDEr-D) on the first 2,000, which hold every fuzz kind — the
    whole set takes ~30 s there; METEOR runs on 300 of them in test_real_outputs.py."""
    refs = [["a road next to a river ."]] * len(fuzz_outputs)
    corpus, per = official_cider(fuzz_outputs, refs)
    assert len(per) == len(fuzz_outputs) and math.isfinite(corpus)
    cleaned = [clean_caption(o) for o in fuzz_outputs]
    assert not any("\n" in c or "|" in c for c in cleaned)
    odd = fuzz_outputs[:2000]
    scores, strict = score_captions(odd, refs[:2000], meteor=False)
    assert len(scores) == len(odd)
    for s in scores:
        _well_formed(s)
    assert all(math.isfinite(v) for v in strict["strict"].values() if isinstance(v, float))
