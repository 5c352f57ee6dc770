"""Shards by a stable id hash, worker slots from --shard / torchrun / SLURM, plain progress."""

from __future__ import annotations

import io

import pytest

from rscovlm.errors import InputError
from rscovlm.eval.runner.progress import Progress
from rscovlm.eval.runner.shards import WorkerSlot, local_device, shard_of


def test_every_sample_has_exactly_one_worker_for_any_worker_count() -> None:
    ids = [f"{k:016x}" for k in range(3000)]
    shards = [shard_of("bench", i, 64) for i in ids]
    assert shards == [shard_of("bench", i, 64) for i in ids]  # stable
    assert len(set(shards)) == 64  # spread over every shard
    for n in (1, 2, 3, 5, 64, 100):  # more workers than shards: some idle, none overlap
        owners = [[w for w in range(n) if WorkerSlot(w, n).owns(s)] for s in shards]
        assert all(len(o) == 1 for o in owners)


def test_slots_from_the_launchers() -> None:
    assert WorkerSlot.parse("2/3") == WorkerSlot(2, 3, "--shard")
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "3"}
    assert WorkerSlot.from_env(env) == WorkerSlot(3, 8, "torchrun")
    assert local_device(env) == 3
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1"}
    assert WorkerSlot.from_env(slurm) == WorkerSlot(5, 16, "slurm")
    assert local_device(slurm) == 1
    assert WorkerSlot.from_env({}) == WorkerSlot(0, 1, "single")
    for bad in ("3", "a/b", "2/2", "-1/2", "0/0"):
        with pytest.raises(InputError):
            WorkerSlot.parse(bad)


def test_progress_prints_plain_lines_off_a_terminal() -> None:
    stream = io.StringIO()
    with Progress(10, "worker 0/1", every=0.0, stream=stream) as bar:
        bar.advance(4)
        bar.advance(6, errors=1)
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("worker 0/1: 10/10 samples, 1 errors,")
    assert "samples/s, ETA" in lines[0] and "\r" not in stream.getvalue()
