"""Source adapters: one module per dataset family, and the registry the build reads.

Each adapter turns a dataset in its native layout (``shared/DATASETS.md``) into
:class:`~rscovlm.data.record.Record` items plus a :class:`~rscovlm.data.record.BadEntry` for
every entry it cannot read, in a stable order. A recipe names adapters by the keys of
:data:`ADAPTERS`; the registry is closed (no import paths in recipes).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rscovlm.errors import InputError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from rscovlm.data.record import BadEntry, Record

__all__ = [
    "ADAPTERS",
    "AdapterSpec",
    "check_options",
    "get_adapter",
    "options_schema",
    "run_adapter",
]

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


_FIXED = ("root", "path", "source", "split")
"""Adapter parameters the build fills itself; every other keyword is a recipe option."""


@functools.cache
def options_schema(name: str) -> type[BaseModel]:
    """The pydantic model of adapter ``name``'s options, from its keyword parameters.

    Built from the adapter's own signature and type hints, so the options a recipe may give
    are exactly the ones the adapter declares, with their types and defaults.
    """
    from pydantic import ConfigDict, create_model

    fn = get_adapter(name).fn
    # the adapters import Record/BadEntry for annotations only (lazy modules): give them here
    from rscovlm.data.record import BadEntry, Record

    hints = typing.get_type_hints(fn, localns={"Record": Record, "BadEntry": BadEntry})
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.name in _FIXED or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints.get(param.name, Any), default)
    config = ConfigDict(extra="forbid", allow_inf_nan=False)
    return create_model(f"{name}_options", __config__=config, **fields)


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against adapter ``name``'s declared options (names and types).

    Raises:
        InputError: An unknown option (with a did-you-mean) or a value of the wrong type, one
            line naming the option.
    """
    from pydantic import ValidationError

    from rscovlm import configs

    schema = options_schema(name)
    try:
        schema.model_validate(options)
    except ValidationError as exc:
        raise InputError(f"options: {configs.error_line(exc, schema)}") from None
    return options


def run_adapter(
    name: str, root: str | Path, path: str, **options: Any
) -> Iterator[Record | BadEntry]:
    """Call adapter ``name`` on ``root / path`` with its options (a convenience for scripts)."""
    return get_adapter(name).fn(Path(root), path, **options)
