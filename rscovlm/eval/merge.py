"""Merge predictions made on split patches back into whole images, ready for the DOTA server.

DOTA images are evaluated whole, but models see split patches named ``<base>__<m>__<x>___<y>``
(:func:`rscovlm.data.patches.parse_patch_name` reads the devkit's rate and mmrotate's size
spelling). Merging:

1. maps each patch box back to the original image with :meth:`PatchName.to_original`
   (``(p + (x, y)) / rate``); a name that is not a patch name is taken as a whole image;
2. merges with :func:`rscovlm.data.patches.merge_boxes`, the merge ``rscovlm detect`` uses too
   (class-wise rotated NMS per original image, default IoU 0.1; ties broken by area — the box
   less cut by a patch border wins — then by coordinates), so both commands keep the same
   boxes from the same raw outputs, whatever the input order;
3. writes ``Task1_<class>.txt`` files and, optionally, the zip for the evaluation server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rscovlm.data.patches import DEFAULT_MERGE_IOU, merge_boxes, parse_patch_name
from rscovlm.eval.detection_io import PredFormat, read_predictions
from rscovlm.eval.metrics.boxes import DetBoxes
from rscovlm.eval.read_report import ReadReport
from rscovlm.formats.results import write_task1

__all__ = ["DEFAULT_NMS_IOU", "MergeResult", "merge_files", "merge_patches"]

DEFAULT_NMS_IOU = DEFAULT_MERGE_IOU


@dataclass
class MergeResult:
    """Merged boxes per original image, and the counts of what happened."""

    images: tuple[str, ...]
    boxes: DetBoxes
    n_in: int
    n_patches: int
    n_whole: int
    n_suppressed: int
    report: ReadReport | None = None
    files: tuple[Path, ...] = ()

    def summary(self) -> list[str]:
        """Human-readable lines."""
        out = [] if self.report is None else self.report.summary()
        out.append(
            f"{self.n_in} boxes from {self.n_patches} patches and {self.n_whole} whole images "
            f"-> {len(self.boxes)} boxes on {len(self.images)} images "
            f"({self.n_suppressed} removed by NMS)"
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        return {
            "n_in": self.n_in,
            "n_out": len(self.boxes),
            "n_images": len(self.images),
            "n_patches": self.n_patches,
            "n_whole_images": self.n_whole,
            "n_suppressed": self.n_suppressed,
            "files": [str(p) for p in self.files],
        }


def merge_patches(
    images: Sequence[str], boxes: DetBoxes, *, nms_iou: float = DEFAULT_NMS_IOU
) -> MergeResult:
    """Map patch boxes to their original images and run class-wise rotated NMS per image.

    Args:
        images: Image names indexed by ``boxes.image`` (patch names or whole-image names).
        boxes: The boxes in patch pixels.
        nms_iou: NMS threshold in ``[0, 1]``; 1.0 keeps every box.

    Returns:
        The merged boxes (ordered by image, class, descending score, descending area, then
        coordinates) and the counts.
    """
    patches = [parse_patch_name(name) for name in images]
    originals = [p.base if p is not None else name for p, name in zip(patches, images, strict=True)]
    merged_names = tuple(dict.fromkeys(originals))
    index = {name: i for i, name in enumerate(merged_names)}
    quads = boxes.quads.copy()
    image = np.zeros(len(boxes), dtype=np.int64)
    order = np.argsort(boxes.image, kind="stable")
    starts = np.searchsorted(boxes.image[order], np.arange(len(images) + 1))
    for k, (patch, name) in enumerate(zip(patches, originals, strict=True)):
        rows = order[starts[k] : starts[k + 1]]
        image[rows] = index[name]
        if patch is not None and len(rows):
            quads[rows] = patch.to_original(quads[rows])
    moved = DetBoxes(image, boxes.label, quads, boxes.scores, boxes.difficult)
    kept = merge_boxes(moved.quads, moved.label, moved.scores, nms_iou, image=moved.image)
    n_patch_images = sum(p is not None for p in patches)
    return MergeResult(
        images=merged_names,
        boxes=moved.take(kept),
        n_in=len(boxes),
        n_patches=n_patch_images,
        n_whole=len(images) - n_patch_images,
        n_suppressed=len(moved) - len(kept),
    )


def merge_files(
    pred_path: str | Path,
    fmt: PredFormat,
    classes: Sequence[str],
    out_dir: str | Path,
    *,
    nms_iou: float = DEFAULT_NMS_IOU,
    zip_path: str | Path | None = None,
    default_family: str | None = None,
) -> MergeResult:
    """Read patch predictions, merge them and write Task1 files (and the zip).

    Raises:
        InputError: unreadable inputs (see :func:`rscovlm.eval.detection_io.read_predictions`).
    """
    pred = read_predictions(pred_path, fmt, classes, default_family=default_family)
    result = merge_patches(pred.images, pred.boxes, nms_iou=nms_iou)
    result.report = pred.report
    files = write_task1(result.boxes.table(result.images, classes), out_dir, zip_path=zip_path)
    result.files = tuple(files)
    return result
