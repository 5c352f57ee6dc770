"""Over-long samples are never cut: dropped and counted, or re-rendered at a lower band
(issue 6, Build 2; ``data.overlong``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from rscovlm.data.loader import ConversationLoader, ListStore
from rscovlm.data.mixture import Mixture, MixtureEntry
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import QA, Box, ImageRef, Instance, Record
from rscovlm.data.render import render
from rscovlm.train.stream import EncodedStream
from rscovlm.train.tokenize import ShrunkBandPolicy, record_rerenderer, sample_length

torch = pytest.importorskip("torch")

MIN, MAX = 4 * 28 * 28, 64 * 28 * 28  # 56² … 224²: 4 … 64 visual tokens
POLICY = RenderPolicy(
    family="qwen2_5_vl",
    defaults={"min_pixels": MIN, "max_pixels": MAX, "random_resize_prob": 0.0},
    tasks={"detection": {"box_kind": "hbb"}},
    datasets={"huge": {"min_pixels": 32 * 28 * 28}},
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Record]]]:
    root = tmp_path_factory.mktemp("overlong")
    rng = np.random.default_rng(0)
    for name, size in (("big.png", 448), ("small.png", 56)):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / name)
    big = [ImageRef(path="big.png", width=448, height=448)]
    objects = [
        Instance(class_name="ship", box=Box(hbb=[40.0 + 40 * i, 60.0, 70.0 + 40 * i, 100.0]))
        for i in range(3)
    ]
    det = Record(
        id="det",
        source="det",
        task="detection",
        images=big,
        objects=objects,
        meta={"class_list": ["ship"]},
    )
    short = Record(
        id="short",
        source="short",
        task="vqa",
        images=[ImageRef(path="small.png", width=56, height=56)],
        qa=[QA(question="Any ship?", answer="No.")],
    )
    # the same detection drawn through the "huge" entry: its band floor is 32·28²
    return root, {"det": [det], "short": [short], "huge": [det]}


def _stream(
    tiny: Any, root: Path, records: dict[str, list[Record]], max_length: int, mode: str
) -> EncodedStream:
    store = ListStore(records)
    entries = [MixtureEntry(name, 2.0) for name in records]
    mixture = Mixture(entries, store.sizes(), seed=3, epochs=1)
    loader = ConversationLoader(mixture, store, POLICY, root)
    return EncodedStream(
        loader,
        tiny.tokenizer,
        tiny.image_processor,
        "qwen2_5_vl",
        max_length=max_length,
        overlong=mode,  # type: ignore[arg-type]
        rerender=record_rerenderer(store, POLICY, root, mixture.seed),
    )


def _lengths(tiny: Any, root: Path, records: dict[str, list[Record]]) -> dict[str, int]:
    """Tokens of each entry's samples without a limit."""
    stream = _stream(tiny, root, records, 10**6, "drop")
    out: dict[str, int] = {}
    for sample in stream.loader:
        out[sample.item.entry] = sample_length(stream.fitter.encode(sample))
    return out


def test_shrunk_band_policy_halves_down_to_the_floor(data: Any) -> None:
    _, records = data
    det = records["det"][0]
    assert ShrunkBandPolicy.of(POLICY, 0).options_for(det).max_pixels == MAX
    assert ShrunkBandPolicy.of(POLICY, 1).options_for(det).max_pixels == MAX // 2
    assert ShrunkBandPolicy.of(POLICY, 3).options_for(det).max_pixels == MAX // 8
    assert ShrunkBandPolicy.of(POLICY, 9).options_for(det).max_pixels == MIN
    assert ShrunkBandPolicy.of(POLICY, 9).options_for(det, "huge").max_pixels == 32 * 28 * 28
    assert ShrunkBandPolicy.of(POLICY, 2).options_for(det).box_kind == "hbb"  # other layers kept


def test_overlong_dropped_and_counted(tiny_qwen25: Any, data: Any) -> None:
    root, records = data
    lengths = _lengths(tiny_qwen25, root, records)
    assert lengths["short"] < lengths["det"]
    stream = _stream(tiny_qwen25, root, records, lengths["det"] - 1, "drop")
    kept = list(stream)
    assert len(kept) == 2 and all(sample_length(s) == lengths["short"] for s in kept)
    counts = stream.fitter.counts
    assert (counts.seen, counts.kept, counts.dropped, counts.rerendered) == (6, 2, 4, 0)
    assert stream.counts() == {"skipped": 0, "overlong_dropped": 4, "rerendered": 0}
    assert sorted(stream.fitter.dropped_uids) == ["det/det"] * 4


