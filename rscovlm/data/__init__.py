"""The data curation engine, offline half: records, source adapters, tiling, validated build.

Import the public API from here::

    from rscovlm.data import Record, load_recipe, build_dataset, split_image, ADAPTERS

No torch or transformers anywhere in this package (checked by ``tests/test_layering.py``).
"""

from rscovlm.data.build import BuildResult, build_dataset
from rscovlm.data.export import EXPORT_FORMATS, export_dataset, records_to_coco
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
from rscovlm.data.shards import iter_records, read_jsonl, read_manifest, write_jsonl
from rscovlm.data.sources import ADAPTERS, AdapterSpec, get_adapter, run_adapter
from rscovlm.data.sources.synthetic import generate_scenes
from rscovlm.data.sources.synthetic_raster import write_large_geotiff
from rscovlm.data.split import TileSpec, merge_patch_objects, plan_windows, split_dota, split_image
from rscovlm.data.validate import Rejection, validate_record

__all__ = [
    "ADAPTERS",
    "EXPORT_FORMATS",
    "QA",
    "TASK_KINDS",
    "AdapterSpec",
    "BadEntry",
    "Box",
    "BuildResult",
    "ImageRef",
    "Instance",
    "Recipe",
    "Record",
    "Referring",
    "Rejection",
    "SourceConfig",
    "TaskKind",
    "TileSpec",
    "Turn",
    "build_dataset",
    "export_dataset",
    "generate_scenes",
    "get_adapter",
    "iter_records",
    "load_recipe",
    "merge_patch_objects",
    "plan_windows",
    "read_jsonl",
    "read_manifest",
    "records_to_coco",
    "run_adapter",
    "split_dota",
    "split_image",
    "validate_record",
    "write_jsonl",
    "write_large_geotiff",
]
