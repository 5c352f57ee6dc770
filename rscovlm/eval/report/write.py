"""``eval report``'s files: ``results.json``, ``results.md`` and (``html=True``) ``report.html``
in the output folder, each written atomically; with a second run, ``comparison.json`` and
``comparison.md`` too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rscovlm.eval.benchmarks.run import to_jsonable
from rscovlm.eval.report.compare import compare_runs
from rscovlm.eval.report.load import Run, summarize_run
from rscovlm.eval.report.markdown import compare_markdown, results_markdown
from rscovlm.files import atomic_write_json, atomic_write_text

__all__ = ["COMPARISON_JSON", "HTML_FILE", "RESULTS_JSON", "RESULTS_MD", "write_report"]

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
HTML_FILE = "report.html"
COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"


def write_report(
    run: Run,
    out: Path,
    *,
    other: Run | None = None,
    html: bool = False,
    root: Path | None = None,
) -> dict[str, Any]:
    """Write the report files of ``run`` (compared with ``other``) into ``out``.

    Returns:
        ``{"summary", "diffs" (or None), "files": [paths]}``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = to_jsonable(summarize_run(run))
    files = [
        atomic_write_json(out / RESULTS_JSON, summary),
        atomic_write_text(out / RESULTS_MD, results_markdown(summary)),
    ]
    diffs = None
    if other is not None:
        diffs = [to_jsonable(d.to_dict()) for d in compare_runs(run, other)]
        payload = {"a": str(run.path), "b": str(other.path), "benchmarks": diffs}
        files.append(atomic_write_json(out / COMPARISON_JSON, payload))
        files.append(
            atomic_write_text(
                out / COMPARISON_MD, compare_markdown(diffs, str(run.path), str(other.path))
            )
        )
    if html:
        from rscovlm.eval.report.html import render_html

        page = render_html(run, summary, diffs, other, root)
        files.append(atomic_write_text(out / HTML_FILE, page))
    return {"summary": summary, "diffs": diffs, "files": files}
