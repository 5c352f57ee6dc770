"""Merging the workers' files of a run, checking coverage against the manifest, and scoring.

``rscovlm eval score RUN`` writes, for each benchmark of the manifest,
``RUN/scores/<BENCH>/scores.json`` and ``sample_scores.jsonl`` (exactly what
:func:`~rscovlm.eval.benchmarks.run.write_scores` writes for a predictions file) beside the
merged ``predictions.jsonl``, and ``RUN/results.json``: one summary over all benchmarks with the
coverage and the run fingerprint. ``RUN/missing.jsonl`` lists every ``{bench, id}`` without a
prediction, so a rerun (which skips what is done) fills exactly those. This layout is what
``eval report`` reads.

Coverage is honest: duplicates (the same output twice) collapse, conflicting outputs for one
id are reported (the first by file name and line order is kept), error lines are never
scored as text, and a sample without a prediction is scored as a failure, so every report
covers the whole benchmark.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscovlm.errors import InputError
from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.benchmarks.run import (
    PredictionReport,
    crop_boxes,
    read_benchmark,
    score_benchmark,
    to_jsonable,
    write_scores,
)
from rscovlm.eval.runner.manifest import RunManifest, read_run_manifest
from rscovlm.eval.runner.store import RunScan, scan_run, worker_files
from rscovlm.files import atomic_write_json, atomic_write_text
from rscovlm.tables import SECTION, Cell, format_table

__all__ = [
    "MISSING_FILE",
    "RESULTS_FILE",
    "SCORES_DIR",
    "BenchCoverage",
    "coverage",
    "load_run",
    "next_commands",
    "rerun_line",
    "score_run",
    "status_lines",
]

RESULTS_FILE = "results.json"
MISSING_FILE = "missing.jsonl"
SCORES_DIR = "scores"
MERGED_FILE = "predictions.jsonl"
_EXAMPLES = 5


@dataclass
class BenchCoverage:
    """How much of one benchmark the run has: ``n_samples = n_done + n_errors + n_missing``.

    ``n_errors`` are samples whose only lines are errors (retried by a rerun); ``n_missing``
    have no line at all.
    """

    name: str
    n_samples: int
    n_done: int = 0
    n_errors: int = 0
    n_missing: int = 0
    n_conflicts: int = 0
    undone: list[str] = field(default_factory=list)
    error_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "n_done": self.n_done,
            "n_errors": self.n_errors,
            "n_missing": self.n_missing,
            "n_conflicts": self.n_conflicts,
            "error_examples": self.error_examples,
        }


def load_run(run: Path) -> tuple[RunManifest, RunScan]:
    """The manifest of ``run`` and its workers' files read back.

    Raises:
        InputError: ``run`` has no manifest (not a run folder).
    """
    manifest = read_run_manifest(Path(run))
    if manifest is None:
        raise InputError(f"{run} is not a run folder (no manifest.json; see rscovlm eval run)")
    return manifest, scan_run(Path(run))


def coverage(manifest: RunManifest, scan: RunScan) -> dict[str, BenchCoverage]:
    """Per benchmark, in manifest order: done, error-only and missing samples."""
    out: dict[str, BenchCoverage] = {}
    for name in manifest.benchmarks:
        ids = manifest.ids(name)
        cov = BenchCoverage(name, len(ids))
        for sid in ids:
            key = (name, sid)
            if key in scan.done:
                cov.n_done += 1
                continue
            cov.undone.append(sid)
            err = scan.errors.get(key)
            if err is None:
                cov.n_missing += 1
            else:
                cov.n_errors += 1
                if len(cov.error_examples) < _EXAMPLES:
                    cov.error_examples.append(f"{sid}: {err.get('error')}")
        cov.n_conflicts = sum(c["bench"] == name for c in scan.conflicts)
        out[name] = cov
    return out


REPORT_DIR = "report"
"""Where the suggested ``eval report --out`` goes: inside the run, beside its scores."""


def next_commands(run: Path) -> list[str]:
    """The commands that follow ``eval run``, copyable as printed (the path shell-quoted):
    score the run, then write its HTML report into ``RUN/report``."""
    quoted = shlex.quote(str(run))
    report = shlex.quote(str(Path(run) / REPORT_DIR))
    return [
        f"rscovlm eval score {quoted}",
        f"rscovlm eval report {quoted} --html --out {report}",
    ]


def rerun_line(cov: Mapping[str, BenchCoverage]) -> str:
    """What rerunning the same ``eval run`` command (with any number of workers) would do."""
    missing = sum(c.n_missing for c in cov.values())
    errors = sum(c.n_errors for c in cov.values())
    if not missing and not errors:
        return "rerun: 0 to run (every sample has a prediction)"
    return (
        f"rerun (the same eval run command, any number of workers): {missing + errors} to run "
        f"({missing} missing, {errors} errors to retry)"
    )


def status_lines(run: Path) -> list[str]:
    """What ``rscovlm eval status RUN`` prints: coverage, workers' files, throughput."""
    manifest, scan = load_run(run)
    cov = coverage(manifest, scan)
    lines = [
        f"run {run}: model {manifest.model.get('name')} ({manifest.family}), backend "
        f"{manifest.backend}, {manifest.n_samples()} samples in {len(cov)} benchmarks, "
        f"{manifest.n_shards} shards"
    ]
    rows: list[list[Cell] | None] = [
        [c.name, c.n_samples, c.n_done, c.n_errors, c.n_missing, c.n_conflicts]
        for c in cov.values()
    ]
    keys = ("n_samples", "n_done", "n_errors", "n_missing", "n_conflicts")
    rows += [SECTION, ["total", *(sum(getattr(c, k) for c in cov.values()) for k in keys)]]
    columns = ["benchmark", "samples", "done", "errors", "missing", "conflicts"]
    lines += format_table(None, columns, rows).splitlines()
    for c in cov.values():
        lines += [f"    {c.name} error: {e}" for e in c.error_examples]
    files = scan.files
    lines.append(f"  {len(files)} worker files in {run}/predictions:")
    for f in files:
        span = max(f.mtime - f.first_mtime, 0.0)
        rate = f"{f.n_lines / f.latency:.2f} samples/s" if f.latency > 0 else "-"
        lines.append(
            f"    {f.name}: {f.n_lines} lines ({f.n_done} done, {f.n_errors} errors)"
            f"{', torn last line' if f.torn else ''}, generate throughput {rate}, "
            f"written over {span:.0f}s"
        )
    if scan.torn:
        lines.append(f"  torn last lines (workers killed while writing; ignored): {scan.torn}")
    if scan.n_duplicates:
        lines.append(f"  {scan.n_duplicates} duplicate lines (same output; collapsed)")
    lines.append(rerun_line(cov))
    lines += [f"next: {cmd}" for cmd in next_commands(run)]
    return lines


