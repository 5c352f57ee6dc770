"""The validated build: run a recipe's sources, validate every record, write shards + manifest.

For each source of the recipe, its adapter's items (records and unreadable entries, in the
adapter's stable order) are cut into chunks of ``shard_size``; each chunk is validated and
written by one of ``workers`` processes as ``shards/<source>-<k>.jsonl`` (kept records),
``shards/<source>-<k>.rejected.jsonl`` and, last, ``shards/<source>-<k>.done.json`` (counts plus
a fingerprint of the chunk's input and the validation settings). A re-run skips every chunk whose
done file carries the same fingerprint, so an interrupted build resumes where it stopped.

The manifest counts, per source, ``read`` items = ``kept`` + ``rejected``, and the kept records
per split, task and class; ``rejected.jsonl`` lists every rejected entry with its source file,
reason code and reason. See :mod:`rscovlm.data.validate` for the checks.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rscovlm import __version__
from rscovlm.data.recipe import Recipe, SourceConfig
from rscovlm.data.record import BadEntry, Record
from rscovlm.data.shards import (
    MANIFEST_NAME,
    REJECTED_NAME,
    SHARD_DIR,
    write_jsonl,
)
from rscovlm.data.sources import get_adapter
from rscovlm.data.validate import Rejection, validate_record
from rscovlm.files import atomic_write_text
from rscovlm.formats.classes import get_classes

__all__ = ["BuildResult", "build_dataset"]

FORMAT = "rscovlm-records/1"


@dataclass
class BuildResult:
    """What a build did: the manifest it wrote, and how many shards it (re)wrote or skipped."""

    manifest: dict[str, Any]
    written: int
    skipped: int


def _class_names(src: SourceConfig, item: Record) -> list[str] | None:
    spec = src.classes or item.meta.get("class_list") or get_adapter(src.adapter).class_list
    if isinstance(spec, list):
        return spec
    if isinstance(spec, str):
        return list(get_classes(spec))
    classes = item.meta.get("classes")
    return list(classes) if isinstance(classes, list) else None


def _process_shard(
    shard: str, items: list[str], root: str, max_pixels: int, fingerprint: str, out: str
) -> dict[str, Any]:
    """Worker: validate one chunk, write its kept records, rejections and done file."""
    src = SourceConfig.model_validate_json(items[0])
    kept: list[Record] = []
    rejected: list[dict[str, Any]] = []
    counts: dict[str, Counter[str]] = {k: Counter() for k in ("splits", "tasks", "classes")}
    reasons: Counter[str] = Counter()
    for line in items[1:]:
        data = json.loads(line)
        if data.pop("_bad", False):
            bad = BadEntry.model_validate(data)
            rej, uid, file = (
                Rejection("bad_entry", bad.reason),
                f"{bad.source}/{bad.id}",
                bad.source_file,
            )
        else:
            rec = Record.model_validate(data)
            result = validate_record(rec, root, max_pixels, _class_names(src, rec))
            uid, file = rec.uid, rec.source_file
            if isinstance(result, Record):
                kept.append(result)
                counts["splits"][result.split] += 1
                counts["tasks"][result.task] += 1
                counts["classes"].update(o.class_name for o in result.objects)
                continue
            rej = result
        reasons[rej.code] += 1
        rejected.append(
            {"id": uid, "source": src.name, "source_file": file, "code": rej.code,
             "reason": rej.reason}
        )  # fmt: skip
    shard_dir = Path(out) / SHARD_DIR
    write_jsonl(shard_dir / f"{shard}.jsonl", kept)
    write_jsonl(shard_dir / f"{shard}.rejected.jsonl", rejected)
    done = {
        "shard": shard,
        "source": src.name,
        "fingerprint": fingerprint,
        "read": len(items) - 1,
        "kept": len(kept),
        "rejected": len(rejected),
        **{k: dict(sorted(v.items())) for k, v in counts.items()},
        "reasons": dict(sorted(reasons.items())),
    }
    atomic_write_text(shard_dir / f"{shard}.done.json", json.dumps(done, indent=1))
    return done


def _chunks(src: SourceConfig, root: Path, size: int) -> Iterator[list[str]]:
    """The source's items as JSON lines, ``size`` per chunk; duplicate ids become bad entries."""
    fn = get_adapter(src.adapter).fn
    seen: set[str] = set()
    chunk: list[str] = []
    for item in fn(root, src.path, source=src.name, split=src.split, **src.options):
        if isinstance(item, Record) and item.id in seen:
            item = BadEntry(id=item.id, source=src.name, source_file=item.source_file,
                            reason="duplicate record id")  # fmt: skip
        if isinstance(item, Record):
            seen.add(item.id)
            chunk.append(item.to_json())
        else:
            chunk.append(json.dumps({**item.model_dump(), "_bad": True}))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
            text=True, timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def build_dataset(
    recipe: Recipe,
    root: str | Path,
    out_dir: str | Path,
    *,
    workers: int = 2,
    on_shard: Callable[[dict[str, Any], bool], None] | None = None,
) -> BuildResult:
    """Run ``recipe`` over the data ``root`` and write the built dataset to ``out_dir``.

    Args:
        recipe: The validated recipe.
        root: Its resolved data root.
        out_dir: Output folder (created; finished shards inside are reused).
        workers: Worker processes validating shards (``0``: validate in this process).
        on_shard: Called with each shard's done summary and whether it was skipped (progress).

    Returns:
        The manifest and the numbers of written and skipped shards.
    """
    root, out = Path(root).resolve(), Path(out_dir)
    (out / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    settings = json.dumps({"root": str(root), "max_pixels": recipe.max_pixels, "v": __version__})
    pool = None
    if workers > 0:
        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded parent (progress bar)
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    dones: dict[str, dict[str, Any]] = {}
    pending: list[Future[dict[str, Any]]] = []
    written = skipped = 0

    def collect(block: bool) -> None:
        while pending and (block or pending[0].done() or len(pending) > 2 * max(workers, 1)):
            done = pending.pop(0).result()
            dones[done["shard"]] = done
            if on_shard is not None:
                on_shard(done, False)

    try:
        for src in recipe.sources:
            for k, chunk in enumerate(_chunks(src, root, recipe.shard_size)):
                shard = f"{src.name}-{k:05d}"
                items = [src.model_dump_json(), *chunk]
                digest = hashlib.sha256("\n".join([settings, *items]).encode()).hexdigest()
                done_file = out / SHARD_DIR / f"{shard}.done.json"
                if done_file.is_file() and (out / SHARD_DIR / f"{shard}.jsonl").is_file():
                    previous = json.loads(done_file.read_text(encoding="utf-8"))
                    if previous.get("fingerprint") == digest:
                        dones[shard] = previous
                        skipped += 1
                        if on_shard is not None:
                            on_shard(previous, True)
                        continue
                done_file.unlink(missing_ok=True)
                args = (shard, items, str(root), recipe.max_pixels, digest, str(out))
                written += 1
                if pool is None:
                    dones[shard] = _process_shard(*args)
                    if on_shard is not None:
                        on_shard(dones[shard], False)
                else:
                    pending.append(pool.submit(_process_shard, *args))
                    collect(block=False)
        collect(block=True)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    _remove_stale(out, set(dones))
    manifest = _manifest(recipe, root, dones)
    rejected = []
    for shard in sorted(dones):
        path = out / SHARD_DIR / f"{shard}.rejected.jsonl"
        rejected.append(path.read_text(encoding="utf-8") if path.is_file() else "")
    atomic_write_text(out / REJECTED_NAME, "".join(rejected))
    atomic_write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    return BuildResult(manifest, written, skipped)


def _remove_stale(out: Path, shards: set[str]) -> None:
    """Delete shard files of an earlier build that this recipe no longer produces."""
    for path in (out / SHARD_DIR).iterdir():
        name = path.name.split(".", 1)[0]
        if name not in shards:
            path.unlink()


def _manifest(recipe: Recipe, root: Path, dones: dict[str, dict[str, Any]]) -> dict[str, Any]:
    sources: dict[str, dict[str, Any]] = {}
    for src in recipe.sources:
        entry: dict[str, Any] = {"adapter": src.adapter, "read": 0, "kept": 0, "rejected": 0}
        merged: dict[str, Counter[str]] = {
            k: Counter() for k in ("splits", "tasks", "classes", "reasons")
        }
        for shard in sorted(s for s, d in dones.items() if d["source"] == src.name):
            done = dones[shard]
            for key in ("read", "kept", "rejected"):
                entry[key] += done[key]
            for key, counter in merged.items():
                counter.update(done[key])
        entry.update({k: dict(sorted(v.items())) for k, v in merged.items()})
        sources[src.name] = entry
    totals = {k: sum(s[k] for s in sources.values()) for k in ("read", "kept", "rejected")}
    return {
        "format": FORMAT,
        "name": recipe.name,
        "code_version": {"rscovlm": __version__, "git_commit": _git_commit()},
        "recipe": recipe.model_dump(mode="json"),
        "data_root": str(root),
        "totals": totals,
        "sources": sources,
        "shards": [
            {
                "file": f"{SHARD_DIR}/{s}.jsonl",
                "source": dones[s]["source"],
                "records": dones[s]["kept"],
            }
            for s in sorted(dones)
        ],
    }
