"""Scene classification (accuracy, confusion matrix) and TEOChat classification accuracy.

**Scene classification.** *Official* (EVAL_SUITE.md §3.5) is contain-acc (§2) against the GT
string as the benchmark file spells it — for AID the folder name, so ``"MediumResidential"`` is
not "in" ``"Medium Residential"`` and ``"Port"`` is "in" ``"Airport"``. *Strict* maps both the
answer and the GT onto the class list by a case-, space-, hyphen- and underscore-insensitive key
(``"Medium Residential"`` = ``"medium_residential"`` = ``"MediumResidential"``); the answer must
be exactly one class (after :func:`~rscovlm.eval.metrics.text.strict_norm`), else it is a parse
failure. Every sample lands in the confusion matrix, an unmapped answer in the extra column
``"<unparsed>"``.

**TEOChat** (§3.9): lower-case, remove ``string.punctuation``, NO strip, exact equality; the
official result keeps ``f"{task}_accuracy"`` only for tasks with at least one correct answer
(a task with 0 correct vanishes). The per-sample rule is the same on both sides; rscovlm's
report keeps every task, 0 included (deliberately).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from rscovlm.errors import InputError
from rscovlm.eval.metrics.score import SampleScore, build_report, group_by
from rscovlm.eval.metrics.text import contain_match, strict_norm

__all__ = [
    "SceneClassifier",
    "confusion_matrix",
    "scene_report",
    "score_teochat",
    "teochat_norm",
    "teochat_report",
]

UNPARSED = "<unparsed>"
_SEP = re.compile(r"[\s_\-]+")
_PUNCT = str.maketrans("", "", string.punctuation)


def _key(text: str) -> str:
    return _SEP.sub("", strict_norm(text))


class SceneClassifier:
    """Scores answers against one class list (see the module docstring).

    Raises:
        InputError: An empty class list, or two classes with the same key.

    Examples:
        >>> c = SceneClassifier(["Airport", "MediumResidential", "Port"])
        >>> s = c.score("Medium Residential", "MediumResidential")
        >>> s.strict, s.official, s.extra["pred_class"]
        (1.0, 0.0, 'MediumResidential')
        >>> c.score("Airport", "Port").official, c.score("Airport", "Port").strict
        (1.0, 0.0)
    """

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        if not self.classes:
            raise InputError("SceneClassifier needs at least one class")
        self._by_key: dict[str, str] = {}
        for name in self.classes:
            key = _key(name)
            if key in self._by_key:
                raise InputError(f"classes {self._by_key[key]!r} and {name!r} share a key")
            self._by_key[key] = name

    def to_class(self, text: str) -> str | None:
        """The class an answer names, or ``None``."""
        return self._by_key.get(_key(text[:1000]))

    def score(self, answer: str, gt: str) -> SampleScore:
        """Strict class match and the official contain-acc of one answer."""
        pred = self.to_class(answer)
        gt_class = self.to_class(gt) or gt
        reason = (
            None if pred is not None else ("empty answer" if not answer.strip() else "no class")
        )
        return SampleScore(
            strict=float(pred is not None and pred == gt_class),
            official=float(contain_match(answer, gt)),
            parsed=pred is not None,
            reason=reason,
            extra={"pred_class": pred, "gt_class": gt_class},
        )


def confusion_matrix(
    scores: Sequence[SampleScore], classes: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """Rows = GT class, columns = predicted class plus ``"<unparsed>"`` (strict mapping).

    Examples:
        >>> c = SceneClassifier(["a", "b"])
        >>> m, cols = confusion_matrix([c.score("a", "a"), c.score("?", "b")], c.classes)
        >>> m.tolist(), cols
        ([[1, 0, 0], [0, 0, 1]], ['a', 'b', '<unparsed>'])
    """
    cols = [*classes, UNPARSED]
    index = {name: i for i, name in enumerate(cols)}
    m = np.zeros((len(classes), len(cols)), dtype=np.int64)
    for s in scores:
        row = index.get(s.extra.get("gt_class"))
        if row is None or row == len(classes):
            continue
        m[row, index.get(s.extra.get("pred_class") or UNPARSED, len(classes))] += 1
    return m, cols


def scene_report(scores: Sequence[SampleScore], classes: Sequence[str]) -> dict[str, Any]:
    """``{"acc"}`` (fraction, as contain-acc reports it), per-class accuracy and the matrix."""
    scores = list(scores)
    per_class = group_by(scores, [str(s.extra.get("gt_class")) for s in scores])
    entries: dict[str, list[SampleScore]] = {"acc": scores}
    entries.update({f"acc_{k}": v for k, v in per_class.items()})
    report = build_report(entries, scores, notes=["official: contain-acc on the raw GT string"])
    matrix, cols = confusion_matrix(scores, classes)
    report["confusion"] = {"rows": list(classes), "cols": cols, "matrix": matrix.tolist()}
    return report


def teochat_norm(text: str) -> str:
    """TEOChat's normal form (§3.9): lower-case, no punctuation, whitespace kept.

    Examples:
        >>> teochat_norm("Beach.\\n")
        'beach\\n'
    """
    return text.lower().translate(_PUNCT)


def score_teochat(answer: str, gt: str) -> SampleScore:
    """TEOChat exact match (same rule on both sides; only the aggregation differs).

    Examples:
        >>> score_teochat("Beach.", "beach").official, score_teochat(" beach", "beach").strict
        (1.0, 0.0)
    """
    hit = float(teochat_norm(answer) == teochat_norm(gt))
    parsed = bool(answer.strip())
    return SampleScore(hit, hit, parsed, None if parsed else "empty answer")


def teochat_report(scores: Sequence[SampleScore], tasks: Sequence[str]) -> dict[str, Any]:
    """``{f"{task}_accuracy"}``; officially tasks with 0 correct are dropped (kept in strict)."""
    scores = list(scores)
    groups = group_by(scores, list(tasks))
    report = build_report(
        {f"{t}_accuracy": g for t, g in groups.items()},
        scores,
        notes=["official: a task with 0 correct answers is missing from the result"],
    )
    for key in list(report["official"]):
        if not report["official"][key]:
            del report["official"][key]
            del report["ci95"]["official"][key]
    return report
