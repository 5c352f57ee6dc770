"""The captioning family (EVAL_SUITE.md §3.8): RSICD, UCM-Captions, Sydney-Captions,
NWPU-Captions, RSITMD, VRSBench captions, GeoChat grounding description and region captioning.

Prompts are ``[user[image, text]]`` with no system message: ``"Describe the image"``
(:func:`rscovlm.data.tasks.caption_question`) for the caption sets and GeoChat grounding
description, the file's ``question`` verbatim for VRSBench, and ``"[identify] What is the object
present at {question}"`` (:func:`rscovlm.formats.geochat_region_caption_prompt`, the region
string unconverted) for GeoChat region captioning. The reference is the list of the image's
captions (Karpathy ``raw`` / NWPU ``raw*`` stripped, as the original's converter builds them).

**Scoring is corpus-level.** CIDEr's IDF comes from the whole evaluated set, so a per-sample
:meth:`CaptionBenchmark.score` only records the caption (``extra["caption"]``) and whether it is
empty; :meth:`CaptionBenchmark.aggregate` scores the corpus through
:mod:`rscovlm.eval.metrics.captions` — strict PTB-tokenised BLEU/METEOR/ROUGE-L/CIDEr-D beside
the official untokenised CIDEr — in one tokeniser run and one METEOR process.
:func:`aggregate_captions` does several benchmarks in those same two Java start-ups.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rscovlm.data.sources.captions import iter_karpathy_records, iter_nwpu_caption_records
from rscovlm.data.tasks import caption_question, question_messages
from rscovlm.errors import InputError
from rscovlm.eval.benchmarks._files import image_part, iter_rows, records, require_file
from rscovlm.eval.benchmarks.base import Benchmark, EvalSample, register
from rscovlm.eval.metrics.captions import caption_report, clean_caption, score_caption_sets
from rscovlm.eval.metrics.score import SampleScore
from rscovlm.eval.read_report import ReadReport
from rscovlm.formats import geochat_region_caption_prompt

__all__ = [
    "CAPTION_SETS",
    "CaptionBenchmark",
    "GeoChatCaptions",
    "KarpathyCaptions",
    "NWPUCaptions",
    "VRSBenchCaptions",
    "aggregate_captions",
]


def aggregate_captions(
    runs: dict[str, tuple[Sequence[EvalSample], Sequence[SampleScore]]], meteor: bool = True
) -> dict[str, dict[str, Any]]:
    """The caption report of each ``{name: (samples, per-sample scores)}``, each on its own
    IDF, with one tokeniser run and one METEOR process for all.

    Raises:
        InputError: Samples and scores of a run differ in length.
    """
    sets = {}
    for name, (samples, scores) in runs.items():
        if len(samples) != len(scores):
            raise InputError(f"{name}: {len(scores)} scores for {len(samples)} samples")
        preds = [str(s.extra.get("caption", "")) for s in scores]
        sets[name] = (preds, [list(s.reference) for s in samples])
    out = {}
    for name, (per_image, corpus) in score_caption_sets(sets, meteor).items():
        out[name] = caption_report(per_image, corpus)
    return out


class CaptionBenchmark(Benchmark):
    """Shared scoring of the caption sets (see the module docstring)."""

    task = "caption"
    metric = "CIDEr"
    #: Run METEOR in :meth:`aggregate` (its JVM start-up, with the paraphrase tables, is the
    #: slowest part of caption scoring; switch it off for quick looks).
    meteor: bool = True

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        text = output if isinstance(output, str) else ""
        empty = not clean_caption(text)
        return SampleScore(
            strict=None,
            official=None,
            parsed=not empty,
            reason="empty caption" if empty else None,
            extra={"caption": text, "official_reason": "corpus metric (see aggregate)"},
        )

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        return aggregate_captions({self.name: (samples, scores)}, self.meteor)[self.name]

    def _sample(self, record_id: Any, image: str, text: str, refs: list[str]) -> EvalSample:
        messages = question_messages(image_part(image), [text])
        return EvalSample.build(self.name, record_id, messages, refs)


#: Registry name -> (Karpathy json names tried in order, image folder beside the json).
CAPTION_SETS: dict[str, tuple[tuple[str, ...], str]] = {
    "cap_rsicd": (("dataset_rsicd.json",), "RSICD_images"),
    "cap_ucm_caption": (("dataset_ucm.json", "dataset.json"), "imgs"),
    "cap_sydney_caption": (("dataset_sydney.json", "dataset.json"), "imgs"),
    "cap_rsitmd": (("dataset_RSITMD.json", "dataset_rsitmd.json"), "images"),
}


class KarpathyCaptions(CaptionBenchmark):
    """A Karpathy-style ``dataset_*.json`` (``images[{filename, imgid, split, sentences}]``),
    its ``split == "test"`` images (read by
    :func:`rscovlm.data.sources.captions.iter_karpathy_records`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        names, images = CAPTION_SETS[name]
        self.files = f"{' or '.join(names)} at the root, images in {images}/"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        names, images = CAPTION_SETS[self.name]
        file = next((n for n in names if (root / n).is_file()), None)
        if file is None:
            require_file(root, names[0], self.name)
            return
        items = iter_karpathy_records(root, file, source=self.name, split="test", image_dir=images)
        for rec in records(items, report):
            yield self._sample(rec.id, rec.images[0].path, caption_question(), rec.captions)


class NWPUCaptions(CaptionBenchmark):
    """NWPU-Captions ``dataset_nwpu.json`` (``{class: [{filename, split, raw, raw_1…}]}``),
    test split; images ``NWPU-RESISC45/<class>/<filename>`` (the original's image id)."""

    name = "cap_nwpu_caption"
    files = "dataset_nwpu.json at the root, images in NWPU-RESISC45/<class>/"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        require_file(root, "dataset_nwpu.json", self.name)
        items = iter_nwpu_caption_records(
            root, "dataset_nwpu.json", source=self.name, split="test", image_dir="NWPU-RESISC45"
        )
        for rec in records(items, report):
            if not rec.captions:
                report.bad(f"dataset_nwpu.json:{rec.id}", "image without captions")
                continue
            yield self._sample(rec.id, rec.images[0].path, caption_question(), rec.captions)


class VRSBenchCaptions(CaptionBenchmark):
    """``VRSBench_EVAL_Cap.json``: ``image_id``, ``question`` (asked verbatim; its content was
    not verified against the release), ``ground_truth`` (one reference)."""

    name = "vrsbench_caption"
    files = "VRSBench_EVAL_Cap.json at the root, images in Images_val/"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        file = require_file(root, "VRSBench_EVAL_Cap.json", self.name)
        for n, (where, row) in enumerate(iter_rows(file, report)):
            image, question, gt = row.get("image_id"), row.get("question"), row.get("ground_truth")
            if not all(isinstance(v, str) and v.strip() for v in (image, question, gt)):
                report.bad(where, "entry without image_id, question or ground_truth")
                continue
            record_id = row.get("question_id", n)
            yield self._sample(record_id, f"Images_val/{image}", str(question), [str(gt)])


class GeoChatCaptions(CaptionBenchmark):
    """GeoChat-Bench ``grounding_description.jsonl`` (GT ``description``, asked ``"Describe the
    image"``) or ``region_captioning.jsonl`` (GT ``ground_truth``, asked the region prompt with
    the line's ``question``); ``image_id`` is given the ``.png`` suffix as the original's
    converter does; images in ``images/``."""

    _KINDS: ClassVar[dict[str, tuple[str, str]]] = {
        "geochat_grounding_description": ("grounding_description.jsonl", "description"),
        "geochat_region_captioning": ("region_captioning.jsonl", "ground_truth"),
    }

    def __init__(self, name: str) -> None:
        self.name = name
        self.files = f"{self._KINDS[name][0]} at the root, images in images/"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        fname, gt_key = self._KINDS[self.name]
        file = require_file(root, fname, self.name)
        region = self.name == "geochat_region_captioning"
        for n, (where, row) in enumerate(iter_rows(file, report)):
            image, gt, question = row.get("image_id"), row.get(gt_key), row.get("question")
            if not isinstance(image, str) or not isinstance(gt, str) or not gt.strip():
                report.bad(where, f"line without image_id or {gt_key}")
                continue
            if region and not isinstance(question, str):
                report.bad(where, "line without the region question")
                continue
            text = geochat_region_caption_prompt(str(question)) if region else caption_question()
            png = f"images/{Path(image).stem}.png"
            yield self._sample(row.get("question_id", n), png, text, [gt])


for _name in CAPTION_SETS:
    register(_name, lambda _n=_name: KarpathyCaptions(_n))
register("cap_nwpu_caption", NWPUCaptions)
register("vrsbench_caption", VRSBenchCaptions)
register("geochat_grounding_description", lambda: GeoChatCaptions("geochat_grounding_description"))
register("geochat_region_captioning", lambda: GeoChatCaptions("geochat_region_captioning"))
