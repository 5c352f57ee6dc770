"""The per-sample result every non-detection scorer returns, and how samples are summed up.

Every scorer of the evaluation suite (EVAL_SUITE.md, "How rscovlm should treat this") gives,
per sample, two numbers side by side:

- ``strict``: rscovlm's documented rule (normalised exact match, strict MCQ letters, continuous
  IoU, tokenised captions). ``None`` when the rule has no value for the sample, e.g. the MAE of
  a counting answer without a number: such a sample is a parse failure and is counted, never
  silently dropped.
- ``official``: the original RSCoVLM rule, bugs included. ``None`` where the original crashes or
  drops the sample (the reason says which), so that a crash of the original never crashes us.

:func:`summarize` turns a list of scores into means, the counts (``n_in = n_scored + n_failed``,
failures by reason) and percentile-bootstrap 95 % confidence intervals.

**Bootstrap.** ``n_resamples`` resamples of the samples with replacement, drawn by a seeded
:class:`numpy.random.Generator` (``seed`` is part of the call, so a report is reproducible); the
CI is the 2.5th and 97.5th percentile of the resampled means. The samples without a value
(``None``) are left out before resampling, so the CI is that of the reported mean.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rscovlm.errors import InputError

__all__ = [
    "Counts",
    "SampleScore",
    "Summary",
    "bootstrap_ci",
    "build_report",
    "count",
    "group_by",
    "mean_or_none",
    "summarize",
]

#: Default number of bootstrap resamples and the default seed of the resampling generator.
N_RESAMPLES = 1000
SEED = 0
_CHUNK_CELLS = 2_000_000  # resample indices drawn per chunk (bounds memory for big sets)


@dataclass(frozen=True)
class SampleScore:
    """The score of one model output.

    Attributes:
        strict: rscovlm's rule, or ``None`` when it gives no value (see the module docstring).
        official: The original rule (bugs kept), or ``None`` where the original crashes or
            drops the sample.
        parsed: Whether the output could be read as an answer of the task at all.
        reason: Why the output did not parse (``None`` when it did).
        extra: Scorer-specific detail (IoUs, the extracted letter, the predicted class, ...);
            ``extra["official_reason"]`` says why ``official`` is ``None``.
    """

    strict: float | None
    official: float | None
    parsed: bool
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Counts:
    """How many samples went in, were scored from a parsed answer, or failed (with reasons).

    A failed sample is still in the denominators of accuracy-like means (it scores 0); it is
    left out only of means that have no value for it (MAE, MAPE), which the counts show.
    """

    n_in: int
    n_scored: int
    n_failed: int
    reasons: dict[str, int]

    @property
    def parse_failure_rate(self) -> float | None:
        """``n_failed / n_in`` (``None`` for an empty set)."""
        return self.n_failed / self.n_in if self.n_in else None


@dataclass(frozen=True)
class Summary:
    """Means, CIs and counts of a list of :class:`SampleScore`.

    Attributes:
        strict, official: Mean of the non-``None`` values times ``scale`` (``None`` if none).
        strict_ci95, official_ci95: Percentile-bootstrap 95 % CI of those means.
        counts: The :class:`Counts`.
        n_strict, n_official: How many samples have a strict / official value.
    """

    strict: float | None
    official: float | None
    strict_ci95: tuple[float, float] | None
    official_ci95: tuple[float, float] | None
    counts: Counts
    n_strict: int
    n_official: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "strict": self.strict,
            "official": self.official,
            "strict_ci95": self.strict_ci95,
            "official_ci95": self.official_ci95,
            "n_in": self.counts.n_in,
            "n_scored": self.counts.n_scored,
            "n_failed": self.counts.n_failed,
            "parse_failure_rate": self.counts.parse_failure_rate,
            "failure_reasons": dict(self.counts.reasons),
            "n_strict": self.n_strict,
            "n_official": self.n_official,
        }


def mean_or_none(values: Iterable[float | None], scale: float = 1.0) -> float | None:
    """Mean of the non-``None`` values times ``scale``; ``None`` when there is none.

    Examples:
        >>> mean_or_none([1.0, None, 0.0], scale=100)
        50.0
        >>> mean_or_none([None]) is None
        True
    """
    kept = [float(v) for v in values if v is not None]
    return float(np.mean(kept)) * scale if kept else None


def bootstrap_ci(
    values: Sequence[float],
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    scale: float = 1.0,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile-bootstrap CI of the mean of ``values`` (``None`` for an empty list).

    Examples:
        >>> bootstrap_ci([1.0, 1.0, 1.0])
        (1.0, 1.0)
        >>> lo, hi = bootstrap_ci([0.0, 1.0] * 50, seed=1)
        >>> 0.35 < lo < 0.5 < hi < 0.65
        True
    """
    data = np.asarray(values, dtype=np.float64)
    n = data.size
    if n == 0 or n_resamples <= 0:
        return None
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_CELLS // n)
    means: list[np.ndarray] = []
    left = n_resamples
    while left > 0:
        take = min(per_chunk, left)
        idx = rng.integers(0, n, size=(take, n))
        means.append(data[idx].mean(axis=1))
        left -= take
    all_means = np.concatenate(means)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(all_means, [tail, 100.0 - tail])
    return float(lo) * scale, float(hi) * scale


