"""The VHM benchmark family: presence, colour, position MCQ, counting, measurements, GSD.

Official rules (EVAL_SUITE.md §3.6, ``E/metric/vhm_bench.py``), bugs kept:

- **presence**: pred (lower-cased) is ``yes`` if it contains ``yes``/``true`` and neither
  ``no`` nor ``false``, ``no`` in the reverse case, else ``unknown``; then ``== norm(gt)``.
  Substring traps: ``"I don't know"`` → ``no`` (from ``know``).
- **colour**: the fraction of the GT's comma-separated colours that occur in the pred (both
  lower-cased, spaces removed): ``'Red'`` vs ``'red, white'`` = 0.5.
- **MCQ** (abs/rel position, modality): :func:`rscovlm.eval.metrics.mcq.score_mcq_vhm`.
- **counting**: the first ``\\d+``, else the first number word (0–99) among the whitespace
  tokens; ``MAE = |p - gt|``, ``MAPE = |(p - gt) / gt|``. No number (or a GT of 0 for MAPE)
  crashes the original: ``official=None`` here.
- **geometric / resolution**: every ``[-+]?\\d*\\.?\\d+`` of pred and GT; equal counts give one
  error per number; different counts crash; a pred without numbers is silently dropped.
- **scene cls / RSVQA files**: two-way containment
  (:func:`~rscovlm.eval.metrics.text.score_two_way`).

Strict rules: presence and colour by normalised exact match (``yes``/``no``; the SET of colours
must be equal); counting needs exactly one number in the answer; measurements need as many
numbers as the GT (else a parse failure, left out of MAE/MAPE and counted).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rscovlm.eval.metrics.score import SampleScore, build_report, count, mean_or_none
from rscovlm.eval.metrics.text import NUMBER_WORDS, as_single_number, norm, strict_norm

__all__ = [
    "VHM_FILE_KEYS",
    "official_count",
    "score_colour",
    "score_count",
    "score_measure",
    "score_presence",
    "vhm_presence_label",
    "vhm_report",
]

#: VHM eval file → official key prefix and the kind of value (§3.6).
VHM_FILE_KEYS: dict[str, tuple[str, str]] = {
    "presence_mo_dota.json": ("presence", "acc"),
    "color_dota-test_fair1m-val_open.json": ("color", "acc"),
    "abspos_dota-test_mc.json": ("abspos_position", "acc"),
    "relpos_dota-test_mc.json": ("relpos_position", "acc"),
    "counting_dota-test_open.json": ("counting", "error"),
    "imgType_mcq.json": ("modality", "acc"),
    "obj_meas_dota_test.json": ("geometric", "error"),
    "gsd_dota_fbp.json": ("resolution", "error"),
}

_INT = re.compile(r"\d+")
_FLOAT = re.compile(r"[-+]?\d*\.?\d+")
_STRICT_NUM = re.compile(r"(?<![\w.])[-+]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?![\w])")
_MAX_CHARS = 20_000
_MAX_DIGITS = 300  # float() of longer runs is inf; the error is meaningless either way


def vhm_presence_label(pred: str) -> str:
    """The official yes/no/unknown reading of a presence answer.

    Examples:
        >>> vhm_presence_label("I don't know"), vhm_presence_label("not sure, yes")
        ('no', 'unknown')
    """
    p = pred.lower()
    pos = "yes" in p or "true" in p
    neg = "no" in p or "false" in p
    if pos and not neg:
        return "yes"
    if neg and not pos:
        return "no"
    return "unknown"


def score_presence(answer: str, gt: str) -> SampleScore:
    """Strict yes/no vs the official substring rule.

    Examples:
        >>> s = score_presence("I don't know", "no")
        >>> s.strict, s.official, s.parsed
        (0.0, 1.0, False)
    """
    said = strict_norm(answer)
    said = {"true": "yes", "false": "no"}.get(said, said)
    parsed = said in ("yes", "no")
    return SampleScore(
        strict=float(parsed and said == strict_norm(gt)),
        official=float(vhm_presence_label(answer) == norm(gt)),
        parsed=parsed,
        reason=None if parsed else "not yes/no",
    )


def _colours(text: str) -> set[str]:
    parts = re.split(r",|\band\b|/|;", strict_norm(text))
    return {p.strip() for p in parts if p.strip()}


def score_colour(answer: str, gt: str) -> SampleScore:
    """Strict equal colour sets vs the official fraction of GT colours contained.

    Examples:
        >>> s = score_colour("Red", "red, white")
        >>> s.strict, s.official
        (0.0, 0.5)
    """
    p = answer.lower().replace(" ", "")
    parts = gt.lower().replace(" ", "").split(",")
    official = sum(c in p for c in parts) / len(parts)
    said = _colours(answer)
    return SampleScore(
        strict=float(bool(said) and said == _colours(gt)),
        official=float(official),
        parsed=bool(said),
        reason=None if said else "empty answer",
    )


def official_count(pred: str) -> int | None:
    """The official counting number: first ``\\d+``, else the first number word token.

    Examples:
        >>> official_count("twenty-one cars"), official_count("I see 3 cars and 4 trucks")
        (21, 3)
        >>> official_count("many") is None
        True
    """
    found = _INT.search(pred[:_MAX_CHARS])
    if found:
        digits = found.group(0)
        return int(digits) if len(digits) <= 4300 else None
    for token in pred[:_MAX_CHARS].lower().split():
        if token in NUMBER_WORDS:
            return NUMBER_WORDS[token]
    return None


def _strict_numbers(text: str) -> list[float]:
    said = strict_norm(text[:_MAX_CHARS])
    whole = as_single_number(said)
    if whole is not None:
        return [whole]
    out = []
    for m in _STRICT_NUM.finditer(said):
        if len(m.group(0)) <= _MAX_DIGITS:
            out.append(float(m.group(0)))
    words = [NUMBER_WORDS[w] for w in re.findall(r"[a-z]+(?:-[a-z]+)?", said) if w in NUMBER_WORDS]
    return out + [float(w) for w in words]


def _ape(p: float, g: float) -> float | None:
    if g == 0:
        return None
    value = abs((p - g) / g)
    return value if math.isfinite(value) else None


def score_count(answer: str, gt: str | int | float) -> SampleScore:
    """Counting: ``strict``/``official`` hold the absolute error; APEs in ``extra``.

    Examples:
        >>> s = score_count("There are 12 cars.", 10)
        >>> s.strict, s.official, s.extra["ape"]
        (2.0, 2.0, 0.2)
        >>> score_count("several", 3).official is None
        True
    """
    extra: dict[str, Any] = {}
    try:
        g = float(gt)
    except (TypeError, ValueError):
        return SampleScore(None, None, False, "ground truth is not a number", extra)
    if not math.isfinite(g):
        return SampleScore(None, None, False, "ground truth is not a number", extra)
    off = official_count(answer)
    official: float | None = None
    if off is None:
        extra["official_reason"] = "official crashes: int('') (no number in the answer)"
    else:
        if abs(off) < 1e300:
            official = float(abs(off - g))
            extra["official_ape"] = _ape(float(off), g)
        else:
            extra["official_reason"] = "official: the number is beyond the float range"
    numbers = set(_strict_numbers(answer))
    if len(numbers) != 1:
        why = "no number" if not numbers else "several numbers"
        return SampleScore(None, official, False, why, extra)
    p = numbers.pop()
    extra["ape"] = _ape(p, g)
    strict = abs(p - g)
    return SampleScore(strict if math.isfinite(strict) else None, official, True, None, extra)


def score_measure(answer: str, gt: str) -> SampleScore:
    """Geometric measurement / GSD: per-number absolute errors (``extra`` has the lists).

    Examples:
        >>> s = score_measure("about 12.5 m by 3 m", "10 m x 4 m")
        >>> s.extra["errors"], s.extra["official_errors"]
        ([2.5, 1.0], [2.5, 1.0])
        >>> score_measure("big", "10").official is None
        True
    """
    g_off = [float(v) for v in _FLOAT.findall(gt[:_MAX_CHARS]) if len(v) <= _MAX_DIGITS]
    p_off = [float(v) for v in _FLOAT.findall(answer[:_MAX_CHARS]) if len(v) <= _MAX_DIGITS]
    extra: dict[str, Any] = {}
    official: float | None = None
    if not p_off:
        extra["official_reason"] = "official drops the sample (no number in the answer)"
    elif len(p_off) != len(g_off):
        extra["official_reason"] = "official crashes: number counts differ (list arithmetic)"
    else:
        errs = [abs(p - g) for p, g in zip(p_off, g_off, strict=True)]
        extra["official_errors"] = errs
        extra["official_apes"] = [_ape(p, g) for p, g in zip(p_off, g_off, strict=True)]
        official = mean_or_none(errs) if errs else None
    g_st = list(_strict_numbers(gt))
    p_st = list(_strict_numbers(answer))
    if not p_st or len(p_st) != len(g_st):
        why = "no number" if not p_st else "number count differs from the ground truth"
        return SampleScore(None, official, False, why, extra)
    errs = [abs(p - g) for p, g in zip(p_st, g_st, strict=True)]
    extra["errors"] = errs
    extra["apes"] = [_ape(p, g) for p, g in zip(p_st, g_st, strict=True)]
    strict = mean_or_none(errs)
    if strict is not None and not math.isfinite(strict):
        strict = None
    return SampleScore(strict, official, True, None, extra)


def _flat(scores: Sequence[SampleScore], key: str, single: str) -> list[float]:
    out: list[float] = []
    for s in scores:
        if key in s.extra:
            out.extend(v for v in s.extra[key] if v is not None and math.isfinite(v))
        elif single in s.extra and s.extra[single] is not None:
            out.append(s.extra[single])
    return out


def vhm_report(per_file: Mapping[str, Sequence[SampleScore]]) -> dict[str, Any]:
    """Official VHM keys (``presence_acc``, ``counting_mae``, ``counting_mape``, ...).

    Files not in :data:`VHM_FILE_KEYS` (scene cls, RSVQA folders) are reported under their
    own name as an accuracy, as the original keys them by ``image_path``.
    """
    all_scores = [s for group in per_file.values() for s in group]
    acc_entries: dict[str, list[SampleScore]] = {}
    errors: dict[str, Sequence[SampleScore]] = {}
    for name, group in per_file.items():
        prefix, kind = VHM_FILE_KEYS.get(name, (name, "acc"))
        if kind == "acc":
            acc_entries[prefix if name not in VHM_FILE_KEYS else f"{prefix}_acc"] = list(group)
        else:
            errors[prefix] = group
    report = build_report(acc_entries, all_scores)
    for prefix, group in errors.items():
        for side, err_key, ape_key, one in (
            ("strict", "errors", "apes", "ape"),
            ("official", "official_errors", "official_apes", "official_ape"),
        ):
            if prefix == "counting":
                maes = [getattr(s, side) for s in group if getattr(s, side) is not None]
            else:
                maes = _flat(group, err_key, "")
            report[side][f"{prefix}_mae"] = mean_or_none(maes)
            report[side][f"{prefix}_mape"] = mean_or_none(_flat(group, ape_key, one))
        report["counts"][f"{prefix}_counts"] = count(list(group)).__dict__
    return report
