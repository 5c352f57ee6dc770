"""Dense detection as a benchmark: DOTA, DIOR-R, FAIR1M and HRSC test sets through the data
adapters, cut into patches, merged back and scored by the fair protocol (mAP_nc, mF1).

A sample is one patch (``ImagePart.window`` on the whole image, planned by
:func:`rscovlm.data.split.plan_windows`: ``patch`` px with ``gap`` px overlap; an image no
larger than a patch is one sample) with the plain detection prompt of the released detector
(:func:`rscovlm.data.tasks.detection_conversation`, oriented quads, the eval period). Its
reference is the objects lying wholly inside the patch (patch pixels), which is what a perfect
answer names; the whole image's ground truth rides on the image's first patch
(``meta["image_objects"]``), as the protocol scores whole images.

Per sample the score is only "parsed or not" (an answer with boxes, or the explicit "There are
none."); the decoded boxes go into ``extra`` in whole-image pixels. The aggregate merges every
image's patch boxes (:func:`rscovlm.data.patches.merge_boxes`, class-wise rotated NMS) and runs
the protocol of ``rscovlm eval det``: DOTA IoU > 0.5, VOC07 AP with every kept box scored 1
(mAP_nc, :class:`~rscovlm.eval.metrics.detection.DetectionEvaluator`), and LMMRotate mF1
(:class:`~rscovlm.eval.metrics.mf1.F1Evaluator`). The official and strict sides are the same
protocol (the original's own number for VLM detection is the same mAP_nc).

Patch planning needs each image's size: the annotation's where it gives one (DIOR-R, HRSC,
FAIR1M XML), else the image header; an image with neither is a bad record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rscovlm.data.conversation import ImagePart
from rscovlm.data.patches import merge_boxes
from rscovlm.data.record import Record
from rscovlm.data.sources.dior_r import iter_dior_records
from rscovlm.data.sources.dota import iter_dota_records
from rscovlm.data.sources.fair1m import iter_fair1m_records
from rscovlm.data.sources.hrsc import iter_hrsc_records
from rscovlm.data.split import plan_windows
from rscovlm.data.tasks import detection_conversation
from rscovlm.errors import InputError
from rscovlm.eval.benchmarks.base import (
    UNKNOWN_SIZE,
    Benchmark,
    EvalSample,
    find_file,
    register,
)
from rscovlm.eval.metrics.boxes import DetBoxes
from rscovlm.eval.metrics.detection import DetectionEvaluator
from rscovlm.eval.metrics.mf1 import F1Evaluator
from rscovlm.eval.metrics.score import SampleScore, build_report
from rscovlm.eval.read_report import ReadReport
from rscovlm.formats.boxes import encode_detections
from rscovlm.formats.classes import get_classes, normalize_label
from rscovlm.formats.decode import decode_detections
from rscovlm.formats.labels import LabelMatcher
from rscovlm.formats.objects import DetObject
from rscovlm.geometry import BoxKind
from rscovlm.imaging import image_size
from rscovlm.resolution import CoordMap

__all__ = ["DETECTION_SETS", "DetectionBenchmark"]

MERGE_IOU = 0.1  # the class-wise NMS threshold of ``rscovlm eval merge``
Reader = Callable[[Path, str], Iterator[Any]]


def _dota(root: Path, path: str) -> Iterator[Any]:
    return iter_dota_records(root, path, split="test", skip_bad_lines=True)


def _dior(root: Path, path: str) -> Iterator[Any]:
    return iter_dior_records(root, path, split="test")


def _hrsc(root: Path, path: str) -> Iterator[Any]:
    return iter_hrsc_records(root, path, split="test")


def _fair1m(root: Path, path: str) -> Iterator[Any]:
    return iter_fair1m_records(root, path, split="test")


DETECTION_SETS: dict[str, tuple[Reader, str, tuple[str, ...], int | None, str]] = {
    "dota_test512": (
        _dota,
        "dota1.0",
        ("test", "val", "."),
        512,
        "DOTA-v1.0 {test,val}/images + labelTxt/ (512 px patches, 100 px overlap)",
    ),
    "dota_test1024": (
        _dota,
        "dota1.0",
        ("test", "val", "."),
        1024,
        "DOTA-v1.0 {test,val}/images + labelTxt/ (1024 px patches, 200 px overlap)",
    ),
    "dior_r_test": (
        _dior,
        "dior",
        ("DIOR", "."),
        None,
        "DIOR-R: JPEGImages-test/, Annotations/Oriented Bounding Boxes/, ImageSets/Main/test.txt",
    ),
    "hrsc_test": (
        _hrsc,
        "hrsc",
        ("HRSC2016", "."),
        None,
        "HRSC2016: FullDataSet/AllImages/, FullDataSet/Annotations/, ImageSets/test.txt",
    ),
    "fair1m_test": (
        _fair1m,
        "fair1m1.0",
        ("test", "validation", "."),
        1024,
        "FAIR1M-1.0 {test,validation}/images + labelXml/ (1024 px patches)",
    ),
}
"""name → (adapter, class list, folders under --root, patch size or None, files)."""


class DetectionBenchmark(Benchmark):
    """One detection test set (see the module docstring)."""

    task: ClassVar[str] = "detection"
    metric: ClassVar[str] = "mAP_nc"

    def __init__(
        self,
        name: str,
        reader: Reader,
        classes: str,
        folders: Sequence[str],
        patch: int | None,
        files: str,
        kind: BoxKind = "quad",
    ) -> None:
        self.name = name  # type: ignore[misc]
        self.kind: BoxKind = kind  # the box kind the prompt asks for and a perfect answer uses
        self.reader, self.folders, self.patch = reader, tuple(folders), patch
        self.classes = tuple(get_classes(classes))
        self.files = files  # type: ignore[misc]
        self.gap = (patch // 5) if patch else 0
        self._matcher = LabelMatcher(self.classes)
        self._by_norm = {normalize_label(c): c for c in self.classes}

    def _class_of(self, name: str) -> str | None:
        return self._by_norm.get(normalize_label(name))

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        root = Path(root)
        base = find_file(root, list(self.folders), self.name)
        rel = base.relative_to(root).as_posix()
        items = list(self.reader(root, "" if rel == "." else rel))
        if not items:
            raise InputError(f"{self.name}: no images or labels under {base} ({self.files})")
        for item in items:
            if not isinstance(item, Record):
                report.bad(item.id, item.reason)
                continue
            ref = item.images[0]
            size = (ref.width, ref.height) if ref.width and ref.height else None
            if size is None and (root / ref.path).is_file():
                try:
                    size = image_size(root / ref.path)
                except InputError:
                    size = None
            if size is None:
                report.bad(item.id, "image size unknown (no size in the annotation, no image)")
                continue
            objects: list[dict[str, Any]] = []
            for obj in item.objects:
                report.n_boxes += 1
                cls = self._class_of(obj.class_name)
                if cls is None:
                    report.unknown_classes[obj.class_name] += 1
                    continue
                quad = obj.box.quad_array().reshape(8).tolist()
                objects.append({"label": cls, "quad": quad, "difficult": obj.difficult})
            report.n_kept += len(objects)
            yield from self._patches(item.id, ref.path, size, objects)

    def _patches(
        self, image_id: str, source: str, size: tuple[int, int], objects: list[dict[str, Any]]
    ) -> Iterator[EvalSample]:
        w, h = size
        if self.patch is None or (w <= self.patch and h <= self.patch):
            windows = [(0, 0, w, h)]
        else:
            windows = plan_windows(w, h, self.patch, self.gap)
        for k, (x0, y0, x1, y1) in enumerate(windows):
            inside = []
            for obj in objects:
                q = np.asarray(obj["quad"]).reshape(4, 2)
                if (
                    q[:, 0].min() >= x0
                    and q[:, 0].max() <= x1
                    and q[:, 1].min() >= y0
                    and (q[:, 1].max() <= y1)
                ):
                    local = (q - [x0, y0]).reshape(8).tolist()
                    inside.append({"label": obj["label"], "quad": local})
            part = ImagePart(source, (x1 - x0, y1 - y0), UNKNOWN_SIZE, window=(x0, y0, x1, y1))
            conv = detection_conversation(part, self.classes, self.kind)
            meta: dict[str, Any] = {
                "image_id": image_id,
                "image_size": [w, h],
                "window": [x0, y0, x1, y1],
                "patch_index": k,
            }
            if k == 0:
                meta["image_objects"] = objects
            record_id = f"{image_id}:{x0}:{y0}"
            yield EvalSample.build(self.name, record_id, conv.messages, inside, meta)

    def _cmap(self, sample: EvalSample) -> CoordMap:
        x0, y0, x1, y1 = sample.meta["window"]
        orig = tuple(sample.meta.get("orig_size") or (x1 - x0, y1 - y0))
        resized = tuple(sample.meta.get("resized_size") or orig)
        return CoordMap(orig, resized)  # type: ignore[arg-type]

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        decoded = decode_detections(output, self._cmap(sample), self._matcher)
        x0, y0, *_ = sample.meta["window"]
        quads = (decoded.quads + np.array([x0, y0])).reshape(-1, 8).tolist()
        parsed = bool(decoded.empty or len(decoded.labels))
        extra = {
            "image_id": sample.meta["image_id"],
            "labels": list(decoded.labels),
            "quads": quads,
            "n_read": decoded.n_read,
            "n_unknown_label": decoded.n_unknown_label,
            "n_degenerate": decoded.n_degenerate,
            "n_unreadable": decoded.n_unreadable,
        }
        reason = None if parsed else ("no box read" if output.strip() else "empty answer")
        return SampleScore(float(parsed), float(parsed), parsed, reason, extra)

    def perfect_output(self, sample: EvalSample) -> str:
        if not sample.reference:
            return "There are none."
        cmap = self._cmap(sample)
        sx, sy = cmap.scale
        objects = []
        for o in sample.reference:
            coords = [round(v * (sx if i % 2 == 0 else sy)) for i, v in enumerate(o["quad"])]
            if self.kind == "hbb":  # the enclosing box of the quad
                xs, ys = coords[0::2], coords[1::2]
                coords = [min(xs), min(ys), max(xs), max(ys)]
            objects.append(DetObject(normalize_label(o["label"]), self.kind, tuple(coords)))
        return encode_detections(objects, self.kind)

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        images: dict[str, int] = {}
        gt_img, gt_lab, gt_quad, gt_diff = [], [], [], []
        index = {c: i for i, c in enumerate(self.classes)}
        for s in samples:
            image = images.setdefault(str(s.meta["image_id"]), len(images))
            for obj in s.meta.get("image_objects", []):
                gt_img.append(image)
                gt_lab.append(index[obj["label"]])
                gt_quad.append(np.asarray(obj["quad"]).reshape(4, 2))
                gt_diff.append(bool(obj.get("difficult")))
        p_img, p_lab, p_quad = [], [], []
        for sc in scores:
            if "image_id" not in sc.extra:  # a sample without a prediction
                continue
            image = images[str(sc.extra["image_id"])]
            for label, quad in zip(sc.extra["labels"], sc.extra["quads"], strict=True):
                p_img.append(image)
                p_lab.append(index[label])
                p_quad.append(np.asarray(quad).reshape(4, 2))
        report = build_report(
            {"parsed": list(scores)},
            scores,
            notes=[
                "parsed: share of patches whose answer parsed; mAP_nc/mF1: whole images, "
                f"patches merged (rotated NMS {MERGE_IOU}), DOTA IoU > 0.5, VOC07"
            ],
        )
        zeros = np.zeros((0, 4, 2))
        gt = DetBoxes.create(
            gt_img, gt_lab, np.stack(gt_quad) if gt_quad else zeros, difficult=gt_diff
        )
        if p_quad:
            q = np.stack(p_quad)
            keep = merge_boxes(q, p_lab, np.ones(len(q)), MERGE_IOU, image=p_img)
            pred = DetBoxes.create(np.asarray(p_img)[keep], np.asarray(p_lab)[keep], q[keep])
        else:
            pred = DetBoxes.create([], [], zeros)
        result = DetectionEvaluator(gt, pred, self.classes).evaluate(0.5, unit_scores=True)
        f1 = F1Evaluator(gt, pred, self.classes).at(0.0)
        for side in ("strict", "official"):
            report[side]["mAP_nc"] = result.mean_ap
            report[side]["mF1"] = f1.mf1
            report[side]["F1_strict"] = f1.strict_f1
        report["detection"] = {
            "per_class_ap": {k: v.ap for k, v in result.per_class.items()},
            # the (recall, precision) each class reaches: with unit scores (nc) the PR curve of
            # a class is this one point, which is what the report plots
            "per_class_pr": {
                k: {"recall": v.recall, "precision": v.precision, "n_gt": v.n_gt, "tp": v.tp}
                for k, v in result.per_class.items()
            },
            "n_images": len(images),
            "n_gt": len(gt),
            "n_pred_merged": len(pred),
            "n_pred_before_merge": len(p_quad),
        }
        return report


def _register() -> None:
    for name, spec in DETECTION_SETS.items():
        register(name, lambda name=name, spec=spec: DetectionBenchmark(name, *spec))


_register()
