"""The final model export: ``<output_dir>/final`` is a plain checkpoint directory that
:func:`rscovlm.model.load_checkpoint` reads, and that remembers how it was trained.

A model trained on 112²–224² images but run at the base model's 224²–1008² sees up to 20× more
pixels than it learned on; so the export records the training band (and family, base model,
rscovlm version, config hash) in ``rscovlm.json`` and ``preprocessor_config.json``
(:mod:`rscovlm.model.manifest`), and every backend reads it from there.

Kept apart from :mod:`rscovlm.train.checkpoint` (which drives the engines) so the engines can
call it without an import cycle.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rscovlm.model.manifest import CheckpointManifest, write_manifest
from rscovlm.train.config import TrainConfig

__all__ = ["config_hash", "export_model", "training_manifest"]


def config_hash(cfg: TrainConfig) -> str:
    """``sha256:<hex>`` of the training config as canonical JSON (sorted keys)."""
    text = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def training_manifest(cfg: TrainConfig, family: str) -> CheckpointManifest:
    """What a checkpoint trained with ``cfg`` records: the data's render-policy band (every
    image the model saw was resized into it), the family, the base model and the config hash.
    """
    band = cfg.data.mixture_config().policy().band
    return CheckpointManifest(
        family=family, band=band, base_model=cfg.model.path, config_hash=config_hash(cfg)
    )


def export_model(
    model: Any,
    loaded: Any,
    where: Path,
    state_dict: dict[str, Any] | None = None,
    *,
    manifest: CheckpointManifest,
) -> None:
    """Write a loadable checkpoint directory: weights (LoRA merged), tokenizer, processor, and
    the training band and provenance (``manifest``) in ``rscovlm.json`` and the processor config.

    ``state_dict``: the weights to write when ``model``'s own are sharded (FSDP, ZeRO-3).
    ``manifest`` is required: a checkpoint that does not say its band would be run at the base
    model's.
    """
    if hasattr(model, "merge_and_unload"):  # peft: ship plain weights, adapters merged
        model = model.merge_and_unload()
    if state_dict is None:
        model.save_pretrained(str(where))
    else:
        model.save_pretrained(str(where), state_dict=state_dict)
    loaded.tokenizer.save_pretrained(str(where))
    loaded.image_processor.save_pretrained(str(where))
    write_manifest(where, manifest)
