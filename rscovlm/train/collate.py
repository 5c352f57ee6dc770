"""Collation: padded batches (the paper's) and packed rows with isolated samples.

A *sample* is a mapping of tensors for one conversation, as :func:`rscovlm.model.encoding.encode`
returns them for a batch of one: ``input_ids`` and ``labels`` (``(L,)`` or ``(1, L)``), optional
``mm_token_type_ids`` (computed from the ids when absent), and for samples with images
``pixel_values`` ``(P, C·T·14·14)`` and ``image_grid_thw`` ``(I, 3)``.

- :func:`pad_collate` right-pads with ``<|endoftext|>`` and labels ``-100``, with an
  all-ones ``attention_mask`` (WIRE §1.2). The model computes the multimodal rope itself from
  ``mm_token_type_ids``.
- :func:`pack_collate` fills rows up to a token budget with several samples, first fit in
  arrival order. The samples stay isolated: the batch carries ``seq_lens`` and
  :func:`add_packed_positions` gives it ``position_ids`` of shape ``(4, B, L)`` — row 0 the
  text positions restarting at 0 for every sample, rows 1–3 each sample's own multimodal rope
  (from the model's ``get_rope_index``) — no ``attention_mask`` and ``use_cache=False``.
  transformers 5 then builds a block-diagonal causal mask from the restarts under sdpa/eager
  (``masking_utils.find_packed_sequence_indices``), and varlen flash-attention under
  ``flash_attention_2``. (The original code's varlen patch was never
  activated, so its packed samples attended to each other.) The first label of every packed
  sample is ``-100``, as in the original packing mode, so no token is trained to predict the
  start of the next sample.

Samples longer than the limit are never cut here (a cut could fall inside an image span):
they are dropped and counted in :attr:`CollatedBatch.dropped`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rscovlm.formats.tokens import IMAGE_PAD_ID, PAD_ID, VIDEO_PAD_ID
from rscovlm.train._wrapped import find_wrapped

__all__ = [
    "IGNORE_INDEX",
    "PAD_TOKEN_ID",
    "CollatedBatch",
    "add_packed_positions",
    "pack_collate",
    "pad_collate",
    "plan_rows",
]

IGNORE_INDEX = -100
PAD_TOKEN_ID = PAD_ID
"""``<|endoftext|>``, the pad of every Qwen2-tokenizer model (WIRE §1.3)."""


@dataclass
class CollatedBatch:
    """Model inputs of one micro-batch plus the numbers the trainer logs."""

    inputs: dict[str, Any]
    """Keyword arguments of the model's forward (``input_ids``, ``labels``, …)."""
    seq_lens: list[list[int]] = field(default_factory=list)
    """Per row, the length of each sample in it, in order (padding not included)."""
    num_samples: int = 0
    num_tokens: int = 0
    """Real (non-pad) tokens."""
    num_padding: int = 0
    """Pad tokens added to make the rows rectangular."""
    dropped: int = 0
    """Samples longer than the limit, left out (never cut)."""
    packed: bool = False

    @property
    def padding_fraction(self) -> float:
        """Share of pad tokens in the batch, 0 for an empty batch."""
        total = self.num_tokens + self.num_padding
        return self.num_padding / total if total else 0.0

    @property
    def num_supervised(self) -> int:
        """Tokens whose label is not ``-100`` (the loss denominator before the shift)."""
        labels = self.inputs.get("labels")
        return 0 if labels is None else int((labels != IGNORE_INDEX).sum())


def _flat(value: Any) -> Any:
    return value.reshape(-1) if value.dim() == 2 else value


