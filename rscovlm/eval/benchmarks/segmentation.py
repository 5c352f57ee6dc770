"""Referring segmentation: RRSIS-D ``res_rrsisd_refer`` (EVAL_SUITE.md §3.10).

Layout (the REFER toolkit's): ``rrsisd/refs(unc).p`` (a pickled list of refs: ``ref_id``,
``ann_id``, ``image_id``, ``split``, ``sentences[{raw, sent}]``) and ``rrsisd/instances.json``
(COCO: ``images[{id, file_name, width, height}]``, ``annotations[{id, segmentation}]``); images
in ``images/rrsisd/JPEGImages/``. As the original: the test refs in ``ref_id`` order, the FIRST
sentence of each (its ``sent`` field, the REFER-normalised text; ``raw`` where absent).

The pickle is read with an unpickler that refuses every global, so a file can only ever
produce plain lists, dicts, strings and numbers (it cannot run code).

Prompt: ``[system: SEG_SYSTEM_PROMPT, user[image, "Locate the {sentence}, output the
segmentation mask"]]``. The reference is the annotation's polygons and the image size; the GT
mask is drawn at original size when scoring, so listing needs no image. The original has no
metric (``NotImplementedError``): both sides use the RRSIS-D literature's mIoU, oIoU and
P@0.5…0.9 (:mod:`rscovlm.eval.metrics.segmentation`).

``res_rrsisd_xml`` (one sample per ``ann_split/*.xml`` description) is not registered: its
XML files carry boxes, not masks, so nothing could score it (and the original dies on a
missing ``tqdm`` import).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from rscovlm.data.tasks import question_messages
from rscovlm.errors import InputError
from rscovlm.eval.benchmarks._files import image_part, load_json, require_file
from rscovlm.eval.benchmarks.base import Benchmark, EvalSample, register
from rscovlm.eval.metrics.score import SampleScore
from rscovlm.eval.metrics.segmentation import score_rle, segmentation_report
from rscovlm.eval.read_report import ReadReport
from rscovlm.formats import SEG_SYSTEM_PROMPT, segmentation_prompt

__all__ = ["RRSISD", "polygon_mask"]

REFS = "rrsisd/refs(unc).p"
INSTANCES = "rrsisd/instances.json"
IMAGES = "images/rrsisd/JPEGImages"


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")


def polygon_mask(polygons: Sequence[Sequence[float]], size: tuple[int, int]) -> np.ndarray:
    """The ``(height, width)`` boolean mask of COCO polygons ``[[x1, y1, x2, y2, …], …]``.

    Examples:
        >>> polygon_mask([[0, 0, 3, 0, 3, 1, 0, 1]], (4, 3)).sum(axis=1).tolist()
        [4, 4, 0]
    """
    canvas = Image.new("1", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        points = [(float(poly[i]), float(poly[i + 1])) for i in range(0, len(poly) - 1, 2)]
        if len(points) >= 3:
            draw.polygon(points, fill=1, outline=1)
    return np.asarray(canvas, dtype=bool)


class RRSISD(Benchmark):
    """RRSIS-D test refs (see the module docstring)."""

    name = "res_rrsisd_refer"
    task = "segmentation"
    metric = "mIoU"
    files = f"{REFS} and {INSTANCES} under the root, images in {IMAGES}/"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        refs_file = require_file(root, REFS, self.name)
        try:
            refs = _PlainUnpickler(io.BytesIO(refs_file.read_bytes())).load()
        except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise InputError(
                f"{self.name}: {refs_file} is not a plain refs pickle ({exc})"
            ) from None
        data = load_json(root, INSTANCES, self.name)
        if not isinstance(refs, list) or not isinstance(data, dict):
            raise InputError(f"{self.name}: {REFS} is no list or {INSTANCES} no COCO object")
        images = {i.get("id"): i for i in data.get("images") or [] if isinstance(i, dict)}
        anns = {a.get("id"): a for a in data.get("annotations") or [] if isinstance(a, dict)}
        tests = [r for r in refs if isinstance(r, dict) and r.get("split") == "test"]
        for ref in sorted(tests, key=lambda r: str(r.get("ref_id"))):
            where = f"{REFS}:{ref.get('ref_id')}"
            sentences = ref.get("sentences") or []
            first = sentences[0] if sentences and isinstance(sentences[0], dict) else {}
            text = first.get("sent") or first.get("raw")
            ann, img = anns.get(ref.get("ann_id")), images.get(ref.get("image_id"))
            if not isinstance(text, str) or not text.strip():
                report.bad(where, "ref without a sentence")
                continue
            if ann is None or img is None:
                report.bad(where, "ref whose annotation or image is not in instances.json")
                continue
            seg, size = ann.get("segmentation"), (img.get("width"), img.get("height"))
            if not isinstance(seg, list) or not seg or not all(isinstance(p, list) for p in seg):
                report.bad(where, "annotation without polygon segmentation")
                continue
            if not all(isinstance(v, int) and v > 0 for v in size):
                report.bad(where, "image without width/height")
                continue
            part = image_part(f"{IMAGES}/{img.get('file_name')}", size)
            messages = question_messages(
                part, [segmentation_prompt(text.strip())], system=SEG_SYSTEM_PROMPT
            )
            reference = {"segmentation": seg, "size": list(size)}
            meta = {"image_id": ref.get("image_id"), "ann_id": ref.get("ann_id")}
            yield EvalSample.build(self.name, ref.get("ref_id"), messages, reference, meta)

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        ref = sample.reference
        gt = polygon_mask(ref["segmentation"], (ref["size"][0], ref["size"][1]))
        return score_rle(output if isinstance(output, str) else "", gt)

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        return segmentation_report(scores)


register("res_rrsisd_refer", RRSISD)
