"""Held-out synthetic benchmarks of the demo: the sets ``rscovlm demo`` writes into its work dir
under ``held_out/`` (other seeds than training, never built or trained on; ground truth from
the generator), read in the same released layouts and scored by the same scorers as the real
benchmarks, so ``rscovlm eval samples`` / ``eval score --benchmark synthetic_det --root
<demo workdir>`` (and the runner) evaluate the demo's tiny model like any other model.

- ``synthetic_det``: ``held_out/boxes`` (DOTA layout, one large object per image,
  :func:`~rscovlm.data.sources.synthetic.write_box_scenes`), axis-aligned boxes as the demo
  trains them, mAP_nc / mF1 of :class:`~rscovlm.eval.benchmarks.detection.DetectionBenchmark`;
- ``synthetic_det_aerial``: ``held_out/synthetic`` (the multi-object aerial scenes), oriented
  quads as the released detector answers (its objects are rotated: a horizontal box of a long
  rotated object is no hit);
- ``synthetic_grounding``: ``held_out/boxes`` again, one referring question per image ("find
  the storage tank": its one object), acc@0.5 of the REC benchmarks;
- ``synthetic_cls``: ``held_out/colours`` (class per folder), every image, accuracy;
- ``synthetic_vqa``: ``held_out/synthetic/vqa.jsonl`` (LRS-VQA training layout: count, colour,
  position), short answers, strict and contain accuracy per category.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rscovlm.data.record import Record
from rscovlm.data.sources.dota import iter_dota_records
from rscovlm.data.sources.lrs_vqa import iter_lrs_vqa_records
from rscovlm.data.tasks import question_messages, vqa_question
from rscovlm.eval.benchmarks._files import image_part
from rscovlm.eval.benchmarks.base import Benchmark, EvalSample, find_file, register
from rscovlm.eval.benchmarks.classification import SceneFolder
from rscovlm.eval.benchmarks.detection import DetectionBenchmark
from rscovlm.eval.benchmarks.grounding import _image, _Rec, _rec_messages
from rscovlm.eval.metrics.score import SampleScore, build_report, group_by
from rscovlm.eval.metrics.text import score_contain
from rscovlm.eval.read_report import ReadReport
from rscovlm.formats.classes import normalize_label

__all__ = ["SYNTHETIC_BENCHMARKS", "SyntheticGrounding", "SyntheticVQA"]

HELD = "held_out"
"""The folder of the demo's work dir that holds the held-out sets."""


def _dota(root: Path, path: str) -> Iterator[Any]:
    return iter_dota_records(root, path, split="test", skip_bad_lines=True)


class SyntheticVQA(Benchmark):
    """The held-out synthetic questions (count / object color / position), one short answer
    each, scored by the strict match and the official contain rule."""

    name: ClassVar[str] = "synthetic_vqa"
    task: ClassVar[str] = "vqa"
    metric: ClassVar[str] = "acc"
    files: ClassVar[str] = f"{HELD}/synthetic/vqa.jsonl (LRS-VQA layout) and its images/"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        root = Path(root)
        file = find_file(root, [f"{HELD}/synthetic/vqa.jsonl", "synthetic/vqa.jsonl"], self.name)
        base = file.parent.relative_to(root).as_posix()
        for item in iter_lrs_vqa_records(root, f"{base}/vqa.jsonl", source=self.name):
            if not isinstance(item, Record):
                report.bad(item.id, item.reason)
                continue
            qa = item.qa[0]
            image = image_part(item.images[0].path)
            prompt = vqa_question(qa.question, suffix="short", training=False)
            meta = {"category": qa.category}
            yield EvalSample.build(
                self.name, item.id, question_messages(image, [prompt]), qa.answer, meta
            )

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        return score_contain(output if isinstance(output, str) else "", str(sample.reference))

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        scores = list(scores)
        entries: dict[str, list[SampleScore]] = {"acc": scores}
        groups = group_by(scores, [str(s.meta.get("category")) for s in samples])
        entries.update({f"acc_{k}": v for k, v in groups.items()})
        return build_report(entries, scores, notes=["strict: exact; official: contain-acc"])


class SyntheticGrounding(_Rec):
    """One REC question per held-out box scene: its single object named by its class (the
    scenes hold exactly one object, so the expression is unambiguous)."""

    name: ClassVar[str] = "synthetic_grounding"
    files: ClassVar[str] = f"{HELD}/boxes/images + labelTxt/ of a demo work dir"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        root = Path(root)
        base = find_file(root, [f"{HELD}/boxes", "boxes"], self.name)
        for item in _dota(root, base.relative_to(root).as_posix()):
            if not isinstance(item, Record):
                report.bad(item.id, item.reason)
                continue
            if len(item.objects) != 1:
                report.bad(item.id, f"{len(item.objects)} objects: the expression is ambiguous")
                continue
            obj = item.objects[0]
            ref = item.images[0]
            corners = obj.box.quad_array().reshape(4, 2)
            box = [*corners.min(0).tolist(), *corners.max(0).tolist()]
            size = (ref.width, ref.height) if ref.width and ref.height else None
            expression = normalize_label(obj.class_name)
            messages = _rec_messages(_image(ref.path, size), expression)
            meta = {"expression": expression, "image": ref.path}
            yield EvalSample.build(self.name, item.id, messages, {"box": box}, meta)


SYNTHETIC_BENCHMARKS = (
    "synthetic_cls",
    "synthetic_det",
    "synthetic_det_aerial",
    "synthetic_grounding",
    "synthetic_vqa",
)
"""Every held-out synthetic benchmark (the demo evaluates these)."""


def _register() -> None:
    register(
        "synthetic_det",
        lambda: DetectionBenchmark(
            "synthetic_det",
            _dota,
            "dota1.0",
            (f"{HELD}/boxes", "boxes"),
            None,
            f"{HELD}/boxes/images + labelTxt/ of a demo work dir (one large object per image)",
            kind="hbb",
        ),
    )
    register(
        "synthetic_det_aerial",
        lambda: DetectionBenchmark(
            "synthetic_det_aerial",
            _dota,
            "dota1.0",
            (f"{HELD}/synthetic", "synthetic"),
            None,
            f"{HELD}/synthetic/images + labelTxt/ of a demo work dir (aerial scenes)",
        ),
    )
    register(
        "synthetic_cls", lambda: SceneFolder("synthetic_cls", (f"{HELD}/colours",), split=None)
    )
    register("synthetic_grounding", SyntheticGrounding)
    register("synthetic_vqa", SyntheticVQA)


_register()
