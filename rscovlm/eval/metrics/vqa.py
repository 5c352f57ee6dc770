"""Per-category VQA aggregates: RSVQA (per type, AA, OA) and MME-RealWorld-RS (per category).

**RSVQA** as its authors report it: accuracy per question type (LR: ``rural_urban``,
``presence``, ``comp``, ``count``; HR: ``presence``, ``comp``, ``count``, ``area``), ``AA`` =
mean of the per-type accuracies, ``OA`` = all correct / all questions (percent). Strict side:
:func:`~rscovlm.eval.metrics.text.strict_match` per sample; official side: contain-acc, the
rule RSCoVLM applies to ``geochat_hrben``/``geochat_lrben`` (EVAL_SUITE.md §3.6; the official
reports only ``{"acc"}`` overall, given here as ``OA``).

**MME-RealWorld remote sensing** (§3.7): official contain-acc reported as ``{"acc",
"count_acc", "color_acc", "position_acc"}`` (fractions); strict side: the letter extracted by
:func:`~rscovlm.eval.metrics.mcq.extract_letter`. A missing category is left out (the
original crashes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rscovlm.eval.metrics.score import SampleScore, build_report, group_by, mean_or_none

__all__ = ["MME_CATEGORIES", "mme_report", "rsvqa_report"]

MME_CATEGORIES = ("count", "color", "position")


def rsvqa_report(scores: Sequence[SampleScore], types: Sequence[str]) -> dict[str, Any]:
    """``{type: acc, "AA", "OA"}`` in percent (see the module docstring).

    Examples:
        >>> s = [SampleScore(v, 1.0, True) for v in (1.0, 0.0, 1.0)]
        >>> r = rsvqa_report(s, ["presence", "presence", "count"])
        >>> r["strict"]["AA"], round(r["strict"]["OA"], 2)
        (75.0, 66.67)
    """
    scores = list(scores)
    groups = group_by(scores, list(types))
    entries: dict[str, list[SampleScore]] = {str(k): v for k, v in groups.items()}
    entries["OA"] = scores
    report = build_report(entries, scores, scale=100.0, notes=["official: contain-acc"])
    for side in ("strict", "official"):
        report[side]["AA"] = mean_or_none(report[side][str(k)] for k in groups)
    return report


def mme_report(scores: Sequence[SampleScore], categories: Sequence[str]) -> dict[str, Any]:
    """``{"acc", "count_acc", "color_acc", "position_acc"}`` (fractions)."""
    scores = list(scores)
    groups = group_by(scores, list(categories))
    entries: dict[str, list[SampleScore]] = {"acc": scores}
    for cat in MME_CATEGORIES:
        if cat in groups:
            entries[f"{cat}_acc"] = groups[cat]
    return build_report(entries, scores, notes=["official: contain-acc of the letter"])
