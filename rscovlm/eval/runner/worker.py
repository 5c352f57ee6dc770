"""The worker loop: take this worker's shards, skip what any earlier attempt finished, run the
rest batch by batch through the backend, and journal every batch before the next one.

No collective call, no shared file, no lock: a worker reads the other files once, at start, to
learn what is done, and then only appends to its own. A sample whose prediction is an error
(unreadable image, backend exception) is journaled as an error and retried by the next attempt;
a batch that fails is rerun sample by sample so one bad input costs only itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rscovlm.eval.runner.batching import ImageCache, Job, Prepared, plan_batches, prepare
from rscovlm.eval.runner.progress import Progress
from rscovlm.eval.runner.shards import WorkerSlot, shard_of
from rscovlm.eval.runner.store import Journal, scan_run
from rscovlm.model.backends.base import Backend, Generation, GenerationParams
from rscovlm.resolution import PixelBand

__all__ = ["Outcome", "WorkerSummary", "pending_jobs", "run_worker"]


@dataclass(frozen=True)
class Outcome:
    """What running one sample gave: a generation or an error, and extra trace data."""

    generation: Generation | None
    error: str | None = None
    extra: dict[str, Any] | None = None


Runner = Callable[[Sequence[Prepared], ImageCache], list[Outcome]]
"""Runs one batch of prepared samples (plain generation or the Zoom-in Chain)."""


@dataclass
class WorkerSummary:
    """What one worker did."""

    worker: str
    slot: WorkerSlot
    n_owned: int
    n_skipped: int
    n_todo: int
    n_done: int = 0
    n_errors: int = 0
    seconds: float = 0.0
    n_decoded: int = 0

    def line(self) -> str:
        rate = self.n_done / self.seconds if self.seconds > 0 else 0.0
        return (
            f"worker {self.slot.index}/{self.slot.count} ({self.slot.source}) {self.worker}: "
            f"{self.n_owned} samples in its shards, {self.n_skipped} already done, "
            f"{self.n_done} done now, {self.n_errors} errors (retried next run), "
            f"{rate:.2f} samples/s, {self.n_decoded} images decoded"
        )


def pending_jobs(
    run: Path, jobs: Sequence[Job], slot: WorkerSlot, n_shards: int
) -> tuple[list[Job], int, int]:
    """This worker's jobs that no file of ``run`` has a prediction for (errors are redone),
    with the count of jobs in its shards and of those already done."""
    done = scan_run(run).done
    owned = [j for j in jobs if slot.owns(shard_of(j.bench, j.sample.id, n_shards))]
    todo = [j for j in owned if j.key not in done]
    return todo, len(owned), len(owned) - len(todo)


def generate_batch(backend: Backend, params: GenerationParams) -> Runner:
    """The plain runner: one ``generate`` call per batch with the pixels loaded once."""

    def run(items: Sequence[Prepared], cache: ImageCache) -> list[Outcome]:
        convs = [i.conversation for i in items]
        images = [cache.images(i) for i in items]
        gens = backend.generate(convs, params, images)  # type: ignore[arg-type]
        return [Outcome(g) for g in gens]

    return run


def _isolate(runner: Runner, items: Sequence[Prepared], cache: ImageCache) -> list[Outcome]:
    """Run a batch; if it fails, run each sample alone so one bad input costs only itself."""
    try:
        return runner(items, cache)
    except Exception as exc:  # recorded per sample, retried next attempt
        if len(items) == 1:
            return [Outcome(None, f"{type(exc).__name__}: {exc}")]
    return [_isolate(runner, [item], cache)[0] for item in items]


def _line(
    item: Prepared, outcome: Outcome, latency: float, backend: str, worker: str
) -> dict[str, Any]:
    gen = outcome.generation
    usage = None
    if gen is not None:
        u = gen.usage
        usage = {
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "image_tokens": u.image_tokens,
        }
    error = outcome.error if gen is None else None
    line: dict[str, Any] = {
        "bench": item.job.bench,
        "id": item.job.sample.id,
        "output": gen.text if gen is not None else None,
        "usage": usage,
        "latency": latency,
        "backend": backend,
        "error": error or (None if gen is not None else "no output"),
        "finish_reason": gen.finish_reason if gen is not None else None,
        "worker": worker,
        "orig_size": None,
        "resized_size": None,
        **item.sizes(),
    }
    if outcome.extra:
        line.update(outcome.extra)
    return line


def run_worker(
    run: Path,
    jobs: Sequence[Job],
    runner: Runner,
    *,
    band: PixelBand,
    backend_name: str,
    slot: WorkerSlot,
    n_shards: int,
    batch_size: int = 8,
    progress: bool = True,
    log_every: float = 10.0,
    console: Any = None,
) -> WorkerSummary:
    """Run this worker's pending jobs of ``run`` (see the module docstring); ``console``: the
    rich console of the progress bar (default: stderr's, when it is a terminal)."""
    todo, n_owned, n_skipped = pending_jobs(run, jobs, slot, n_shards)
    journal = Journal(run)
    summary = WorkerSummary(journal.name, slot, n_owned, n_skipped, len(todo))
    cache = ImageCache()
    start = time.perf_counter()
    label = f"worker {slot.index}/{slot.count}"
    try:
        with Progress(len(todo), label, enabled=progress, every=log_every, console=console) as bar:
            prepared = [prepare(j, band) for j in todo]
            bad = [p for p in prepared if p.conversation is None]
            if bad:
                journal.append(
                    _line(p, Outcome(None, p.error), 0.0, backend_name, journal.name) for p in bad
                )
                summary.n_errors += len(bad)
                bar.advance(len(bad), len(bad))
            for batch in plan_batches([p for p in prepared if p.conversation], batch_size):
                cache.next_batch()
                t0 = time.perf_counter()
                outcomes = _isolate(runner, batch, cache)
                latency = (time.perf_counter() - t0) / len(batch)
                lines = [
                    _line(item, out, latency, backend_name, journal.name)
                    for item, out in zip(batch, outcomes, strict=True)
                ]
                journal.append(lines)
                errors = sum(line["error"] is not None for line in lines)
                summary.n_errors += errors
                summary.n_done += len(lines) - errors
                bar.advance(len(lines), errors)
    finally:
        journal.close()
        summary.seconds = time.perf_counter() - start
        summary.n_decoded = cache.n_decoded
    return summary
