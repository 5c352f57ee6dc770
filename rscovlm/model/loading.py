"""Load a Qwen-VL checkpoint directory: model, tokenizer and image processor, no torchvision.

``transformers``' Qwen-VL *processors* need torchvision for their video part, which rscovlm does
not require. :func:`load_checkpoint` therefore loads the two halves a processor would hold —
the tokenizer and the PIL image processor (``Qwen2VLImageProcessorPil``; the numpy
``Qwen2VLImageProcessor`` on ``transformers`` 4.x) — directly, identically whether torchvision
is installed or not. Callers expand each ``<|image_pad|>`` to the image's token count
(``image_grid_thw.prod() // merge_size**2``) themselves and pass :func:`mm_token_type_ids` so
the model computes its multimodal rope positions.

The family is read from ``config.json`` (``model_type``, else ``architectures``). Attention is
``sdpa`` by default; ``flash_attention_2`` only when the ``flash_attn`` package is installed and
the device is CUDA; ``auto`` picks flash-attention when both hold.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rscovlm.errors import InputError, MissingExtraError
from rscovlm.extras import require, require_torch
from rscovlm.formats.tokens import IMAGE_PAD_ID, VIDEO_PAD_ID
from rscovlm.model.manifest import (
    MANIFEST_NAME,
    CheckpointManifest,
    processor_band,
    read_manifest,
)
from rscovlm.model.tiny import FAMILY_ARCHITECTURES
from rscovlm.model.tokenizer import chat_template_for
from rscovlm.resolution import RSCOVLM_BAND, PixelBand

if TYPE_CHECKING:
    import torch

__all__ = [
    "ATTN_CHOICES",
    "DTYPE_CHOICES",
    "LoadedModel",
    "detect_family",
    "load_checkpoint",
    "load_image_processor",
    "load_tokenizer",
    "mm_token_type_ids",
    "resolve_attn",
    "resolve_dtype",
]

DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
"""``auto`` keeps the dtype stored in ``config.json``."""
ATTN_CHOICES = ("sdpa", "flash_attention_2", "eager", "auto")

_ARCH_TO_FAMILY = {arch: fam for fam, arch in FAMILY_ARCHITECTURES.items()}
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass
class LoadedModel:
    """A checkpoint in memory: everything needed to turn a conversation into tokens and back."""

    model: Any
    """The ``*ForConditionalGeneration`` model, in eval mode."""
    tokenizer: Any
    """The fast tokenizer, with the checkpoint's chat template."""
    image_processor: Any
    """The PIL image processor: ``pixel_values`` and ``image_grid_thw`` from images."""
    family: str
    """``qwen2_vl``, ``qwen2_5_vl`` or ``qwen3_vl``."""
    path: Path
    """The checkpoint directory."""
    band: PixelBand = RSCOVLM_BAND
    """The pixel band the checkpoint was trained at (:func:`rscovlm.model.manifest.
    checkpoint_band`): what backends feed it unless told otherwise."""
    manifest: CheckpointManifest | None = None
    """Its ``rscovlm.json`` when rscovlm wrote it (``None`` for other checkpoints)."""

    @property
    def merge_size(self) -> int:
        """Patches merged per side into one visual token (2 for every Qwen-VL)."""
        return int(self.image_processor.merge_size)

    @property
    def wants_mm_token_type_ids(self) -> bool:
        """Whether ``model.forward`` takes ``mm_token_type_ids`` (``transformers`` ≥ 5)."""
        return "mm_token_type_ids" in inspect.signature(self.model.forward).parameters


