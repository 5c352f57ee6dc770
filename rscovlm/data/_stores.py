"""Where the loader reads records: random access by ``(source, index)``.

:class:`RecordStore` is the protocol; :class:`ListStore` holds records in memory and
:class:`ShardStore` reads the shards of a built dataset line by line on demand. Both are
re-exported by :mod:`rscovlm.data.loader`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rscovlm.data.record import Record
from rscovlm.data.shards import shard_paths
from rscovlm.errors import InputError

__all__ = ["ListStore", "RecordStore", "ShardStore"]


class RecordStore(Protocol):
    """Random access to records by ``(source, index)``."""

    def sizes(self) -> dict[str, int]:
        """Number of records of each source."""
        ...

    def get(self, source: str, index: int) -> Record:
        """The ``index``-th record of ``source``."""
        ...


class ListStore:
    """Records held in memory, grouped by source (tests, small sets, benchmarks)."""

    def __init__(self, records: Mapping[str, Sequence[Record]] | Sequence[Record]) -> None:
        if isinstance(records, Mapping):
            self._by_source = {k: list(v) for k, v in records.items()}
        else:
            self._by_source = {}
            for rec in records:
                self._by_source.setdefault(rec.source, []).append(rec)

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self._by_source.items()}

    def get(self, source: str, index: int) -> Record:
        return self._by_source[source][index]


class ShardStore:
    """The records of a built dataset (``rscovlm data build``), read line by line on demand.

    Opening indexes the byte offset of every line of every shard (no record is parsed); a
    worker process reopens the files lazily, so the store pickles cheaply.
    """

    def __init__(self, built_dir: str | Path) -> None:
        self.built_dir = Path(built_dir)
        self._files = shard_paths(self.built_dir)
        if not self._files:
            raise InputError(f"{built_dir} has no record shards: run `rscovlm data build` first")
        index: dict[str, list[tuple[int, int]]] = {}
        for k, path in enumerate(self._files):
            source = path.name.rpartition("-")[0]
            offset = 0
            with path.open("rb") as fh:
                for line in fh:
                    if line.strip():
                        index.setdefault(source, []).append((k, offset))
                    offset += len(line)
        self._index = {s: np.array(v, dtype=np.int64) for s, v in index.items()}
        self._handles: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}}

    def sizes(self) -> dict[str, int]:
        return {s: len(v) for s, v in self._index.items()}

    def get(self, source: str, index: int) -> Record:
        k, offset = (int(v) for v in self._index[source][index])
        fh = self._handles.get(k)
        if fh is None:
            fh = self._handles[k] = self._files[k].open("rb")
        fh.seek(offset)
        return Record.from_json(fh.readline().decode("utf-8"))