def _merged_lines(name: str, ids: list[str], scan: RunScan) -> str:
    out = []
    for sid in ids:
        item = scan.done.get((name, sid))
        if item is not None:
            out.append(json.dumps(to_jsonable(item), ensure_ascii=False))
    return "".join(line + "\n" for line in out)


def _predictions(
    name: str, ids: set[str], scan: RunScan, n_bad: int
) -> tuple[dict[str, tuple[str, dict[str, Any]]], PredictionReport]:
    report = PredictionReport()
    preds: dict[str, tuple[str, dict[str, Any]]] = {}
    unknown = 0
    for (bench, sid), item in scan.done.items():
        if bench != name:
            continue
        if sid not in ids:
            unknown += 1
            report.note(f"id {sid} is not in the benchmark as read now")
            continue
        sizes = {
            k: item[k]
            for k in ("orig_size", "resized_size")
            if isinstance(item.get(k), list) and len(item[k]) == 2
        }
        crops = crop_boxes(item.get("zoom") or item.get("trace"))
        if crops:
            sizes["crop_boxes"] = crops
        preds[sid] = (item["output"], sizes)
    report.n_lines = len(preds) + unknown
    report.n_used = len(preds)
    report.n_unknown_ids = unknown
    report.n_bad_lines = n_bad
    report.n_missing = len(ids) - len(preds)
    if report.n_missing:
        report.note(f"{report.n_missing} samples have no prediction (scored as failures)")
    return preds, report


