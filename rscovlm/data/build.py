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
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscovlm import __version__, safe_read
from rscovlm.data.recipe import Recipe, SourceConfig
from rscovlm.data.record import BadEntry, Record
from rscovlm.data.shards import (
    MANIFEST_NAME,
    REJECTED_NAME,
    SHARD_DIR,
    write_jsonl,
)
from rscovlm.data.sources import get_adapter
from rscovlm.data.sources._common import Item
from rscovlm.data.validate import Rejection, validate_record
from rscovlm.errors import InputError, RscovlmError
from rscovlm.files import atomic_write_text
from rscovlm.formats.classes import get_classes
from rscovlm.safe_read import check_inside, confine, printable

__all__ = ["BuildResult", "build_dataset"]

FORMAT = "rscovlm-records/1"


@dataclass
class BuildResult:
    """What a build did: the manifest it wrote, and how many shards it (re)wrote or skipped."""

    manifest: dict[str, Any]
    written: int
    skipped: int
    problems: list[str] = field(default_factory=list)
    """Sources that could not be read as a whole (missing or empty path, an adapter that stopped):
    ``"<source>: <reason>"``. They are in the counts as bad entries too; the CLI exits 2."""


def _class_names(src: SourceConfig, item: Record) -> list[str] | None:
    spec = src.classes or item.meta.get("class_list") or get_adapter(src.adapter).class_list
    if isinstance(spec, list):
        return spec
    if isinstance(spec, str):
        return list(get_classes(spec))
    classes = item.meta.get("classes")
    return list(classes) if isinstance(classes, list) else None


