"""``rscovlm eval report``: what a run's scores say, as JSON, Markdown and one HTML page.

A run folder holds ``scores/<BENCH>/{scores.json, sample_scores.jsonl}`` as ``eval score``
writes them, optionally ``manifest.json`` (the run's fingerprint) and ``results.json``; a single
``eval score --out`` folder is a run of one benchmark. :func:`load_run` reads either,
:func:`summarize_run` gives the per-benchmark rows (strict and official side by side, CIs,
parse-failure rate, n), :mod:`~rscovlm.eval.report.markdown` prints them without cutting a
digit, :mod:`~rscovlm.eval.report.html` renders the page (inline SVG charts, base64 images, all
model text escaped) and :mod:`~rscovlm.eval.report.compare` pairs two runs by sample id.
"""

from __future__ import annotations

from rscovlm.eval.report.compare import BenchDiff, compare_runs
from rscovlm.eval.report.load import BenchScores, Run, load_run, summarize_run
from rscovlm.eval.report.write import write_report

__all__ = [
    "BenchDiff",
    "BenchScores",
    "Run",
    "compare_runs",
    "load_run",
    "summarize_run",
    "write_report",
]
