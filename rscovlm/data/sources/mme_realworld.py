"""MME-RealWorld, remote-sensing part: multiple-choice VQA on high-resolution images.

Layout: a json list (or JSONL) of ``{Question_id, Image, Text, Answer choices, Ground truth,
Category}``; ``Answer choices`` are strings like ``"(A) Yellow"``, ``Ground truth`` is the letter,
``Category`` one of ``count``, ``color``, ``position``. ``Image`` is relative to an image folder.

Citation: Zhang et al., "MME-RealWorld: Could Your Multimodal LLM Challenge High-Resolution
Real-World Scenarios that are Difficult for Humans?", ICLR 2025. Licence: research use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rscovlm.data.record import QA, Record
from rscovlm.data.sources._common import Item, bad, image_ref, iter_json_items, json_paths, rel

__all__ = ["iter_mme_realworld_records"]


def iter_mme_realworld_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "mme_realworld_rs",
    split: str | None = None,
    image_root: str | None = None,
) -> Iterator[Item]:
    """Yield one multiple-choice VQA record per question, in file order.

    Args:
        root: Data root of the build.
        path: The json / JSONL file under ``root``.
        source: Source name written into the records.
        split: Split name (default ``test``).
        image_root: Folder of the ``Image`` paths under ``root`` (default: the file's folder).
    """
    root, file, img_root = json_paths(root, path, image_root)

    def item(entry_id: str, entry: dict[str, Any]) -> Item:
        qid = str(entry.get("Question_id", entry.get("question_id", entry_id)))
        image, text = entry.get("Image"), entry.get("Text")
        choices, truth = entry.get("Answer choices"), entry.get("Ground truth")
        if not isinstance(image, str) or not image:
            return bad(source, root, file, qid, "entry without Image")
        if not isinstance(text, str) or not isinstance(truth, str):
            return bad(source, root, file, qid, "entry without Text or Ground truth")
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            return bad(source, root, file, qid, "Answer choices is not a list of strings")
        return Record(
            id=qid,
            source=source,
            split=split or "test",
            task="vqa",
            images=[image_ref(root, img_root / image)],
            qa=[QA(question=text, answer=truth, category=entry.get("Category"), choices=choices)],
            source_file=rel(root, file),
            meta={"question_id": qid},
        )

    yield from iter_json_items(root, file, source, item)
