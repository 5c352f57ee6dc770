"""Image captioning: Karpathy-style json (RSICD, UCM-Captions, Sydney-Captions), NWPU-Captions.

Karpathy layout: ``dataset_*.json`` = ``{"images": [{filename, imgid, split: train|val|test,
sentences: [{raw, tokens}]}]}`` with the images in one folder. NWPU-Captions layout:
``dataset_nwpu.json`` = ``{class_name: [{filename, split, raw, raw_1, ..., raw_4}]}`` with images
in ``<class_name>/<filename>``; the class name becomes the record's ``label`` too.

One record per image, holding all its reference captions (``raw`` text, stripped).

Citations: Lu et al., "Exploring Models and Data for Remote Sensing Image Caption Generation",
TGRS 2018 (RSICD); Qu et al., "Deep semantic understanding of high resolution remote sensing
image", CITS 2016 (UCM-/Sydney-Captions); Cheng et al., "NWPU-Captions Dataset and MLCA-Net for
Remote Sensing Image Captioning", TGRS 2022. Licence: research use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rscovlm import safe_read
from rscovlm.data.record import Record
from rscovlm.data.sources._common import Item, bad, rel

__all__ = ["iter_karpathy_records", "iter_nwpu_caption_records"]


def _load(file: Path) -> Any:
    return safe_read.read_json(file, "caption file")


def iter_karpathy_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "rsicd",
    split: str | None = None,
    image_dir: str = "images",
) -> Iterator[Item]:
    """Yield one caption record per image of a Karpathy json, in file order.

    Args:
        root: Data root of the build.
        path: The ``dataset_*.json`` file under ``root``.
        source: Source name written into the records.
        split: Keep only this split (``None``: all, each record keeps its own).
        image_dir: Image folder, relative to the json's folder.
    """
    root = Path(root)
    file = root / path
    try:
        images = _load(file).get("images")
        if not isinstance(images, list):
            raise ValueError("no 'images' list")
    except (OSError, ValueError, AttributeError) as exc:
        yield bad(source, root, file, file.name, f"not a Karpathy caption json ({exc})")
        return
    for pos, entry in enumerate(images):
        entry_id = f"{file.stem}:{pos}"
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
            yield bad(source, root, file, entry_id, "image entry without filename")
            continue
        entry_split = str(entry.get("split", "train"))
        if split is not None and entry_split != split:
            continue
        sentences = [s.get("raw") for s in entry.get("sentences") or [] if isinstance(s, dict)]
        captions = [s.strip() for s in sentences if isinstance(s, str)]
        if not captions:
            yield bad(source, root, file, entry_id, "image without sentences")
            continue
        yield Record(
            id=str(entry.get("imgid", pos)),
            source=source,
            split=entry_split,
            task="caption",
            images=[{"path": rel(root, file.parent / image_dir / entry["filename"])}],
            captions=captions,
            source_file=rel(root, file),
        )


def iter_nwpu_caption_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "nwpu_captions",
    split: str | None = None,
    image_dir: str = "",
) -> Iterator[Item]:
    """Yield one caption record per NWPU-Captions image, in class then file order.

    Args:
        root: Data root of the build.
        path: The ``dataset_nwpu.json`` file under ``root``.
        source: Source name written into the records.
        split: Keep only this split (``None``: all).
        image_dir: Folder holding the ``<class_name>/`` folders, relative to the json's folder.
    """
    root = Path(root)
    file = root / path
    try:
        data = _load(file)
        if not isinstance(data, dict):
            raise ValueError("not a {class_name: [...]} object")
    except (OSError, ValueError) as exc:
        yield bad(source, root, file, file.name, f"not an NWPU-Captions json ({exc})")
        return
    for class_name, entries in data.items():
        for pos, entry in enumerate(entries if isinstance(entries, list) else []):
            entry_id = f"{class_name}:{pos}"
            if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
                yield bad(source, root, file, entry_id, "entry without filename")
                continue
            entry_split = str(entry.get("split", "train"))
            if split is not None and entry_split != split:
                continue
            keys = ["raw"] + [f"raw_{i}" for i in range(1, 10)]
            captions = [entry[k].strip() for k in keys if isinstance(entry.get(k), str)]
            yield Record(
                id=f"{class_name}/{Path(entry['filename']).stem}",
                source=source,
                split=entry_split,
                task="caption",
                images=[
                    {"path": rel(root, file.parent / image_dir / class_name / entry["filename"])}
                ],
                captions=captions,
                label=class_name,
                source_file=rel(root, file),
            )
