"""The one self-contained HTML page of a run: inline CSS, inline SVG charts, base64 PNG images,
no script and no URL, so it opens offline, mails as one file and runs nothing.

Model outputs are untrusted text: the template is rendered with jinja2's autoescape on, and the
only strings marked safe are the SVGs this package drew (every label in them escaped by
:mod:`~rscovlm.eval.report.charts`) and ``data:image/png`` URIs it encoded itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from rscovlm.eval.report.charts import bar_chart, confusion_svg, histogram_svg, pr_svg
from rscovlm.eval.report.images import gallery_image
from rscovlm.eval.report.load import BenchScores, Run, fingerprint, headline
from rscovlm.eval.report.markdown import COLUMNS, COMPARE_COLUMNS, fmt, results_rows

__all__ = ["MAX_BARS", "MAX_FAILURES", "render_html"]

TEMPLATE = "report.html.j2"
MAX_FAILURES = 12
"""Failure-gallery entries per benchmark (the first failing samples in file order)."""
MAX_BARS = 60
_OUTPUT_CHARS = 2000  # longer outputs are cut in the gallery (the file keeps them whole)


def _env() -> Environment:
    folder = Path(__file__).resolve().parent / "templates"
    return Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        keep_trailing_newline=True,
    )


def _category_bars(bench: BenchScores, key: str | None) -> str | None:
    values = bench.report.get("strict")
    if not isinstance(values, dict):
        return None
    items = [
        (str(k), float(v))
        for k, v in values.items()
        if k != key and isinstance(v, int | float) and not isinstance(v, bool)
    ][:MAX_BARS]
    if not items:
        return None
    scale = 100.0 if any(v > 1.0 for _, v in items) else 1.0
    return bar_chart(f"{bench.name}: strict per category", items, scale)


def _charts(bench: BenchScores, key: str | None) -> list[Markup]:
    charts = []
    bars = _category_bars(bench, key)
    if bars:
        charts.append(bars)
    conf = bench.report.get("confusion")
    if isinstance(conf, dict) and conf.get("matrix"):
        charts.append(confusion_svg(conf["rows"], conf["cols"], conf["matrix"]))
    if bench.task == "grounding":
        ious = [
            float(s["extra"]["iou"])
            for s in bench.samples.values()
            if isinstance(s.get("extra"), dict) and isinstance(s["extra"].get("iou"), int | float)
        ]
        if ious:
            charts.append(histogram_svg(f"{bench.name}: IoU of the predicted box", ious))
    det = bench.report.get("detection")
    if isinstance(det, dict) and isinstance(det.get("per_class_ap"), dict):
        aps = [
            (str(k), float(v) if isinstance(v, int | float) else None)
            for k, v in det["per_class_ap"].items()
        ]
        charts.append(bar_chart(f"{bench.name}: AP per class", aps[:MAX_BARS]))
    if isinstance(det, dict) and isinstance(det.get("per_class_pr"), dict):
        points = {
            str(k): (v.get("recall"), v.get("precision"))
            for k, v in det["per_class_pr"].items()
            if isinstance(v, dict)
        }
        charts.append(pr_svg(f"{bench.name}: precision / recall per class", points))
    return [Markup(c) for c in charts]  # drawn here, every label escaped


def _failed(line: dict[str, Any]) -> bool:
    """Unparsed, below full marks, or (detection, whose per-patch score is only "parsed") a
    patch whose number of boxes differs from its ground truth's."""
    strict = line.get("strict")
    if not line.get("parsed", True) or (isinstance(strict, int | float) and strict < 1.0):
        return True
    extra, ref = line.get("extra") or {}, line.get("reference")
    return (
        isinstance(extra.get("quads"), list)
        and isinstance(ref, list)
        and (len(extra["quads"]) != len(ref))
    )


def _gallery(bench: BenchScores, root: Path | None) -> list[dict[str, Any]]:
    """The first failures in file order, those the model answered before those it never
    answered (a partial run would otherwise show only "no prediction" cards)."""
    failed = [(sid, line) for sid, line in bench.samples.items() if _failed(line)]
    failed.sort(key=lambda item: item[1].get("reason") == "no prediction")
    out = []
    for sid, line in failed:
        entry: dict[str, Any] = {
            "id": sid,
            "record_id": fmt(line.get("record_id")),
            "strict": fmt(line.get("strict")),
            "official": fmt(line.get("official")),
            "reason": line.get("reason") or "",
            "output": str(line.get("output", "(output not recorded)"))[:_OUTPUT_CHARS],
            "reference": json.dumps(line.get("reference"), ensure_ascii=False)[:_OUTPUT_CHARS],
            "image": None,
        }
        picture = gallery_image(line, root or bench.root) if line.get("image") else None
        if picture is not None:
            entry["image"] = Markup(picture[0])  # a data: URI encoded by images.py
            entry["image_found"] = picture[1]
        out.append(entry)
        if len(out) >= MAX_FAILURES:
            break
    return out


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for k, v in value.items():
            rows += _flatten(v, f"{prefix}{k}.")
        return rows
    return [(prefix.rstrip("."), fmt(value) if not isinstance(value, str) else value)]


def render_html(
    run: Run,
    summary: dict[str, Any],
    diffs: list[dict[str, Any]] | None = None,
    other: Run | None = None,
    root: Path | None = None,
) -> str:
    """The page of ``run`` (and of its comparison with ``other`` when ``diffs`` is given)."""
    benches = []
    for name, bench in sorted(run.benchmarks.items()):
        key = headline(bench)
        benches.append(
            {
                "name": name,
                "task": bench.task,
                "key": key,
                "charts": _charts(bench, key),
                "failures": _gallery(bench, root),
                "n_bad_lines": bench.n_bad_lines,
                "notes": bench.report.get("notes") or [],
            }
        )
    return (
        _env()
        .get_template(TEMPLATE)
        .render(
            run=str(run.path),
            other=str(other.path) if other is not None else None,
            columns=COLUMNS,
            rows=results_rows(summary),
            compare_columns=COMPARE_COLUMNS,
            compare_rows=[
                [fmt(d[k]) for k in ("benchmark", "key", "a", "b", "diff", "mean_diff", "ci95")]
                + [fmt(d["n_shared"])]
                for d in diffs or []
            ],
            fingerprint=_flatten(fingerprint(run.manifest)),
            benches=benches,
        )
    )
