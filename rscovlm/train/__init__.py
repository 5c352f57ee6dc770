"""Co-training: the typed config, collation and packing, the training loop.

Importing this package is cheap: torch and transformers are imported by the functions that
need them.
"""

from rscovlm.train.collate import (
    IGNORE_INDEX,
    PAD_TOKEN_ID,
    CollatedBatch,
    add_packed_positions,
    pack_collate,
    pad_collate,
    plan_rows,
)
from rscovlm.train.config import (
    DEEPSPEED_CONFIGS,
    TrainConfig,
    apply_overrides,
    deepspeed_config,
    deepspeed_config_path,
    load_train_config,
    shipped_train_configs,
)
from rscovlm.train.stream import EncodedStream, build_data_stream, ensure_built
from rscovlm.train.tokenize import (
    OverlongCounts,
    OverlongFitter,
    ShrunkBandPolicy,
    encode_sample,
    record_rerenderer,
)
from rscovlm.train.trainer import (
    ListStream,
    RunResult,
    SampleStream,
    build_model,
    build_optimizer,
    lr_factor,
    module_of,
    run,
)

__all__ = [
    "DEEPSPEED_CONFIGS",
    "IGNORE_INDEX",
    "PAD_TOKEN_ID",
    "CollatedBatch",
    "EncodedStream",
    "ListStream",
    "OverlongCounts",
    "OverlongFitter",
    "RunResult",
    "SampleStream",
    "ShrunkBandPolicy",
    "TrainConfig",
    "add_packed_positions",
    "apply_overrides",
    "build_data_stream",
    "build_model",
    "build_optimizer",
    "deepspeed_config",
    "deepspeed_config_path",
    "encode_sample",
    "ensure_built",
    "load_train_config",
    "lr_factor",
    "module_of",
    "pack_collate",
    "pad_collate",
    "plan_rows",
    "record_rerenderer",
    "run",
    "shipped_train_configs",
]