def detect_family(path: str | os.PathLike[str]) -> str:
    """The model family of the checkpoint directory ``path``, from its ``config.json``.

    Raises:
        InputError: ``path`` is not a directory with a readable ``config.json`` of a Qwen-VL
            family.
    """
    directory = Path(path)
    config_path = directory / "config.json"
    if not directory.is_dir():
        raise InputError(f"not a checkpoint directory: {directory} does not exist")
    if not config_path.is_file():
        raise InputError(f"not a checkpoint directory: {directory} has no config.json")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{config_path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise InputError(f"{config_path} does not hold a JSON object")
    model_type = config.get("model_type")
    if model_type in FAMILY_ARCHITECTURES:
        return str(model_type)
    for arch in config.get("architectures") or []:
        if arch in _ARCH_TO_FAMILY:
            return _ARCH_TO_FAMILY[arch]
    known = ", ".join(FAMILY_ARCHITECTURES)
    raise InputError(
        f"{directory}: model_type {model_type!r} is not a supported family (known: {known})"
    )


def resolve_attn(attn: str, device: str = "cpu") -> str:
    """The attention implementation to load with.

    Raises:
        InputError: Unknown choice, or flash-attention asked for on a non-CUDA device.
        MissingExtraError: ``flash_attention_2`` asked for without the ``flash_attn`` package.
    """
    if attn not in ATTN_CHOICES:
        raise InputError(f"attn must be one of {', '.join(ATTN_CHOICES)}; got {attn!r}")
    has_flash = importlib.util.find_spec("flash_attn") is not None
    on_cuda = str(device).startswith("cuda")
    if attn == "auto":
        return "flash_attention_2" if has_flash and on_cuda else "sdpa"
    if attn == "flash_attention_2":
        if not has_flash:
            raise MissingExtraError(
                "attn='flash_attention_2' needs the flash-attn package "
                "(pip install flash-attn --no-build-isolation); or use attn='sdpa'"
            )
        if not on_cuda:
            raise InputError(f"flash-attention runs on CUDA devices only, not {device!r}")
    return attn


def resolve_dtype(path: str | os.PathLike[str], dtype: str = "auto") -> str:
    """``dtype`` made explicit: ``auto`` becomes the dtype stored in the checkpoint's
    ``config.json`` (``float32`` when it states none).

    Backends differ in what ``auto`` means — ``transformers`` keeps the stored dtype, vLLM runs
    an fp32 checkpoint in bf16/fp16 — so every backend is given the explicit name instead.

    Raises:
        InputError: An unknown dtype, or a stored dtype rscovlm does not run.
    """
    if dtype not in DTYPE_CHOICES:
        raise InputError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}; got {dtype!r}")
    if dtype != "auto":
        return dtype
    config_path = Path(path) / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the stored dtype from {config_path}: {exc}") from exc
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    stored = (
        config.get("dtype")
        or config.get("torch_dtype")
        or text.get("dtype")
        or text.get("torch_dtype")
        or "float32"
    )
    stored = str(stored).removeprefix("torch.")
    if stored not in DTYPE_CHOICES[1:]:
        raise InputError(f"{config_path}: stored dtype {stored!r} is not one of float32/bf16/fp16")
    return stored


def _torch_dtype(torch: Any, dtype: str) -> Any:
    if dtype not in DTYPE_CHOICES:
        raise InputError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}; got {dtype!r}")
    return "auto" if dtype == "auto" else getattr(torch, dtype)


