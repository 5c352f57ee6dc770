"""Two runs side by side: per benchmark, the headline difference and a PAIRED bootstrap 95 %
interval over the sample ids both runs scored.

Pairing matters: two models on the same 3,000 AID images disagree on few of them, so the
interval of the mean per-sample difference is far narrower than the two unpaired CIs suggest.
Resampling the per-sample differences ``b - a`` (one draw = one sample id, both runs' scores
together) is exactly the paired bootstrap; :func:`rscovlm.eval.metrics.score.bootstrap_ci` does
it with the suite's seed and resample count, so the interval is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rscovlm.eval.metrics.score import bootstrap_ci
from rscovlm.eval.report.load import Run, summarize_run

__all__ = ["BenchDiff", "compare_runs", "paired_diffs"]


@dataclass(frozen=True)
class BenchDiff:
    """One benchmark of both runs.

    Attributes:
        key: The headline key both reports give (run A's).
        a, b, diff: The headline values (strict) and ``b - a`` (``None`` when one is missing).
        n_shared: Sample ids scored in both runs (with a strict value in both).
        mean_diff: Mean per-sample strict difference ``b - a`` over the shared ids (0–1 scale
            of the per-sample scores).
        ci95: Paired bootstrap 95 % interval of ``mean_diff``.
        only_a, only_b: Ids scored in one run only (left out of the pairing).
        note: Why there is no paired interval (detection: a patch's score is only whether it
            parsed; mAP is a whole-set number, so pairing patches says nothing about it).
    """

    benchmark: str
    key: str | None
    a: float | None
    b: float | None
    diff: float | None
    n_shared: int
    mean_diff: float | None
    ci95: tuple[float, float] | None
    only_a: int
    only_b: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _value(sample: dict[str, Any]) -> float | None:
    value = sample.get("strict")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def paired_diffs(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> list[float]:
    """``b - a`` of the strict scores of every id both give a value for, in ``a``'s order.

    Examples:
        >>> paired_diffs({"x": {"strict": 0.0}, "y": {"strict": 1.0}}, {"x": {"strict": 1.0}})
        [1.0]
    """
    out = []
    for sid, sa in a.items():
        sb = b.get(sid)
        va, vb = _value(sa), _value(sb) if sb is not None else None
        if va is not None and vb is not None:
            out.append(vb - va)
    return out


def compare_runs(run_a: Run, run_b: Run) -> list[BenchDiff]:
    """One :class:`BenchDiff` per benchmark of either run (sorted by name)."""
    rows_a = {r["benchmark"]: r for r in summarize_run(run_a)["benchmarks"]}
    rows_b = {r["benchmark"]: r for r in summarize_run(run_b)["benchmarks"]}
    out = []
    for name in sorted(set(rows_a) | set(rows_b)):
        ra, rb = rows_a.get(name, {}), rows_b.get(name, {})
        key = ra.get("key") or rb.get("key")
        va = ra.get("strict") if ra.get("key") == key else None
        vb = rb.get("strict") if rb.get("key") == key else None
        sa = run_a.benchmarks[name].samples if name in run_a.benchmarks else {}
        sb = run_b.benchmarks[name].samples if name in run_b.benchmarks else {}
        diffs = paired_diffs(sa, sb)
        task = ra.get("task") or rb.get("task")
        note = None
        if task == "detection":
            note = "no paired interval: mAP is not a mean of per-sample scores"
        out.append(
            BenchDiff(
                benchmark=name,
                key=key,
                a=va,
                b=vb,
                diff=vb - va if va is not None and vb is not None else None,
                n_shared=len(diffs),
                mean_diff=sum(diffs) / len(diffs) if diffs and note is None else None,
                ci95=bootstrap_ci(diffs) if note is None else None,
                only_a=len(set(sa) - set(sb)),
                only_b=len(set(sb) - set(sa)),
                note=note,
            )
        )
    return out
