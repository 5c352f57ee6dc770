"""Tiled detection over images of any size: patches → detection prompt → parse → map back → NMS.

:func:`detect_image` runs one image through any :class:`~rscovlm.model.backends.Backend`:

1. **Tiling.** The image is cut with the data engine's DOTA-style tiling
   (:func:`rscovlm.data.split.plan_windows`, a :class:`~rscovlm.data.split.TileSpec` of patch
   size, gap and resize rates). Patches are read batch by batch with
   :func:`rscovlm.imaging.read_regions` (windowed reads for rasters, so a 30000² GeoTIFF is
   never decoded whole; a small PNG is decoded once per batch); a patch that cannot be read is
   reported and skipped. Patches are named ``<image_id>__<rate>__<x>___<y>``
   (:func:`~rscovlm.data.patches.format_patch_name`).
2. **Prompt.** ``[system, user[patch, "find the {classes}."]]`` with the plain system prompt of
   the box kind and the evaluation user text (trailing period, WIRE §2.7), built by the
   detection builder training uses (:mod:`rscovlm.data.tasks`); the patch is resized
   into the backend's pixel band (:func:`rscovlm.model.encoding.image_part`).
3. **Batched generation**, ``batch`` patches per call.
4. **Decoding** with :func:`rscovlm.formats.decode.decode_detections`, the one decode the
   evaluation's ``vlm`` reader calls too (think block dropped, plain or JSON, hbb / obb / quad
   lines all read, labels matched by :class:`rscovlm.formats.LabelMatcher`, coordinates mapped
   to patch pixels by :class:`~rscovlm.resolution.CoordMap`). Unreadable lines, labels that
   match no class and boxes of zero area are *counted* per patch and in total, never dropped
   silently.
5. **Mapping back** to original pixels by the patch origin read from the patch NAME
   (:meth:`~rscovlm.data.patches.PatchName.to_original`), as ``rscovlm eval merge`` does.
6. **Merging** with :func:`rscovlm.data.patches.merge_boxes`, the merge of ``rscovlm eval
   merge`` too: class-wise rotated NMS (polygon IoU, default threshold 0.1 as the DOTA merge);
   ties — a VLM scores every box 1 — go to the larger box (the one less cut by a patch
   border), then by coordinates, so the result does not depend on the order of patches or
   lines, and ``rscovlm eval merge raw_outputs.jsonl`` gives the same boxes.

The counts add up: ``n_objects = n_unknown_label + n_degenerate + n_before_nms`` and
``n_before_nms = n_kept + n_suppressed``.

Outputs (predictions JSONL, DOTA Task1, COCO, GeoJSON, raw outputs and ``summary.json``) are
written by :mod:`rscovlm.pipelines.detect_outputs` through the result formats of
:mod:`rscovlm.formats.results` (:meth:`DetectionResult.table`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from rscovlm.data import tasks
from rscovlm.data.conversation import Conversation, ImagePart
from rscovlm.data.patches import (
    DEFAULT_MERGE_IOU,
    PatchName,
    format_patch_name,
    merge_boxes,
    parse_patch_name,
)
from rscovlm.data.split import TileSpec, plan_windows
from rscovlm.errors import InputError
from rscovlm.files import IMAGE_SUFFIXES, RASTER_SUFFIXES
from rscovlm.formats import LabelMatcher
from rscovlm.formats.decode import DecodedBoxes, decode_detections
from rscovlm.formats.results import DetectionTable, RawOutput, ResultImage
from rscovlm.imaging import RasterInfo, open_raster, read_region, read_regions
from rscovlm.model.backends.base import Backend, GenerationParams
from rscovlm.model.encoding import image_part
from rscovlm.resolution import PixelBand, get_family
from rscovlm.safe_read import read_text

__all__ = [
    "DEFAULT_NMS_IOU",
    "DetectionResult",
    "Patch",
    "PatchResult",
    "detect_image",
    "detection_conversation",
    "image_inputs",
    "plan_patches",
]

DEFAULT_NMS_IOU = DEFAULT_MERGE_IOU
"""Same-class boxes overlapping more than this are merged (the DOTA devkit's merge)."""

DetectBox = Literal["quad", "hbb"]
_MAX_KEPT_REJECTIONS = 20  # per patch, in the result (all are counted)


@dataclass(frozen=True)
class Patch:
    """One tile of the image.

    Attributes:
        name: ``<image_id>__<rate>__<x>___<y>`` (the devkit's patch name).
        origin: Its origin; patch pixel ``p`` is original pixel ``(p + (x, y)) / rate``.
        window: The region read, in ORIGINAL pixels ``(x1, y1, x2, y2)``.
        part: The image part fed to the model (``orig_size`` = patch size at its rate).
    """

    name: str
    origin: PatchName
    window: tuple[int, int, int, int]
    part: ImagePart


@dataclass
class PatchResult:
    """What one patch gave.

    Attributes:
        name: The patch name.
        window: Its region in original pixels.
        output: The raw model output (``None`` when the patch could not be read).
        n_objects: Boxes read from the output.
        n_kept_before_nms: Boxes with a known class and a non-zero area.
        n_unreadable: Lines or JSON items the parser could not read.
        n_unknown_label: Boxes whose label matches no class.
        n_degenerate: Boxes of zero area (or non-finite) in original pixels.
        empty: The output said "There are none.".
        error: Why the patch could not be read (it then got no prompt).
        rejected: The first unreadable pieces with reasons (all are counted).
    """

    name: str
    window: tuple[int, int, int, int]
    output: str | None = None
    n_objects: int = 0
    n_kept_before_nms: int = 0
    n_unreadable: int = 0
    n_unknown_label: int = 0
    n_degenerate: int = 0
    empty: bool = False
    error: str | None = None
    rejected: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class DetectionResult:
    """The merged detections of one image and the account of every patch.

    Attributes:
        image: The image path.
        image_id: Its id in every output (default: the file stem).
        raster: Its header (size, CRS, geotransform).
        classes: The class list (original spelling); ``labels`` index it.
        box: The box kind the model was asked for.
        family: The model family (coordinate convention).
        quads: ``(N, 4, 2)`` kept boxes in original pixels.
        labels: ``(N,)`` class index of each kept box.
        scores: ``(N,)`` scores (1 for a VLM: the mAP_nc protocol).
        patches: One :class:`PatchResult` per patch, in tiling order.
        parts: The model-side size of each patch, for ``raw_outputs.jsonl``.
        n_before_nms: Boxes that entered NMS.
        unknown_labels: Count of each label text that matched no class.
    """

    image: Path
    image_id: str
    raster: RasterInfo
    classes: tuple[str, ...]
    box: str
    family: str
    quads: NDArray[np.float64]
    labels: NDArray[np.int64]
    scores: NDArray[np.float64]
    patches: list[PatchResult]
    parts: list[ImagePart]
    n_before_nms: int
    unknown_labels: Counter[str] = field(default_factory=Counter)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the image."""
        return self.raster.size

    @property
    def class_names(self) -> list[str]:
        """The class of each kept box."""
        return [self.classes[i] for i in self.labels.tolist()]

    def counts(self) -> dict[str, int]:
        """Every count of the run (they add up, see the module docstring)."""
        p = self.patches
        return {
            "n_patches": len(p),
            "n_failed_patches": sum(r.error is not None for r in p),
            "n_outputs": sum(r.output is not None for r in p),
            "n_empty_outputs": sum(r.empty and not r.n_objects for r in p),
            "n_objects": sum(r.n_objects for r in p),
            "n_unreadable": sum(r.n_unreadable for r in p),
            "n_unknown_label": sum(r.n_unknown_label for r in p),
            "n_degenerate": sum(r.n_degenerate for r in p),
            "n_before_nms": self.n_before_nms,
            "n_suppressed": self.n_before_nms - len(self.quads),
            "n_kept": len(self.quads),
        }

    def summary(self) -> list[str]:
        """Human-readable lines."""
        c = self.counts()
        lines = [
            f"{self.image_id}: {c['n_patches']} patches ({c['n_failed_patches']} unreadable), "
            f"{c['n_outputs']} outputs ({c['n_empty_outputs']} with no objects)",
            f"{c['n_objects']} boxes read = {c['n_before_nms']} merged + "
            f"{c['n_unknown_label']} unknown label + {c['n_degenerate']} zero area; "
            f"{c['n_unreadable']} unreadable lines",
            f"{c['n_before_nms']} merged = {c['n_kept']} kept + {c['n_suppressed']} removed by NMS",
        ]
        if self.unknown_labels:
            top = ", ".join(f"{k!r} ×{v}" for k, v in self.unknown_labels.most_common(5))
            lines.append(f"unknown labels: {top}")
        return lines

    def table(self) -> DetectionTable:
        """The kept boxes as the result writers' container (one image, with its raster)."""
        image = ResultImage(self.image_id, self.image.name, self.size, self.raster)
        return DetectionTable.create(
            [image], self.classes, np.zeros(len(self.quads)), self.labels, self.quads, self.scores
        )

    def raw_outputs(self) -> list[RawOutput]:
        """Every patch's raw output with its sizes (unreadable patches are left out)."""
        return [
            RawOutput(res.name, res.output, part.orig_size, part.resized_size, self.family)
            for res, part in zip(self.patches, self.parts, strict=True)
            if res.output is not None
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready account (no boxes): counts, per-patch results, unknown labels."""
        return {
            "image": str(self.image),
            "image_id": self.image_id,
            "size": list(self.size),
            "crs": self.raster.crs,
            "classes": list(self.classes),
            "box": self.box,
            "family": self.family,
            "counts": self.counts(),
            "unknown_labels": dict(self.unknown_labels),
            "patches": [{k: v for k, v in vars(r).items() if k != "output"} for r in self.patches],
        }


def image_inputs(source: str | Path) -> tuple[list[Path], bool]:
    """The images ``rscovlm detect --image`` names, and whether it named a batch.

    ``source`` is one image; a folder (its images, by name, not recursive); or a ``.txt`` list,
    one path a line (relative ones from the list's folder, blank lines and ``#`` comments
    skipped). Listed files are not opened here: a missing or corrupt one is reported and
    skipped by the run, so the counts add up.

    Raises:
        InputError: A folder without images, an empty list, or two images with one id (file
            stem), whose outputs would overwrite each other.
    """
    path = Path(source)
    suffixes = {*IMAGE_SUFFIXES, *RASTER_SUFFIXES}
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes and p.is_file())
        if not images:
            raise InputError(f"{path} holds no image ({', '.join(sorted(suffixes))})")
    elif path.suffix.lower() == ".txt" and path.is_file():
        lines = (ln.strip() for ln in read_text(path, "image list").splitlines())
        images = [
            p if p.is_absolute() else path.parent / p
            for p in (Path(ln) for ln in lines if ln and not ln.startswith("#"))
        ]
        if not images:
            raise InputError(f"image list {path} names no image")
    else:
        return [path], False
    seen: dict[str, Path] = {}
    for image in images:
        if image.stem in seen:
            raise InputError(
                f"{seen[image.stem]} and {image} share the id {image.stem!r}; their outputs "
                "would overwrite each other"
            )
        seen[image.stem] = image
    return images, True


def plan_patches(
    image: str | Path,
    size: tuple[int, int],
    spec: TileSpec,
    band: PixelBand,
    family: str,
    image_id: str,
) -> list[Patch]:
    """The patches of a ``size = (w, h)`` image, every rate of ``spec``, row by row.

    At rate ``r`` the image is tiled as if resized to ``round(w·r) × round(h·r)``; each patch
    reads the matching original window and resizes it into the band in one step.
    """
    width, height = size
    patches: list[Patch] = []
    for rate in spec.rates:
        sw, sh = max(1, round(width * rate)), max(1, round(height * rate))
        for x0, y0, x1, y1 in plan_windows(sw, sh, spec.size, spec.gap):
            name = format_patch_name(image_id, rate, x0, y0)
            origin = parse_patch_name(name)  # the name's rate, so eval merge maps identically
            assert origin is not None
            ox, oy = round(x0 / rate), round(y0 / rate)
            window = (
                ox,
                oy,
                min(width, max(ox + 1, ox + round((x1 - x0) / rate))),
                min(height, max(oy + 1, oy + round((y1 - y0) / rate))),
            )
            part = replace(image_part(image, (x1 - x0, y1 - y0), band, family), window=window)
            patches.append(Patch(name, origin, window, part))
    return patches


def detection_conversation(
    part: ImagePart,
    classes: Sequence[str],
    box: DetectBox = "quad",
    *,
    family: str = "qwen2_5_vl",
    meta: dict[str, Any] | None = None,
) -> Conversation:
    """``[system, user[image, "find the {classes}."]]``: the evaluation's plain detection
    prompt (WIRE §2.7) for one image part, from the builder training uses
    (:func:`rscovlm.data.tasks.detection_conversation`)."""
    if box not in ("quad", "hbb"):
        raise InputError(f"box must be quad or hbb, got {box!r}")
    return tasks.detection_conversation(part, classes, box, family=family, meta=meta)


def _read_patch(
    output: str, patch: Patch, matcher: LabelMatcher, family: str
) -> tuple[PatchResult, DecodedBoxes]:
    """Decode one patch's output (:func:`rscovlm.formats.decode.decode_detections`, the
    decode of the evaluation too); the boxes come back in ORIGINAL image pixels."""
    decoded = decode_detections(output, patch.part.coord_map(family), matcher)
    decoded.quads = patch.origin.to_original(decoded.quads)
    result = PatchResult(
        patch.name,
        patch.window,
        output,
        n_objects=decoded.n_read,
        n_kept_before_nms=len(decoded.labels),
        n_unreadable=decoded.n_unreadable,
        n_unknown_label=decoded.n_unknown_label,
        n_degenerate=decoded.n_degenerate,
        empty=decoded.empty,
        rejected=[(r.line[:200], r.reason) for r in decoded.rejected[:_MAX_KEPT_REJECTIONS]],
    )
    return result, decoded


def _read_batch(
    path: Path, chunk: Sequence[Patch]
) -> tuple[list[tuple[Patch, Any]], dict[str, PatchResult]]:
    """The pixels of each patch (a small file decoded once per batch); a patch that cannot be
    read is reported with its reason and the run goes on."""
    try:
        images = read_regions(path, [p.window for p in chunk], [p.part.resized_size for p in chunk])
        return list(zip(chunk, images, strict=True)), {}
    except InputError:
        pass  # find out which patches fail, one by one
    ready: list[tuple[Patch, Any]] = []
    failed: dict[str, PatchResult] = {}
    for patch in chunk:
        try:
            ready.append((patch, read_region(path, patch.window, patch.part.resized_size)))
        except InputError as exc:  # a corrupt tile
            failed[patch.name] = PatchResult(patch.name, patch.window, error=str(exc))
    return ready, failed


def detect_image(
    backend: Backend,
    image: str | Path,
    classes: Sequence[str],
    *,
    spec: TileSpec | None = None,
    box: DetectBox = "quad",
    batch: int = 8,
    nms_iou: float = DEFAULT_NMS_IOU,
    params: GenerationParams | None = None,
    image_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DetectionResult:
    """Detect ``classes`` in ``image`` (any size) patch by patch and merge the boxes.

    Args:
        backend: Any backend; its ``band`` and ``family`` decide patch sizes and coordinates.
        image: PNG/JPEG/TIFF/GeoTIFF of any size.
        classes: The class list in original spelling (e.g. :data:`rscovlm.formats.DOTA_V1_0`).
        spec: Tiling (default 1024² patches, gap 200, rate 1).
        box: ``quad`` (oriented, the released detector) or ``hbb`` prompt.
        batch: Patches per :meth:`Backend.generate` call (and images in memory at once).
        nms_iou: Class-wise NMS threshold in ``[0, 1]``; 1 keeps every box.
        params: Decoding (default greedy, the evaluation's).
        image_id: Name in the outputs (default: the file stem).
        progress: Called with ``(patches done, patches total)`` after each batch.

    Raises:
        InputError: The image cannot be opened, or a bad option.
    """
    if batch < 1:
        raise InputError(f"batch must be ≥ 1, got {batch}")
    if not 0.0 <= nms_iou <= 1.0:
        raise InputError(f"nms_iou must be in [0, 1], got {nms_iou}")
    if box not in ("quad", "hbb"):
        raise InputError(f"box must be quad or hbb, got {box!r}")
    classes = tuple(classes)
    matcher = LabelMatcher(classes)
    index = {name: i for i, name in enumerate(classes)}
    path = Path(image)
    raster = open_raster(path)
    image_id = image_id or path.stem
    family = get_family(backend.family).name
    spec = spec or TileSpec(1024, 200)
    patches = plan_patches(path, raster.size, spec, backend.band, family, image_id)
    params = params or GenerationParams()
    results: list[PatchResult] = []
    all_quads: list[NDArray[np.float64]] = []
    all_labels: list[int] = []
    unknown: Counter[str] = Counter()
    for start in range(0, len(patches), batch):
        chunk = patches[start : start + batch]
        ready, failed = _read_batch(path, chunk)
        outputs: dict[str, str] = {}
        if ready:
            convs = [
                detection_conversation(p.part, classes, box, family=family, meta={"id": p.name})
                for p, _ in ready
            ]
            generations = backend.generate(convs, params, images=[[img] for _, img in ready])
            texts = [g.text for g in generations]
            if len(texts) != len(convs):
                raise InputError(f"the backend gave {len(texts)} outputs for {len(convs)} prompts")
            outputs = {p.name: t for (p, _), t in zip(ready, texts, strict=True)}
        for patch in chunk:
            if patch.name in failed:
                results.append(failed[patch.name])
                continue
            res, decoded = _read_patch(outputs[patch.name], patch, matcher, family)
            unknown.update(decoded.unknown_labels)
            results.append(res)
            all_quads.extend(decoded.quads)
            all_labels.extend(index[name] for name in decoded.labels)
        if progress is not None:
            progress(min(start + batch, len(patches)), len(patches))
    quads = np.stack(all_quads) if all_quads else np.zeros((0, 4, 2))
    labels = np.asarray(all_labels, dtype=np.int64)
    scores = np.ones(len(quads))
    kept = merge_boxes(quads, labels, scores, nms_iou)
    return DetectionResult(
        image=path,
        image_id=image_id,
        raster=raster,
        classes=classes,
        box=box,
        family=family,
        quads=quads[kept],
        labels=labels[kept],
        scores=scores[kept],
        patches=results,
        parts=[p.part for p in patches],
        n_before_nms=len(quads),
        unknown_labels=unknown,
    )
