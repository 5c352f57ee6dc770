"""Captioning: BLEU-1..4, METEOR, ROUGE-L and CIDEr-D through pycocoevalcap, plus the official
untokenised CIDEr.

**Strict** (rscovlm's rule, the COCO caption protocol): hypotheses and references are
tokenised by pycocoevalcap's ``PTBTokenizer`` (Stanford CoreNLP, Java; lower-cases and removes
punctuation tokens), then scored by pycocoevalcap's ``Bleu(4)``, ``Meteor`` (Java),
``Rouge`` and ``Cider``. Values are reported ×100. SPICE is reported as unavailable: its jar
needs Stanford CoreNLP models that pycocoevalcap downloads at first use, and nothing downloads
at run time here.

**Official** (EVAL_SUITE.md §2, §3.8): ``Cider().compute_score`` on the *lower-cased raw*
strings, no tokeniser, so ``'road.'`` and ``'road'`` are different words; ``{"CIDEr": ×100}``
only. Both CIDEr flavours take their IDF from the evaluated set's own references, so they
depend on the whole set (a per-image value is that image's share of the corpus score; the
bootstrap CI resamples those shares with the IDF held fixed).

Texts are cleaned before they reach the Java tools (control and line-separator characters,
unpaired surrogates and ``|`` become spaces) so one odd output can never shift the tokeniser's
line alignment or METEOR's ``|||`` protocol. Java is looked up on ``PATH``; without it the
strict metrics raise a :class:`~rscovlm.errors.RscovlmError` that says so, while the official
CIDEr (pure Python) still works.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import unicodedata
from collections.abc import Sequence
from typing import Any

from rscovlm.errors import InputError, RscovlmError
from rscovlm.eval.metrics.score import SampleScore, build_report
from rscovlm.extras import require

__all__ = [
    "SPICE_UNAVAILABLE",
    "STRICT_METRICS",
    "caption_report",
    "clean_caption",
    "java_path",
    "official_cider",
    "score_caption_sets",
    "score_captions",
]

#: Corpus metrics of the strict side, pycocoevalcap's names.
STRICT_METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
SPICE_UNAVAILABLE = (
    "unavailable: SPICE needs Stanford CoreNLP models that pycocoevalcap downloads at first "
    "use; rscovlm never downloads at run time"
)
_BAD = re.compile(r"[|\s]+")


def java_path() -> str | None:
    """The ``java`` executable pycocoevalcap will run, or ``None``."""
    return shutil.which("java")


def clean_caption(text: str) -> str:
    """A caption safe for the Java tools: one line, no ``|``, no control characters.

    Examples:
        >>> clean_caption("a  road\\u2028next to |||  fields\\x00 ")
        'a road next to fields'
    """
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") else ch
        for ch in text
    )
    return _BAD.sub(" ", text).strip()


def _check(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
    if len(preds) != len(refs):
        raise InputError(f"{len(preds)} captions for {len(refs)} reference lists")
    for i, r in enumerate(refs):
        if not r:
            raise InputError(f"sample {i} has no reference caption")


def official_cider(
    preds: Sequence[str], refs: Sequence[Sequence[str]]
) -> tuple[float, list[float]]:
    """The official CIDEr (§2): lower-cased raw strings, ×100; ``(corpus, per image)``.

    Examples:
        >>> corpus, per = official_cider(["a road."], [["a road."]])
        >>> round(corpus, 6), len(per)
        (0.0, 1)
    """
    _check(preds, refs)
    if not preds:
        return 0.0, []
    cider = require("pycocoevalcap.cider.cider", "caption")
    gts = {str(i): [g.lower() for g in r] for i, r in enumerate(refs)}
    res = {str(i): [p.lower()] for i, p in enumerate(preds)}
    score, per = cider.Cider().compute_score(gts, res)
    return float(score) * 100.0, [float(v) * 100.0 for v in per]


def _tokenize(captions: dict[str, list[str]]) -> dict[str, list[str]]:
    tokenizer = require("pycocoevalcap.tokenizer.ptbtokenizer", "caption")
    payload: dict[str, list[dict[str, str]]] = {}
    for key, texts in captions.items():
        kept = [{"caption": c} for c in texts if c]
        if kept:
            payload[key] = kept
    tokenized: dict[str, list[str]] = {}
    if payload:
        with contextlib.redirect_stdout(io.StringIO()):
            tokenized = tokenizer.PTBTokenizer().tokenize(payload)
    out: dict[str, list[str]] = {}
    for key, texts in captions.items():
        got = list(tokenized.get(key, []))
        out[key] = [got.pop(0) if (c and got) else "" for c in texts]
    return out


CaptionSet = tuple[Sequence[str], Sequence[Sequence[str]]]


def score_captions(
    preds: Sequence[str], refs: Sequence[Sequence[str]], meteor: bool = True
) -> tuple[list[SampleScore], dict[str, Any]]:
    """Per-image scores (strict = tokenised CIDEr-D, official = untokenised CIDEr, both ×100)
    and the corpus metrics ``{"strict": {...}, "official": {"CIDEr": ...}}``.

    Args:
        preds: One generated caption per image.
        refs: The reference captions of each image (at least one).
        meteor: Run METEOR (the slowest metric; a JVM of its own).

    Raises:
        InputError: Lengths differ or an image has no reference.
        RscovlmError: ``java`` is not on ``PATH`` (needed by the tokeniser and METEOR).
    """
    return score_caption_sets({"": (preds, refs)}, meteor)[""]


def score_caption_sets(
    sets: dict[str, CaptionSet], meteor: bool = True
) -> dict[str, tuple[list[SampleScore], dict[str, Any]]]:
    """:func:`score_captions` of several sets, each scored on its own (own CIDEr IDF), with one
    tokeniser run and one METEOR process for all: the JVM start-ups dominate small sets.
    """
    for preds, refs in sets.values():
        _check(preds, refs)
    if any(preds for preds, _ in sets.values()) and java_path() is None:
        raise RscovlmError(
            "java not found on PATH: pycocoevalcap's PTB tokenizer and METEOR need a Java "
            "runtime (e.g. apt-get install default-jre-headless)"
        )
    flat: dict[str, list[str]] = {}
    for name, (preds, refs) in sets.items():
        for i, (p, r) in enumerate(zip(preds, refs, strict=True)):
            flat[f"{name}\x00g{i}"] = [clean_caption(g) for g in r]
            flat[f"{name}\x00r{i}"] = [clean_caption(p)]
    tokens = _tokenize(flat)
    meteor_scorer = None
    if meteor and flat:
        meteor_scorer = require("pycocoevalcap.meteor.meteor", "caption").Meteor()
    try:
        out = {}
        for name, (preds, refs) in sets.items():
            gts = {str(i): tokens[f"{name}\x00g{i}"] for i in range(len(preds))}
            res = {str(i): tokens[f"{name}\x00r{i}"] for i in range(len(preds))}
            out[name] = _score_tokenized(preds, refs, gts, res, meteor_scorer)
        return out
    finally:
        del meteor_scorer


def _score_tokenized(
    preds: Sequence[str],
    refs: Sequence[Sequence[str]],
    gts: dict[str, list[str]],
    res: dict[str, list[str]],
    meteor_scorer: Any,
) -> tuple[list[SampleScore], dict[str, Any]]:
    official, official_per = official_cider(preds, refs)
    corpus: dict[str, Any] = {"official": {"CIDEr": official}, "strict": {}}
    if not preds:
        return [], corpus
    bleu = require("pycocoevalcap.bleu.bleu", "caption")
    rouge = require("pycocoevalcap.rouge.rouge", "caption")
    cider = require("pycocoevalcap.cider.cider", "caption")
    per: dict[str, list[float]] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        b, b_per = bleu.Bleu(4).compute_score(gts, res)
    for n in range(4):
        corpus["strict"][f"Bleu_{n + 1}"] = float(b[n]) * 100.0
        per[f"Bleu_{n + 1}"] = [float(v) * 100.0 for v in b_per[n]]
    r, r_per = rouge.Rouge().compute_score(gts, res)
    corpus["strict"]["ROUGE_L"] = float(r) * 100.0
    per["ROUGE_L"] = [100.0 * float(v) for v in r_per]
    c, c_per = cider.Cider().compute_score(gts, res)
    corpus["strict"]["CIDEr"] = float(c) * 100.0
    per["CIDEr"] = [100.0 * float(v) for v in c_per]
    if meteor_scorer is not None:
        # METEOR's stdio protocol has no way to send an empty hypothesis; "." matches nothing.
        m, m_per = meteor_scorer.compute_score(gts, {k: [v[0] or "."] for k, v in res.items()})
        corpus["strict"]["METEOR"] = float(m) * 100.0
        per["METEOR"] = [100.0 * float(v) for v in m_per]
    corpus["strict"]["SPICE"] = SPICE_UNAVAILABLE
    scores = []
    for i in range(len(preds)):
        empty = not res[str(i)][0]
        scores.append(
            SampleScore(
                strict=per["CIDEr"][i],
                official=official_per[i],
                parsed=not empty,
                reason="empty caption" if empty else None,
                extra={name: values[i] for name, values in per.items()},
            )
        )
    return scores, corpus


def caption_report(scores: Sequence[SampleScore], corpus: dict[str, Any]) -> dict[str, Any]:
    """The caption report: corpus metrics of :func:`score_captions` plus counts and CIs.

    The CIs resample per-image shares (CIDEr strict / official), see the module docstring.
    """
    report = build_report(
        {"CIDEr": list(scores)},
        list(scores),
        notes=[
            "official: CIDEr on lower-cased untokenised strings (punctuation stays attached)",
            "strict: PTB-tokenised pycocoevalcap metrics",
        ],
    )
    report["strict"] = dict(corpus["strict"])
    report["official"] = dict(corpus["official"])
    return report
