"""JSONL shards of records and the manifest that describes a built dataset.

A built dataset directory holds::

    manifest.json          counts per source, split, task and class; recipe; code version
    rejected.jsonl         one line per rejected entry: uid, source, source_file, reason
    shards/<source>-00000.jsonl            one kept Record per line (:mod:`rscovlm.data.record`)
    shards/<source>-00000.rejected.jsonl   that shard's rejected entries
    shards/<source>-00000.done.json        its counts and input fingerprint (for resuming)

Every file is written to a temporary name in the same directory and renamed into place, so an
interrupted build never leaves a half-written shard that a re-run would mistake for a finished one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rscovlm import safe_read
from rscovlm.data.record import Record
from rscovlm.errors import InputError
from rscovlm.files import atomic_write_text

__all__ = [
    "MANIFEST_NAME",
    "REJECTED_NAME",
    "SHARD_DIR",
    "iter_records",
    "read_jsonl",
    "read_manifest",
    "shard_paths",
    "write_jsonl",
]

MANIFEST_NAME = "manifest.json"
REJECTED_NAME = "rejected.jsonl"
SHARD_DIR = "shards"


def write_jsonl(path: str | Path, rows: Iterable[Record | dict[str, Any]]) -> int:
    """Atomically write records (or plain dicts) one per line; returns the number written."""
    lines = []
    for row in rows:
        if isinstance(row, Record):
            lines.append(row.to_json())
        else:
            lines.append(json.dumps(row, ensure_ascii=False, sort_keys=False))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSONL file, skipping blank lines.

    Raises:
        InputError: A line is not valid JSON (with its line number).
    """
    path = Path(path)
    for lineno, value, reason in safe_read.iter_jsonl_lines(path):
        if reason is not None:
            raise InputError(f"{path}:{lineno}: {reason}")
        yield value


def shard_paths(out_dir: str | Path) -> list[Path]:
    """The record shards of a built dataset, in name order."""
    shard_dir = Path(out_dir) / SHARD_DIR
    return sorted(p for p in shard_dir.glob("*.jsonl") if not p.name.endswith(".rejected.jsonl"))


def iter_records(out_dir: str | Path, source: str | None = None) -> Iterator[Record]:
    """Yield the records of a built dataset (optionally of one source), in shard order."""
    for path in shard_paths(out_dir):
        if source is not None and path.name.rpartition("-")[0] != source:
            continue
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield Record.from_json(line)


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """Load ``manifest.json`` of a built dataset.

    Raises:
        InputError: No manifest (the directory is not a finished build) or it is not JSON.
    """
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        raise InputError(f"{out_dir} has no {MANIFEST_NAME}: run `rscovlm data build` first")
    manifest = safe_read.read_json(path, "manifest")
    if not isinstance(manifest, dict):
        raise InputError(f"manifest {path} is not a JSON object")
    return manifest
