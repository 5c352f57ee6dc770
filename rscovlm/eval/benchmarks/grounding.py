"""The grounding benchmarks (EVAL_SUITE.md §3.1–§3.4), read from their released files.

- **VLM-R1 REC** (``refcoco_val`` … ``dior_rsvg_val``, ``rsvg_val``): ``{name}.json`` lists of
  ``image, normal_caption, solution, normalized_solution``; the plain HBB system prompt and
  ``find the {normal_caption}``; ``acc@0.5`` (:mod:`rscovlm.eval.metrics.rec`). The original
  never scores ``rsvg_val`` (§3.1 bug); here it is scored like the others.
- **GeoGround / refGeo** (``geoground``, ``geoground_all``, ``geoground_<subset>`` and the
  ``_224/_336/_448/_1008`` variants): ``metainfo/<subset>.jsonl`` with ``image_id, question,
  bbox``; one number per subset AND an overall. Every single subset works (the original's
  ``lstrip("geoground_")`` breaks five of seven, §3.2). At a fixed resolution ``S`` the model is
  fed :func:`~rscovlm.resolution.exact_area_resize` (S × S for a square image) and the scale
  of the strict score is that size; the size the original RECORDS (``smart_resize`` with
  ``min = max = S²``, e.g. 196² for a 600² image at 224) and the size its processor then really
  FEEDS are kept in ``meta`` and the official score rescales by the recorded one, as it did.
- **VRSBench referring**: the release's ``VRSBench_EVAL_referring.json`` (``question``,
  ``ground_truth`` ``{<x1><y1><x2><y2>}`` on the 0–100 grid). The strict reference is the grid
  mapped to the image's pixels (VRSBench images are 512²); the official score compares the
  rescaled prediction with the raw grid values, as the original does (§3.3, "labels wrong").
- **GeoChat-Bench referring**: ``referring.jsonl`` (``question``, ``ground_truth`` boxes,
  ``size_group``, ``type``, ``obj_ids``); ``Pr(F1=1, IoU=0.5)`` by size, type and
  single-vs-multiple (:mod:`rscovlm.eval.metrics.geochat_referring`). The GT boxes are kept in
  the file's own space (GeoChat's 0–100 grid): the strict score maps the prediction from the
  model's pixels onto that grid.

Image paths are stored relative to ``--root`` so that ids do not depend on where the data
lives; the sizes of images the annotation does not give are read by the runner, and a run's
recorded ``orig_size`` / ``resized_size`` reach the scorer through the prediction lines.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rscovlm.data.conversation import ImagePart, Message
from rscovlm.data.tasks import boxes_messages, question_messages
from rscovlm.eval.benchmarks.base import (
    UNKNOWN_SIZE,
    Benchmark,
    EvalSample,
    find_file,
    iter_json_records,
    register,
)
from rscovlm.eval.metrics.geochat_referring import (
    geochat_referring_report,
    score_geochat_referring,
)
from rscovlm.eval.metrics.rec import geoground_report, rec_report, score_rec
from rscovlm.eval.metrics.score import SampleScore
from rscovlm.eval.read_report import ReadReport
from rscovlm.formats import grounding_user_prompt
from rscovlm.formats.grounding import encode_grounding
from rscovlm.formats.prompts import geochat_referring_prompt, vrsbench_referring_prompt
from rscovlm.resolution import RSCOVLM_BAND, exact_area_resize, smart_resize

__all__ = [
    "GEOGROUND_RESOLUTIONS",
    "GEOGROUND_SUBSETS",
    "VLM_R1_REC",
    "GeoChatReferring",
    "GeoGround",
    "RecBenchmark",
    "VrsbenchReferring",
    "box_scale",
    "official_fixed_sizes",
]

VLM_R1_REC = (
    "refcoco_val",
    "refcocop_val",
    "refcocog_val",
    "refgta_subsample",
    "dior_rsvg_val",
    "rsvg_val",
)
"""The VLM-R1 REC json names (§3.1)."""

GEOGROUND_SUBSETS: dict[str, str] = {
    "avvg_test": "images/avvg",
    "dior_rsvg_val": "images/dior_rsvg",
    "dior_rsvg_test": "images/dior_rsvg",
    "rsvg_test": "images/rsvg",
    "rsvg_val": "images/rsvg",
    "geochat_test": "images/geochat_test",
    "vrsbench_test": "images/vrsbench",
}
"""refGeo eval subsets in the original's order, and their image folders (§3.2)."""