def _sample_tensors(sample: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    import torch

    ids = _flat(torch.as_tensor(sample["input_ids"])).long()
    labels = _flat(torch.as_tensor(sample["labels"])).long()
    if labels.shape != ids.shape:
        raise ValueError(f"labels {tuple(labels.shape)} and input_ids {tuple(ids.shape)} differ")
    if "mm_token_type_ids" in sample:
        types = _flat(torch.as_tensor(sample["mm_token_type_ids"])).long()
    else:
        types = (ids == IMAGE_PAD_ID).long() + 2 * (ids == VIDEO_PAD_ID).long()
    return ids, labels, types


def _vision(samples: Sequence[Mapping[str, Any]], inputs: dict[str, Any]) -> None:
    """Concatenate ``pixel_values`` / ``image_grid_thw`` in the order the samples appear."""
    import torch

    with_images = [s for s in samples if s.get("pixel_values") is not None]
    if with_images:
        inputs["pixel_values"] = torch.cat([s["pixel_values"] for s in with_images])
        inputs["image_grid_thw"] = torch.cat([s["image_grid_thw"] for s in with_images])


def _keep(
    samples: Sequence[Mapping[str, Any]], limit: int | None
) -> tuple[list[Mapping[str, Any]], list[tuple[Any, Any, Any]], int]:
    kept, tensors, dropped = [], [], 0
    for sample in samples:
        ids, labels, types = _sample_tensors(sample)
        if limit is not None and ids.numel() > limit:
            dropped += 1
            continue
        kept.append(sample)
        tensors.append((ids, labels, types))
    return kept, tensors, dropped


def pad_collate(
    samples: Sequence[Mapping[str, Any]],
    max_length: int | None = None,
    pad_token_id: int = PAD_TOKEN_ID,
) -> CollatedBatch:
    """One row per sample, right-padded to the longest (WIRE §1.2).

    Args:
        samples: Per-sample tensors (module docstring).
        max_length: Samples with more tokens are dropped and counted, never cut.
        pad_token_id: The pad id (``<|endoftext|>``).
    """
    import torch

    kept, tensors, dropped = _keep(samples, max_length)
    width = max((ids.numel() for ids, _, _ in tensors), default=0)
    rows = len(tensors)
    input_ids = torch.full((rows, width), pad_token_id, dtype=torch.long)
    labels = torch.full((rows, width), IGNORE_INDEX, dtype=torch.long)
    types = torch.zeros((rows, width), dtype=torch.long)
    for row, (ids, lab, typ) in enumerate(tensors):
        input_ids[row, : ids.numel()] = ids
        labels[row, : ids.numel()] = lab
        types[row, : ids.numel()] = typ
    inputs: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": labels,
        "mm_token_type_ids": types,
    }
    _vision(kept, inputs)
    real = sum(ids.numel() for ids, _, _ in tensors)
    return CollatedBatch(
        inputs=inputs,
        seq_lens=[[ids.numel()] for ids, _, _ in tensors],
        num_samples=rows,
        num_tokens=real,
        num_padding=rows * width - real,
        dropped=dropped,
    )


