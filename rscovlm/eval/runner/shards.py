"""Which worker runs which sample: a stable hash of ``(benchmark, id)`` into a FIXED number of
shards, and a worker slot read from ``--shard i/n``, torchrun or SLURM.

The shard count is frozen in the run manifest, so a sample's shard never changes; the number of
workers only decides which shards a worker takes (``shard % n == i``). Nothing here depends on
the world size in a key or a file name, and nothing talks to another worker: a dead worker
blocks nobody, and a restart with any number of workers finds the same shards.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from rscovlm.errors import InputError

__all__ = ["DEFAULT_SHARDS", "WorkerSlot", "local_device", "pin_visible_device", "shard_of"]

DEFAULT_SHARDS = 256
"""Shards of a run unless ``--shards`` says otherwise: enough to spread over 256 workers."""


def shard_of(benchmark: str, sample_id: str, n_shards: int) -> int:
    """The shard of one sample: the first 8 bytes of SHA-256 of ``benchmark\\0id`` mod n.

    >>> shard_of("rsvqa_lr", "0123abcd", 256) == shard_of("rsvqa_lr", "0123abcd", 256)
    True
    >>> 0 <= shard_of("a", "b", 7) < 7
    True
    """
    digest = hashlib.sha256(f"{benchmark}\0{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n_shards


@dataclass(frozen=True)
class WorkerSlot:
    """Worker ``index`` of ``count``; it runs every shard ``s`` with ``s % count == index``.

    Attributes:
        index: This worker's number, from 0.
        count: How many workers share the run now (may differ from the last attempt).
        source: Where the slot came from (``--shard``, ``torchrun``, ``slurm``, ``single``).
    """

    index: int
    count: int
    source: str = "single"

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise InputError(f"worker {self.index}/{self.count}: need 0 <= i < n and n >= 1")

    def owns(self, shard: int) -> bool:
        """Whether this worker runs ``shard``."""
        return shard % self.count == self.index

    @classmethod
    def parse(cls, text: str) -> WorkerSlot:
        """``"i/n"`` (``--shard``).

        >>> WorkerSlot.parse("1/4")
        WorkerSlot(index=1, count=4, source='--shard')
        """
        try:
            index, count = (int(v) for v in text.split("/"))
        except ValueError:
            raise InputError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
        return cls(index, count, "--shard")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSlot:
        """The slot a launcher gave: torchrun's ``RANK``/``WORLD_SIZE``, else SLURM's
        ``SLURM_PROCID``/``SLURM_NTASKS``, else a single worker.

        >>> WorkerSlot.from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
        WorkerSlot(index=1, count=2, source='torchrun')
        >>> WorkerSlot.from_env({})
        WorkerSlot(index=0, count=1, source='single')
        """
        env = os.environ if env is None else env
        for rank, world, source in (
            ("RANK", "WORLD_SIZE", "torchrun"),
            ("SLURM_PROCID", "SLURM_NTASKS", "slurm"),
        ):
            if rank in env and world in env:
                try:
                    return cls(int(env[rank]), int(env[world]), source)
                except ValueError:
                    raise InputError(f"{rank}/{world} are not integers") from None
        return cls(0, 1)


def local_device(env: Mapping[str, str] | None = None) -> int | None:
    """The GPU a launched worker should use (``LOCAL_RANK`` or ``SLURM_LOCALID``), if any."""
    env = os.environ if env is None else env
    for key in ("LOCAL_RANK", "SLURM_LOCALID"):
        if key in env and env[key].isdigit():
            return int(env[key])
    return None


def pin_visible_device(env: dict[str, str] | None = None) -> str | None:
    """Give a launched worker ONE GPU: ``CUDA_VISIBLE_DEVICES`` narrowed to its local rank's
    entry (all GPUs visible under torchrun; SLURM may already give one). Returns the value
    set, or ``None`` when there is no local rank or the worker already sees one device.

    >>> e = {"LOCAL_RANK": "1", "CUDA_VISIBLE_DEVICES": "4,5,6,7"}
    >>> pin_visible_device(e), e["CUDA_VISIBLE_DEVICES"]
    ('5', '5')
    >>> pin_visible_device({"LOCAL_RANK": "2"})
    '2'
    """
    env = os.environ if env is None else env  # type: ignore[assignment]
    local = local_device(env)
    if local is None:
        return None
    visible = [v for v in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if len(visible) == 1:
        return None
    value = visible[local] if local < len(visible) else str(local)
    env["CUDA_VISIBLE_DEVICES"] = value
    return value
