"""Models: the real Qwen2 tokenizer, tiny test models, checkpoint loading, the conversation
encoder and the inference backends (``hf``, ``vllm``, ``openai``, ``replay``). What runs over a
backend (tiled detection, the Zoom-in Chain agent, the server) is one floor up, in
:mod:`rscovlm.pipelines`.

Importing this package is cheap: torch and transformers are imported by the functions that
need them (the ``hf`` and ``vllm`` backends are built by :func:`make_backend` or imported from
their modules), and a missing one raises :class:`rscovlm.errors.MissingExtraError` naming the
extra.
"""

from rscovlm.model.backends import (
    BACKENDS,
    Backend,
    Generation,
    GenerationParams,
    ReplayBackend,
    Usage,
    make_backend,
)
from rscovlm.model.encoding import (
    EncodedBatch,
    encode,
    image_part,
    load_part_image,
    question_conversation,
)
from rscovlm.model.loading import (
    LoadedModel,
    detect_family,
    load_checkpoint,
    load_image_processor,
    load_tokenizer,
    mm_token_type_ids,
    resolve_attn,
)
from rscovlm.model.manifest import (
    MANIFEST_NAME,
    CheckpointManifest,
    checkpoint_band,
    read_manifest,
    write_manifest,
)
from rscovlm.model.tiny import FAMILY_ARCHITECTURES, TinySpec, build_tiny_model, tiny_config
from rscovlm.model.tokenizer import (
    QWEN2_5_VL_CHAT_TEMPLATE,
    QWEN2_ADDED_TOKENS,
    QWEN3_EXTRA_TOKENS,
    QWEN3_VL_CHAT_TEMPLATE,
    added_tokens_for,
    build_qwen2_tokenizer,
    chat_template_for,
    save_tokenizer,
)

__all__ = [
    "BACKENDS",
    "FAMILY_ARCHITECTURES",
    "MANIFEST_NAME",
    "QWEN2_5_VL_CHAT_TEMPLATE",
    "QWEN2_ADDED_TOKENS",
    "QWEN3_EXTRA_TOKENS",
    "QWEN3_VL_CHAT_TEMPLATE",
    "Backend",
    "CheckpointManifest",
    "EncodedBatch",
    "Generation",
    "GenerationParams",
    "LoadedModel",
    "ReplayBackend",
    "TinySpec",
    "Usage",
    "added_tokens_for",
    "build_qwen2_tokenizer",
    "build_tiny_model",
    "chat_template_for",
    "checkpoint_band",
    "detect_family",
    "encode",
    "image_part",
    "load_checkpoint",
    "load_image_processor",
    "load_part_image",
    "load_tokenizer",
    "make_backend",
    "mm_token_type_ids",
    "question_conversation",
    "read_manifest",
    "resolve_attn",
    "save_tokenizer",
    "tiny_config",
    "write_manifest",
]