def plan_rows(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """First-fit assignment of samples to rows of at most ``budget`` tokens.

    Returns, per row, the indices of its samples in arrival order. Deterministic: the same
    lengths always give the same rows. Every length must be ``<= budget``.
    """
    rows: list[list[int]] = []
    room: list[int] = []
    for index, length in enumerate(lengths):
        if length > budget:
            raise ValueError(f"sample {index} has {length} tokens, over the budget {budget}")
        for row, free in enumerate(room):
            if length <= free:
                rows[row].append(index)
                room[row] -= length
                break
        else:
            rows.append([index])
            room.append(budget - length)
    return rows


def pack_collate(
    samples: Sequence[Mapping[str, Any]],
    budget: int,
    pad_token_id: int = PAD_TOKEN_ID,
    pad_to_budget: bool = False,
) -> CollatedBatch:
    """Pack samples into rows of at most ``budget`` tokens, each sample isolated.

    Call :func:`add_packed_positions` with the model before the forward pass: it adds the
    ``position_ids`` that keep the samples apart (the batch has no ``attention_mask``).

    Args:
        samples: Per-sample tensors (module docstring).
        budget: Tokens per row; longer samples are dropped and counted.
        pad_token_id: The pad id of the rows' tails.
        pad_to_budget: Make every row exactly ``budget`` long (static shapes), instead of
            padding to the longest row.
    """
    import torch

    kept, tensors, dropped = _keep(samples, budget)
    plan = plan_rows([ids.numel() for ids, _, _ in tensors], budget)
    used = [sum(tensors[i][0].numel() for i in row) for row in plan]
    width = budget if pad_to_budget and plan else max(used, default=0)
    input_ids = torch.full((len(plan), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(plan), width), IGNORE_INDEX, dtype=torch.long)
    types = torch.zeros((len(plan), width), dtype=torch.long)
    order: list[Mapping[str, Any]] = []  # samples in row-major order, for the vision tensors
    seq_lens: list[list[int]] = []
    for row, members in enumerate(plan):
        start = 0
        seq_lens.append([])
        for index in members:
            ids, lab, typ = tensors[index]
            end = start + ids.numel()
            input_ids[row, start:end] = ids
            labels[row, start:end] = lab
            labels[row, start] = IGNORE_INDEX
            types[row, start:end] = typ
            seq_lens[row].append(ids.numel())
            order.append(kept[index])
            start = end
    inputs: dict[str, Any] = {
        "input_ids": input_ids,
        "labels": labels,
        "mm_token_type_ids": types,
    }
    _vision(order, inputs)
    real = sum(used)
    return CollatedBatch(
        inputs=inputs,
        seq_lens=seq_lens,
        num_samples=len(kept),
        num_tokens=real,
        num_padding=len(plan) * width - real,
        dropped=dropped,
        packed=True,
    )


def _rope_model(model: Any) -> Any:
    """The module that owns ``get_rope_index`` (the base model inside ``*ForConditionalGeneration``,
    also through a peft or DDP wrapper)."""
    owner = find_wrapped(model, lambda m: hasattr(m, "get_rope_index"))
    if owner is not None:
        return owner
    raise TypeError(f"{type(model).__name__} has no get_rope_index (not a Qwen-VL model?)")


def add_packed_positions(model: Any, batch: CollatedBatch) -> CollatedBatch:
    """Give a packed batch its ``(4, B, L)`` ``position_ids`` (module docstring); in place.

    Each sample's multimodal rope comes from the model's own ``get_rope_index`` run on that
    sample alone, so it equals the positions the sample gets when run by itself. The pad tail
    of a row is one more segment, so it attends only to itself.
    """
    import torch

    if not batch.packed:
        return batch
    owner = _rope_model(model)
    inputs = batch.inputs
    input_ids, types = inputs["input_ids"], inputs["mm_token_type_ids"]
    rows, width = input_ids.shape
    positions = torch.zeros((4, rows, width), dtype=torch.long, device=input_ids.device)
    grids = inputs.get("image_grid_thw")
    next_image = 0
    for row, lengths in enumerate(batch.seq_lens):
        start = 0
        for length in lengths:
            ids = input_ids[row : row + 1, start : start + length]
            typ = types[row : row + 1, start : start + length]
            images = int(_count_images(typ[0]))
            grid = None
            if images:
                grid = grids[next_image : next_image + images]
                next_image += images
            with torch.no_grad():
                mrope, _ = owner.get_rope_index(
                    input_ids=ids, mm_token_type_ids=typ, image_grid_thw=grid
                )
            positions[0, row, start : start + length] = torch.arange(length)
            positions[1:, row, start : start + length] = mrope[:, 0]
            start += length
        if start < width:  # the pad tail: its own segment
            tail = torch.arange(width - start)
            positions[:, row, start:] = tail
    inputs["position_ids"] = positions
    inputs.pop("attention_mask", None)
    # transformers derives the packed mask only without a cache; a forward in eval mode
    # would otherwise create one and silently fall back to one causal mask per row.
    inputs["use_cache"] = False
    return batch


def _count_images(types: Any) -> int:
    """Image spans in a 1-D ``mm_token_type_ids`` (runs of 1s)."""
    is_image = (types == 1).long()
    starts = is_image[0:1].sum() + ((is_image[1:] - is_image[:-1]) == 1).sum()
    return int(starts)