GEOGROUND_RESOLUTIONS = (224, 336, 448, 1008)
VRSBENCH_SIZE = (512, 512)
_GRID = re.compile(r"<(\d+)>")


def _box(value: Any, n: int = 4) -> list[float] | str:
    """``n`` finite numbers, or why not."""
    if not isinstance(value, list | tuple) or len(value) != n:
        return f"expected {n} numbers, got {value!r:.60}"
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        return f"non-numeric box {value!r:.60}"
    if not all(math.isfinite(v) for v in out):
        return "non-finite box"
    if n == 4 and not (out[2] > out[0] and out[3] > out[1]):
        return f"empty or inverted box {out}"
    return out


def _size(entry: dict[str, Any]) -> tuple[int, int] | None:
    """``(width, height)`` where the record gives it."""
    for wk, hk in (("width", "height"), ("image_width", "image_height")):
        w, h = entry.get(wk), entry.get(hk)
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            return (w, h)
    size = entry.get("image_size")
    if (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and v > 0 for v in size)
    ):
        return (size[0], size[1])
    return None


def _sizes(sample: EvalSample) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """The original and resized size of the sample's image: recorded by the run (``meta``),
    else the image part's when known."""
    part = sample.image_parts()[0]
    orig = sample.meta.get("orig_size") or (
        part.orig_size if part.orig_size != UNKNOWN_SIZE else None
    )
    resized = sample.meta.get("resized_size") or (
        part.resized_size if part.resized_size != UNKNOWN_SIZE else None
    )
    return (tuple(orig) if orig else None), (tuple(resized) if resized else None)  # type: ignore[return-value]


def box_scale(
    orig: Sequence[int] | None, resized: Sequence[int] | None
) -> tuple[float, float] | None:
    """``(W_orig / W_resized, H_orig / H_resized)``: Qwen2.5-VL's box (resized pixels) →
    original pixels; ``None`` when a size is unknown."""
    if not orig or not resized or not all(resized) or not all(orig):
        return None
    return (orig[0] / resized[0], orig[1] / resized[1])


def official_fixed_sizes(width: int, height: int, side: int) -> dict[str, list[int]]:
    """What the original does at ``geoground_<S>`` (§1.9): the size it RECORDS (its
    ``smart_resize`` with ``min = max = S²``) and the size its processor then FEEDS (that
    image resized again into the checkpoint band when it left it).

    Examples:
        >>> official_fixed_sizes(600, 600, 224)
        {'recorded': [196, 196], 'fed': [224, 224]}
    """
    rh, rw = smart_resize(height, width, 28, side * side, side * side)
    fh, fw = smart_resize(rh, rw, 28, RSCOVLM_BAND.min_pixels, RSCOVLM_BAND.max_pixels)
    return {"recorded": [rw, rh], "fed": [fw, fh]}


def _image(source: str, size: tuple[int, int] | None, side: int | None = None) -> ImagePart:
    if size is None:
        return ImagePart(source, UNKNOWN_SIZE, UNKNOWN_SIZE)
    if side is not None:
        rh, rw = exact_area_resize(size[1], size[0], side)
        return ImagePart(source, size, (rw, rh))
    return ImagePart(source, size, UNKNOWN_SIZE)


def _perfect_box(box: Sequence[float], scale: tuple[float, float] | None) -> list[int]:
    sx, sy = scale or (1.0, 1.0)
    return [round(box[0] / sx), round(box[1] / sy), round(box[2] / sx), round(box[3] / sy)]


class _Rec(Benchmark):
    """Shared scoring of the one-box REC benchmarks."""

    task: ClassVar[str] = "grounding"
    metric: ClassVar[str] = "acc@0.5"

    def _scales(self, sample: EvalSample) -> tuple[tuple[float, float], tuple[float, float]]:
        """``(strict, official)`` box scales."""
        orig, resized = _sizes(sample)
        strict = box_scale(orig, resized) or (1.0, 1.0)
        off_resized = sample.meta.get("official_resized_size") or resized
        official = box_scale(orig, off_resized) or strict
        return strict, official

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        strict_scale, official_scale = self._scales(sample)
        box = sample.reference["box"]
        strict = score_rec(output, box, strict_scale)
        off_gt = sample.meta.get("official_gt_box", box)
        if official_scale == strict_scale and off_gt == box:
            return strict
        official = score_rec(output, off_gt, official_scale)
        extra = {**strict.extra, "official_iou": official.extra.get("official_iou")}
        if "official_reason" in official.extra:
            extra["official_reason"] = official.extra["official_reason"]
        return SampleScore(strict.strict, official.official, strict.parsed, strict.reason, extra)

    def perfect_output(self, sample: EvalSample) -> str:
        scale, _ = self._scales(sample)
        return encode_grounding(
            _perfect_box(sample.reference["box"], scale), sample.meta["expression"]
        )

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        return rec_report(scores)


