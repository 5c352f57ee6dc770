"""The evaluation runner's cost over a bare ``generate`` loop on the same batches.

Two workloads, each timed best-of-``--repeat`` with the baseline measured in the same process:

1. **replay** (``--n`` text-only synthetic samples, the scripted backend): the runner end to end
   — scan of the run folder, conversations at the band, batch plan, one ``generate`` per batch,
   a JSON line per sample written with flush + ``fsync`` per batch — against the same
   ``generate`` calls over the same pre-built batches. The replay backend costs microseconds
   per sample, so this isolates the runner's own per-sample overhead; it is printed in µs and
   also as a share of the tiny HF model's per-sample generate time (the cheapest real model;
   a 7B model is ~100× slower still), which is what the ≤ 5 % goal is about.
2. **hf** (the tiny random Qwen2.5-VL on CPU, ``--hf-n`` real RSVQA-LR questions over a real
   Sentinel-2 tile): the runner against ``HFBackend.generate`` over the same batches reading
   the images itself (what a loop without the runner does). Goal: ≥ 0.95×.

Run: ``.venv/bin/python benchmarks/eval_runner.py [--n 20000] [--hf-n 32] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "eval" / "runner"))
REAL = ROOT.parent / "shared" / "data" / "real"


def _jobs(bench: Any, root: Path) -> list[Any]:
    from rscovlm.eval.benchmarks.run import read_benchmark
    from rscovlm.eval.runner.batching import Job

    samples, _ = read_benchmark(bench, root)
    return [Job(bench.name, s, root) for s in samples]


def _manifest(run: Path, jobs: list[Any]) -> None:
    from rscovlm.eval.runner.manifest import RunManifest

    table = RunManifest.sample_table(j.sample for j in jobs)
    bench = jobs[0].bench
    RunManifest({bench: {"root": str(jobs[0].root), "samples": table}}, "qwen2_5_vl", {}, {},
                {"name": "bench"}, 64).write(run)  # fmt: skip


def _time_runner(
    jobs: list[Any], runner: Any, band: Any, batch: int, tmp: Path, cpu: list[float] | None = None
) -> float:
    """Wall seconds of one worker over ``jobs`` in a fresh run (its CPU seconds appended to
    ``cpu``: on a shared machine they move less than the wall clock)."""
    from rscovlm.eval.runner.shards import WorkerSlot
    from rscovlm.eval.runner.worker import run_worker

    run = Path(tempfile.mkdtemp(dir=tmp))
    _manifest(run, jobs)
    c0, t0 = time.process_time(), time.perf_counter()
    slot = WorkerSlot(0, 1)
    summary = run_worker(run, jobs, runner, band=band, backend_name="bench", slot=slot,
                         n_shards=64, batch_size=batch, progress=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    assert summary.n_done == len(jobs), summary.line()
    shutil.rmtree(run)
    return seconds


def _batches(jobs: list[Any], band: Any, batch: int) -> list[list[Any]]:
    from rscovlm.eval.runner.batching import plan_batches, prepare

    return plan_batches([prepare(j, band) for j in jobs], batch)


def replay(n: int, batch: int, repeat: int, tmp: Path) -> float:
    import synthetic

    from rscovlm.eval.runner.worker import generate_batch
    from rscovlm.model.backends import ReplayBackend
    from rscovlm.model.backends.base import GenerationParams

    synthetic.ensure_registered()
    root = synthetic.write_benchmark(tmp / "synth", n)
    replay_file = synthetic.write_replay(root, tmp / "replay.jsonl")
    backend = ReplayBackend.from_file(replay_file)
    params = GenerationParams().resolve()
    jobs = _jobs(synthetic.Synthetic(), root)
    batches = _batches(jobs, backend.band, batch)
    bare, full, nosync = [], [], []
    bare_cpu: list[float] = []
    nosync_cpu: list[float] = []
    runner = generate_batch(backend, params)
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        for b in batches:
            backend.generate([p.conversation for p in b], params, [[] for _ in b])
        bare.append(time.perf_counter() - t0)
        bare_cpu.append(time.process_time() - c0)
        full.append(_time_runner(jobs, runner, backend.band, batch, tmp))
        with mock.patch("os.fsync", return_value=None):  # the same run without the disk's sync
            nosync.append(_time_runner(jobs, runner, backend.band, batch, tmp, nosync_cpu))
    b, f = min(bare), min(full)
    per = (f - b) / n * 1e6
    sync = (f - min(nosync)) / n * 1e6
    cpu = (min(nosync_cpu) - min(bare_cpu)) / n * 1e6
    print(f"replay, {n} samples, batch {batch}: bare generate loop {n / b:,.0f} samples/s, "
          f"runner {n / f:,.0f} samples/s (ratio {b / f:.3f}); runner overhead {per:.1f} µs per "
          f"sample, of which {sync:.1f} µs is this disk's fsync per batch (the run again with "
          f"fsync a no-op; with a real model it overlaps the next batch's generate) and "
          f"{per - sync:.1f} µs the rest (scan, prepare, plan, JSON lines; {cpu:.1f} µs of "
          f"CPU per sample)")  # fmt: skip
    return per


def hf(n: int, batch: int, repeat: int, tmp: Path, overhead_us: float) -> None:
    from rscovlm.eval.benchmarks import get_benchmark
    from rscovlm.eval.runner.worker import generate_batch
    from rscovlm.model.backends.base import GenerationParams
    from rscovlm.model.backends.hf import HFBackend
    from rscovlm.model.tiny import build_tiny_model

    ckpt = build_tiny_model("qwen2_5_vl", tmp / "tiny", seed=0, cache_dir=tmp / "tok")
    lr = REAL / "rsvqa" / "LR"
    jobs = _jobs(get_benchmark("rsvqa_lr"), lr)[:n]  # the first questions share 236.tif
    backend = HFBackend(ckpt, batch_size=batch, root=lr)
    params = backend.resolve(GenerationParams(max_new_tokens=8))
    batches = _batches(jobs, backend.band, batch)
    bare, full = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for b in batches:
            backend.generate([p.conversation for p in b], params)  # reads the images itself
        bare.append(time.perf_counter() - t0)
        full.append(_time_runner(jobs, generate_batch(backend, params), backend.band, batch, tmp))
    b, f = min(bare), min(full)
    per_sample = b / n
    print(f"hf tiny Qwen2.5-VL (CPU), {n} RSVQA-LR samples, batch {batch}, 8 new tokens: bare "
          f"generate loop {n / b:.2f} samples/s, runner {n / f:.2f} samples/s: runner / bare = "
          f"{b / f:.3f}x (goal >= 0.95x)")  # fmt: skip
    share = overhead_us * 1e-6 / per_sample
    print(f"runner overhead per sample (replay, above): {overhead_us:.1f} µs = {100 * share:.3f} % "
          f"of the tiny model's generate time per sample ({per_sample * 1e3:.1f} ms), the "
          f"cheapest real model (goal <= 5 %; against the µs replay itself a share means "
          f"nothing)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="replay samples")
    parser.add_argument("--hf-n", type=int, default=32, help="tiny-model samples")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overhead = replay(args.n, args.batch, args.repeat, Path(tmp))
        hf(args.hf_n, args.batch, args.repeat, Path(tmp), overhead)


if __name__ == "__main__":
    main()
