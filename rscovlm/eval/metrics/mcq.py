"""Multiple-choice answers: rscovlm's strict letter extraction beside the two official rules.

**Strict** (:func:`extract_letter`): the letter a reader would take from the answer, in order:

1. the answer is one letter, bracketed or punctuated: ``"B"``, ``"(B)"``, ``"B."``, ``"B)"``;
2. it starts with one followed by a separator: ``"B. 12 cars"``, ``"(C) Gray"``;
3. an explicit phrase: ``"The correct option is B"``, ``"answer: (D)"``, ``"choice C"``
   (a lower-case letter only at the very end: ``"the answer is a car"`` names no letter);
4. exactly one distinct standalone choice letter anywhere (``"Based on the image, C"``); the
   article ``"A"`` before a lower-case word is not a letter;
5. with the choice texts given, the answer equals one choice's text (``"Gray"``).

Anything else — an empty answer, two different letters, no letter — gives ``None``: a parse
failure, scored wrong (never silently ``"A"``). Only the letters of the choice set count
(``A``–``E`` unless told otherwise); lower-case letters count only in forms 1–3.

**Official**:

- MME-RealWorld (EVAL_SUITE.md §3.7) scores MCQ with contain-acc (§2): ``'a' in 'b. 12 cars
  are parked'`` is "correct";
- VHM (§3.6) takes the first character of ``pred.strip().strip('.')`` that is an upper-case
  ``A``–``E`` and checks ``p.lower() in gt.lower()``: ``"Answer: C"`` reads ``A``, ``"c"``
  reads nothing (wrong).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rscovlm.eval.metrics.score import SampleScore
from rscovlm.eval.metrics.text import contain_match, strict_norm

__all__ = [
    "extract_letter",
    "score_mcq_contain",
    "score_mcq_vhm",
    "vhm_official_letter",
]

DEFAULT_LETTERS = "ABCDE"
_MAX_SCAN = 20_000  # characters read of a very long answer


def _patterns(letters: str) -> tuple[re.Pattern[str], ...]:
    cls = f"[{re.escape(letters)}{re.escape(letters.lower())}]"
    only = re.compile(rf"^\s*[\(\[]?\s*({cls})\s*[\)\]]?\s*[.:)]?\s*$")
    lead = re.compile(rf"^\s*[\(\[]?({cls})(?:[\)\]]\s*|[.:)](?:\s+|$)|\s*[-–—]\s+|\s*,\s+)")
    up = f"[{re.escape(letters)}]"
    # a lower-case letter after "answer is" only when nothing follows ("the answer is a car")
    phrase = re.compile(
        rf"(?i:\b(?:answer|option|choice)(?:\s+(?:is|would\s+be|should\s+be))?\s*[:=]?\s*)"
        rf"(?:[\(\[]?({up})[\)\]]?(?![A-Za-z0-9'])|[\(\[]?({cls})[\)\]]?\s*[.!]?\s*$)"
    )
    return only, lead, phrase


_CACHE: dict[str, tuple[re.Pattern[str], ...]] = {}


def extract_letter(
    answer: str, letters: str = DEFAULT_LETTERS, choices: Sequence[str] | None = None
) -> str | None:
    """The choice letter of an answer (upper case), or ``None`` (see the module docstring).

    Args:
        answer: The model output.
        letters: The valid letters, upper case, e.g. ``"ABCD"``.
        choices: Optional choice texts in letter order, with or without ``"(A) "`` prefixes.

    Examples:
        >>> [extract_letter(a) for a in ["", "B.", "(B)", "The correct option is B"]]
        [None, 'B', 'B', 'B']
        >>> extract_letter("Based on the image, C"), extract_letter("A car is there, C")
        ('C', 'C')
        >>> extract_letter("B or C?"), extract_letter("Gray", choices=["(A) Red", "(B) Gray"])
        (None, 'B')
    """
    if not answer:
        return None
    text = answer[:_MAX_SCAN]
    pats = _CACHE.get(letters)
    if pats is None:
        pats = _CACHE.setdefault(letters, _patterns(letters))
    for pat in pats:
        found = pat.search(text)
        if found:
            return next(g for g in found.groups() if g).upper()
    standalone = {
        m.group(1)
        for m in re.finditer(rf"(?<![A-Za-z0-9'])([{re.escape(letters)}])(?![A-Za-z0-9'])", text)
        if not (m.group(1) == "A" and re.match(r"\s+[a-z]", text[m.end() : m.end() + 2]))
    }
    if len(standalone) == 1:
        return standalone.pop()
    if choices and not standalone:
        said = strict_norm(text)
        for letter, choice in zip(letters, choices, strict=False):
            body = re.sub(r"^\s*[\(\[]?[A-Za-z][\)\].:]\s*", "", choice)
            if said and said == strict_norm(body):
                return letter
    return None


def vhm_official_letter(pred: str) -> str | None:
    """VHM's official letter (§3.6): first upper-case A–E of ``pred.strip().strip('.')``.

    Examples:
        >>> vhm_official_letter("The answer is B"), vhm_official_letter("Answer: C")
        ('B', 'A')
        >>> vhm_official_letter("c") is None
        True
    """
    for ch in pred.strip().strip("."):
        if ch in "ABCDE":
            return ch
    return None


def _strict(
    answer: str, gt: str, letters: str, choices: Sequence[str] | None
) -> tuple[str | None, float, str | None]:
    letter = extract_letter(answer, letters, choices)
    gt_letter = extract_letter(gt, letters) or strict_norm(gt).upper()
    strict = float(letter is not None and letter == gt_letter)
    reason = None if letter is not None else ("empty answer" if not answer.strip() else "no letter")
    return letter, strict, reason


def score_mcq_contain(
    answer: str, gt: str, letters: str = DEFAULT_LETTERS, choices: Sequence[str] | None = None
) -> SampleScore:
    """Strict letter vs the official contain-acc of MME-RealWorld (§3.7).

    Examples:
        >>> s = score_mcq_contain("B. 12 cars are parked", "A")
        >>> s.strict, s.official, s.extra["letter"]
        (0.0, 1.0, 'B')
        >>> score_mcq_contain("", "A").strict
        0.0
    """
    letter, strict, reason = _strict(answer, gt, letters, choices)
    return SampleScore(
        strict=strict,
        official=float(contain_match(answer, gt)),
        parsed=letter is not None,
        reason=reason,
        extra={"letter": letter},
    )


def score_mcq_vhm(
    answer: str, gt: str, letters: str = DEFAULT_LETTERS, choices: Sequence[str] | None = None
) -> SampleScore:
    """Strict letter vs the official VHM MCQ rule (§3.6).

    Examples:
        >>> [score_mcq_vhm(a, "C").official for a in ["The answer is C", "Answer: C", "c"]]
        [1.0, 0.0, 0.0]
    """
    letter, strict, reason = _strict(answer, gt, letters, choices)
    off = vhm_official_letter(answer)
    return SampleScore(
        strict=strict,
        official=float(off is not None and off.lower() in gt.lower()),
        parsed=letter is not None,
        reason=reason,
        extra={"letter": letter, "official_letter": off},
    )
