"""The ultra-high-resolution VQA family (EVAL_SUITE.md §3.7): LRS-VQA and MME-RealWorld-RS,
each plain and with the Zoom-in Chain, and XLRS-Bench multiple choice.

**Plain** prompts are ``[user[image, question]]``; **Zoom-in Chain** prompts
(``*_visual_cot``) are ``[system: the zoom tool prompt, user[image, question + "\\nZoom in to
the region of interest and answer the question."]]`` (:func:`rscovlm.data.tasks.zoom_first_turn`),
except for the categories the original asks plainly — ``count`` for LRS-VQA, ``count`` and
``position`` for MME-RealWorld. Every sample says which in ``meta["zoom"]`` (and the set's
``meta["skip_zoom"]``), so the runner knows whether to start the zoom loop.

Scores (strict beside official): LRS-VQA by :func:`rscovlm.eval.metrics.lrsvqa.score_lrsvqa`
(exact or shared WordNet synset) and its OA/AA report; MME-RealWorld by the strict choice letter
beside the official contain-acc (:func:`rscovlm.eval.metrics.mcq.score_mcq_contain`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rscovlm.data.sources.lrs_vqa import iter_lrs_vqa_records
from rscovlm.data.sources.mme_realworld import iter_mme_realworld_records
from rscovlm.data.tasks import question_messages, vqa_question, zoom_first_turn
from rscovlm.eval.benchmarks._files import image_part, iter_rows, records, require_file
from rscovlm.eval.benchmarks.base import Benchmark, EvalSample, register
from rscovlm.eval.metrics.lrsvqa import lrsvqa_report, lrsvqa_source, score_lrsvqa
from rscovlm.eval.metrics.mcq import extract_letter, score_mcq_contain
from rscovlm.eval.metrics.score import SampleScore, build_report, group_by
from rscovlm.eval.metrics.vqa import mme_report
from rscovlm.eval.metrics.wordnet import load_wordnet
from rscovlm.eval.read_report import ReadReport

__all__ = ["LRSVQA", "MMERealWorldRS", "XLRSBench", "uhr_messages"]

LRSVQA_FILE = "LRS_VQA_merged.jsonl"
MME_FILE = "MME_RealWorld_remote_sensing.json"


def uhr_messages(image: Any, question: str, zoom: bool) -> list[Any]:
    """The plain or the Zoom-in Chain first turn of one question (see the module docstring)."""
    if zoom:
        return zoom_first_turn(image, question)
    return question_messages(image, [question])


class _UHR(Benchmark):
    """What LRS-VQA and MME-RealWorld share: the plain / zoom variant and its skip list."""

    task = "uhr_vqa"
    skip_zoom: tuple[str, ...] = ()

    def __init__(self, zoom: bool) -> None:
        self.zoom = zoom

    def _meta(self, category: str) -> dict[str, Any]:
        return {
            "category": category,
            "zoom": self.zoom and category not in self.skip_zoom,
            "skip_zoom": list(self.skip_zoom),
        }


class LRSVQA(_UHR):
    """LRS-VQA ``LRS_VQA_merged.jsonl`` (7,333 questions, read by
    :func:`rscovlm.data.sources.lrs_vqa.iter_lrs_vqa_records`): ``text`` verbatim (it carries
    its answer-format suffix), ``ground_truth``, ``category``, ``question_id`` (source prefix
    ``FAIR``/``STAR``/``GLH``), ``image`` relative to the root, ``image_size``.

    A line without a category, question or answer is a bad record. Report keys as the original:
    ``"overall acc"``, per source and per task, ``"Average Acc"`` (fractions).
    """

    metric = "overall acc"
    files = f"{LRSVQA_FILE} at the root; its image paths are relative to the root"
    skip_zoom = ("count",)

    def __init__(self, zoom: bool = False) -> None:
        super().__init__(zoom)
        self.name = "lrsvqa_visual_cot" if zoom else "lrsvqa"
        self._wn: Any = "unloaded"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        require_file(root, LRSVQA_FILE, self.name)
        for rec in records(iter_lrs_vqa_records(root, LRSVQA_FILE, image_root="."), report):
            qa, ref = rec.qa[0], rec.images[0]
            if not qa.category:
                report.bad(f"{LRSVQA_FILE}:{rec.id}", "question without a category")
                continue
            meta = self._meta(qa.category)
            meta["source"] = lrsvqa_source(rec.id) or "other"
            meta["image_size"] = [ref.width, ref.height]
            part = image_part(ref.path, (ref.width, ref.height))
            messages = uhr_messages(part, qa.question, meta["zoom"])
            yield EvalSample.build(self.name, rec.id, messages, qa.answer, meta)

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        if self._wn == "unloaded":
            self._wn = load_wordnet()
        return score_lrsvqa(output if isinstance(output, str) else "", sample.reference, self._wn)

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        qids = [str(s.meta["record_id"]) for s in samples]
        return lrsvqa_report(scores, qids, [str(s.meta["category"]) for s in samples])


class MMERealWorldRS(_UHR):
    """MME-RealWorld remote-sensing ``MME_RealWorld_remote_sensing.json`` (read by
    :func:`rscovlm.data.sources.mme_realworld.iter_mme_realworld_records`): ``Text``,
    ``Answer choices`` (``"(A) …"``), ``Ground truth`` (a letter), ``Category``, ``Image``
    relative to the root. The question is :func:`rscovlm.formats.mcq_prompt` of ``Text`` and
    the choices, untouched (no ``rstrip``); reported as ``acc``, ``count_acc``, ``color_acc``,
    ``position_acc`` (fractions).
    """

    metric = "acc"
    files = f"{MME_FILE} at the root; its Image paths are relative to the root"
    skip_zoom = ("count", "position")

    def __init__(self, zoom: bool = False) -> None:
        super().__init__(zoom)
        suffix = "_visual_cot" if zoom else ""
        self.name = f"mme_realworld_remote_sensing{suffix}"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        require_file(root, MME_FILE, self.name)
        for rec in records(iter_mme_realworld_records(root, MME_FILE, image_root="."), report):
            qa = rec.qa[0]
            if not qa.category:
                report.bad(f"{MME_FILE}:{rec.id}", "question without a Category")
                continue
            meta = self._meta(qa.category)
            meta["choices"] = list(qa.choices or [])
            question = vqa_question(qa.question, qa.choices, training=False)
            messages = uhr_messages(image_part(rec.images[0].path), question, meta["zoom"])
            yield EvalSample.build(self.name, rec.id, messages, qa.answer, meta)

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        text = output if isinstance(output, str) else ""
        return score_mcq_contain(text, sample.reference, choices=sample.meta.get("choices"))

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        return mme_report(scores, [str(s.meta["category"]) for s in samples])


class XLRSBench(Benchmark):
    """XLRS-Bench multiple choice, in the VLMEvalKit layout its authors release it in
    (``XLRS-Bench-lite``): one row per question with ``index``, ``question``, the choice
    columns ``A``…``E`` (as many as the row fills), ``answer`` (a letter), ``category`` and
    ``l2-category``, and the image as ``image_path`` (relative to the root). Read from
    ``XLRS-Bench-lite.tsv`` (tab-separated, the base64 ``image`` column ignored) or
    ``XLRS-Bench-lite.json`` / ``.jsonl``.

    **No official rule.** RSCoVLM's evaluation code has no XLRS-Bench branch (EVAL_SUITE.md
    lists none), so there is nothing to reproduce: ``official`` is ``None`` with that reason,
    and ``strict`` is :func:`rscovlm.eval.metrics.mcq.extract_letter` against the answer
    letter. The prompt is rscovlm's MCQ prompt (:func:`rscovlm.formats.mcq_prompt`) over
    ``"(A) text"`` choices — the one the model was trained on.
    """

    name = "xlrs_bench"
    task = "uhr_vqa"
    metric = "acc"
    files = "XLRS-Bench-lite.tsv (or .json/.jsonl) at the root; image_path relative to it"
    _NAMES = ("XLRS-Bench-lite.tsv", "XLRS-Bench-lite.json", "XLRS-Bench-lite.jsonl")

    def _rows(self, root: Path, report: ReadReport) -> Iterator[tuple[str, dict[str, Any]]]:
        file = next((root / n for n in self._NAMES if (root / n).is_file()), None)
        if file is None:
            require_file(root, self._NAMES[0], self.name)
            return
        if file.suffix == ".tsv":
            csv.field_size_limit(1 << 30)
            with file.open(encoding="utf-8", newline="") as fh:
                for n, row in enumerate(csv.DictReader(fh, delimiter="\t"), start=2):
                    yield f"{file.name}:{n}", dict(row)
        else:
            yield from iter_rows(file, report)

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        for where, row in self._rows(root, report):
            question, answer = row.get("question"), str(row.get("answer") or "").strip()
            image = row.get("image_path")
            letters = [k for k in "ABCDE" if str(row.get(k) or "").strip()]
            if not isinstance(question, str) or not isinstance(image, str) or not image:
                report.bad(where, "row without question or image_path")
                continue
            if len(letters) < 2 or answer.upper() not in letters:
                report.bad(where, "fewer than two choices or an answer that is no choice")
                continue
            choices = [f"({k}) {str(row[k]).strip()}" for k in letters]
            meta = {
                "category": row.get("category") or "unknown",
                "l2_category": row.get("l2-category"),
                "letters": "".join(letters),
                "choices": choices,
            }
            messages = question_messages(
                image_part(image), [vqa_question(question, choices, training=False)]
            )
            record_id = row.get("index", where)
            yield EvalSample.build(self.name, record_id, messages, answer.upper(), meta)

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        text = output if isinstance(output, str) else ""
        letters = sample.meta.get("letters", "ABCDE")
        letter = extract_letter(text, letters, sample.meta.get("choices"))
        reason = None
        if letter is None:
            reason = "empty answer" if not text.strip() else "no letter"
        return SampleScore(
            strict=float(letter == sample.reference),
            official=None,
            parsed=letter is not None,
            reason=reason,
            extra={"letter": letter, "official_reason": "no official rule (not in RSCoVLM eval)"},
        )

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        scores = list(scores)
        groups = group_by(scores, [str(s.meta["category"]) for s in samples])
        entries = {"acc": scores, **{f"acc_{k}": v for k, v in groups.items()}}
        return build_report(entries, scores, notes=["no official rule: strict letter only"])


register("lrsvqa", LRSVQA)
register("lrsvqa_visual_cot", lambda: LRSVQA(zoom=True))
register("mme_realworld_remote_sensing", MMERealWorldRS)
register("mme_realworld_remote_sensing_visual_cot", lambda: MMERealWorldRS(zoom=True))
register("xlrs_bench", XLRSBench)
