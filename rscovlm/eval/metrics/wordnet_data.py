"""Lay out WordNet 3.0 dict files where :mod:`nltk` reads them, without any download.

Debian's ``wordnet-base`` and ``wordnet-sense-index`` packages ship the WordNet 3.0 database in
``/usr/share/wordnet`` but not the ``lexnames`` table that nltk's ``WordNetCorpusReader`` opens
first. This module copies the files into ``<dest>/corpora/wordnet`` and writes ``lexnames``
from :data:`LEXNAMES`, the fact table of the lexnames(5WN) manual page (file number, name,
syntactic category: 1 noun, 2 verb, 3 adjective, 4 adverb).

Run ``python -m rscovlm.eval.metrics.wordnet_data SRC DEST`` (``make test`` does it, see the
Makefile target ``wordnet``); it is idempotent.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from rscovlm.errors import InputError

__all__ = ["LEXNAMES", "WORDNET_FILES", "install_wordnet", "lexnames_text"]

#: The 45 lexicographer files of WordNet 3.0 (lexnames(5WN)), in file-number order.
LEXNAMES: tuple[tuple[str, int], ...] = (
    ("adj.all", 3),
    ("adj.pert", 3),
    ("adv.all", 4),
    ("noun.Tops", 1),
    ("noun.act", 1),
    ("noun.animal", 1),
    ("noun.artifact", 1),
    ("noun.attribute", 1),
    ("noun.body", 1),
    ("noun.cognition", 1),
    ("noun.communication", 1),
    ("noun.event", 1),
    ("noun.feeling", 1),
    ("noun.food", 1),
    ("noun.group", 1),
    ("noun.location", 1),
    ("noun.motive", 1),
    ("noun.object", 1),
    ("noun.person", 1),
    ("noun.phenomenon", 1),
    ("noun.plant", 1),
    ("noun.possession", 1),
    ("noun.process", 1),
    ("noun.quantity", 1),
    ("noun.relation", 1),
    ("noun.shape", 1),
    ("noun.state", 1),
    ("noun.substance", 1),
    ("noun.time", 1),
    ("verb.body", 2),
    ("verb.change", 2),
    ("verb.cognition", 2),
    ("verb.communication", 2),
    ("verb.competition", 2),
    ("verb.consumption", 2),
    ("verb.contact", 2),
    ("verb.creation", 2),
    ("verb.emotion", 2),
    ("verb.motion", 2),
    ("verb.perception", 2),
    ("verb.possession", 2),
    ("verb.social", 2),
    ("verb.stative", 2),
    ("verb.weather", 2),
    ("adj.ppl", 3),
)

#: The dict files nltk's reader opens, besides ``lexnames``.
WORDNET_FILES: tuple[str, ...] = (
    "cntlist.rev",
    "index.sense",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
)


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>category`` per line.

    Examples:
        >>> lexnames_text().splitlines()[0].split("\\t"), len(lexnames_text().splitlines())
        (['00', 'adj.all', '3'], 45)
    """
    return "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES))


def install_wordnet(src: Path, dest: Path) -> Path:
    """Copy the dict files of ``src`` to ``dest/corpora/wordnet`` and write ``lexnames``.

    Files already present with the same size are left alone. Returns the wordnet folder.

    Raises:
        InputError: A dict file is missing in ``src``.
    """
    missing = [name for name in WORDNET_FILES if not (src / name).is_file()]
    if missing:
        raise InputError(
            f"WordNet files missing in {src}: {', '.join(missing)} (install the Debian packages "
            "wordnet-base and wordnet-sense-index)"
        )
    target = dest / "corpora" / "wordnet"
    target.mkdir(parents=True, exist_ok=True)
    for name in WORDNET_FILES:
        out = target / name
        if not out.is_file() or out.stat().st_size != (src / name).stat().st_size:
            shutil.copyfile(src / name, out)
    (target / "lexnames").write_text(lexnames_text(), encoding="utf-8")
    return target


def main(argv: list[str]) -> int:
    """``SRC DEST``: lay out WordNet; one clear line and exit 1 on a missing file."""
    if len(argv) != 2:
        print("usage: python -m rscovlm.eval.metrics.wordnet_data SRC_DICT_DIR NLTK_DATA_DIR")
        return 2
    try:
        folder = install_wordnet(Path(argv[0]), Path(argv[1]))
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"WordNet laid out in {folder}")
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised by make
    raise SystemExit(main(sys.argv[1:]))
