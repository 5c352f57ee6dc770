"""The data curation engine: records, source adapters, tiling, validated build (offline) and
render, mixture, loader, LRS-VQA-Zoom (online).

Import the public API from here::

    from rscovlm.data import Record, load_recipe, build_dataset, split_image, ADAPTERS
    from rscovlm.data import render_record, RenderPolicy, Mixture, ConversationLoader

No torch or transformers anywhere in this package (checked by ``tests/test_layering.py``).
"""

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
from rscovlm.data.split import TileSpec, merge_patch_objects, plan_windows, split_dota, split_image
from rscovlm.data.validate import Rejection, validate_record
from rscovlm.data.zoom_build import CropPolicy, ZoomBuildResult, build_zoom_dataset, crop_box

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
