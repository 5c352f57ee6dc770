"""``rscovlm eval report``: a run's scores as results JSON, a Markdown table and one HTML page.

Kept out of :mod:`rscovlm.cli.eval` (which runs and scores) so the report's heavier imports
(jinja2, PIL drawing) load only when a report is asked for.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rscovlm.cli.app import eval_app
from rscovlm.cli.options import examples, out_option


@eval_app.command(
    "report",
    epilog=examples(
        "rscovlm eval report runs/qwen7b --out reports/qwen7b",
        "rscovlm eval report runs/qwen7b --html --out reports/qwen7b",
        "rscovlm eval report runs/base runs/cotrained --html --out reports/base_vs_cotrained",
    ),
)
def eval_report(
    run: Path = typer.Argument(..., help="Run folder (scores/<BENCH>/) or one eval score --out."),
    run_b: Path | None = typer.Argument(None, help="A second run to compare with (paired)."),
    html: bool = typer.Option(False, "--html", help="Also write one self-contained report.html."),
    root: Path | None = typer.Option(
        None, "--root", help="Benchmark root for the gallery images (default: the one scored)."
    ),
    out: str = out_option("Folder of results.json, results.md [, report.html, comparison.*]."),
) -> None:
    """Summarize a run: strict and official side by side, 95 % CIs, parse failures, n; with a
    second run, the per-benchmark difference and its paired bootstrap interval."""
    from rscovlm.eval.report import load_run, write_report
    from rscovlm.eval.report.markdown import text_table

    run_a = load_run(run)
    other = load_run(run_b) if run_b is not None else None
    result = write_report(run_a, Path(out), other=other, html=html, root=root)
    typer.echo(text_table(result["summary"], result["diffs"]))
    for path in result["files"]:
        typer.echo(f"wrote {path}")
