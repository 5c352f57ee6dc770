"""The journal of a run: one append-only JSONL per worker process under ``RUN/predictions/``,
and the scan that reads them all back.

A worker never shares a file: its name carries the host, the process id and a random tag, so
neither a restart nor a different number of workers can collide with an old file, and a torn
line (a worker killed mid-write) can only be the LAST line of a file nobody appends to again.
Every finished batch is written and flushed at once (a killed process loses nothing written:
the bytes are in the kernel), and ``fsync``-ed in a background thread while the next batch
generates; the next batch is written only after that ``fsync`` returned. So a power loss costs
at most the batch in flight and the one before, and the disk's sync latency (milliseconds)
never stalls the accelerator.

A line is ``{bench, id, output, usage, latency, backend, error, orig_size, resized_size,
finish_reason, worker}``. ``error`` is ``None`` for a prediction; an error line (an unreadable
image, a backend failure) has ``output`` ``None`` and is retried by the next attempt — it is
never scored as text.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["PREDICTIONS_DIR", "Journal", "RunScan", "scan_run", "worker_files"]

PREDICTIONS_DIR = "predictions"
_MAX_LINE = 64 << 20
_EXAMPLES = 5

Key = tuple[str, str]
"""``(benchmark, sample id)``."""


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""One line's JSON (what ``json.dumps`` gives, without building an encoder per line)."""


def _new_name() -> str:
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:40]
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"


class Journal:
    """This worker process's own predictions file (created on the first batch)."""

    def __init__(self, run: Path) -> None:
        self.directory = Path(run) / PREDICTIONS_DIR
        self.path = self.directory / _new_name()
        self.name = self.path.stem
        self._fh: IO[bytes] | None = None
        self._sync: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None
        self.n_lines = 0

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()  # an fsync error surfaces here, on the worker's thread
            self._pending = None

    def append(self, lines: Iterable[dict[str, Any]]) -> None:
        """Write ``lines`` (one batch) and flush; the fsync of the batch runs in the background
        and is awaited before the next batch is written (see the module docstring)."""
        data = "".join(_ENCODE(line) + "\n" for line in lines).encode()
        if not data:
            return
        if self._fh is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab")  # noqa: SIM115 - closed in close()
            self._sync = ThreadPoolExecutor(1, thread_name_prefix="journal-fsync")
        self._wait()
        self._fh.write(data)
        self._fh.flush()
        assert self._sync is not None
        self._pending = self._sync.submit(os.fsync, self._fh.fileno())
        self.n_lines += data.count(b"\n")

    def close(self) -> None:
        """Wait for the last fsync and close the file."""
        if self._fh is not None:
            try:
                self._wait()
            finally:
                if self._sync is not None:
                    self._sync.shutdown()
                self._fh.close()
                self._fh = None


def worker_files(run: Path) -> list[Path]:
    """Every worker file of ``run``, sorted by name (a deterministic merge order)."""
    directory = Path(run) / PREDICTIONS_DIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.jsonl") if p.is_file())


@dataclass
class FileStats:
    """What one worker file holds."""

    name: str
    n_lines: int = 0
    n_done: int = 0
    n_errors: int = 0
    torn: bool = False
    latency: float = 0.0
    first_mtime: float = 0.0
    mtime: float = 0.0


@dataclass
class RunScan:
    """Every worker file of a run read back (see :func:`scan_run`).

    Attributes:
        done: The first prediction line of each sample (by file name, then line order).
        errors: The last error line of each sample that has NO prediction.
        n_duplicates: Further prediction lines of a sample, same output (collapsed).
        conflicts: Further prediction lines whose output differs from the first one.
        n_bad_lines: Lines that are not a prediction record (torn last lines included).
        torn: ``file:line`` of every torn last line (a worker killed while writing).
        files: Per-file counts, for ``eval status``.
    """

    done: dict[Key, dict[str, Any]] = field(default_factory=dict)
    errors: dict[Key, dict[str, Any]] = field(default_factory=dict)
    n_duplicates: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    n_bad_lines: int = 0
    torn: list[str] = field(default_factory=list)
    bad_examples: list[str] = field(default_factory=list)
    files: list[FileStats] = field(default_factory=list)

    def bad(self, text: str) -> None:
        self.n_bad_lines += 1
        if len(self.bad_examples) < _EXAMPLES:
            self.bad_examples.append(text)


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """``(line number, raw line, is the last line and has no newline)``."""
    data = path.read_bytes()
    if not data:
        return
    parts = data.split(b"\n")
    last = parts.pop()  # b"" when the file ends with a newline
    for n, raw in enumerate(parts, 1):
        yield n, raw, False
    if last:
        yield len(parts) + 1, last, True


def _record(raw: bytes) -> dict[str, Any] | None:
    if len(raw) > _MAX_LINE or not raw.strip():
        return None
    try:
        item = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(item, dict):
        return None
    if not isinstance(item.get("bench"), str) or not isinstance(item.get("id"), str):
        return None
    if item.get("error") is None and not isinstance(item.get("output"), str):
        return None
    return item


def scan_run(run: Path) -> RunScan:
    """Read every worker file of ``run`` (never raises on a bad line; a torn last line is
    reported, and a complete JSON object written without its newline still counts)."""
    scan = RunScan()
    for path in worker_files(run):
        stat = path.stat()
        stats = FileStats(path.name, mtime=stat.st_mtime, first_mtime=stat.st_ctime)
        scan.files.append(stats)
        for n, raw, unterminated in _lines(path):
            item = _record(raw)
            if item is None:
                if not raw.strip():
                    continue
                if unterminated:
                    scan.torn.append(f"{path.name}:{n}")
                    stats.torn = True
                scan.bad(f"{path.name}:{n}: {'torn last line' if unterminated else 'bad line'}")
                continue
            stats.n_lines += 1
            if isinstance(item.get("latency"), int | float):
                stats.latency += float(item["latency"])
            key = (item["bench"], item["id"])
            if item.get("error") is not None:
                stats.n_errors += 1
                if key not in scan.done:
                    scan.errors[key] = item
                continue
            stats.n_done += 1
            first = scan.done.get(key)
            if first is None:
                scan.done[key] = item
                scan.errors.pop(key, None)
            elif first.get("output") == item.get("output"):
                scan.n_duplicates += 1
            else:
                scan.conflicts.append(
                    {
                        "bench": key[0],
                        "id": key[1],
                        "kept": first.get("output"),
                        "other": item.get("output"),
                        "where": f"{path.name}:{n}",
                    }
                )
    return scan
