"""Collation: padding follows WIRE §1.2; packed samples stay isolated (same losses alone).

The equivalence test is the point of packing: a sample's per-token losses inside a packed row
equal its losses when run alone, for the tiny Qwen2.5-VL under sdpa — text-only samples and
samples with images (which also need their own multimodal rope positions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rscovlm.train.collate import (
    IGNORE_INDEX,
    PAD_TOKEN_ID,
    add_packed_positions,
    pack_collate,
    pad_collate,
    plan_rows,
)

torch = pytest.importorskip("torch")

SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
CHATS = [
    ("What is in the image?", "A harbour with three ships."),
    ("Count the planes.", "7"),
    ("Describe the scene in detail please.", "Dense residential blocks beside a river."),
    ("find the ship, harbor", "10,20,30,40 ship\n50,60,70,80 harbor"),
    ("Is there a road?", "Yes."),
]


def _text_sample(tokenizer: Any, question: str, answer: str) -> dict[str, Any]:
    """Ids and assistant-only labels (WIRE §1.2), tokenised segment by segment."""
    prompt = f"{SYSTEM}<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    parts = [(prompt, False), (f"{answer}<|im_end|>", True), ("\n", False)]
    ids: list[int] = []
    labels: list[int] = []
    for text, supervised in parts:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if supervised else [IGNORE_INDEX] * len(piece)
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}


@pytest.fixture(scope="module")
def text_samples(tiny_qwen25: Any) -> list[dict[str, Any]]:
    return [_text_sample(tiny_qwen25.tokenizer, q, a) for q, a in CHATS]


def _image_samples(loaded: Any) -> list[dict[str, Any]]:
    """Samples with 1 or 2 images of different grids, through the shared encoder."""
    from rscovlm.data.conversation import Conversation, Message, TextPart
    from rscovlm.model.encoding import encode, image_part
    from rscovlm.resolution import PixelBand, get_family

    band = PixelBand(4 * 28 * 28, 16 * 28 * 28)
    rng = np.random.default_rng(0)
    specs = [
        ([(56, 84)], "What is this?", "An airport."),
        ([(112, 56), (56, 56)], "Compare the two images.", "The second one is smaller."),
        ([], "Say hi.", "hi"),
        ([(84, 84)], "Any ships?", "No."),
    ]
    samples = []
    for sizes, question, answer in specs:
        parts = [image_part(f"img{i}.png", size, band) for i, size in enumerate(sizes)]
        arrays = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for w, h in sizes]
        conv = Conversation(
            [
                Message("user", (*parts, TextPart(question))),
                Message("assistant", (TextPart(answer),)),
            ],
            get_family("qwen2_5_vl"),
        )
        encoded = encode(
            [conv],
            loaded.tokenizer,
            loaded.image_processor,
            images=[arrays],
            add_generation_prompt=False,
            labels=True,
            padding_side="right",
        )
        samples.append({k: v for k, v in encoded.inputs.items() if k != "attention_mask"})
    return samples


def _alone_losses(model: Any, sample: dict[str, Any]) -> Any:
    """Per-token losses of one sample run by itself (no padding), shape ``(L - 1,)``."""
    batch = pad_collate([sample])
    inputs = {k: v for k, v in batch.inputs.items() if k != "labels"}
    with torch.no_grad():
        logits = model(**inputs).logits[0]
    labels = batch.inputs["labels"][0]
    return torch.nn.functional.cross_entropy(
        logits[:-1].float(), labels[1:], ignore_index=IGNORE_INDEX, reduction="none"
    )


def _packed_losses(model: Any, samples: list[dict[str, Any]], budget: int) -> list[Any]:
    """Per-token losses of every sample inside packed rows, in sample order."""
    batch = add_packed_positions(model, pack_collate(samples, budget))
    assert "attention_mask" not in batch.inputs and batch.inputs["use_cache"] is False
    inputs = {k: v for k, v in batch.inputs.items() if k != "labels"}
    with torch.no_grad():
        logits = model(**inputs).logits
    plan = plan_rows([int(torch.as_tensor(s["input_ids"]).numel()) for s in samples], budget)
    out: dict[int, Any] = {}
    for row, members in enumerate(plan):
        start = 0
        for index in members:
            length = int(torch.as_tensor(samples[index]["input_ids"]).numel())
            labels = torch.as_tensor(samples[index]["labels"]).reshape(-1)
            out[index] = torch.nn.functional.cross_entropy(
                logits[row, start : start + length - 1].float(),
                labels[1:],
                ignore_index=IGNORE_INDEX,
                reduction="none",
            )
            start += length
    return [out[i] for i in range(len(samples))]


def _check_equivalent(model: Any, samples: list[dict[str, Any]], budget: int) -> None:
    packed = _packed_losses(model, samples, budget)
    rows = plan_rows([int(torch.as_tensor(s["input_ids"]).numel()) for s in samples], budget)
    assert any(len(r) > 1 for r in rows), "the test must actually pack several samples a row"
    for index, sample in enumerate(samples):
        alone = _alone_losses(model, sample)
        torch.testing.assert_close(packed[index], alone, rtol=1e-4, atol=1e-5)
        assert torch.isfinite(alone).all() and (alone > 0).any()


@pytest.mark.integration
def test_packed_text_losses_equal_one_by_one(tiny_qwen25: Any, text_samples: list) -> None:
    lengths = [s["input_ids"].numel() for s in text_samples]
    _check_equivalent(tiny_qwen25.model, text_samples, budget=sum(lengths[:3]) + 5)


def test_packing_without_isolation_would_differ(tiny_qwen25: Any, text_samples: list) -> None:
    """Guard of the guard: dropping the positions (one causal row) changes the losses."""
    model = tiny_qwen25.model
    batch = pack_collate(text_samples[:2], budget=1000)
    inputs = {k: v for k, v in batch.inputs.items() if k != "labels"}
    inputs["use_cache"] = False
    with torch.no_grad():
        logits = model(**inputs).logits[0]
    first = text_samples[0]["input_ids"].numel()
    second = text_samples[1]
    leaky = torch.nn.functional.cross_entropy(
        logits[first : first + second["input_ids"].numel() - 1],
        second["labels"][1:],
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    assert not torch.allclose(leaky, _alone_losses(model, second), atol=1e-4)


@pytest.mark.integration
def test_packed_image_losses_equal_one_by_one(tiny_qwen25: Any) -> None:
    samples = _image_samples(tiny_qwen25)
    assert samples[0]["image_grid_thw"].shape == (1, 3)
    assert samples[1]["image_grid_thw"].shape == (2, 3)
    lengths = [int(s["input_ids"].numel()) for s in samples]
    _check_equivalent(tiny_qwen25.model, samples, budget=lengths[0] + lengths[1] + lengths[2])


def test_pad_collate_layout(text_samples: list) -> None:
    batch = pad_collate(text_samples[:3])
    ids, labels = batch.inputs["input_ids"], batch.inputs["labels"]
    lengths = [s["input_ids"].numel() for s in text_samples[:3]]
    assert ids.shape == (3, max(lengths))
    for row, length in enumerate(lengths):
        assert (ids[row, length:] == PAD_TOKEN_ID).all()
        assert (labels[row, length:] == IGNORE_INDEX).all()
        assert torch.equal(ids[row, :length], text_samples[row]["input_ids"])
    assert (batch.inputs["attention_mask"] == 1).all()
    assert (batch.inputs["mm_token_type_ids"] == 0).all()
    assert batch.num_tokens == sum(lengths)
    assert batch.num_padding == 3 * max(lengths) - sum(lengths)
    assert 0 < batch.padding_fraction < 1 and batch.seq_lens == [[n] for n in lengths]


def test_overlong_samples_are_dropped_not_cut(text_samples: list) -> None:
    lengths = [s["input_ids"].numel() for s in text_samples]
    limit = sorted(lengths)[2]
    pad = pad_collate(text_samples, max_length=limit)
    pack = pack_collate(text_samples, budget=limit)
    over = sum(n > limit for n in lengths)
    assert pad.dropped == pack.dropped == over > 0
    assert pad.num_samples == pack.num_samples == len(lengths) - over
    assert pad.num_tokens == pack.num_tokens == sum(n for n in lengths if n <= limit)


def test_plan_rows_first_fit() -> None:
    assert plan_rows([5, 4, 3, 2, 6], 8) == [[0, 2], [1, 3], [4]]
    assert plan_rows([], 8) == []
    with pytest.raises(ValueError, match="over the budget"):
        plan_rows([9], 8)


def test_pack_layout_and_positions(tiny_qwen25: Any, text_samples: list) -> None:
    lengths = [s["input_ids"].numel() for s in text_samples]
    budget = max(lengths) + min(lengths)
    batch = pack_collate(text_samples, budget, pad_to_budget=True)
    assert batch.inputs["input_ids"].shape[1] == budget
    assert sorted(n for row in batch.seq_lens for n in row) == sorted(lengths)
    assert all(sum(row) <= budget for row in batch.seq_lens)
    add_packed_positions(tiny_qwen25.model, batch)
    pos = batch.inputs["position_ids"]
    assert pos.shape == (4, len(batch.seq_lens), budget)
    for row, members in enumerate(batch.seq_lens):
        start = 0
        for length in members:
            assert batch.inputs["labels"][row, start] == IGNORE_INDEX
            assert torch.equal(pos[0, row, start : start + length], torch.arange(length))
            start += length
    # text-only samples: the multimodal rows equal the text row
    assert torch.equal(pos[1:], pos[0].expand(3, -1, -1))
