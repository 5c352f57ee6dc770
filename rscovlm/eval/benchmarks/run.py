"""Reading a benchmark, writing its samples, and scoring a predictions file against it: what
``rscovlm eval samples`` and ``rscovlm eval score`` do (CPU only, no model).

A predictions file is JSONL, one ``{"id", "output"}`` per line, optionally with the sizes the
run recorded for the sample's (first) image, ``orig_size`` and ``resized_size`` as
``[width, height]``: box scorers map the model's coordinates with them. Nothing in it is
trusted: an unreadable line, an id the benchmark does not have, a duplicate id (the first line
counts) and a sample without a prediction are all counted and reported; a sample without a
prediction is scored as a failure (``"no prediction"``), so the report always covers the whole
benchmark.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rscovlm.errors import InputError
from rscovlm.eval.benchmarks.base import Benchmark, EvalSample
from rscovlm.eval.metrics.score import SampleScore
from rscovlm.eval.read_report import ReadReport
from rscovlm.files import atomic_write_json, atomic_write_text

__all__ = [
    "SAMPLES_FILE",
    "SAMPLE_SCORES_FILE",
    "SCORES_FILE",
    "PredictionReport",
    "crop_boxes",
    "read_benchmark",
    "read_predictions",
    "render_report",
    "score_benchmark",
    "to_jsonable",
    "write_samples",
]

SAMPLES_FILE = "samples.jsonl"
SCORES_FILE = "scores.json"
SAMPLE_SCORES_FILE = "sample_scores.jsonl"
NO_PREDICTION = "no prediction"
_EXAMPLES = 5


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays and tuples made plain JSON (non-finite → ``None``)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def read_benchmark(benchmark: Benchmark, root: Path) -> tuple[list[EvalSample], ReadReport]:
    """Every sample of ``benchmark`` under ``root`` and the report of its bad records."""
    report = ReadReport(benchmark.name)
    samples = list(benchmark.samples(Path(root), report))
    return samples, report


def write_samples(samples: Sequence[EvalSample], out: Path) -> Path:
    """``out/samples.jsonl`` (atomically): one :meth:`EvalSample.to_json` per line."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(to_jsonable(s.to_json()), ensure_ascii=False) for s in samples]
    return atomic_write_text(out / SAMPLES_FILE, "".join(line + "\n" for line in lines))


@dataclass
class PredictionReport:
    """What the predictions file held besides usable predictions (all counted)."""

    n_lines: int = 0
    n_used: int = 0
    n_bad_lines: int = 0
    n_unknown_ids: int = 0
    n_duplicates: int = 0
    n_missing: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.examples) < _EXAMPLES:
            self.examples.append(text)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _size(value: Any) -> list[int] | None:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value if all(v > 0 for v in value) else None
    return None


def crop_boxes(trace: Any) -> list[list[int]]:
    """The crop windows of a zoom trace (``ZoomResult.to_dict()``: ``hops[*].window``, original
    pixels); anything else gives none. Only drawn by the report, never scored."""
    hops = trace.get("hops") if isinstance(trace, dict) else None
    if not isinstance(hops, list):
        return []
    out = []
    for hop in hops:
        window = hop.get("window") if isinstance(hop, dict) else None
        if (
            isinstance(window, list)
            and len(window) == 4
            and all(isinstance(v, int | float) and math.isfinite(v) for v in window)
        ):
            out.append([int(v) for v in window])
    return out


def read_predictions(
    path: Path, samples: Sequence[EvalSample]
) -> tuple[dict[str, tuple[str, dict[str, Any]]], PredictionReport]:
    """``{id: (output, {orig_size?, resized_size?, crop_boxes?})}`` of a predictions JSONL,
    with its report (``crop_boxes``: the windows of a zoom ``trace`` the line carries).

    Raises:
        InputError: The file does not exist.
    """
    if not path.is_file():
        raise InputError(f"predictions file {path} not found")
    known = {s.id for s in samples}
    report = PredictionReport()
    preds: dict[str, tuple[str, dict[str, Any]]] = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            report.n_lines += 1
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                report.n_bad_lines += 1
                report.note(f"line {n}: not JSON ({err.msg})")
                continue
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                report.n_bad_lines += 1
                report.note(f"line {n}: no string 'id'")
                continue
            output = item.get("output")
            if not isinstance(output, str):
                report.n_bad_lines += 1
                report.note(f"line {n}: 'output' is not a string")
                continue
            sid = item["id"]
            if sid not in known:
                report.n_unknown_ids += 1
                report.note(f"line {n}: id {sid} is not in the benchmark")
                continue
            if sid in preds:
                report.n_duplicates += 1
                report.note(f"line {n}: duplicate id {sid} (the first line counts)")
                continue
            sizes = {k: _size(item.get(k)) for k in ("orig_size", "resized_size")}
            info: dict[str, Any] = {k: v for k, v in sizes.items() if v is not None}
            crops = crop_boxes(item.get("zoom") or item.get("trace"))  # runner lines: "zoom"
            if crops:
                info["crop_boxes"] = crops
            preds[sid] = (output, info)
    report.n_used = len(preds)
    report.n_missing = len(known) - len(preds)
    if report.n_missing:
        report.note(f"{report.n_missing} samples have no prediction (scored as failures)")
    return preds, report


