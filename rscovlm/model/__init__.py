"""Models: the real Qwen2 tokenizer, tiny test models, and checkpoint loading.

Importing this package is cheap: torch and transformers are imported by the functions that
need them, and a missing one raises :class:`rscovlm.errors.MissingExtraError` naming the
``train`` extra.
"""

from rscovlm.model.loading import (
    LoadedModel,
    detect_family,
    load_checkpoint,
    load_image_processor,
    load_tokenizer,
    mm_token_type_ids,
    resolve_attn,
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
    "FAMILY_ARCHITECTURES",
    "QWEN2_5_VL_CHAT_TEMPLATE",
    "QWEN2_ADDED_TOKENS",
    "QWEN3_EXTRA_TOKENS",
    "QWEN3_VL_CHAT_TEMPLATE",
    "LoadedModel",
    "TinySpec",
    "added_tokens_for",
    "build_qwen2_tokenizer",
    "build_tiny_model",
    "chat_template_for",
    "detect_family",
    "load_checkpoint",
    "load_image_processor",
    "load_tokenizer",
    "mm_token_type_ids",
    "resolve_attn",
    "save_tokenizer",
    "tiny_config",
]
