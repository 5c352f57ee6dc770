"""One call from a backend to a run's predictions: open (or resume) the run, then work this
worker's shards through the right runner (plain generation, or the Zoom-in Chain).

``rscovlm eval run`` and the demo both go through :func:`evaluate`, so there is one way a model
is run over benchmarks — the same manifest, shards, journal and batching everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rscovlm.eval.runner.session import OpenedRun, open_run, resolve_params
from rscovlm.eval.runner.shards import WorkerSlot
from rscovlm.eval.runner.worker import WorkerSummary, run_worker
from rscovlm.eval.runner.zoom import zoom_runner
from rscovlm.model.backends.base import Backend, GenerationParams

__all__ = ["evaluate"]


def evaluate(
    run: Path,
    roots: Mapping[str, Path],
    *,
    backend: Backend,
    backend_name: str,
    params: GenerationParams,
    model: dict[str, Any],
    slot: WorkerSlot | None = None,
    n_shards: int | None = None,
    zoom: str = "ours",
    limit: int | None = None,
    allow_mismatch: bool = False,
    batch_size: int = 8,
    progress: bool = True,
    log_every: float = 10.0,
    on_open: Callable[[OpenedRun], None] | None = None,
    console: Any = None,
) -> tuple[OpenedRun, WorkerSummary]:
    """Run ``backend`` over the benchmarks of ``roots`` into the run folder ``run``.

    Args:
        slot: This worker's shards (default: every shard, a single worker).
        console: The rich console of the progress bar (the demo's; default stderr's).
        on_open: Called once the manifest is frozen or checked, before any generation (the
            CLI reports the benchmark records it skipped there).

    Raises:
        InputError: See :func:`~rscovlm.eval.runner.session.open_run`.
    """
    opened = open_run(
        run,
        roots,
        backend=backend,
        backend_name=backend_name,
        params=params,
        model=model,
        n_shards=n_shards,
        zoom=zoom,
        limit=limit,
        allow_mismatch=allow_mismatch,
    )
    if on_open is not None:
        on_open(opened)
    summary = run_worker(
        run,
        opened.jobs,
        zoom_runner(backend, resolve_params(backend, params), zoom),
        band=backend.band,
        backend_name=backend_name,
        slot=slot or WorkerSlot(0, 1, "single"),
        n_shards=opened.manifest.n_shards,
        batch_size=batch_size,
        progress=progress,
        log_every=log_every,
        console=console,
    )
    return opened, summary
