"""RSVQA-LR and RSVQA-HR: VQA from land-cover vector data over Sentinel-2 / aerial images.

Layout per split ``{split}`` (``train``, ``val``, ``test``; HR also ``test_phili``)::

    {prefix}{split}_questions.json  {"questions": [{id, img_id, type, question, answers_ids,
                                                    active}]}
    {prefix}{split}_answers.json    {"answers": [{id, question_id, answer, active}]}
    {prefix}{split}_images.json     {"images": [{id, questions_ids, active}]}
    Images_LR/{id}.tif   (LR)    or    Data/{id}.tif   (HR)

``prefix`` is ``LR_split_`` / ``USGS_split_`` in the releases (set it with ``prefix``). Question
types: presence, comparison, rural_urban (LR only), count, area. Only ``active: true`` entries
count; an inactive question is skipped (not an error), an active question without an active
answer is reported.

Citation: Lobry et al., "RSVQA: Visual Question Answering for Remote Sensing Data", TGRS 2020.
Licence: CC BY 4.0 (annotations); images under their providers' terms.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rscovlm import safe_read
from rscovlm.data.record import QA, Record
from rscovlm.data.sources._common import Item, bad, find_image, rel

__all__ = ["iter_rsvqa_records"]


def _load(file: Path, key: str) -> list[dict[str, Any]]:
    data = safe_read.read_json(file, "RSVQA file")
    rows = data.get(key) if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"no {key!r} list")
    return [r for r in rows if isinstance(r, dict)]


def iter_rsvqa_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "rsvqa",
    split: str = "test",
    prefix: str = "",
    image_dir: str | None = None,
) -> Iterator[Item]:
    """Yield one VQA record per active question of one split, in question-id order.

    Args:
        root: Data root of the build.
        path: The RSVQA folder under ``root``.
        source: Source name written into the records.
        split: Which split's json files to read.
        prefix: File name prefix of the json files (e.g. ``LR_split_``).
        image_dir: Image folder under ``path``; default ``Images_LR`` or ``Data``, whichever
            exists.
    """
    root = Path(root)
    base = root / path
    files = {k: base / f"{prefix}{split}_{k}.json" for k in ("questions", "answers")}
    try:
        questions = _load(files["questions"], "questions")
        answers = {a.get("id"): a for a in _load(files["answers"], "answers")}
    except (OSError, ValueError, TypeError) as exc:  # TypeError: an unhashable id
        yield bad(source, root, files["questions"], split, f"cannot read split files ({exc})")
        return
    if image_dir is None:
        image_dir = next((d for d in ("Images_LR", "Data") if (base / d).is_dir()), "Images_LR")
    img_dir = base / image_dir
    qfile = rel(root, files["questions"])
    for q in sorted(questions, key=lambda q: (str(type(q.get("id"))), q.get("id"))):
        if not q.get("active", True):
            continue
        qid = str(q.get("id"))
        ans = [answers.get(a) for a in q.get("answers_ids") or []]
        ans = [a for a in ans if a is not None and a.get("active", True)]
        if not ans or not isinstance(q.get("question"), str):
            yield bad(source, root, files["questions"], qid, "active question without an answer")
            continue
        img_id = str(q.get("img_id"))
        image = find_image([img_dir], img_id, (".tif", ".png", ".jpg")) or img_dir / f"{img_id}.tif"
        yield Record(
            id=qid,
            source=source,
            split=split,
            task="vqa",
            images=[{"path": rel(root, image)}],
            qa=[
                QA(
                    question=q["question"],
                    answer=str(ans[0].get("answer", "")),
                    category=q.get("type"),
                )
            ],
            source_file=qfile,
            meta={"img_id": img_id},
        )
