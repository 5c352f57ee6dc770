"""LRS-VQA-Zoom: Zoom-in Chain records from LRS-VQA-style questions with evidence boxes.

Input: LRS-VQA-style annotations (benchmark ``hbox``/``rbox`` or training ``bbox_info``), read
by :func:`rscovlm.data.sources.lrs_vqa.iter_lrs_vqa_records`. Each question becomes one record:

- **one evidence region**, not a skipped category (``count``), crop not too large: a Zoom-in
  Chain record, ``zoom = [crop box]``; :func:`rscovlm.data.render.render` turns it into the
  two-round conversation (tool call box on the resized overview, the crop cut from the ORIGINAL
  full-resolution image at its own ``smart_resize``);
- **several regions**, a **count** question, or a crop covering more than
  ``max_image_fraction`` of the image (zooming would not help): a single-turn QA record
  (``zoom = []``).

Crop box policy (:func:`crop_box`), in original pixels:

1. the region is clipped to the image;
2. each side is padded by ``pad_ratio`` × the region's extent on that axis (context);
3. each side is raised to ``min_size`` (a minimum context; small objects get surroundings);
4. the short side is raised until long / short ≤ ``max_aspect``;
5. each side is capped at the image's, and the box, centred on the region, slides (not shrinks)
   to lie inside the image;
6. corners are snapped outward to whole pixels (floor / ceil), then clipped to the image.

The result always contains the (clipped) region and lies inside the image.

With ``crops_dir`` the crops are also written as PNG files, read window by window through
rasterio (:func:`rscovlm.imaging.read_window`): a 27k-pixel image is never decoded whole. A
written crop is the record's second image; otherwise the loader cuts it at fetch time, also
through windowed reads for huge images.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from rscovlm.data.record import BadEntry, Box, ImageRef, Record
from rscovlm.data.shards import write_jsonl
from rscovlm.data.sources.lrs_vqa import iter_lrs_vqa_records
from rscovlm.errors import InputError
from rscovlm.imaging import image_size, read_window

__all__ = [
    "CropPolicy",
    "ZoomBuildResult",
    "build_zoom_dataset",
    "crop_box",
    "iter_zoom_records",
    "zoom_record",
]


@dataclass(frozen=True)
class CropPolicy:
    """How an evidence region becomes a crop (see the module docstring).

    Attributes:
        pad_ratio: Context added on each side, as a fraction of the region's extent.
        min_size: Minimum crop side in original pixels (448 = the detection band's lower side).
        max_aspect: Largest long / short side ratio of a crop.
        max_image_fraction: Crops larger than this fraction of the image area give single-turn
            samples.
        skip_categories: QA categories that never zoom.
    """

    pad_ratio: float = 0.5
    min_size: int = 448
    max_aspect: float = 4.0
    max_image_fraction: float = 0.5
    skip_categories: tuple[str, ...] = ("count",)

    def __post_init__(self) -> None:
        if not (self.pad_ratio >= 0 and self.min_size >= 1 and self.max_aspect >= 1):
            raise InputError(
                "crop policy needs pad_ratio >= 0, min_size >= 1 and max_aspect >= 1, got "
                f"{self.pad_ratio}, {self.min_size}, {self.max_aspect}"
            )
        if not 0 < self.max_image_fraction <= 1:
            raise InputError(f"max_image_fraction must be in (0, 1], got {self.max_image_fraction}")


def _place(centre: float, side: float, limit: int) -> tuple[int, int]:
    """A span of ``side`` around ``centre`` slid inside ``[0, limit]``, snapped outward."""
    side = min(side, float(limit))
    lo = min(max(centre - side / 2, 0.0), limit - side)
    return max(0, math.floor(lo)), min(limit, math.ceil(lo + side))


def crop_box(
    region: Iterable[float], width: int, height: int, policy: CropPolicy | None = None
) -> tuple[int, int, int, int]:
    """The crop ``(x1, y1, x2, y2)`` (original pixels, ints) around an evidence region.

    Raises:
        InputError: The region does not overlap the image.

    Examples:
        >>> crop_box([100, 100, 140, 120], 4000, 3000)
        (0, 0, 448, 448)
        >>> crop_box([2000, 1000, 2600, 1100], 4000, 3000)
        (1700, 826, 2900, 1274)
    """
    policy = policy or CropPolicy()
    x1, y1, x2, y2 = (float(v) for v in region)
    x1, x2 = max(0.0, min(x1, x2)), min(float(width), max(x1, x2))
    y1, y2 = max(0.0, min(y1, y2)), min(float(height), max(y1, y2))
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"region {list(region)} does not overlap the {width}x{height} image")
    w = max((x2 - x1) * (1 + 2 * policy.pad_ratio), policy.min_size)
    h = max((y2 - y1) * (1 + 2 * policy.pad_ratio), policy.min_size)
    w, h = max(w, h / policy.max_aspect), max(h, w / policy.max_aspect)
    cx1, cx2 = _place((x1 + x2) / 2, w, width)
    cy1, cy2 = _place((y1 + y2) / 2, h, height)
    return cx1, cy1, cx2, cy2


def _regions(record: Record) -> list[list[float]]:
    qa = record.qa[0]
    if qa.evidence:
        return [list(b.hbb) for b in qa.evidence]
    return [list(b.hbb) for b in record.zoom]


def zoom_record(
    record: Record, policy: CropPolicy, size: tuple[int, int], source: str | None = None
) -> tuple[Record, str]:
    """The LRS-VQA-Zoom record of one question and the decision taken.

    Returns:
        ``(record, decision)`` with decision ``zoom``, ``several_regions``, ``skipped_category``,
        ``too_large`` or ``no_region``; ``meta.zoom_build`` records it with the region count.

    Raises:
        InputError: Not a single-question VQA record, or a region outside the image.
    """
    if record.task != "vqa" or len(record.qa) != 1:
        raise InputError(f"{record.uid}: expected a VQA record with one question")
    width, height = size
    regions = _regions(record)
    zoom: list[Box] = []
    if record.qa[0].category in policy.skip_categories:
        decision = "skipped_category"
    elif not regions:
        decision = "no_region"
    elif len(regions) > 1:
        decision = "several_regions"
    else:
        crop = crop_box(regions[0], width, height, policy)
        area = (crop[2] - crop[0]) * (crop[3] - crop[1])
        if area > policy.max_image_fraction * width * height:
            decision = "too_large"
        else:
            decision, zoom = "zoom", [Box.from_hbb(crop)]
    image = ImageRef(path=record.images[0].path, width=width, height=height)
    meta = {**record.meta, "zoom_build": {"decision": decision, "regions": len(regions)}}
    out = record.model_copy(
        update={"images": [image], "zoom": zoom, "meta": meta, "source": source or record.source}
    )
    return out, decision


def _write_crop(root: Path, record: Record, crops_dir: Path) -> Record:
    """Cut the record's crop from the original image window by window and save it as PNG."""
    x1, y1, x2, y2 = (int(v) for v in record.zoom[0].hbb)
    pixels = read_window(root / record.images[0].path, x1, y1, x2 - x1, y2 - y1)
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    elif pixels.shape[-1] > 3:
        pixels = pixels[..., :3]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in record.id) + ".png"
    path = crops_dir / name
    Image.fromarray(pixels).save(path)
    crop = ImageRef(path=path.relative_to(root).as_posix(), width=x2 - x1, height=y2 - y1)
    return record.model_copy(update={"images": [record.images[0], crop]})