def _process_shard(
    shard: str,
    items: list[str],
    root: str,
    max_pixels: int,
    fingerprint: str,
    out: str,
    follow_symlinks: bool = False,
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
            result = validate_record(
                rec, root, max_pixels, _class_names(src, rec), follow_symlinks=follow_symlinks
            )
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


ADAPTER_ERRORS = (RscovlmError, OSError, ValueError, TypeError, KeyError, RecursionError)
"""What a hostile file can make an adapter raise mid-source; the build reports it as a bad entry
of that source and goes on with the next source, instead of losing the whole build."""


def _bad_entry(src: SourceConfig, entry_id: str, source_file: str, reason: str) -> BadEntry:
    """A bad entry whose text fields are safe to write as UTF-8 (file names may not be)."""
    return BadEntry(
        id=printable(entry_id),
        source=src.name,
        source_file=printable(source_file),
        reason=printable(reason),
    )


def _adapter_items(
    src: SourceConfig, root: Path, follow_symlinks: bool, problems: list[str]
) -> Iterator[Item]:
    """The source's items, every file read confined to the data root.

    A source whose path is missing gives one bad entry, and so does one that yields nothing
    (an empty folder, a file without entries): a missing dataset must show in the counts, not
    build an empty dataset that looks like success. An adapter that fails part-way (a hostile
    file it could not survive) ends its source with a bad entry naming the failure.
    """
    outside = check_inside(src.path, root, follow_symlinks=follow_symlinks) if src.path else ""
    if outside:
        problems.append(f"{src.name}: source path {outside}")
        yield _bad_entry(src, src.path, src.path, f"source path {outside}")
        return
    if src.path and not (root / src.path).exists() and src.adapter != "synthetic":
        problems.append(f"{src.name}: source path {printable(src.path)!r} does not exist")
        yield _bad_entry(src, src.path, src.path, f"source path {src.path!r} does not exist")
        return
    items = get_adapter(src.adapter).fn(
        root, src.path, source=src.name, split=src.split, **src.options
    )
    count = 0
    while True:
        with confine(root, follow_symlinks=follow_symlinks):
            try:
                item = next(items)
            except StopIteration:
                break
            except ADAPTER_ERRORS as exc:
                reason = f"the adapter stopped: {type(exc).__name__}: {exc}".splitlines()[0]
                problems.append(f"{src.name}: {printable(reason[:300])}")
                yield _bad_entry(src, f"{src.name}:stopped", src.path, reason[:300])
                return
        count += 1
        yield item
    if count == 0:
        what = repr(src.path) if src.path else "the data root"
        problems.append(f"{src.name}: no entries found in {printable(what)}")
        yield _bad_entry(src, src.path or src.name, src.path, f"no entries found in {what}")


def _chunks(
    src: SourceConfig,
    root: Path,
    size: int,
    follow_symlinks: bool = False,
    problems: list[str] | None = None,
) -> Iterator[list[str]]:
    """The source's items as JSON lines, ``size`` per chunk; duplicate ids become bad entries."""
    seen: set[str] = set()
    chunk: list[str] = []
    for item in _adapter_items(src, root, follow_symlinks, [] if problems is None else problems):
        if isinstance(item, Record) and item.id in seen:
            item = BadEntry(id=item.id, source=src.name, source_file=item.source_file,
                            reason="duplicate record id")  # fmt: skip
        line = None
        if isinstance(item, Record):
            try:
                line = item.to_json()
            except ValueError:  # pydantic's serializer: a file name that is not UTF-8
                item = _bad_entry(
                    src, item.id, item.source_file, "a path in the record is not valid UTF-8"
                )
            else:
                seen.add(item.id)
        if line is None:
            bad = _bad_entry(src, item.id, item.source_file, item.reason)  # type: ignore[union-attr]
            line = json.dumps({**bad.model_dump(), "_bad": True})
        chunk.append(line)
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
    follow_symlinks: bool = False,
) -> BuildResult:
    """Run ``recipe`` over the data ``root`` and write the built dataset to ``out_dir``.

    Args:
        recipe: The validated recipe.
        root: Its resolved data root.
        out_dir: Output folder (created; finished shards inside are reused).
        workers: Worker processes validating shards (``0``: validate in this process).
        on_shard: Called with each shard's done summary and whether it was skipped (progress).
        follow_symlinks: Read files and images through symlinks that leave the data root
            (default: refuse them, every path resolved against the root).

    Returns:
        The manifest and the numbers of written and skipped shards.
    """
    root, out = Path(root).resolve(), Path(out_dir)
    for folder in (out, out / SHARD_DIR):
        if folder.exists() and not folder.is_dir():
            raise InputError(f"--out {out}: {folder} is a file, not a folder")
    (out / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    settings = json.dumps(
        {"root": str(root), "max_pixels": recipe.max_pixels, "v": __version__}
        | ({"follow_symlinks": True} if follow_symlinks else {})
    )
    pool = None
    if workers > 0:
        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded parent (progress bar)
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    dones: dict[str, dict[str, Any]] = {}
    pending: list[Future[dict[str, Any]]] = []
    written = skipped = 0
    problems: list[str] = []

    def collect(block: bool) -> None:
        while pending and (block or pending[0].done() or len(pending) > 2 * max(workers, 1)):
            done = pending.pop(0).result()
            dones[done["shard"]] = done
            if on_shard is not None:
                on_shard(done, False)

    try:
        for src in recipe.sources:
            chunks = _chunks(src, root, recipe.shard_size, follow_symlinks, problems)
            for k, chunk in enumerate(chunks):
                shard = f"{src.name}-{k:05d}"
                items = [src.model_dump_json(), *chunk]
                digest = hashlib.sha256("\n".join([settings, *items]).encode()).hexdigest()
                done_file = out / SHARD_DIR / f"{shard}.done.json"
                if done_file.is_file() and (out / SHARD_DIR / f"{shard}.jsonl").is_file():
                    try:
                        previous = safe_read.read_json(done_file, "done file")
                    except InputError:
                        previous = {}  # a damaged done file: the shard is simply redone
                    if isinstance(previous, dict) and previous.get("fingerprint") == digest:
                        dones[shard] = previous
                        skipped += 1
                        if on_shard is not None:
                            on_shard(previous, True)
                        continue
                done_file.unlink(missing_ok=True)
                args = (
                    shard, items, str(root), recipe.max_pixels, digest, str(out), follow_symlinks
                )  # fmt: skip
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
    return BuildResult(manifest, written, skipped, problems)


_SHARD_FILE = re.compile(r"^(?P<shard>[A-Za-z0-9_.]+-\d{5})\.(jsonl|rejected\.jsonl|done\.json)$")
_TEMP_FILE = re.compile(r"^\.[A-Za-z0-9_.]+-\d{5}\.(jsonl|rejected\.jsonl|done\.json)\..*\.tmp$")


def _remove_stale(out: Path, shards: set[str]) -> None:
    """Delete shard files of an earlier build that this recipe no longer produces.

    Only files this build writes (``<source>-<k>.jsonl``, ``.rejected.jsonl``, ``.done.json``
    and their temporary files) are ever deleted: anything else a user put in ``shards/`` stays.
    """
    for path in (out / SHARD_DIR).iterdir():
        if not path.is_file() or path.is_symlink():
            continue
        if _TEMP_FILE.match(path.name):
            path.unlink()
            continue
        match = _SHARD_FILE.match(path.name)
        if match and match["shard"] not in shards:
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