def count(scores: Sequence[SampleScore]) -> Counts:
    """The :class:`Counts` of a list of scores."""
    reasons = Counter(s.reason or "unknown" for s in scores if not s.parsed)
    failed = sum(reasons.values())
    return Counts(len(scores), len(scores) - failed, failed, dict(sorted(reasons.items())))


def summarize(
    scores: Sequence[SampleScore],
    scale: float = 1.0,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Summary:
    """Means (times ``scale``), bootstrap CIs and counts of a list of scores.

    Examples:
        >>> s = summarize([SampleScore(1.0, 1.0, True), SampleScore(0.0, None, False, "empty")])
        >>> s.strict, s.official, s.counts.n_failed, s.counts.reasons
        (0.5, 1.0, 1, {'empty': 1})
    """
    strict = [s.strict for s in scores if s.strict is not None]
    official = [s.official for s in scores if s.official is not None]
    return Summary(
        strict=mean_or_none(strict, scale),
        official=mean_or_none(official, scale),
        strict_ci95=bootstrap_ci(strict, n_resamples, seed, scale),
        official_ci95=bootstrap_ci(official, n_resamples, seed, scale),
        counts=count(scores),
        n_strict=len(strict),
        n_official=len(official),
    )


def group_by(
    scores: Sequence[SampleScore], keys: Sequence[Hashable] | Callable[[SampleScore], Hashable]
) -> dict[Hashable, list[SampleScore]]:
    """Split scores by a parallel key list (or a key function), keeping first-seen order.

    Examples:
        >>> g = group_by([SampleScore(1.0, 1.0, True)] * 3, ["a", "b", "a"])
        >>> {k: len(v) for k, v in g.items()}
        {'a': 2, 'b': 1}
    """
    if callable(keys):
        labels = [keys(s) for s in scores]
    else:
        labels = list(keys)
        if len(labels) != len(scores):
            raise InputError(f"{len(labels)} keys for {len(scores)} scores")
    out: dict[Hashable, list[SampleScore]] = {}
    for label, score in zip(labels, scores, strict=True):
        out.setdefault(label, []).append(score)
    return out


def build_report(
    entries: dict[str, Sequence[SampleScore]],
    scores: Sequence[SampleScore],
    scale: float = 1.0,
    notes: Sequence[str] = (),
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> dict[str, Any]:
    """The JSON report of a benchmark: one value per official key, strict beside it.

    Args:
        entries: Official key name → the scores it averages (e.g. ``{"acc@0.5": all}`` or one
            list per category). The same key names are used for the strict values.
        scores: All scores, for the counts.
        scale: 100 for percentages, 1 for fractions (as the official key reports).
        notes: Labels of official quirks that shape these numbers.

    Examples:
        >>> r = build_report({"acc": [SampleScore(1.0, 0.0, True)]}, [SampleScore(1.0, 0.0, True)])
        >>> r["strict"], r["official"], r["counts"]["n_in"]
        ({'acc': 1.0}, {'acc': 0.0}, 1)
    """
    strict: dict[str, float | None] = {}
    official: dict[str, float | None] = {}
    ci_strict: dict[str, tuple[float, float] | None] = {}
    ci_official: dict[str, tuple[float, float] | None] = {}
    for key, group in entries.items():
        summary = summarize(group, scale, n_resamples, seed)
        strict[key], official[key] = summary.strict, summary.official
        ci_strict[key], ci_official[key] = summary.strict_ci95, summary.official_ci95
    counts = count(scores)
    return {
        "strict": strict,
        "official": official,
        "ci95": {"strict": ci_strict, "official": ci_official},
        "counts": {
            "n_in": counts.n_in,
            "n_scored": counts.n_scored,
            "n_failed": counts.n_failed,
            "parse_failure_rate": counts.parse_failure_rate,
            "failure_reasons": counts.reasons,
            "n_official_missing": sum(s.official is None for s in scores),
            "official_missing_reasons": dict(
                sorted(
                    Counter(
                        str(s.extra.get("official_reason", "unknown"))
                        for s in scores
                        if s.official is None
                    ).items()
                )
            ),
        },
        "notes": list(notes),
    }