def _rec_messages(image: ImagePart, expression: str) -> list[Message]:
    """``[system (plain HBB), user[image, "find the {expression}"]]`` (§3.1)."""
    return boxes_messages(image, grounding_user_prompt(expression), "hbb")


class RecBenchmark(_Rec):
    """One VLM-R1 REC json (§3.1)."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]
        self.files = (  # type: ignore[misc]
            f"rec_jsons_processed/{name}.json (VLM-R1 REC list: image, normal_caption, "
            "solution, normalized_solution); images under detection/"
        )

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        path = find_file(
            root, [f"rec_jsons_processed/{self.name}.json", f"{self.name}.json"], self.name
        )
        for i, entry in iter_json_records(path, report):
            where = f"{path.name}[{i}]"
            image, caption = entry.get("image"), entry.get("normal_caption", entry.get("problem"))
            if not isinstance(image, str) or not image:
                report.bad(where, "no image path")
                continue
            if not isinstance(caption, str) or not caption.strip():
                report.bad(where, "no normal_caption")
                continue
            box = _box(entry.get("solution"))
            if isinstance(box, str):
                report.bad(where, f"solution: {box}")
                continue
            size = _size(entry)
            messages = _rec_messages(_image(f"detection/{image}", size), caption)
            meta: dict[str, Any] = {"expression": caption, "image": image}
            if "normalized_solution" in entry:
                meta["normalized_solution"] = entry["normalized_solution"]
            yield EvalSample.build(self.name, entry.get("id", i), messages, {"box": box}, meta)


class GeoGround(_Rec):
    """refGeo ``metainfo/<subset>.jsonl`` for one subset or all seven, at the checkpoint band or
    a fixed ``S × S`` (§3.2, §1.9)."""

    def __init__(self, name: str, subsets: Sequence[str], side: int | None = None) -> None:
        self.name = name  # type: ignore[misc]
        self.subsets = tuple(subsets)
        self.side = side
        self.files = (  # type: ignore[misc]
            "metainfo/{" + ",".join(self.subsets) + "}.jsonl (image_id, question, bbox) and "
            "images/<folder>/ (refGeo)"
        )

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        paths = [find_file(root, [f"metainfo/{sub}.jsonl"], self.name) for sub in self.subsets]
        for sub, path in zip(self.subsets, paths, strict=True):
            folder = GEOGROUND_SUBSETS[sub]
            for i, entry in iter_json_records(path, report):
                where = f"{sub}.jsonl:{i + 1}"
                image, question = entry.get("image_id"), entry.get("question")
                if not isinstance(image, str) or not image:
                    report.bad(where, "no image_id")
                    continue
                if not isinstance(question, str) or not question.strip():
                    report.bad(where, "no question")
                    continue
                box = _box(entry.get("bbox"))
                if isinstance(box, str):
                    report.bad(where, f"bbox: {box}")
                    continue
                size = _size(entry)
                meta: dict[str, Any] = {"expression": question, "dataset_name": sub}
                if "geochat" in sub:
                    meta["fallback_suffix"] = ".png"  # the original tries .png for a missing .jpg
                if self.side is not None:
                    meta["fixed_side"] = self.side
                    if size is not None:
                        off = official_fixed_sizes(size[0], size[1], self.side)
                        meta["official_resized_size"] = off["recorded"]
                        meta["official_fed_size"] = off["fed"]
                messages = _rec_messages(_image(f"{folder}/{image}", size, self.side), question)
                record_id = f"{sub}:{entry.get('id', i)}"
                yield EvalSample.build(self.name, record_id, messages, {"box": box}, meta)

    def _scales(self, sample: EvalSample) -> tuple[tuple[float, float], tuple[float, float]]:
        strict, official = super()._scales(sample)
        if self.side is not None and "official_resized_size" not in sample.meta:
            orig, _ = _sizes(sample)
            if orig is not None:  # the size became known from the run: recompute the quirk
                off = official_fixed_sizes(orig[0], orig[1], self.side)["recorded"]
                official = box_scale(orig, off) or official
        return strict, official

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        subsets = [str(s.meta["dataset_name"]) for s in samples]
        report = geoground_report(scores, subsets)
        overall = rec_report(scores)
        report["official"]["overall"] = overall["official"]["acc@0.5"]
        report["ci95"]["official"]["overall"] = overall["ci95"]["official"]["acc@0.5"]
        report["notes"].append(
            "overall: all subsets pooled (the original reports none; its rule on the official side)"
        )
        if self.side is not None:
            report["notes"].append(
                f"fed exactly {self.side}² (area); official rescales by the size it recorded"
            )
        return report


def vrsbench_caption(question: str) -> str:
    """``normal_caption`` of a VRSBench referring question (``format_vrsbench.py``): the
    ``<image>`` marker removed and, only after a leading ``the``, that word and a final period
    dropped (§3.3).

    Examples:
        >>> vrsbench_caption("<image>\\nThe small car on the left.")
        'small car on the left'
        >>> vrsbench_caption("a ship.")
        'a ship.'
    """
    text = question.replace("<image>\n", "").strip()
    if text.lower().startswith("the "):
        text = text[4:].rstrip(".")
    return text


class VrsbenchReferring(_Rec):
    """VRSBench referring (§3.3), the 0–100 grid mapped to pixels for the strict score."""

    name: ClassVar[str] = "vrsbench_referring"
    files: ClassVar[str] = (
        "VRSBench_EVAL_referring.json (image_id, question, ground_truth {<x1><y1><x2><y2>}) "
        "and Images_val/"
    )

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        path = find_file(
            root, ["VRSBench_EVAL_referring.json", "vrsbench_referring_test.json"], self.name
        )
        for i, entry in iter_json_records(path, report):
            where = f"{path.name}[{i}]"
            image = entry.get("image_id")
            if not isinstance(image, str) or not image:
                report.bad(where, "no image_id")
                continue
            if isinstance(entry.get("normal_caption"), str):
                caption = entry["normal_caption"]
                grid = entry.get("solution")
            else:
                question, truth = entry.get("question"), entry.get("ground_truth")
                if not isinstance(question, str) or not isinstance(truth, str):
                    report.bad(where, "no question / ground_truth")
                    continue
                caption = vrsbench_caption(question)
                grid = [int(n) for n in _GRID.findall(truth)]
            if not caption:
                report.bad(where, "empty referring expression")
                continue
            box = _box(grid)
            if isinstance(box, str):
                report.bad(where, f"ground_truth: {box}")
                continue
            size = _size(entry) or VRSBENCH_SIZE
            pixels = [
                box[0] * size[0] / 100,
                box[1] * size[1] / 100,
                box[2] * size[0] / 100,
                box[3] * size[1] / 100,
            ]
            image_part = _image(f"Images_val/{image}", size)
            messages = question_messages(image_part, [vrsbench_referring_prompt(caption)])
            meta = {"expression": caption, "grid_box": box, "official_gt_box": box}
            record_id = entry.get("question_id", i)
            yield EvalSample.build(self.name, record_id, messages, {"box": pixels}, meta)


def _geochat_boxes(value: Any) -> list[list[float]] | str:
    """GT boxes: a list of 4/5/8-number lists, or GeoChat's ``[[…]][[…]]`` string."""
    if isinstance(value, str):
        groups = re.findall(r"\[([^\[\]]+)\]", value)
        value = [[v.strip() for v in g.split(",")] for g in groups]
    if not isinstance(value, list) or not value:
        return "no ground-truth boxes"
    out: list[list[float]] = []
    for box in value:
        if not isinstance(box, list) or len(box) not in (4, 5, 8):
            return f"box {box!r:.40} is not 4, 5 or 8 numbers"
        try:
            nums = [float(v) for v in box]
        except (TypeError, ValueError):
            return f"non-numeric box {box!r:.40}"
        if not all(math.isfinite(v) for v in nums):
            return "non-finite box"
        out.append(nums)
    return out


