"""Reading a run folder (or one ``eval score --out`` folder) into :class:`Run`.

Everything here is data a model produced or a runner wrote: it is read through
:mod:`rscovlm.safe_read` (limits, no code), a bad sample line is counted and skipped, and a
missing ``manifest.json`` / ``results.json`` is simply absent from the report (the per-benchmark
files are the truth; ``results.json`` is never needed to rebuild the summary).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscovlm.errors import InputError
from rscovlm.safe_read import iter_jsonl_lines, read_json

__all__ = ["BenchScores", "Run", "fingerprint", "headline", "load_run", "summarize_run"]

SCORES_DIR = "scores"
MANIFEST_FILE = "manifest.json"
RESULTS_FILE = "results.json"
_SCORES_FILE = "scores.json"  # rscovlm.eval.benchmarks.run.SCORES_FILE
_SAMPLE_SCORES_FILE = "sample_scores.jsonl"  # rscovlm.eval.benchmarks.run.SAMPLE_SCORES_FILE


@dataclass
class BenchScores:
    """One benchmark of a run: its ``scores.json`` and its sample lines (by id)."""

    name: str
    folder: Path
    scores: dict[str, Any]
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_bad_lines: int = 0

    @property
    def task(self) -> str:
        return str(self.scores.get("task", "unknown"))

    @property
    def metric(self) -> str:
        return str(self.scores.get("metric", ""))

    @property
    def report(self) -> dict[str, Any]:
        report = self.scores.get("report")
        return report if isinstance(report, dict) else {}

    @property
    def root(self) -> Path | None:
        root = self.scores.get("root")
        return Path(root) if isinstance(root, str) and root else None


@dataclass
class Run:
    """A run: where it is, its manifest and results (``{}`` when absent), its benchmarks."""

    path: Path
    manifest: dict[str, Any]
    results: dict[str, Any]
    benchmarks: dict[str, BenchScores]


def _read_dict(path: Path, label: str) -> dict[str, Any]:
    if not path.is_file():
        return {}
    value = read_json(path, label)
    if not isinstance(value, dict):
        raise InputError(f"{label} {path} is not a JSON object")
    return value


def _read_bench(folder: Path) -> BenchScores:
    scores = _read_dict(folder / _SCORES_FILE, "scores file")
    name = str(scores.get("benchmark") or folder.name)
    bench = BenchScores(name, folder, scores)
    lines = folder / _SAMPLE_SCORES_FILE
    if lines.is_file():
        for _, value, problem in iter_jsonl_lines(lines, "sample scores"):
            if problem or not isinstance(value, dict) or not isinstance(value.get("id"), str):
                bench.n_bad_lines += 1
                continue
            bench.samples.setdefault(value["id"], value)
    return bench


def load_run(path: Path) -> Run:
    """The run in ``path``: ``scores/<BENCH>/`` folders, or ``path`` itself when it holds a
    ``scores.json`` (a single ``eval score --out`` folder).

    Raises:
        InputError: ``path`` is not a folder, or it holds no scores at all.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"run folder {path} not found")
    if (path / _SCORES_FILE).is_file():
        folders = [path]
    else:
        base = path / SCORES_DIR
        folders = (
            sorted(p for p in base.iterdir() if (p / _SCORES_FILE).is_file())
            if (base.is_dir())
            else []
        )
    if not folders:
        raise InputError(
            f"{path} holds no scores: expected {SCORES_DIR}/<BENCH>/{_SCORES_FILE} "
            f"(rscovlm eval score --out) or {_SCORES_FILE}"
        )
    benchmarks: dict[str, BenchScores] = {}
    for folder in folders:
        bench = _read_bench(folder)
        benchmarks[bench.name] = bench
    return Run(
        path,
        _read_dict(path / MANIFEST_FILE, "manifest"),
        _read_dict(path / RESULTS_FILE, "results file"),
        benchmarks,
    )


def headline(bench: BenchScores) -> str | None:
    """The key the benchmark reports first: its metric when the report has it, else the first
    plain number of the report."""
    report = bench.report
    for side in ("strict", "official"):
        values = report.get(side)
        if isinstance(values, dict) and bench.metric in values:
            return bench.metric
    for side in ("strict", "official"):
        values = report.get(side)
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return str(key)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ci(value: Any) -> list[float] | None:
    if isinstance(value, list) and len(value) == 2 and all(_number(v) is not None for v in value):
        return [float(v) for v in value]
    return None


def fingerprint(manifest: dict[str, Any]) -> dict[str, Any]:
    """The run's manifest as a report shows it: every field as frozen, except that each
    benchmark's sample table (``[[id, prompt_hash], ...]``, 100k rows for a full suite) is
    replaced by its size and the SHA-256 of its canonical JSON — two runs with equal digests
    ran the same prompts — so the page stays small and the fingerprint stays exact."""
    out = dict(manifest)
    benchmarks = manifest.get("benchmarks")
    if isinstance(benchmarks, dict):
        compact: dict[str, Any] = {}
        for name, entry in benchmarks.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("samples"), list):
                compact[name] = entry
                continue
            table = entry["samples"]
            text = json.dumps(table, separators=(",", ":"), ensure_ascii=False)
            compact[name] = {
                **{k: v for k, v in entry.items() if k != "samples"},
                "n_samples": len(table),
                "samples_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
            }
        out["benchmarks"] = compact
    return out


def summarize_run(run: Run) -> dict[str, Any]:
    """The results JSON of a run: its fingerprint and one row per benchmark (headline key,
    strict and official with their 95 % CIs, n, parse-failure rate, prediction counts)."""
    rows = []
    for name, bench in sorted(run.benchmarks.items()):
        report, key = bench.report, headline(bench)
        counts = report.get("counts") if isinstance(report.get("counts"), dict) else {}
        ci = report.get("ci95") if isinstance(report.get("ci95"), dict) else {}
        row: dict[str, Any] = {
            "benchmark": name,
            "task": bench.task,
            "key": key,
            "n": counts.get("n_in", bench.scores.get("n_samples")),
            "parse_failure_rate": _number(counts.get("parse_failure_rate")),
            "n_failed": counts.get("n_failed"),
        }
        for side in ("strict", "official"):
            values = report.get(side) if isinstance(report.get(side), dict) else {}
            cis = ci.get(side) if isinstance(ci.get(side), dict) else {}
            row[side] = _number(values.get(key)) if key else None
            row[f"{side}_ci95"] = _ci(cis.get(key)) if key else None
        preds = bench.scores.get("predictions")
        if isinstance(preds, dict):
            row["predictions"] = {k: v for k, v in preds.items() if k != "examples"}
        rows.append(row)
    return {
        "run": str(run.path),
        "manifest": fingerprint(run.manifest),
        "results": run.results,
        "benchmarks": rows,
    }
