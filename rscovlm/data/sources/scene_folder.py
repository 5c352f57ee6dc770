"""Scene classification sets laid out one folder per class (AID, UCMerced, NWPU-RESISC45, WHU-RS19).

Layout: ``<path>/<ClassName>/<image>`` (e.g. ``AID/Airport/airport_1.jpg``,
``UCMerced_LandUse/Images/agricultural/agricultural00.tif``). The folder name is the label.

AID and NWPU-RESISC45 have no official split, so one is drawn here: inside each class the images
(in name order) are permuted by ``numpy.random.default_rng(seed)`` and the first
``round(n × ratio)`` go to the first split, and so on. Seed and ratios are adapter options, hence
recorded in the build's manifest with the recipe; the same seed gives the same split everywhere.

Citations: Xia et al., "AID", TGRS 2017; Yang & Newsam, "Bag-of-visual-words and spatial
extensions for land-use classification", ACM GIS 2010 (UCMerced); Cheng et al., "Remote Sensing
Image Scene Classification: Benchmark and State of the Art", Proc. IEEE 2017 (NWPU-RESISC45);
Dai & Yang, ICIP 2010 (WHU-RS19). Licence: research use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from rscovlm.data.record import Record
from rscovlm.data.sources._common import IMAGE_SUFFIXES, Item, bad, iter_sorted_files, rel

__all__ = ["assign_splits", "iter_scene_folder_records"]


def assign_splits(n: int, ratios: Mapping[str, float], seed: int) -> list[str]:
    """Split names for ``n`` items: a seeded permutation cut by ``ratios`` (in mapping order).

    The last split takes the remainder, so every item gets a split.

    Examples:
        >>> assign_splits(5, {"train": 0.6, "test": 0.4}, seed=0).count("train")
        3
    """
    names = list(ratios)
    if not names or any(r < 0 for r in ratios.values()):
        raise ValueError(f"split ratios must be non-negative and not empty: {dict(ratios)}")
    total = sum(ratios.values())
    order = np.random.default_rng(seed).permutation(n)
    out = [names[-1]] * n
    start = 0
    for name in names[:-1]:
        count = round(n * ratios[name] / total)
        for i in order[start : start + count]:
            out[int(i)] = name
        start += count
    return out


def iter_scene_folder_records(
    root: str | Path,
    path: str = "",
    *,
    source: str = "scene",
    split: str | None = None,
    ratios: Mapping[str, float] | None = None,
    seed: int = 0,
) -> Iterator[Item]:
    """Yield one classification record per image, in class then file name order.

    Args:
        root: Data root of the build.
        path: The folder holding one sub-folder per class, under ``root``.
        source: Source name written into the records.
        split: Keep only this split of the drawn split (``None``: all).
        ratios: Split ratios, e.g. ``{"train": 0.8, "test": 0.2}`` (default: all ``train``).
        seed: Seed of the split permutation.
    """
    root = Path(root)
    base = root / path
    ratios = dict(ratios or {"train": 1.0})
    if not base.is_dir():
        yield bad(source, root, base, str(path), "scene folder not found")
        return
    for class_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        files = list(iter_sorted_files(class_dir, IMAGE_SUFFIXES))
        splits = assign_splits(len(files), ratios, seed)
        for file, file_split in zip(files, splits, strict=True):
            if split is not None and file_split != split:
                continue
            yield Record(
                id=f"{class_dir.name}/{file.stem}",
                source=source,
                split=file_split,
                task="classification",
                images=[{"path": rel(root, file)}],
                label=class_dir.name,
                source_file=rel(root, file),
                meta={"split_seed": seed},
            )