def _dtype_keyword(version: str) -> str:
    """``from_pretrained``'s dtype keyword: ``dtype`` since transformers 4.56, else the old one."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _check_files(directory: Path) -> None:
    missing = []
    if not any((directory / name).is_file() for name in _WEIGHT_FILES):
        missing.append("weights (model.safetensors or an index)")
    if not (directory / "tokenizer.json").is_file() and not (directory / "vocab.json").is_file():
        missing.append("tokenizer (tokenizer.json)")
    if not (directory / "preprocessor_config.json").is_file():
        missing.append("preprocessor_config.json")
    if missing:
        raise InputError(f"not a complete checkpoint: {directory} lacks {', '.join(missing)}")


def load_tokenizer(path: str | os.PathLike[str], family: str | None = None) -> Any:
    """The checkpoint's tokenizer, with a chat template (the checkpoint's, else the family's).

    Raises:
        MissingExtraError: transformers is missing.
    """
    transformers = require("transformers", "train")
    directory = Path(path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    if not getattr(tokenizer, "chat_template", None):
        template = None
        if (directory / "chat_template.jinja").is_file():
            template = (directory / "chat_template.jinja").read_text(encoding="utf-8")
        elif (directory / "chat_template.json").is_file():
            stored = json.loads((directory / "chat_template.json").read_text(encoding="utf-8"))
            template = stored.get("chat_template")
        tokenizer.chat_template = template or chat_template_for(family or detect_family(path))
    return tokenizer


def load_image_processor(path: str | os.PathLike[str]) -> Any:
    """The checkpoint's image processor as the PIL/numpy implementation (never torchvision).

    Raises:
        MissingExtraError: transformers is missing.
    """
    transformers = require("transformers", "train")
    processor_class = getattr(transformers, "Qwen2VLImageProcessorPil", None)
    if processor_class is None:  # transformers 4.x: the slow processor is the PIL one
        processor_class = transformers.Qwen2VLImageProcessor
    return processor_class.from_pretrained(str(path), local_files_only=True)


def load_checkpoint(
    path: str | os.PathLike[str],
    dtype: str = "auto",
    device: str = "cpu",
    attn: str = "sdpa",
) -> LoadedModel:
    """Load the model, tokenizer and image processor of the checkpoint directory ``path``.

    Args:
        path: A checkpoint directory (``config.json``, weights, tokenizer files,
            ``preprocessor_config.json``), e.g. one written by
            :func:`rscovlm.model.tiny.build_tiny_model` or a released RSCoVLM model.
        dtype: ``auto`` (as stored), ``float32``, ``bfloat16`` or ``float16``.
        device: A torch device string, e.g. ``cpu``, ``cuda``, ``cuda:1``.
        attn: ``sdpa`` (default), ``flash_attention_2``, ``eager`` or ``auto``.

    The band it was trained at comes with it (:attr:`LoadedModel.band`): the ``rscovlm.json``
    manifest of a checkpoint rscovlm wrote, else ``preprocessor_config.json``.

    Raises:
        InputError: ``path`` is not a checkpoint of a supported family, its manifest is
            malformed or names another family than ``config.json``, or a bad option.
        MissingExtraError: torch/transformers (extra ``train``) or flash-attn is missing.
    """
    torch = require_torch()
    transformers = require("transformers", "train")
    directory = Path(path)
    family = detect_family(directory)
    _check_files(directory)
    manifest = read_manifest(directory)
    if manifest is not None and manifest.family != family:
        raise InputError(
            f"{directory}: {MANIFEST_NAME} says family {manifest.family} but config.json is "
            f"{family}"
        )
    band = manifest.band if manifest is not None else processor_band(directory) or RSCOVLM_BAND
    torch_dtype = _torch_dtype(torch, dtype)
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"not a torch device: {device!r}") from exc
    attn_impl = resolve_attn(attn, str(target))
    model_class = getattr(transformers, FAMILY_ARCHITECTURES[family], None)
    if model_class is None:
        raise MissingExtraError(
            f"transformers {transformers.__version__} has no {FAMILY_ARCHITECTURES[family]}; "
            f"upgrade it (pip install -U 'rscovlm[train]')"
        )
    kwargs: dict[str, Any] = {"attn_implementation": attn_impl, "local_files_only": True}
    kwargs[_dtype_keyword(transformers.__version__)] = torch_dtype
    model = model_class.from_pretrained(str(directory), **kwargs)
    model = model.to(target).eval()
    tokenizer = load_tokenizer(directory, family)
    image_processor = load_image_processor(directory)
    return LoadedModel(model, tokenizer, image_processor, family, directory, band, manifest)


def mm_token_type_ids(
    input_ids: torch.Tensor,
    image_token_id: int = IMAGE_PAD_ID,
    video_token_id: int = VIDEO_PAD_ID,
) -> torch.Tensor:
    """Per-token modality of ``input_ids``: 0 text, 1 image pad, 2 video pad (same shape).

    ``transformers`` ≥ 5 computes Qwen-VL's multimodal rope positions only when it gets this
    tensor; without it the model silently falls back to 1-D positions.
    """
    types = (input_ids == image_token_id).long()
    return types + 2 * (input_ids == video_token_id).long()
