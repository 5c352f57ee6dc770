"""The training data stream: built shards → mixture → rendered conversations → model tensors.

:func:`build_data_stream` wires the online data engine to the trainer: a
:class:`~rscovlm.data.mixture.Mixture` over the built shards (sharded by rank, endless — the
trainer counts steps), a :class:`~rscovlm.data.loader.ConversationLoader` rendering each record
at fetch time with the mixture's policy, and :func:`rscovlm.model.encoding.encode` turning each
conversation into ``input_ids`` / assistant-only ``labels`` / vision tensors. Samples longer
than ``train.max_length`` are dropped or re-rendered at a lower band (``data.overlong``,
:mod:`rscovlm.train.tokenize`), never cut. Nothing here tokenises or renders by itself.

A procedural dataset (``data.build_recipe``) is built into ``data.built`` on first use by rank
0 while the other ranks wait.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rscovlm.errors import InputError
from rscovlm.train.config import TrainConfig
from rscovlm.train.tokenize import (
    OverlongFitter,
    OverlongMode,
    Rerender,
    encode_sample,
    record_rerenderer,
)

__all__ = ["Drops", "EncodedStream", "build_data_stream", "ensure_built"]


@dataclass
class Drops:
    """Samples of one source left out for one reason (``kind``), with an example of it."""

    source: str
    kind: str
    """``over-long`` (longer than ``train.max_length`` at its lowest band), ``unencodable``
    (the encoder refused the conversation) or ``unreadable`` (the loader could not read the
    record or its images)."""
    count: int = 0
    example: str = ""
    """The first such sample's uid and reason."""
    longest: int = 0
    """Over-long only: the longest of them, in tokens (what ``train.max_length`` would need)."""


def _source_of(uid: str) -> str:
    """The source of a sample uid (``source/id``, or ``source[index]`` before the record was
    read)."""
    match = re.match(r"[^/\[]+", uid)
    return match.group(0) if match else "?"


class EncodedStream:
    """Samples of a :class:`~rscovlm.data.loader.ConversationLoader`, encoded for the model.

    A conversation the encoder cannot take (e.g. a video part) is skipped and counted in
    :attr:`skipped`, never silently dropped. A sample longer than ``max_length`` is never cut:
    ``overlong`` says whether it is dropped or re-rendered at a lower pixel band
    (:class:`~rscovlm.train.tokenize.OverlongFitter`); :meth:`counts` has the numbers the
    trainer logs.
    """

    def __init__(
        self,
        loader: Any,
        tokenizer: Any,
        image_processor: Any,
        family: str,
        *,
        max_length: int | None = None,
        overlong: OverlongMode = "drop",
        rerender: Rerender | None = None,
    ) -> None:
        self.loader = loader
        self.tokenizer, self.image_processor, self.family = tokenizer, image_processor, family
        self.skipped: list[tuple[str, str]] = []
        self.fitter = OverlongFitter(self._encode, max_length, overlong, rerender)
        self.max_length = max_length
        self.seen: dict[str, int] = {}
        """Samples drawn per source by this process (kept or not; unreadable ones included)."""
        self._drops: dict[tuple[str, str], Drops] = {}
        self._loader_skips_read = 0

    def _tally(self, source: str, kind: str, example: str, length: int = 0) -> None:
        drops = self._drops.setdefault((source, kind), Drops(source, kind, example=example))
        drops.count += 1
        drops.longest = max(drops.longest, length)

    def __len__(self) -> int:
        return len(self.loader.mixture)

    def _encode(self, sample: Any) -> dict[str, Any]:
        return encode_sample(sample, self.tokenizer, self.image_processor, self.family)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for sample in self.loader:
            uid = str(sample.conversation.meta.get("uid", "?"))
            item = getattr(sample, "item", None)
            source = item.source if item is not None else _source_of(uid)
            self.seen[source] = self.seen.get(source, 0) + 1
            try:
                encoded = self.fitter(sample)
            except InputError as exc:
                self.skipped.append((uid, str(exc)))
                self._tally(source, "unencodable", f"{uid}: {exc}")
                continue
            if encoded is None:
                length = self.fitter.last_length
                self._tally(source, "over-long", f"{uid}: {length} tokens", length)
                continue
            yield encoded

    def drops(self) -> list[Drops]:
        """Every (source, reason) with samples left out so far, in order of first occurrence;
        the loader's unreadable records included."""
        report = getattr(self.loader, "report", None)
        skips = report.skips if report is not None else []
        for uid, reason in skips[self._loader_skips_read :]:
            source = _source_of(uid)
            self.seen[source] = self.seen.get(source, 0) + 1
            self._tally(source, "unreadable", f"{uid}: {reason}")
        self._loader_skips_read = len(skips)
        return list(self._drops.values())

    def sources(self) -> list[dict[str, Any]]:
        """Per mixture entry: source, records, samples per epoch, share (the start-up summary)."""
        return self.loader.mixture.summary()

    def counts(self) -> dict[str, int]:
        """Samples this process skipped (unencodable), dropped as over-long, re-rendered."""
        return {
            "skipped": len(self.skipped),
            "overlong_dropped": self.fitter.counts.dropped,
            "rerendered": self.fitter.counts.rerendered,
        }

    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)