def score_benchmark(
    benchmark: Benchmark,
    samples: Sequence[EvalSample],
    preds: dict[str, tuple[str, dict[str, Any]]],
) -> tuple[list[SampleScore], dict[str, Any]]:
    """Per-sample scores (in sample order) and the benchmark's aggregate report."""
    scores: list[SampleScore] = []
    used: list[EvalSample] = []
    for sample in samples:
        if sample.id not in preds:
            scores.append(
                SampleScore(0.0, None, False, NO_PREDICTION, {"official_reason": NO_PREDICTION})
            )
            used.append(sample)
            continue
        output, sizes = preds[sample.id]
        if sizes:
            sample = sample.with_sizes(sizes.get("orig_size"), sizes.get("resized_size"))
        scores.append(benchmark.score(sample, output))
        used.append(sample)
    return scores, benchmark.aggregate(used, scores)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return repr(value)  # every digit: a table never rounds or elides a number
    return str(value)


def render_report(name: str, report: dict[str, Any], preds: PredictionReport) -> list[str]:
    """Plain-text lines of a score report: one ``key  strict  official`` row per key (full
    precision, never cut to the terminal), then the counts."""
    keys = list(dict.fromkeys([*report.get("official", {}), *report.get("strict", {})]))
    rows = [("key", "strict", "official")]
    for key in keys:
        strict = report.get("strict", {}).get(key)
        official = report.get("official", {}).get(key)
        if isinstance(strict, dict) or isinstance(official, dict):
            continue
        rows.append((key, _fmt(strict), _fmt(official)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{name}:"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    counts = report.get("counts", {})
    lines.append(
        f"  samples {counts.get('n_in')}, parsed {counts.get('n_scored')}, "
        f"failed {counts.get('n_failed')} {counts.get('failure_reasons', {})}"
    )
    if counts.get("n_official_missing"):
        lines.append(
            f"  official rule gives no value for {counts['n_official_missing']}: "
            f"{counts.get('official_missing_reasons', {})}"
        )
    lines.append(
        f"  predictions: {preds.n_lines} lines, {preds.n_used} used, {preds.n_bad_lines} "
        f"unreadable, {preds.n_unknown_ids} unknown ids, {preds.n_duplicates} duplicates, "
        f"{preds.n_missing} missing"
    )
    lines += [f"    {e}" for e in preds.examples]
    return lines


def _utf8(text: str) -> str:
    """``text`` writable as UTF-8: a lone surrogate (a JSON ``"\\ud800"`` in a model output)
    becomes its visible escape instead of failing the whole file."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _image_info(sample: EvalSample, grid: int | None) -> dict[str, Any] | None:
    """The first image of a sample as the report needs it (``None`` for a text-only one)."""
    parts = sample.image_parts()
    if not parts:
        return None
    part = parts[0]
    return {"source": part.source, "window": part.window, "grid": grid}


def write_scores(
    out: Path,
    benchmark: Benchmark,
    samples: Sequence[EvalSample],
    scores: Sequence[SampleScore],
    report: dict[str, Any],
    read: ReadReport,
    preds: PredictionReport,
    outputs: Mapping[str, str] | None = None,
    root: Path | None = None,
    crops: Mapping[str, list[list[int]]] | None = None,
) -> Path:
    """``out/scores.json`` (atomically) and ``out/sample_scores.jsonl`` beside it.

    Each sample line also carries what ``eval report`` draws without re-reading the benchmark:
    the model's raw ``output`` (when ``outputs`` is given), the ``reference``, the first
    ``image`` (source, window, the coordinate grid of its boxes) and a zoom trace's
    ``crop_boxes`` (when ``crops`` has the id). ``root`` is recorded so the
    report finds the images. Readers of the older lines (without these keys) keep working.
    """
    out.mkdir(parents=True, exist_ok=True)
    grid = getattr(benchmark, "GRID", None)
    lines = [
        json.dumps(
            to_jsonable(
                {
                    "id": s.id,
                    "record_id": s.meta.get("record_id"),
                    "strict": sc.strict,
                    "official": sc.official,
                    "parsed": sc.parsed,
                    "reason": sc.reason,
                    "extra": sc.extra,
                    **({"output": _utf8(outputs[s.id])} if outputs and s.id in outputs else {}),
                    "reference": s.reference,
                    "image": _image_info(s, grid),
                    **({"crop_boxes": crops[s.id]} if crops and s.id in crops else {}),
                }
            ),
            ensure_ascii=False,
        )
        for s, sc in zip(samples, scores, strict=True)
    ]
    atomic_write_text(out / SAMPLE_SCORES_FILE, "".join(line + "\n" for line in lines))
    payload = {
        "benchmark": benchmark.name,
        "task": benchmark.task,
        "metric": benchmark.metric,
        "n_samples": len(samples),
        "root": str(Path(root).resolve()) if root is not None else None,
        "read": {"n_bad_records": read.n_bad, "bad_examples": read.bad_examples},
        "predictions": preds.to_dict(),
        "report": report,
    }
    return atomic_write_json(out / SCORES_FILE, to_jsonable(payload))
