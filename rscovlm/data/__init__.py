"""The data curation engine: records, source adapters, tiling, validated build (offline) and
render, mixture, loader, LRS-VQA-Zoom (online).

Import the public API from here::

    from rscovlm.data import Record, load_recipe, build_dataset, split_image, ADAPTERS
    from rscovlm.data import render_record, RenderPolicy, Mixture, ConversationLoader

No torch or transformers anywhere in this package (checked by ``tests/test_layering.py``).

The names load on first use (PEP 562): ``import rscovlm.data.sources.dota`` (what
``rscovlm eval det`` reads labels with) must not pull in the build engine, pydantic and PIL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rscovlm.data.build import BuildResult, build_dataset
    from rscovlm.data.conversation import (
        Conversation,
        ImagePart,
        Message,
        TextPart,
        VideoPart,
        chat_text,
    )
    from rscovlm.data.export import EXPORT_FORMATS, export_dataset, records_to_coco
    from rscovlm.data.loader import (
        ConversationLoader,
        ListStore,
        LoaderReport,
        RecordStore,
        Sample,
        ShardStore,
        fetch_sample,
        load_images,
    )
    from rscovlm.data.mixture import Mixture, MixtureEntry, MixtureItem, parse_entry
    from rscovlm.data.mixture_config import MixtureConfig, load_mixture_config
    from rscovlm.data.policy import RenderOptions, RenderPolicy
    from rscovlm.data.recipe import Recipe, SourceConfig, load_recipe
    from rscovlm.data.record import (
        QA,
        TASK_KINDS,
        BadEntry,
        Box,
        ImageRef,
        Instance,
        Record,
        Referring,
        TaskKind,
        Turn,
    )
    from rscovlm.data.render import SkipSampleError, render_record
    from rscovlm.data.shards import iter_records, read_jsonl, read_manifest, write_jsonl
    from rscovlm.data.sources import ADAPTERS, AdapterSpec, get_adapter, run_adapter
    from rscovlm.data.sources.synthetic import generate_scenes
    from rscovlm.data.sources.synthetic_raster import write_large_geotiff
    from rscovlm.data.split import (
        TileSpec,
        merge_patch_objects,
        plan_windows,
        split_dota,
        split_image,
    )
    from rscovlm.data.validate import Rejection, validate_record
    from rscovlm.data.zoom_build import CropPolicy, ZoomBuildResult, build_zoom_dataset, crop_box

#: Where each public name lives (imported on first access).
_WHERE = {
    "BuildResult": "rscovlm.data.build",
    "build_dataset": "rscovlm.data.build",
    "Conversation": "rscovlm.data.conversation",
    "ImagePart": "rscovlm.data.conversation",
    "Message": "rscovlm.data.conversation",
    "TextPart": "rscovlm.data.conversation",
    "VideoPart": "rscovlm.data.conversation",
    "chat_text": "rscovlm.data.conversation",
    "EXPORT_FORMATS": "rscovlm.data.export",
    "export_dataset": "rscovlm.data.export",
    "records_to_coco": "rscovlm.data.export",
    "ConversationLoader": "rscovlm.data.loader",
    "ListStore": "rscovlm.data.loader",
    "LoaderReport": "rscovlm.data.loader",
    "RecordStore": "rscovlm.data.loader",
    "Sample": "rscovlm.data.loader",
    "ShardStore": "rscovlm.data.loader",
    "fetch_sample": "rscovlm.data.loader",
    "load_images": "rscovlm.data.loader",
    "Mixture": "rscovlm.data.mixture",
    "MixtureEntry": "rscovlm.data.mixture",
    "MixtureItem": "rscovlm.data.mixture",
    "parse_entry": "rscovlm.data.mixture",
    "MixtureConfig": "rscovlm.data.mixture_config",
    "load_mixture_config": "rscovlm.data.mixture_config",
    "RenderOptions": "rscovlm.data.policy",
    "RenderPolicy": "rscovlm.data.policy",
    "Recipe": "rscovlm.data.recipe",
    "SourceConfig": "rscovlm.data.recipe",
    "load_recipe": "rscovlm.data.recipe",
    "QA": "rscovlm.data.record",
    "TASK_KINDS": "rscovlm.data.record",
    "BadEntry": "rscovlm.data.record",
    "Box": "rscovlm.data.record",
    "ImageRef": "rscovlm.data.record",
    "Instance": "rscovlm.data.record",
    "Record": "rscovlm.data.record",
    "Referring": "rscovlm.data.record",
    "TaskKind": "rscovlm.data.record",
    "Turn": "rscovlm.data.record",
    "SkipSampleError": "rscovlm.data.render",
    "render_record": "rscovlm.data.render",
    "iter_records": "rscovlm.data.shards",
    "read_jsonl": "rscovlm.data.shards",
    "read_manifest": "rscovlm.data.shards",
    "write_jsonl": "rscovlm.data.shards",
    "ADAPTERS": "rscovlm.data.sources",
    "AdapterSpec": "rscovlm.data.sources",
    "get_adapter": "rscovlm.data.sources",
    "run_adapter": "rscovlm.data.sources",
    "generate_scenes": "rscovlm.data.sources.synthetic",
    "write_large_geotiff": "rscovlm.data.sources.synthetic_raster",
    "TileSpec": "rscovlm.data.split",
    "merge_patch_objects": "rscovlm.data.split",
    "plan_windows": "rscovlm.data.split",
    "split_dota": "rscovlm.data.split",
    "split_image": "rscovlm.data.split",
    "Rejection": "rscovlm.data.validate",
    "validate_record": "rscovlm.data.validate",
    "CropPolicy": "rscovlm.data.zoom_build",
    "ZoomBuildResult": "rscovlm.data.zoom_build",
    "build_zoom_dataset": "rscovlm.data.zoom_build",
    "crop_box": "rscovlm.data.zoom_build",
}

__all__ = [
    "ADAPTERS",
    "EXPORT_FORMATS",
    "QA",
    "TASK_KINDS",
    "AdapterSpec",
    "BadEntry",
    "Box",
    "BuildResult",
    "Conversation",
    "ConversationLoader",
    "CropPolicy",
    "ImagePart",
    "ImageRef",
    "Instance",
    "ListStore",
    "LoaderReport",
    "Message",
    "Mixture",
    "MixtureConfig",
    "MixtureEntry",
    "MixtureItem",
    "Recipe",
    "Record",
    "RecordStore",
    "Referring",
    "Rejection",
    "RenderOptions",
    "RenderPolicy",
    "Sample",
    "ShardStore",
    "SkipSampleError",
    "SourceConfig",
    "TaskKind",
    "TextPart",
    "TileSpec",
    "Turn",
    "VideoPart",
    "ZoomBuildResult",
    "build_dataset",
    "build_zoom_dataset",
    "chat_text",
    "crop_box",
    "export_dataset",
    "fetch_sample",
    "generate_scenes",
    "get_adapter",
    "iter_records",
    "load_images",
    "load_mixture_config",
    "load_recipe",
    "merge_patch_objects",
    "parse_entry",
    "plan_windows",
    "read_jsonl",
    "read_manifest",
    "records_to_coco",
    "render_record",
    "run_adapter",
    "split_dota",
    "split_image",
    "validate_record",
    "write_jsonl",
    "write_large_geotiff",
]


def __getattr__(name: str) -> Any:
    """Import the public name ``name`` from its module on first use, then keep it here."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
