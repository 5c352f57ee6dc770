"""A 10,000-sample run killed with SIGKILL at five random points (all of an attempt's workers,
as a pre-emption does), resumed each time with a different number of workers, merges to exactly
the predictions of an uninterrupted run: nothing lost, nothing duplicated."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

N = 10_000


def _lines(run: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in (run / "predictions").glob("*.jsonl"))


def test_kill9_five_times_then_resume_with_other_worker_counts(
    synth: Any, kit: Any, tmp_path: Path
) -> None:
    from rscovlm.eval.runner.store import scan_run

    root, replay = synth(N)
    reference = tmp_path / "uninterrupted"
    done = kit.run(kit.run_args(root, replay, reference, "--batch-size", "16"))
    assert done.returncode == 0, done.stderr
    expected = kit.merged(reference)
    assert len(expected) == N

    run = tmp_path / "killed"
    rng = np.random.default_rng(12)
    kills = 0
    for n_workers in (1, 3, 2, 4, 2):  # a different worker count at every restart
        before = _lines(run) if run.exists() else 0
        procs = [
            subprocess.Popen(
                kit.cmd(kit.run_args(root, replay, run, "--batch-size", "16",
                                     "--shard", f"{i}/{n_workers}")),
                env=kit.env(SYNTHETIC_REPLAY_DELAY="0.004"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in range(n_workers)
        ]  # fmt: skip
        # a pre-emption at a random point: every worker of this attempt gets SIGKILL
        target = before + int(rng.integers(200, (N - before) // 3))
        deadline = time.monotonic() + 120
        while _lines(run) < target and time.monotonic() < deadline:
            time.sleep(0.002)
        assert all(p.poll() is None for p in procs), "a worker finished before the kill"
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        kills += 1
        for proc in procs:
            proc.wait(timeout=120)
            assert proc.returncode == -signal.SIGKILL
            proc.stderr.close()  # type: ignore[union-attr]
        assert before < len(kit.merged(run)) < N
    assert kills == 5

    final = kit.run(kit.run_args(root, replay, run, "--batch-size", "16", "--shard", "0/1"))
    assert final.returncode == 0, final.stderr
    scan = scan_run(run)
    got = {k: v["output"] for k, v in scan.done.items()}
    assert got == expected  # 0 lost, nothing extra, the same outputs
    assert scan.n_duplicates == 0 and not scan.conflicts and not scan.errors
    for file in scan.files:  # one file per worker process, never shared
        stem = file.name.removesuffix(".jsonl")
        lines = kit.read_jsonl(run / "predictions" / file.name)
        assert {line["worker"] for line in lines} == {stem}

    scored = kit.run(["eval", "score", str(run)])
    assert scored.returncode == 0, scored.stderr
    ref_scored = kit.run(["eval", "score", str(reference)])
    assert ref_scored.returncode == 0, ref_scored.stderr
    name = kit.synthetic.NAME
    a = (run / "scores" / name / "sample_scores.jsonl").read_text()
    b = (reference / "scores" / name / "sample_scores.jsonl").read_text()
    assert a == b
    assert (run / "missing.jsonl").read_text() == ""
