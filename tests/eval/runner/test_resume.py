"""Manifest refusal, torn last lines, duplicates and conflicts, error retry — through the real
command line (in process) over the synthetic benchmark and the replay backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rscovlm.cli import main
from rscovlm.eval.runner.batching import Job
from rscovlm.eval.runner.shards import WorkerSlot
from rscovlm.eval.runner.store import scan_run
from rscovlm.eval.runner.worker import Outcome, generate_batch, run_worker
from rscovlm.model.backends import ReplayBackend
from rscovlm.model.backends.base import Generation, GenerationParams
from rscovlm.resolution import RSCOVLM_BAND


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_rerun_with_another_model_refuses_naming_what_differs(
    synth: Any, kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, replay = synth(50)
    run = tmp_path / "run"
    assert _cli(kit.run_args(root, replay, run), capsys)[0] == 0
    other = tmp_path / "other.jsonl"
    other.write_text(replay.read_text().replace('"wrong"', '"nope"'))
    code, out, err = _cli(kit.run_args(root, other, run), capsys)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "different manifest: model: replay.jsonl -> other.jsonl" in line
    assert "--allow-mismatch" in line
    code, _, err = _cli(kit.run_args(root, replay, run, "--max-new-tokens", "7"), capsys)
    assert code == 2 and "params.max_new_tokens: 16384 -> 7" in err
    code, _, err = _cli(kit.run_args(root, replay, run, "--limit", "10"), capsys)
    assert code == 2 and "sample ids differ (40 gone, 0 new)" in err
    # asked to mix: accepted, and the manifest keeps what was replaced
    code, out, _ = _cli(kit.run_args(root, other, run, "--allow-mismatch"), capsys)
    assert code == 0 and "50 already done" in out
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["history"] and "model:" in manifest["history"][0]["differences"][0]
    # the same command again resumes silently
    code, out, _ = _cli(kit.run_args(root, other, run), capsys)
    assert code == 0 and "0 done now" in out


def test_torn_last_line_duplicates_and_conflicts(
    synth: Any, kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, replay = synth(50)
    run = tmp_path / "run"
    assert _cli(kit.run_args(root, replay, run, "--shard", "0/2"), capsys)[0] == 0
    (first,) = (run / "predictions").glob("*.jsonl")
    lines = first.read_text().splitlines()
    done_ids = [json.loads(x)["id"] for x in lines]
    # a worker killed mid-write: half a line, no newline; plus a duplicate and a conflict
    dup = json.loads(lines[0])
    conflict = {**json.loads(lines[1]), "output": "something else"}
    torn = json.dumps(json.loads(lines[2]))[:40]
    extra = run / "predictions" / "zz-killed.jsonl"
    extra.write_text(json.dumps(dup) + "\n" + json.dumps(conflict) + "\n" + torn)
    scan = scan_run(run)
    assert scan.torn == ["zz-killed.jsonl:3"] and scan.n_bad_lines == 1
    assert scan.n_duplicates == 1 and len(scan.conflicts) == 1
    assert scan.conflicts[0]["kept"] == json.loads(lines[1])["output"]  # first file wins
    assert len(scan.done) == len(done_ids)

    code, out, _ = _cli(kit.run_args(root, replay, run), capsys)  # resume: 1 worker
    assert code == 0 and f"{len(done_ids)} already done" in out
    code, out, _ = _cli(["eval", "status", str(run)], capsys)
    assert code == 0 and "torn last line" in out and "zz-killed.jsonl:3" in out
    code, out, _ = _cli(["eval", "score", str(run)], capsys)
    assert code == 0 and "1 conflicting outputs" in out
    results = json.loads((run / "results.json").read_text())
    assert results["coverage"] == {
        "n_samples": 50, "n_done": 50, "n_errors": 0, "n_missing": 0, "n_conflicts": 1
    }  # fmt: skip
    assert results["torn_lines"] == ["zz-killed.jsonl:3"] and results["n_duplicates"] == 1
    merged = kit.read_jsonl(run / "scores" / kit.synthetic.NAME / "predictions.jsonl")
    assert len(merged) == 50 and len({m["id"] for m in merged}) == 50


def test_errors_are_journaled_never_scored_and_retried(
    synth: Any, kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backend that fails on some samples: their error lines count as errors in status and
    as failures (not text) in the scores; the next attempt redoes exactly those."""
    root, replay = synth(40)
    bench = kit.synthetic.Synthetic()
    report = kit.synthetic.ReadReport(bench.name)
    samples = list(bench.samples(root, report))
    jobs = [Job(bench.name, s, root) for s in samples]
    flaky = {s.id for s in samples[::5]}
    backend = ReplayBackend.from_file(replay)
    plain = generate_batch(backend, GenerationParams())
    attempts: list[int] = []

    def failing(items: Any, cache: Any) -> list[Outcome]:
        attempts.append(len(items))
        if any(i.job.sample.id in flaky for i in items):
            raise RuntimeError("CUDA out of memory")  # the batch fails, then each sample alone
        return plain(items, cache)

    run = tmp_path / "run"
    from rscovlm.eval.runner.manifest import RunManifest

    RunManifest(
        {bench.name: {"root": str(root), "samples": RunManifest.sample_table(samples)}},
        "qwen2_5_vl", {}, GenerationParams().to_dict(), {"name": "replay"}, 8, backend="replay",
    ).write(run)  # fmt: skip
    kwargs = {"band": RSCOVLM_BAND, "backend_name": "replay", "slot": WorkerSlot(0, 1)}
    first = run_worker(run, jobs, failing, n_shards=8, batch_size=8, progress=False, **kwargs)
    assert first.n_errors == len(flaky) and first.n_done == 40 - len(flaky)
    scan = scan_run(run)
    assert {k[1] for k in scan.errors} == flaky
    assert all(e["output"] is None and "CUDA out of memory" in e["error"] for e in
               scan.errors.values())  # fmt: skip

    code, out, _ = _cli(["eval", "status", str(run)], capsys)
    assert code == 0 and "RuntimeError: CUDA out of memory" in out
    code, out, _ = _cli(["eval", "score", str(run)], capsys)
    assert code == 0 and "8 samples without a prediction" in out
    sample_scores = kit.read_jsonl(run / "scores" / bench.name / "sample_scores.jsonl")
    failed = {s["id"] for s in sample_scores if s["reason"] == "no prediction"}
    assert failed == flaky  # an error is a missing prediction, never the text of an output
    missing = kit.read_jsonl(run / "missing.jsonl")
    assert {m["id"] for m in missing} == flaky

    def counting(items: Any, cache: Any) -> list[Outcome]:
        attempts.append(-len(items))
        return [Outcome(Generation(i.job.sample.reference)) for i in items]

    second = run_worker(run, jobs, counting, n_shards=8, batch_size=8, progress=False, **kwargs)
    assert second.n_skipped == 40 - len(flaky) and second.n_done == len(flaky)
    assert -sum(a for a in attempts if a < 0) == len(flaky)  # exactly the errors were redone
    assert not scan_run(run).errors and len(scan_run(run).done) == 40


def test_score_and_status_of_a_folder_without_manifest_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["eval", "score", str(tmp_path)], ["eval", "status", str(tmp_path)]):
        code, _, err = _cli(argv, capsys)
        assert code == 2 and "is not a run folder (no manifest.json" in err
        assert len(err.strip().splitlines()) == 1
    code, _, err = _cli(["eval", "score", str(tmp_path), "--pred", "p.jsonl"], capsys)
    assert code == 2 and "either RUN or --benchmark" in err
    code, _, err = _cli(["eval", "score", "--benchmark", "rsvqa_lr"], capsys)
    assert code == 2 and "give a RUN folder, or all of" in err
