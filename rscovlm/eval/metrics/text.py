"""Short-answer text matching: the official containment rules and rscovlm's strict match.

**Official** (EVAL_SUITE.md §2): ``norm(s) = s.lower().strip().strip(".")`` and a sample is
correct iff ``norm(gt) in norm(pred)`` (*contain-acc*), or, for VHM (§3.5, §3.6), iff either
contains the other (*two-way contain*). Both are substring tests, so ``"Port"`` is "in"
``"Airport"``, ``"no"`` in ``"Not sure"`` and ``"2"`` in ``"12"``.

**Strict** (rscovlm's rule): the answer is *normalised* — Unicode NFKC, case folded, surrounding
whitespace, quotes and punctuation removed, inner whitespace collapsed, a leading article
(``a``/``an``/``the``) dropped — and must then EQUAL the normalised ground truth. Numbers
compare by value when both sides are one number (``"2.0"`` = ``"2"``, ``"two"`` = ``"2"``), so
``"12"`` never matches ``"2"``. An empty answer is a parse failure, scored 0.
"""

from __future__ import annotations

import math
import re
import unicodedata

from rscovlm.eval.metrics.score import SampleScore

__all__ = [
    "NUMBER_WORDS",
    "as_single_number",
    "contain_match",
    "norm",
    "score_contain",
    "score_two_way",
    "strict_match",
    "strict_norm",
    "two_way_contain_match",
]

_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

#: English number words 0–99 (``"twenty-one"`` and ``"twenty one"`` both) → value.
NUMBER_WORDS: dict[str, int] = {w: i for i, w in enumerate(_UNITS)}
for _t, _word in enumerate(_TENS, start=2):
    NUMBER_WORDS[_word] = _t * 10
    for _u in range(1, 10):
        NUMBER_WORDS[f"{_word}-{_UNITS[_u]}"] = _t * 10 + _u
        NUMBER_WORDS[f"{_word} {_UNITS[_u]}"] = _t * 10 + _u

_EDGE = " \t\r\n\"'`“”‘’«».,;:!?()[]{}<>"
_SPACES = re.compile(r"\s+")
_ARTICLE = re.compile(r"^(?:a|an|the)\s+")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_MAX_NUMBER_CHARS = 64  # longer digit runs are not answers; float() of them is pointless


def norm(text: str) -> str:
    """The official ``norm`` (§2): lower-case, strip whitespace, then strip dots.

    Examples:
        >>> norm("  Airport. ")
        'airport'
    """
    return text.lower().strip().strip(".")


def contain_match(pred: str, gt: str) -> bool:
    """Official contain-acc test (§2): ``norm(gt) in norm(pred)``.

    Examples:
        >>> contain_match("Parking", "Park"), contain_match("Not sure", "no")
        (True, True)
    """
    return norm(gt) in norm(pred)


def two_way_contain_match(pred: str, gt: str) -> bool:
    """Official VHM test (§3.5): either normalised string contains the other.

    Examples:
        >>> two_way_contain_match("air", "Airport")
        True
    """
    p, g = norm(pred), norm(gt)
    return p in g or g in p


def strict_norm(text: str) -> str:
    """rscovlm's normal form of a short answer (see the module docstring).

    Examples:
        >>> strict_norm("  The  Dense   Residential. ")
        'dense residential'
        >>> strict_norm('"Yes!"')
        'yes'
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACES.sub(" ", text).strip(_EDGE)
    text = _SPACES.sub(" ", text).strip()
    return _ARTICLE.sub("", text)


def as_single_number(normalised: str) -> float | None:
    """The value of an answer that is exactly one number (digits or a word 0–99), else ``None``.

    Examples:
        >>> as_single_number("12"), as_single_number("twenty-one"), as_single_number("2 cars")
        (12.0, 21.0, None)
    """
    if normalised in NUMBER_WORDS:
        return float(NUMBER_WORDS[normalised])
    if len(normalised) > _MAX_NUMBER_CHARS or not _NUMBER.fullmatch(normalised):
        return None
    value = float(normalised)
    return value if math.isfinite(value) else None


def strict_match(pred: str, gt: str) -> bool:
    """rscovlm's strict test: equal normal forms, or equal values when both are one number.

    Examples:
        >>> strict_match("12", "2"), strict_match("not sure", "no"), strict_match("Airport", "Port")
        (False, False, False)
        >>> strict_match("Two.", "2"), strict_match("YES", "yes")
        (True, True)
    """
    p, g = strict_norm(pred), strict_norm(gt)
    if not p:
        return False
    if p == g:
        return True
    pv, gv = as_single_number(p), as_single_number(g)
    return pv is not None and gv is not None and pv == gv


def _score(pred: str, gt: str, official: bool) -> SampleScore:
    parsed = bool(strict_norm(pred))
    return SampleScore(
        strict=float(strict_match(pred, gt)),
        official=float(official),
        parsed=parsed,
        reason=None if parsed else "empty answer",
    )


def score_contain(pred: str, gt: str) -> SampleScore:
    """Strict match and official contain-acc (§2) of one short answer.

    Examples:
        >>> score_contain("Airport", "Port")
        SampleScore(strict=0.0, official=1.0, parsed=True, reason=None, extra={})
    """
    return _score(pred, gt, contain_match(pred, gt))


def score_two_way(pred: str, gt: str) -> SampleScore:
    """Strict match and the official VHM two-way containment (§3.5, §3.6).

    Examples:
        >>> score_two_way("", "yes").official  # '' is contained in everything
        1.0
    """
    return _score(pred, gt, two_way_contain_match(pred, gt))
