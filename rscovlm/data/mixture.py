"""The weighted mixture: a recipe of datasets -> a deterministic, shardable, resumable stream.

A recipe lists entries, each drawing from one record source:

- ``name*K``: ``K`` full passes over the source per epoch (``K`` a positive integer);
- ``name%P``: a seeded ``P`` % subset of the source (``0 < P <= 100``), fixed for the whole run,
  as the original RSCoVLM loader kept it;
- ``name`` alone: one pass; or a mapping ``{name: ..., weight: W}`` with an explicit weight.

All three are one number, the entry's *weight* ``w`` (``*K`` is ``K``, ``%P`` is ``P/100``): per
epoch the entry contributes ``round(w·n)`` samples of its ``n`` records, ``⌊w⌋`` full passes
plus a seeded subset (fixed for the run) for the fraction. :func:`parse_entry` is the one parser
of these strings, with exact errors.

An epoch is the concatenation of every entry's samples, permuted by
``default_rng([seed, epoch])``; rank ``r`` of ``world_size`` takes positions ``r, r + W, …`` of
that order, so ranks are disjoint, and with ``drop_last`` every rank gets ``⌊N/W⌋`` samples
(otherwise the order wraps around to fill the last round, and ranks may share a sample).
Epochs run ``epochs`` times or forever (``epochs=None``). :meth:`Mixture.state_dict` after a
sample restarts exactly at the next one; every sample carries a ``key`` (epoch, global position)
from which the loader seeds its render, so a resumed or re-sharded run renders identically.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rscovlm.errors import InputError

__all__ = ["Mixture", "MixtureEntry", "MixtureItem", "parse_entry"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_SPEC_RE = re.compile(r"^(?P<name>[^*%]+?)\s*(?:(?P<op>[*%])\s*(?P<num>.*))?$")


@dataclass(frozen=True)
class MixtureEntry:
    """One entry of a recipe.

    Attributes:
        name: Unique entry name (selects per-entry render options).
        weight: Samples per epoch as a multiple of the source size (``*K`` = K, ``%P`` = P/100).
        source: The record source it draws from (default: ``name``); two entries may share one
            (``dota_poly`` and ``dota_hbb`` render the same records differently).
        spec: The entry as written, for reports.
        render: Render-option overrides for this entry (see :mod:`rscovlm.data.policy`).
    """

    name: str
    weight: float
    source: str = ""
    spec: str = ""
    render: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise InputError(f"mixture entry name {self.name!r} must match {_NAME_RE.pattern}")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise InputError(f"mixture entry {self.name!r}: weight must be > 0, got {self.weight}")
        object.__setattr__(self, "source", self.source or self.name)
        object.__setattr__(self, "spec", self.spec or self.name)


def parse_entry(spec: str) -> tuple[str, float]:
    """``(name, weight)`` of ``name``, ``name*K`` or ``name%P``.

    Raises:
        InputError: Empty or malformed, a repeat that is not a positive integer, or a percentage
            outside ``(0, 100]`` (the message quotes the entry).

    Examples:
        >>> parse_entry("dota_poly_trainval512*25"), parse_entry("llava_onevision_vl%10")
        (('dota_poly_trainval512', 25.0), ('llava_onevision_vl', 0.1))
    """
    text = spec.strip() if isinstance(spec, str) else ""
    match = _SPEC_RE.match(text)
    if not text or match is None:
        raise InputError(f"mixture entry {spec!r}: expected name, name*K or name%P")
    name, op, num = match.group("name").strip(), match.group("op"), match.group("num")
    if not _NAME_RE.match(name):
        raise InputError(f"mixture entry {spec!r}: bad dataset name {name!r}")
    if op is None:
        return name, 1.0
    num = (num or "").strip()
    if op == "*":
        if not re.fullmatch(r"[0-9]+", num) or int(num) == 0:
            raise InputError(f"mixture entry {spec!r}: repeat K must be a positive integer")
        return name, float(int(num))
    try:
        percent = float(num)
    except ValueError:
        percent = math.nan
    if not (0 < percent <= 100):
        raise InputError(f"mixture entry {spec!r}: percentage P must be in (0, 100]")
    return name, percent / 100.0


@dataclass(frozen=True)
class MixtureItem:
    """One sample of the stream.

    Attributes:
        entry: The mixture entry's name.
        source: Its record source.
        index: The record's index within the source.
        epoch: The epoch it belongs to.
        position: Its position in this rank's order of the epoch.
        key: ``(epoch, global position)``: unique per sample, independent of the sharding.
    """

    entry: str
    source: str
    index: int
    epoch: int
    position: int
    key: tuple[int, int]


class Mixture:
    """The stream of samples of a recipe (see the module docstring).

    Args:
        entries: The recipe's entries (unique names).
        sizes: Number of records of each source.
        seed: Seed of the subsets and of every epoch's order.
        rank: This process's rank.
        world_size: Number of ranks.
        epochs: Epochs to run; ``None`` for an endless stream.
        drop_last: Give every rank ``⌊N/W⌋`` samples (disjoint); else wrap to ``⌈N/W⌉``.
        shuffle: Permute each epoch (off: entry order, for inspection).

    Raises:
        InputError: Duplicate entry names, an unknown or empty source, a bad rank.
    """

    def __init__(
        self,
        entries: Sequence[MixtureEntry],
        sizes: Mapping[str, int],
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epochs: int | None = 1,
        drop_last: bool = True,
        shuffle: bool = True,
    ) -> None:
        names = [e.name for e in entries]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputError(f"mixture entry names must be unique, repeated: {', '.join(dupes)}")
        if not entries:
            raise InputError("a mixture needs at least one entry")
        for e in entries:
            if e.source not in sizes:
                raise InputError(f"mixture entry {e.name!r}: source {e.source!r} has no records")
            if int(sizes[e.source]) <= 0:
                raise InputError(f"mixture entry {e.name!r}: source {e.source!r} is empty")
        if not (0 <= rank < world_size):
            raise InputError(f"rank {rank} is not in [0, world_size={world_size})")
        if epochs is not None and epochs < 1:
            raise InputError(f"epochs must be >= 1 or None (endless), got {epochs}")
        self.entries = list(entries)
        self.sizes = {e.source: int(sizes[e.source]) for e in entries}
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.epochs, self.drop_last, self.shuffle = epochs, drop_last, shuffle
        self._base = self._base_order()
        self.total = len(self._base[0])
        if self.total < self.world_size:
            raise InputError(f"{self.total} samples per epoch cannot feed {world_size} ranks")
        self._epoch, self._position = 0, 0
        self._cache: tuple[int, NDArray[np.int64]] | None = None

    # --- plan ---------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Samples per epoch of each entry (all ranks together)."""
        out = {}
        for e in self.entries:
            out[e.name] = round(e.weight * self.sizes[e.source])
        return out

    def _base_order(self) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """(entry id, record index) of every sample of an epoch, in entry order."""
        ids, idx = [], []
        counts = self.counts()
        for k, e in enumerate(self.entries):
            n = self.sizes[e.source]
            full, rest = divmod(counts[e.name], n)
            parts = [np.arange(n, dtype=np.int64)] * full
            if rest:
                # The subset is fixed for the run, as the original selected it once at load.
                rng = np.random.default_rng([self.seed, zlib.crc32(e.name.encode()), 0x5B5E7])
                parts.append(np.sort(rng.choice(n, size=rest, replace=False)).astype(np.int64))
            chunk = np.concatenate(parts) if parts else np.zeros(0, np.int64)
            ids.append(np.full(len(chunk), k, dtype=np.int32))
            idx.append(chunk)
        return np.concatenate(ids), np.concatenate(idx)

    def __len__(self) -> int:
        """Samples per epoch on this rank."""
        if self.drop_last:
            return self.total // self.world_size
        return -(-self.total // self.world_size)

    def _order(self, epoch: int) -> NDArray[np.int64]:
        """Global positions (into the epoch's permuted order) of this rank's samples."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        positions = np.arange(len(self), dtype=np.int64) * self.world_size + self.rank
        self._cache = (epoch, positions % self.total)
        return self._cache[1]

    def _permutation(self, epoch: int) -> NDArray[np.int64]:
        if not self.shuffle:
            return np.arange(self.total, dtype=np.int64)
        return np.random.default_rng([self.seed, epoch, 0xE90C]).permutation(self.total)

    def epoch_items(self, epoch: int) -> list[MixtureItem]:
        """Every sample of ``epoch`` on this rank, in order (a plan; does not move the state)."""
        return list(self._iter_epoch(epoch, 0))

    def _iter_epoch(self, epoch: int, start: int) -> Iterator[MixtureItem]:
        perm = self._permutation(epoch)
        ids, idx = self._base
        for position in range(start, len(self)):
            glob = int(self._order(epoch)[position])
            j = int(perm[glob])
            e = self.entries[int(ids[j])]
            yield MixtureItem(e.name, e.source, int(idx[j]), epoch, position, (epoch, glob))

    # --- stream and state -----------------------------------------------------------------------

    def __iter__(self) -> Iterator[MixtureItem]:
        """Samples from the current state on; the state advances as samples are taken."""
        while self.epochs is None or self._epoch < self.epochs:
            epoch = self._epoch
            for item in self._iter_epoch(epoch, self._position):
                self._position = item.position + 1
                yield item
            self._epoch, self._position = epoch + 1, 0

    def fingerprint(self) -> str:
        """A digest of everything that fixes the order (entries, sizes, seed, sharding)."""
        plan = {
            "entries": [[e.name, e.source, e.weight] for e in self.entries],
            "sizes": self.sizes,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "drop_last": self.drop_last,
            "shuffle": self.shuffle,
        }
        return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]

    def state_dict(self) -> dict[str, Any]:
        """Where the stream stands: the next sample is ``(epoch, position)``."""
        return {"epoch": self._epoch, "position": self._position, "fingerprint": self.fingerprint()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume at the sample after the one the state was taken at.

        Raises:
            InputError: The state belongs to another plan (entries, sizes, seed or sharding
                differ) or is out of range.
        """
        if state.get("fingerprint") != self.fingerprint():
            raise InputError(
                "mixture state does not match this mixture (entries, sizes, seed or sharding "
                "differ)"
            )
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or not 0 <= position <= len(self):
            raise InputError(f"mixture state out of range: epoch {epoch}, position {position}")
        self._epoch, self._position = epoch, position

    # --- report -----------------------------------------------------------------------------------

    def summary(self) -> list[dict[str, Any]]:
        """Per entry: spec, source, source size, weight, samples per epoch and proportion."""
        counts = self.counts()
        return [
            {
                "entry": e.name,
                "spec": e.spec,
                "source": e.source,
                "records": self.sizes[e.source],
                "weight": e.weight,
                "samples": counts[e.name],
                "proportion": counts[e.name] / self.total,
            }
            for e in self.entries
        ]

    def format_summary(self) -> str:
        """:meth:`summary` as an aligned text table with a total line."""
        rows = self.summary()
        width = max(len(r["spec"]) for r in rows)
        lines = [f"{'entry':<{width}}  {'records':>10}  {'samples':>10}  share"]
        for r in rows:
            lines.append(
                f"{r['spec']:<{width}}  {r['records']:>10}  {r['samples']:>10}  "
                f"{100 * r['proportion']:5.1f}%"
            )
        lines.append(f"{'total':<{width}}  {'':>10}  {self.total:>10}  100.0%")
        return "\n".join(lines)