def test_overlong_rerendered_at_a_lower_band(tiny_qwen25: Any, data: Any) -> None:
    """The 448² detection (224² at the top of the band: 64 image tokens) no longer fits; the
    re-render at max/2, max/4 … fits, with its boxes written for the new size. The ``huge``
    entry's floor (32·28²) keeps it too long: dropped."""
    root, records = data
    lengths = _lengths(tiny_qwen25, root, records)
    limit = lengths["det"] - 40  # 64 → 16 image tokens (max/4) is needed: 2 halvings
    stream = _stream(tiny_qwen25, root, records, limit, "rerender")
    samples = list(stream)
    counts = stream.fitter.counts
    assert counts.seen == counts.kept + counts.dropped == 6
    assert (counts.kept, counts.rerendered, counts.dropped) == (4, 2, 2)
    assert stream.counts()["rerendered"] == 2 and stream.counts()["overlong_dropped"] == 2
    assert sorted(stream.fitter.dropped_uids) == ["det/det"] * 2  # the "huge" ones
    rerendered = [s for s in samples if sample_length(s) != lengths["short"]]
    assert len(rerendered) == 2
    tokenizer = tiny_qwen25.tokenizer
    for encoded in rerendered:
        assert sample_length(encoded) <= limit
        assert encoded["image_grid_thw"].tolist() == [[1, 8, 8]]  # 112²: 16 tokens, never cut
        ids = encoded["input_ids"][0].tolist()
        assert ids.count(151655) == 16 and ids.count(151653) == 1  # the whole image span
        labels = encoded["labels"][0]
        answer = tokenizer.decode(labels[labels != -100].tolist())
        expected = render(
            records["det"][0], np.random.default_rng(0), ShrunkBandPolicy.of(POLICY, 2)
        )
        want = next(m.text for m in expected.messages if m.role == "assistant")
        assert answer == want + "<|im_end|>"
        assert want.splitlines()[0] == "10,15,17,25 ship"  # 448 → 112: a quarter of (40,60,70,100)


def test_config_overlong_option() -> None:
    from rscovlm.errors import InputError
    from rscovlm.train.config import load_train_config, shipped_train_configs

    path = shipped_train_configs()["tiny_cpu"]
    assert load_train_config(path).data.overlong == "drop"
    assert load_train_config(path, ["data.overlong=rerender"]).data.overlong == "rerender"
    with pytest.raises(InputError, match=r"data\.overlong"):
        load_train_config(path, ["data.overlong=truncate"])


def test_dropped_samples_are_reported_per_source_with_reasons(tiny_qwen25: Any, data: Any) -> None:
    """Over-long and unreadable samples: counted per source and reason, with an example, and
    the end-of-run lines say it (issue 16: a dropped record went unnoticed in log.jsonl)."""
    from rscovlm.train.report import drop_line, drop_summary

    root, records = data
    lengths = _lengths(tiny_qwen25, root, records)
    gone = Record(
        id="gone",
        source="broken",
        task="vqa",
        images=[ImageRef(path="missing.png", width=56, height=56)],
        qa=[QA(question="Any ship?", answer="No.")],
    )
    mixed = {"det": records["det"], "short": records["short"], "broken": [gone]}
    limit = lengths["det"] - 1
    stream = _stream(tiny_qwen25, root, mixed, limit, "drop")
    assert len(list(stream)) == 2  # the two short ones
    drops = {(d.source, d.kind): d for d in stream.drops()}
    assert set(drops) == {("det", "over-long"), ("broken", "unreadable")}
    over, unreadable = drops["det", "over-long"], drops["broken", "unreadable"]
    assert (over.count, over.longest, over.example) == (
        2,
        lengths["det"],
        f"det/det: {lengths['det']} tokens",
    )
    assert unreadable.count == 2 and unreadable.example.startswith("broken/gone: ")
    assert "missing.png" in unreadable.example
    assert stream.seen == {"det": 2, "short": 2, "broken": 2}  # kept + left out = drawn
    assert drop_line(over, limit) == (
        f"dropped a sample of det: over-long (> train.max_length {limit} tokens) — "
        f"det/det: {lengths['det']} tokens"
    )
    lines = drop_summary(stream.drops(), stream.seen, limit, world_size=1)
    assert lines[0] == "samples left out (not trained on):"
    assert sorted(lines[1:]) == sorted(
        [
            f"  det: 2 of 2 drawn — over-long: longest {lengths['det']} tokens > "
            f"train.max_length {limit}",
            f"  broken: 2 of 2 drawn — unreadable, e.g. {unreadable.example}",
        ]
    )