def ensure_built(cfg: TrainConfig) -> Path:
    """The built dataset directory, building ``data.build_recipe`` into it when it has none.

    Procedural sources write their images under ``<built>_src``.

    Raises:
        InputError: No ``data.built``, or nothing built there and no recipe to build.
    """
    from rscovlm.data import build_dataset, load_recipe
    from rscovlm.data.shards import MANIFEST_NAME

    if cfg.data.built is None:
        raise InputError("data.built: give the directory of the built dataset")
    built = Path(cfg.data.built)
    if (built / MANIFEST_NAME).is_file():
        return built
    if cfg.data.build_recipe is None:
        raise InputError(f"data.built: {built} is not a built dataset (run `rscovlm data build`)")
    root = built.with_name(built.name + "_src")
    root.mkdir(parents=True, exist_ok=True)
    recipe, resolved = load_recipe(cfg.data.build_recipe, root=root)
    build_dataset(recipe, resolved, built, workers=0)
    return built


def build_data_stream(cfg: TrainConfig, loaded: Any, rank: int, world_size: int) -> EncodedStream:
    """This rank's encoded sample stream for ``cfg`` and the loaded model's tokenizer.

    Raises:
        InputError: No built data, a mixture entry whose source has no records, or a mixture
            rendered for another model family than the model's.
    """
    from rscovlm.data.loader import ConversationLoader, ShardStore
    from rscovlm.data.mixture import Mixture
    from rscovlm.data.shards import read_manifest

    mixture_cfg = cfg.data.mixture_config()
    if mixture_cfg.family != loaded.family:
        raise InputError(
            f"data.mixture renders for {mixture_cfg.family} but the model is {loaded.family}: "
            "set the mixture's family to the model's (coordinates differ between families)"
        )
    built = ensure_built(cfg)
    store = ShardStore(built)
    mixture = Mixture(
        mixture_cfg.entries(),
        store.sizes(),
        seed=mixture_cfg.seed,
        rank=rank,
        world_size=world_size,
        epochs=None,
    )
    root = read_manifest(built).get("data_root", ".")
    policy = mixture_cfg.policy()
    loader = ConversationLoader(mixture, store, policy, root, num_workers=cfg.train.num_workers)
    return EncodedStream(
        loader,
        loaded.tokenizer,
        loaded.image_processor,
        loaded.family,
        max_length=cfg.train.max_length,
        overlong=cfg.data.overlong,
        rerender=record_rerenderer(store, policy, root, mixture.seed),
    )
