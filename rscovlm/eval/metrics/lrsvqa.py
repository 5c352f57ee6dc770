"""LRS-VQA: exact match or a shared WordNet synset (official) vs strict match, OA and AA.

**Official** (EVAL_SUITE.md §3.7, ``compute_wups_acc``): correct iff ``norm(gt) == norm(pred)``
or some synset pair of ``wn.synsets(norm(gt))`` × ``wn.synsets(norm(pred))`` has
``path_similarity > 0.8`` — i.e. the two whole strings share a synset (``"3"`` = ``"three"``,
``"car"`` = ``"automobile"``). Multi-word strings have no synsets (spaces are not
underscores), so only exact matches count for them. Whether the original looks up the raw or
the ``norm``-ed strings was not verified; rscovlm uses ``norm``. Without WordNet the official
value is ``None`` with ``extra["official_reason"]`` saying WordNet is unavailable (see
:mod:`rscovlm.eval.metrics.wordnet`).

**Strict**: :func:`rscovlm.eval.metrics.text.strict_match`.

**Aggregates** (fractions): ``"overall acc"``; ``"Overall Acc (Source {FAIR|STAR|GLH})"`` by
``question_id`` prefix; ``"Overall Acc (Task {t})"`` per category; ``"Average Acc (Source
{s})"`` = mean over the tasks present in that source; ``"Average Acc"`` = mean of the per-task
accuracies over all sources. An empty source or task is left out (the original crashes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rscovlm.eval.metrics.score import SampleScore, build_report, group_by, mean_or_none
from rscovlm.eval.metrics.text import norm, strict_match, strict_norm
from rscovlm.eval.metrics.wordnet import load_wordnet, share_synset, wordnet_status

__all__ = ["LRSVQA_SOURCES", "LRSVQA_TASKS", "lrsvqa_report", "lrsvqa_source", "score_lrsvqa"]

LRSVQA_SOURCES = ("FAIR", "STAR", "GLH")
LRSVQA_TASKS = (
    "rural or urban",
    "object shape",
    "object status",
    "count",
    "object background",
    "object color",
    "object category",
    "reasoning",
)
_MAX_LOOKUP = 200  # longer strings are no WordNet lemma; skip the lookup


def lrsvqa_source(question_id: str) -> str | None:
    """The source of a question id (``startswith``), or ``None``.

    Examples:
        >>> lrsvqa_source("GLH-Bridge_12"), lrsvqa_source("x")
        ('GLH', None)
    """
    for src in LRSVQA_SOURCES:
        if question_id.startswith(src):
            return src
    return None


def score_lrsvqa(answer: str, gt: str, wn: Any = "load") -> SampleScore:
    """Strict match and the official WordNet rule of one answer.

    Args:
        wn: A WordNet reader, ``None`` for "unavailable", or ``"load"`` to load the default.
    """
    if isinstance(wn, str):
        wn = load_wordnet()
    p, g = norm(answer), norm(gt)
    official: float | None
    extra: dict[str, Any] = {}
    if p == g:
        official = 1.0
    elif wn is None:
        official = None
        extra["official_reason"] = f"official unavailable: {wordnet_status()}"
    elif len(p) > _MAX_LOOKUP or len(g) > _MAX_LOOKUP:
        official = 0.0
    else:
        official = float(share_synset(g, p, wn))
    parsed = bool(strict_norm(answer))
    reason = None if parsed else "empty answer"
    return SampleScore(float(strict_match(answer, gt)), official, parsed, reason, extra)


def lrsvqa_report(
    scores: Sequence[SampleScore], question_ids: Sequence[str], categories: Sequence[str]
) -> dict[str, Any]:
    """The official LRS-VQA key set, strict beside it (see the module docstring)."""
    scores = list(scores)
    sources = [lrsvqa_source(q) or "other" for q in question_ids]
    entries: dict[str, list[SampleScore]] = {"overall acc": scores}
    by_source = group_by(scores, sources)
    by_task = group_by(scores, list(categories))
    for src in LRSVQA_SOURCES:
        if src in by_source:
            entries[f"Overall Acc (Source {src})"] = by_source[src]
    for task in LRSVQA_TASKS:
        if task in by_task:
            entries[f"Overall Acc (Task {task})"] = by_task[task]
    report = build_report(entries, scores, notes=["official: exact or shared WordNet synset"])
    for side in ("strict", "official"):
        values = report[side]
        for src in LRSVQA_SOURCES:
            idx = [i for i, s in enumerate(sources) if s == src]
            if not idx:
                continue
            tasks = group_by([scores[i] for i in idx], [categories[i] for i in idx])
            values[f"Average Acc (Source {src})"] = mean_or_none(
                mean_or_none(getattr(s, side) for s in group) for group in tasks.values()
            )
        values["Average Acc"] = mean_or_none(
            values.get(f"Overall Acc (Task {t})") for t in LRSVQA_TASKS
        )
    return report
