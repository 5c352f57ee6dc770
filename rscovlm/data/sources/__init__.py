"""Source adapters: one module per dataset family, and the registry the build reads.

Each adapter turns a dataset in its native layout (``shared/DATASETS.md``) into
:class:`~rscovlm.data.record.Record` items plus a :class:`~rscovlm.data.record.BadEntry` for
every entry it cannot read, in a stable order. A recipe names adapters by the keys of
:data:`ADAPTERS`; the registry is closed (no import paths in recipes).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rscovlm.errors import InputError

if TYPE_CHECKING:
    from rscovlm.data.record import BadEntry, Record

__all__ = ["ADAPTERS", "AdapterSpec", "get_adapter", "run_adapter"]

Adapter = Callable[..., Iterator["Record | BadEntry"]]


@dataclass(frozen=True)
class AdapterSpec:
    """A registered adapter: where its function lives, what it reads, its default class list.

    The function is imported on first use (``fn``), so importing one source module (say
    :mod:`rscovlm.data.sources.dota` for ``rscovlm eval det``) does not import them all.
    """

    where: str
    reads: str
    class_list: str | None = None

    @property
    def fn(self) -> Adapter:
        """The adapter function (``module:function`` of :attr:`where`)."""
        module, _, name = self.where.partition(":")
        fn: Adapter = getattr(importlib.import_module(module), name)
        return fn


ADAPTERS: dict[str, AdapterSpec] = {
    "dota": AdapterSpec(
        "rscovlm.data.sources.dota:iter_dota_records",
        "DOTA v1.0/1.5/2.0 images + labelTxt",
        "dota1.0",
    ),
    "dior": AdapterSpec(
        "rscovlm.data.sources.dior_r:iter_dior_records",
        "DIOR / DIOR-R VOC XML (hbb or obb)",
        "dior",
    ),
    "hrsc": AdapterSpec(
        "rscovlm.data.sources.hrsc:iter_hrsc_records", "HRSC2016 XML, oriented ships", "hrsc"
    ),
    "fair1m": AdapterSpec(
        "rscovlm.data.sources.fair1m:iter_fair1m_records", "FAIR1M images + labelXml", "fair1m1.0"
    ),
    "coco": AdapterSpec("rscovlm.data.sources.coco:iter_coco_records", "COCO detection json"),
    "lrs_vqa": AdapterSpec(
        "rscovlm.data.sources.lrs_vqa:iter_lrs_vqa_records", "LRS-VQA benchmark / training json(l)"
    ),
    "mme_realworld": AdapterSpec(
        "rscovlm.data.sources.mme_realworld:iter_mme_realworld_records", "MME-RealWorld RS json"
    ),
    "rsvqa": AdapterSpec(
        "rscovlm.data.sources.rsvqa:iter_rsvqa_records", "RSVQA-LR / RSVQA-HR split json files"
    ),
    "rsvg": AdapterSpec(
        "rscovlm.data.sources.rsvg:iter_rsvg_records", "DIOR-RSVG / RSVG XML with descriptions"
    ),
    "refgeo": AdapterSpec(
        "rscovlm.data.sources.refgeo:iter_refgeo_records", "VLM-R1 / refGeo REC json(l)"
    ),
    "karpathy_captions": AdapterSpec(
        "rscovlm.data.sources.captions:iter_karpathy_records", "RSICD / UCM / Sydney captions"
    ),
    "nwpu_captions": AdapterSpec(
        "rscovlm.data.sources.captions:iter_nwpu_caption_records", "NWPU-Captions json"
    ),
    "scene_folder": AdapterSpec(
        "rscovlm.data.sources.scene_folder:iter_scene_folder_records", "class-per-folder scene sets"
    ),
    "llava": AdapterSpec(
        "rscovlm.data.sources.llava_instruct:iter_llava_records",
        "LLaVA / ShareGPT json (GeoChat, VHM, TEOChatlas)",
    ),
    "synthetic": AdapterSpec(
        "rscovlm.data.sources.synthetic:iter_synthetic_records",
        "procedural scenes (generated)",
        "dota1.0",
    ),
}


def get_adapter(name: str) -> AdapterSpec:
    """The registered adapter ``name``.

    Raises:
        InputError: ``name`` is not registered (the message lists the known names).
    """
    try:
        return ADAPTERS[name]
    except KeyError:
        raise InputError(f"unknown adapter {name!r}; known: {', '.join(ADAPTERS)}") from None


def run_adapter(
    name: str, root: str | Path, path: str, **options: Any
) -> Iterator[Record | BadEntry]:
    """Call adapter ``name`` on ``root / path`` with its options (a convenience for scripts)."""
    return get_adapter(name).fn(Path(root), path, **options)
