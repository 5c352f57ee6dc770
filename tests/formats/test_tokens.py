"""The Qwen special tokens are written down once: in ``formats/tokens.py``, agreeing with the
tokenizer's added-token table and with a built tokenizer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rscovlm.formats import tokens
from rscovlm.formats.prompts import CHAT_IM_END, CHAT_IM_START, CHAT_IMAGE_PAD
from rscovlm.model.tokenizer import QWEN2_ADDED_TOKENS

PKG = Path(__file__).resolve().parents[2] / "rscovlm"
# the files allowed to spell the ids: the one table of names, and the vocabulary the tokenizer
# is built from (its ids are the vocabulary's, which the test below ties to this table)
ALLOWED = {PKG / "formats" / "tokens.py", PKG / "model" / "tokenizer.py"}
IDS = re.compile(r"(?<![0-9])(151643|151645|151655)(?![0-9])")


def test_every_id_matches_the_tokenizer_table() -> None:
    table = {text: token_id for token_id, text, _ in QWEN2_ADDED_TOKENS}
    assert tokens.TOKEN_IDS and all(table[t] == i for t, i in tokens.TOKEN_IDS.items())
    pad, eos = table["<|endoftext|>"], table["<|im_end|>"]
    assert (pad, eos) == (tokens.PAD_ID, tokens.EOS_ID)
    assert set(tokens.STOP_IDS) == {table["<|im_end|>"], table["<|endoftext|>"]}
    # the chat layout uses the same strings
    assert (CHAT_IM_START, CHAT_IM_END, CHAT_IMAGE_PAD) == (
        tokens.IM_START,
        tokens.IM_END,
        tokens.IMAGE_PAD,
    )


def test_a_built_tokenizer_gives_the_same_ids(qwen_tokenizer: Any) -> None:
    for text, token_id in tokens.TOKEN_IDS.items():
        assert qwen_tokenizer.convert_tokens_to_ids(text) == token_id, text
        assert qwen_tokenizer(text, add_special_tokens=False)["input_ids"] == [token_id]
    assert qwen_tokenizer.pad_token_id == tokens.PAD_ID
    assert qwen_tokenizer.eos_token_id == tokens.EOS_ID


def test_no_other_module_spells_the_ids() -> None:
    offenders = [
        f"{path.relative_to(PKG)}:{n}: {line.strip()}"
        for path in sorted(PKG.rglob("*.py"))
        if path not in ALLOWED
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if IDS.search(line)
    ]
    assert offenders == []


def test_the_check_sees_a_planted_id() -> None:
    assert IDS.search("eos = 151645") and not IDS.search("vocab = 1516450")
