"""The final model export: ``<output_dir>/final`` is a plain checkpoint directory that
:func:`rscovlm.model.load_checkpoint` reads.

Kept apart from :mod:`rscovlm.train.checkpoint` (which drives the engines) so the engines can
call it without an import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["export_model"]


def export_model(
    model: Any, loaded: Any, where: Path, state_dict: dict[str, Any] | None = None
) -> None:
    """Write a loadable checkpoint directory: weights (LoRA merged), tokenizer, processor.

    ``state_dict``: the weights to write when ``model``'s own are sharded (FSDP, ZeRO-3).
    """
    if hasattr(model, "merge_and_unload"):  # peft: ship plain weights, adapters merged
        model = model.merge_and_unload()
    if state_dict is None:
        model.save_pretrained(str(where))
    else:
        model.save_pretrained(str(where), state_dict=state_dict)
    loaded.tokenizer.save_pretrained(str(where))
    loaded.image_processor.save_pretrained(str(where))