def score_run(run: Path, roots: Mapping[str, Path] | None = None) -> dict[str, Any]:
    """Merge, check coverage, score every benchmark and write the layout of the module
    docstring; returns what ``results.json`` holds.

    Args:
        run: The run folder.
        roots: Benchmark roots overriding the ones the manifest recorded (data moved).

    Raises:
        InputError: ``run`` is not a run folder, or a benchmark's files cannot be read.
    """
    run = Path(run)
    manifest, scan = load_run(run)
    cov = coverage(manifest, scan)
    missing = [
        json.dumps({"bench": name, "id": sid}) for name, c in cov.items() for sid in c.undone
    ]
    atomic_write_text(run / MISSING_FILE, "".join(line + "\n" for line in missing))
    results: dict[str, Any] = {
        "run": str(run),
        "fingerprint": {
            k: v for k, v in manifest.to_dict().items() if k not in ("benchmarks", "history")
        },
        "benchmarks": {},
        "coverage": {},
        "missing_file": MISSING_FILE,
        "torn_lines": scan.torn,
        "n_bad_lines": scan.n_bad_lines,
        "n_duplicates": scan.n_duplicates,
        "conflicts": scan.conflicts[:_EXAMPLES],
        "n_conflicts": len(scan.conflicts),
        "worker_files": [f.name for f in scan.files],
    }
    for name, entry in manifest.benchmarks.items():
        bench = get_benchmark(name)
        root = Path((roots or {}).get(name) or entry.get("root", "."))
        samples, read = read_benchmark(bench, root)
        listed = set(manifest.ids(name))
        samples = [s for s in samples if s.id in listed]  # a --limit run scores what it ran
        ids = {s.id for s in samples}
        preds, pred_report = _predictions(name, ids, scan, scan.n_bad_lines)
        scores, report = score_benchmark(bench, samples, preds)
        out = run / SCORES_DIR / name
        outputs = {sid: output for sid, (output, _) in preds.items()}
        crops = {
            sid: info["crop_boxes"] for sid, (_, info) in preds.items() if "crop_boxes" in info
        }
        write_scores(out, bench, samples, scores, report, read, pred_report, outputs, root, crops)
        atomic_write_text(out / MERGED_FILE, _merged_lines(name, manifest.ids(name), scan))
        metric = bench.metric
        results["benchmarks"][name] = {
            "task": bench.task,
            "metric": metric,
            "strict": report.get("strict", {}).get(metric),
            "official": report.get("official", {}).get(metric),
            "counts": report.get("counts", {}),
            "coverage": cov[name].to_dict(),
            "n_not_in_benchmark_now": len(listed - ids),
            "scores": f"{SCORES_DIR}/{name}/scores.json",
            "sample_scores": f"{SCORES_DIR}/{name}/sample_scores.jsonl",
            "predictions": f"{SCORES_DIR}/{name}/{MERGED_FILE}",
        }
    keys = ("n_samples", "n_done", "n_errors", "n_missing", "n_conflicts")
    results["coverage"] = {k: sum(getattr(c, k) for c in cov.values()) for k in keys}
    atomic_write_json(run / RESULTS_FILE, to_jsonable(results))
    return results


def result_lines(results: Mapping[str, Any], width: int | None = None) -> list[str]:
    """Plain lines of a run's results: one row per benchmark, full precision (``width``: the
    terminal's, see :func:`~rscovlm.tables.format_table`)."""
    rows: list[list[Cell] | None] = []
    for name, b in results["benchmarks"].items():
        c = b["coverage"]
        strict, official = b["strict"], b["official"]
        rows.append(
            [
                name,
                str(b["metric"]),
                None if strict is None else repr(strict),
                None if official is None else repr(official),
                c["n_done"],
                c["n_errors"],
                c["n_missing"],
            ]
        )
    columns = ["benchmark", "metric", "strict", "official", "done", "errors", "missing"]
    lines = format_table(None, columns, rows, width=width).splitlines()
    cov = results["coverage"]
    if cov.get("n_errors") or cov.get("n_missing"):
        lines.append(
            f"{cov['n_errors'] + cov['n_missing']} samples without a prediction (scored as "
            f"failures), listed in {results['missing_file']}: rerun eval run to fill them"
        )
    if results.get("n_conflicts"):
        lines.append(
            f"{results['n_conflicts']} conflicting outputs (first kept): {results['conflicts'][:1]}"
        )
    return lines


__all__ += ["result_lines", "worker_files"]