class GeoChatReferring(Benchmark):
    """GeoChat-Bench referring (§3.4): every object found, nothing extra."""

    name: ClassVar[str] = "geochat_referring"
    task: ClassVar[str] = "grounding"
    metric: ClassVar[str] = "Pr(F1=1, IoU=0.5)"
    files: ClassVar[str] = (
        "referring.jsonl (GeoChat-Bench: image_id, question, ground_truth, size_group, type, "
        "obj_ids) and images/"
    )
    GRID: ClassVar[float] = 100.0

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        path = find_file(root, ["referring.jsonl", "converted/referring.jsonl"], self.name)
        for i, entry in iter_json_records(path, report):
            where = f"{path.name}:{i + 1}"
            question, image = entry.get("question"), entry.get("image_id")
            if not isinstance(question, str) or not question.strip():
                report.bad(where, "no question")
                continue
            if not isinstance(image, str) or not image:
                report.bad(where, "no image_id")
                continue
            boxes = _geochat_boxes(entry.get("ground_truth", entry.get("gt_bbox")))
            if isinstance(boxes, str):
                report.bad(where, boxes)
                continue
            obj_ids = entry.get("obj_ids")
            n_objects = len(obj_ids) if isinstance(obj_ids, list) else len(boxes)
            stem = image.rsplit(".", 1)[0] if "." in image else image
            part = _image(f"images/{stem}.png", _size(entry))  # the converter forces .png
            messages = question_messages(part, [geochat_referring_prompt(question)])
            meta = {
                "size_group": str(entry.get("size_group", "unknown")),
                "type": str(entry.get("type", entry.get("task_type", "unknown"))),
                "n_objects": n_objects,
                "question": question,
            }
            record_id = entry.get("question_id", i)
            yield EvalSample.build(self.name, record_id, messages, {"boxes": boxes}, meta)

    def _scales(self, sample: EvalSample) -> tuple[tuple[float, float], tuple[float, float]]:
        orig, resized = _sizes(sample)
        official = box_scale(orig, resized) or (1.0, 1.0)
        if resized:
            return (self.GRID / resized[0], self.GRID / resized[1]), official
        return (1.0, 1.0), official  # no run sizes: the answer is taken as on the grid

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        strict_scale, official_scale = self._scales(sample)
        boxes = sample.reference["boxes"]
        strict = score_geochat_referring(output, boxes, strict_scale)
        if strict_scale == official_scale:
            return strict
        official = score_geochat_referring(output, boxes, official_scale)
        extra = dict(strict.extra)
        for key in ("official_reason", "official_tp", "official_f1"):
            if key in official.extra:
                extra[key] = official.extra[key]
            else:
                extra.pop(key, None)
        return SampleScore(strict.strict, official.official, strict.parsed, strict.reason, extra)

    def perfect_output(self, sample: EvalSample) -> str:
        scale, _ = self._scales(sample)
        sx, sy = scale
        out = []
        for box in sample.reference["boxes"]:
            if len(box) == 5:  # GeoChat [x1, y1, x2, y2, angle]: scale the corners, keep angle
                vals = [box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy, box[4]]
            else:
                vals = [v / (sx if k % 2 == 0 else sy) for k, v in enumerate(box)]
            out.append("[" + ", ".join(str(round(v)) for v in vals) + "]")
        return "[" + ", ".join(out) + "]" if len(out) > 1 else out[0]

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        return geochat_referring_report(
            scores,
            [str(s.meta["size_group"]) for s in samples],
            [str(s.meta["type"]) for s in samples],
            [int(s.meta["n_objects"]) for s in samples],
        )


def _register() -> None:
    for name in VLM_R1_REC:
        register(name, lambda name=name: RecBenchmark(name))
    everything = list(GEOGROUND_SUBSETS)
    bases: list[tuple[str, list[str]]] = [("geoground", everything), ("geoground_all", everything)]
    bases += [(f"geoground_{sub}", [sub]) for sub in GEOGROUND_SUBSETS]
    for base, subs in bases:
        register(base, lambda base=base, subs=subs: GeoGround(base, subs))
        for side in GEOGROUND_RESOLUTIONS:
            name = f"{base}_{side}"
            register(name, lambda name=name, subs=subs, side=side: GeoGround(name, subs, side))
    register("vrsbench_referring", VrsbenchReferring)
    register("geochat_referring", GeoChatReferring)


_register()
