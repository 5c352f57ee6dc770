"""WordNet for the LRS-VQA official rule: find it, load it once, or say it is unavailable.

Where it is looked for, first hit wins:

1. ``$RSCOVLM_NLTK_DATA`` (an nltk data dir holding ``corpora/wordnet``);
2. ``<sys.prefix>/nltk_data`` — the project's ``.venv/nltk_data``, laid out by ``make test``
   (:mod:`rscovlm.eval.metrics.wordnet_data`);
3. every folder of nltk's own search path (``$NLTK_DATA``, ``~/nltk_data``, ...).

Nothing is downloaded. Without WordNet (or without nltk) :func:`load_wordnet` returns ``None``
and :func:`wordnet_status` says why, so callers report the official LRS-VQA value as
unavailable instead of crashing.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = ["ENV_VAR", "candidate_dirs", "load_wordnet", "share_synset", "wordnet_status"]

#: Environment variable naming an nltk data directory with ``corpora/wordnet``.
ENV_VAR = "RSCOVLM_NLTK_DATA"
#: ``path_similarity`` threshold of the official rule (EVAL_SUITE.md §3.7).
THRESHOLD = 0.8


def candidate_dirs() -> list[Path]:
    """The nltk data directories searched, in order (see the module docstring)."""
    dirs: list[Path] = []
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]))
    dirs.append(Path(sys.prefix) / "nltk_data")
    try:
        import nltk

        dirs.extend(Path(p) for p in nltk.data.path)
    except ImportError:
        pass
    return dirs


@functools.lru_cache(maxsize=1)
def _load() -> tuple[Any, str]:
    try:
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError:
        return None, "nltk is not installed (pip install 'rscovlm[caption]')"
    for base in candidate_dirs():
        root = base / "corpora" / "wordnet"
        if (root / "lexnames").is_file() and (root / "data.noun").is_file():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "multilingual functions not available"
                    return WordNetCorpusReader(str(root), None), f"WordNet from {root}"
            except Exception as err:  # a broken copy is reported, not raised
                return None, f"WordNet at {root} could not be read: {type(err).__name__}: {err}"
    return None, (
        "WordNet not found (run `make wordnet`, or point $RSCOVLM_NLTK_DATA at a folder "
        "with corpora/wordnet)"
    )


def load_wordnet() -> Any:
    """The loaded ``WordNetCorpusReader``, or ``None`` when unavailable (loaded once)."""
    return _load()[0]


def wordnet_status() -> str:
    """Where WordNet was loaded from, or why it is unavailable."""
    return _load()[1]


def share_synset(a: str, b: str, wn: Any) -> bool:
    """Official test (§3.7): some synset pair of ``a`` and ``b`` has path similarity > 0.8.

    As ``path_similarity = 1 / (d + 1)``, this holds exactly when the two strings share a
    synset. nltk's own lookup (lower-casing, morphy) applies; a lookup error counts as no match.
    """
    try:
        sa, sb = wn.synsets(a), wn.synsets(b)
        for x in sa:
            for y in sb:
                sim = x.path_similarity(y)
                if sim is not None and sim > THRESHOLD:
                    return True
    except Exception:  # nltk may raise on odd strings; the official rule would too
        return False
    return False
