"""The run summary as a Markdown table and as the plain-text table the CLI prints.

Every number is printed with ``repr`` (the shortest string that reads back to the same float),
as :mod:`rscovlm.tables` does: a report that rounds 0.8349 to 0.83 hides the difference two
runs are compared on. Strict and official sit side by side so a quirk of the original rule is
visible at a glance, and the parse-failure rate sits next to them because a model that stops
following the answer format looks, in the headline alone, like a model that got worse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rscovlm.tables import format_table

__all__ = ["COLUMNS", "compare_markdown", "fmt", "results_markdown", "results_rows", "text_table"]

COLUMNS = (
    "benchmark",
    "task",
    "key",
    "strict",
    "strict 95% CI",
    "official",
    "official 95% CI",
    "parse failures",
    "n",
)


def fmt(value: Any) -> str:
    """A cell: ``-`` for nothing, floats in full, a CI as ``[lo, hi]``.

    Examples:
        >>> fmt(0.1 + 0.2), fmt(None), fmt([0.25, 0.5]), fmt(3)
        ('0.30000000000000004', '-', '[0.25, 0.5]', '3')
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def results_rows(summary: dict[str, Any]) -> list[list[str]]:
    """One row of :data:`COLUMNS` per benchmark of a :func:`~.load.summarize_run` result."""
    return [
        [
            fmt(r["benchmark"]),
            fmt(r["task"]),
            fmt(r["key"]),
            fmt(r["strict"]),
            fmt(r["strict_ci95"]),
            fmt(r["official"]),
            fmt(r["official_ci95"]),
            fmt(r["parse_failure_rate"]),
            fmt(r["n"]),
        ]
        for r in summary["benchmarks"]
    ]


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _markdown(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |"]
    lines.append("|" + "|".join("---" if k < 3 else "---:" for k in range(len(columns))) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def results_markdown(summary: dict[str, Any]) -> str:
    """The Markdown table of a run summary (a heading, then one row per benchmark)."""
    return f"# Results: {_cell(summary['run'])}\n\n" + _markdown(COLUMNS, results_rows(summary))


COMPARE_COLUMNS = ("benchmark", "key", "A", "B", "B - A", "paired mean", "paired 95% CI", "n")


def _compare_rows(diffs: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            fmt(d["benchmark"]),
            fmt(d["key"]),
            fmt(d["a"]),
            fmt(d["b"]),
            fmt(d["diff"]),
            fmt(d["mean_diff"]),
            fmt(d["ci95"]),
            fmt(d["n_shared"]),
        ]
        for d in diffs
    ]


def compare_markdown(diffs: Sequence[dict[str, Any]], name_a: str, name_b: str) -> str:
    """The Markdown table of a comparison (paired over shared sample ids)."""
    head = f"# Comparison\n\nA: {_cell(name_a)}\n\nB: {_cell(name_b)}\n\n"
    return head + _markdown(COMPARE_COLUMNS, _compare_rows(diffs))


def text_table(summary: dict[str, Any], diffs: Sequence[dict[str, Any]] | None = None) -> str:
    """The plain-text table(s) the CLI prints (never a cut digit: :func:`format_table`)."""
    text = format_table(f"results: {summary['run']}", COLUMNS, results_rows(summary))
    if diffs is not None:
        text += "\n\n" + format_table(
            "comparison (paired over shared sample ids)", COMPARE_COLUMNS, _compare_rows(diffs)
        )
    return text