@dataclass
class ZoomBuildResult:
    """Counts of a build: ``read`` = ``zoom`` + ``single`` + ``rejected``."""

    read: int = 0
    zoom: int = 0
    single: int = 0
    rejected: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    rejections: list[BadEntry] = field(default_factory=list)


def iter_zoom_records(
    root: str | Path,
    path: str,
    *,
    policy: CropPolicy | None = None,
    source: str = "lrsvqa_zoom",
    image_root: str | None = None,
    crops_dir: str | Path | None = None,
    result: ZoomBuildResult | None = None,
) -> Iterator[Record]:
    """Yield the LRS-VQA-Zoom records of an annotation file (see the module docstring).

    Args:
        root: Data root; image paths in the records are relative to it.
        path: The LRS-VQA json / JSONL file under ``root``.
        policy: Crop policy.
        source: Source name of the output records.
        image_root: Folder of the ``image`` paths under ``root`` (default: the file's).
        crops_dir: Write each zoom crop there (under ``root``) as a PNG.
        result: Filled with counts and the rejected entries as the iteration goes.

    Raises:
        InputError: The annotation file does not exist.
    """
    root = Path(root)
    if not (root / path).is_file():
        raise InputError(f"annotation file not found: {root / path}")
    policy = policy or CropPolicy()
    result = result if result is not None else ZoomBuildResult()
    crops = Path(crops_dir) if crops_dir is not None else None
    if crops is not None:
        crops = crops if crops.is_absolute() else root / crops
        crops.mkdir(parents=True, exist_ok=True)
    for item in iter_lrs_vqa_records(root, path, source=source, image_root=image_root):
        result.read += 1
        if isinstance(item, BadEntry):
            result.rejected += 1
            result.rejections.append(item)
            continue
        try:
            ref = item.images[0]
            size = (ref.width, ref.height)
            if ref.width is None or ref.height is None:
                size = image_size(root / ref.path)
            record, decision = zoom_record(item, policy, size, source)
            if decision == "zoom" and crops is not None:
                record = _write_crop(root, record, crops)
        except InputError as exc:
            result.rejected += 1
            result.rejections.append(
                BadEntry(id=item.id, source=source, source_file=item.source_file, reason=str(exc))
            )
            continue
        result.decisions[decision] = result.decisions.get(decision, 0) + 1
        if decision == "zoom":
            result.zoom += 1
        else:
            result.single += 1
        yield record


def build_zoom_dataset(
    root: str | Path,
    path: str,
    out: str | Path,
    *,
    policy: CropPolicy | None = None,
    source: str = "lrsvqa_zoom",
    image_root: str | None = None,
    crops_dir: str | Path | None = None,
) -> ZoomBuildResult:
    """Write the LRS-VQA-Zoom records to ``out`` (JSONL) and the rejects beside it.

    Rejected entries go to ``<out stem>.rejected.jsonl`` with their reasons.
    """
    result = ZoomBuildResult()
    records = list(
        iter_zoom_records(
            root,
            path,
            policy=policy,
            source=source,
            image_root=image_root,
            crops_dir=crops_dir,
            result=result,
        )
    )
    out = Path(out)
    write_jsonl(out, records)
    rejected = out.with_name(out.stem + ".rejected.jsonl")
    write_jsonl(rejected, [r.model_dump() for r in result.rejections])
    return result
