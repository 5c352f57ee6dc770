"""Starting (or resuming) a run: read the benchmarks, freeze the manifest, refuse a mismatch.

Every worker of a run calls :func:`open_run` at start. The first one writes
``RUN/manifest.json``; every later one — the same launch's other workers, or a restart —
computes its own manifest from its own inputs and compares it with the frozen one, so a rerun
with another checkpoint, band, prompt or decoding never mixes its results into the run unless
``allow_mismatch`` says so (the replaced manifest is kept in its ``history``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rscovlm.errors import InputError
from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.benchmarks.run import read_benchmark
from rscovlm.eval.read_report import ReadReport
from rscovlm.eval.runner.batching import Job
from rscovlm.eval.runner.manifest import RunManifest, differences, read_run_manifest
from rscovlm.eval.runner.shards import DEFAULT_SHARDS
from rscovlm.model.backends.base import Backend, GenerationParams

__all__ = ["OpenedRun", "open_run", "parse_roots", "resolve_params"]


def parse_roots(benchmarks: Sequence[str], roots: Sequence[str]) -> dict[str, Path]:
    """``--root DIR`` (every benchmark) and ``--root BENCH=DIR`` (one), later ones winning.

    >>> parse_roots(["a", "b"], ["data", "b=other"])
    {'a': PosixPath('data'), 'b': PosixPath('other')}

    Raises:
        InputError: A benchmark without a root, or ``BENCH=`` naming a benchmark not asked for.
    """
    out: dict[str, Path] = {}
    for text in roots:
        name, sep, path = text.partition("=")
        if sep and name in benchmarks:
            out[name] = Path(path)
        elif sep and not Path(text).exists():
            raise InputError(f"--root {text}: {name} is not one of the benchmarks run")
        else:
            for bench in benchmarks:
                out[bench] = Path(text)
    missing = [b for b in benchmarks if b not in out]
    if missing:
        raise InputError(f"no --root for {', '.join(missing)} (give --root DIR or BENCH=DIR)")
    return out


def resolve_params(backend: Backend, params: GenerationParams) -> GenerationParams:
    """``params`` made fully explicit with the backend's policy (what the manifest records)."""
    resolver = getattr(backend, "resolve", None)
    if callable(resolver):
        return resolver(params)  # type: ignore[no-any-return]
    return params.resolve(getattr(backend, "policy", None))


@dataclass
class OpenedRun:
    """A run ready for a worker: its manifest, jobs and what reading the benchmarks found."""

    manifest: RunManifest
    jobs: list[Job]
    reads: dict[str, ReadReport]
    created: bool


def open_run(
    run: Path,
    roots: Mapping[str, Path],
    *,
    backend: Backend,
    backend_name: str,
    params: GenerationParams,
    model: dict[str, Any],
    n_shards: int | None,
    zoom: str = "ours",
    limit: int | None = None,
    allow_mismatch: bool = False,
) -> OpenedRun:
    """Read the benchmarks, then freeze or check the manifest of ``run``.

    Raises:
        InputError: The frozen manifest differs (one line naming what) and ``allow_mismatch``
            is off; a benchmark cannot be read.
    """
    run = Path(run)
    jobs: list[Job] = []
    reads: dict[str, ReadReport] = {}
    tables: dict[str, dict[str, Any]] = {}
    for name, root in roots.items():
        bench = get_benchmark(name)
        samples, read = read_benchmark(bench, root)
        if limit is not None:
            samples = samples[:limit]
        reads[name] = read
        tables[name] = {"root": str(root), "samples": RunManifest.sample_table(samples)}
        jobs += [Job(name, s, Path(root)) for s in samples]
    band = backend.band
    old = read_run_manifest(run)
    if n_shards is None:  # a resume keeps the run's shards; a new run takes the default
        n_shards = old.n_shards if old is not None else DEFAULT_SHARDS
    new = RunManifest(
        benchmarks=tables,
        family=str(getattr(backend.family, "name", backend.family)),
        band={"min_pixels": band.min_pixels, "max_pixels": band.max_pixels},
        params=resolve_params(backend, params).to_dict(),
        model=model,
        n_shards=n_shards,
        zoom=zoom,
        backend=backend_name,
    )
    if old is None:
        new.write(run)
        return OpenedRun(new, jobs, reads, True)
    diff = differences(old, new)
    if diff and not allow_mismatch:
        more = f" (+{len(diff) - 1} more differences)" if len(diff) > 1 else ""
        raise InputError(
            f"{run} was run with a different manifest: {diff[0]}{more}; use a new --out, or "
            "--allow-mismatch to mix the results anyway"
        )
    if diff:
        entry = {"replaced_at": time.time(), "differences": diff}
        new.history = [*old.history, entry]
        new.write(run)
        return OpenedRun(new, jobs, reads, False)
    return OpenedRun(old, jobs, reads, False)
