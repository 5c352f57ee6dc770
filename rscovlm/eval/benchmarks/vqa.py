"""The VQA family (EVAL_SUITE.md §3.6): GeoChat-Bench HRBEN/LRBEN, RSVQA-LR/HR in their own
release layout, VRSBench VQA and the VHM question sets.

Every prompt is ``[user[image, question]]`` (no system message) built by
:func:`rscovlm.data.tasks.question_messages`; the question text is the official one:

- GeoChat HRBEN/LRBEN, VRSBench, RSVQA: ``question + " Answer the question using a single word
  or a short phrase."`` (:func:`rscovlm.data.tasks.vqa_question`, ``suffix="short"``). RSVQA in
  its own layout is not an official RSCoVLM benchmark (it evaluates RSVQA through GeoChat-Bench
  and VHM); rscovlm asks it the way those do;
- VHM: ``conversations[0].value.strip()`` verbatim (a literal ``<image>`` would pass through,
  as in the original).

Scorers are those of :mod:`rscovlm.eval.metrics` (strict beside official): contain-acc
(GeoChat, VRSBench, RSVQA), two-way containment (VHM RSVQA files), the VHM presence / colour /
MCQ / counting / measurement rules. Where the original crashes (VHM counting without a number,
measurements with a different number count) the sample is scored with a reason instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rscovlm.data.tasks import question_messages, vqa_question
from rscovlm.errors import InputError
from rscovlm.eval.benchmarks._files import image_part, iter_rows, load_json, require_file
from rscovlm.eval.benchmarks.base import Benchmark, EvalSample, register
from rscovlm.eval.metrics.mcq import score_mcq_vhm
from rscovlm.eval.metrics.score import SampleScore, build_report, group_by
from rscovlm.eval.metrics.text import score_contain, score_two_way
from rscovlm.eval.metrics.vhm import (
    score_colour,
    score_count,
    score_measure,
    score_presence,
    vhm_report,
)
from rscovlm.eval.metrics.vqa import rsvqa_report
from rscovlm.eval.read_report import ReadReport

__all__ = ["RSVQA", "RULES", "VHMQA", "GeoChatVQA", "VRSBenchVQA"]

#: Per-sample rules by name (``meta["rule"]``): ``(output, reference) -> SampleScore``.
RULES: dict[str, Callable[[str, Any], SampleScore]] = {
    "contain": score_contain,
    "two_way": score_two_way,
    "presence": score_presence,
    "colour": score_colour,
    "mcq_vhm": score_mcq_vhm,
    "count": score_count,
    "measure": score_measure,
}


class _RuleBenchmark(Benchmark):
    """Scores each sample by the rule its ``meta["rule"]`` names (one per benchmark file)."""

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        rule = RULES[sample.meta["rule"]]
        return rule(output if isinstance(output, str) else "", sample.reference)


def _short_question(image: Any, question: str) -> list[Any]:
    return question_messages(image, [vqa_question(question, suffix="short", training=False)])


def _contain_report(
    samples: Sequence[EvalSample], scores: Sequence[SampleScore], note: str
) -> dict[str, Any]:
    """``{"acc"}`` overall (the official key, a fraction) plus ``acc_{category}`` where the
    file names categories (informative; the original reports none)."""
    scores = list(scores)
    entries: dict[str, list[SampleScore]] = {"acc": scores}
    cats = [s.meta.get("category") for s in samples]
    if any(c is not None for c in cats):
        groups = group_by(scores, [str(c) for c in cats])
        entries.update({f"acc_{k}": v for k, v in groups.items()})
    return build_report(entries, scores, notes=[note])


# --- GeoChat-Bench HRBEN / LRBEN -----------------------------------------------------------------


class GeoChatVQA(_RuleBenchmark):
    """GeoChat-Bench ``hrben.jsonl`` / ``lrben.jsonl`` joined with the RSVQA answers file.

    Each line has ``question_id``, ``image``, ``text`` (question, newline, answer-format line)
    and ``category``; the question is ``text``'s first line, stripped and lower-cased, and the
    answer ``answers[question_id]["answer"]`` lower-cased, where ``answers`` is the RSVQA
    answers list (``USGSanswers.json`` for HR, ``all_answers.json`` for LR) indexed by position
    as the original does (an entry whose own ``question_id`` disagrees is looked up by that
    field instead, so a re-ordered answers file still joins correctly).
    """

    task = "vqa"
    metric = "acc"
    _SETS: ClassVar[dict[str, tuple[str, str, str]]] = {
        "hrben": ("hrben.jsonl", "USGSanswers.json", "Data"),
        "lrben": ("lrben.jsonl", "all_answers.json", "LRBEN"),
    }

    def __init__(self, subset: str) -> None:
        self.subset = subset
        self.name = f"geochat_{subset}"
        qfile, afile, images = self._SETS[subset]
        self.files = f"{qfile} and {afile} at the root, images in {images}/"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        qfile, afile, images = self._SETS[self.subset]
        questions = require_file(root, qfile, self.name)
        data = load_json(root, afile, self.name)
        answers = data.get("answers") if isinstance(data, dict) else data
        if not isinstance(answers, list):
            raise InputError(f"{self.name}: {afile} holds no 'answers' list")
        by_qid = {a.get("question_id"): a for a in answers if isinstance(a, dict)}
        for where, row in iter_rows(questions, report):
            qid, text, image = row.get("question_id"), row.get("text"), row.get("image")
            if isinstance(qid, str) and qid.isdigit():
                qid = int(qid)
            if not isinstance(qid, int) or not isinstance(text, str) or not isinstance(image, str):
                report.bad(where, "line without an int question_id, text or image")
                continue
            answer = answers[qid] if 0 <= qid < len(answers) else None
            if not isinstance(answer, dict) or answer.get("question_id", qid) != qid:
                answer = by_qid.get(qid)
            if not isinstance(answer, dict) or not isinstance(answer.get("answer"), str):
                report.bad(where, f"question_id {qid} has no answer in {afile}")
                continue
            question = text.split("\n")[0].strip().lower()
            messages = _short_question(image_part(f"{images}/{image}"), question)
            meta = {"rule": "contain", "category": row.get("category")}
            yield EvalSample.build(self.name, qid, messages, answer["answer"].lower(), meta)

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        return _contain_report(samples, scores, "official: contain-acc, overall only")


# --- RSVQA-LR / RSVQA-HR, official release layout ------------------------------------------------


class RSVQA(_RuleBenchmark):
    """RSVQA in its own layout: ``{prefix}{split}_{questions,answers,images}.json``.

    A question counts when it, its answer and its image are active (an image missing from the
    images file is taken as active; an active question whose answer is missing or inactive is
    a bad record). Reported as RSVQA reports it: accuracy per question type, ``AA`` (mean of
    the type accuracies) and ``OA`` (all questions), in percent, strict beside the official
    contain-acc (:func:`rscovlm.eval.metrics.vqa.rsvqa_report`).
    """

    task = "vqa"
    metric = "OA"
    _SETS: ClassVar[dict[str, tuple[str, str, tuple[str, ...]]]] = {
        "lr": ("LR_split_", "Images_LR", ("rural_urban", "presence", "comp", "count")),
        "hr": ("USGS_split_", "Data", ("presence", "comp", "count", "area")),
    }

    def __init__(self, resolution: str, split: str = "test", name: str | None = None) -> None:
        self.resolution, self.split = resolution, split
        self.name = name or f"rsvqa_{resolution}"
        prefix, images, _ = self._SETS[resolution]
        self.files = f"{prefix}{split}_{{questions,answers,images}}.json, images in {images}/"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        prefix, images, _ = self._SETS[self.resolution]
        loaded = {}
        for key in ("questions", "answers", "images"):
            data = load_json(root, f"{prefix}{self.split}_{key}.json", self.name)
            rows = data.get(key) if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise InputError(f"{self.name}: {prefix}{self.split}_{key}.json has no {key!r}")
            loaded[key] = [r for r in rows if isinstance(r, dict)]
        answers = {a.get("id"): a for a in loaded["answers"]}
        image_active = {i.get("id"): bool(i.get("active", True)) for i in loaded["images"]}
        for q in loaded["questions"]:
            qid = q.get("id")
            where = f"{prefix}{self.split}_questions.json:{qid}"
            if not q.get("active", True) or not image_active.get(q.get("img_id"), True):
                continue
            found = [answers.get(a) for a in q.get("answers_ids") or []]
            found = [a for a in found if a is not None and a.get("active", True)]
            question, qtype = q.get("question"), q.get("type")
            if not isinstance(question, str) or not isinstance(qtype, str) or qid is None:
                report.bad(where, "question without id, text or type")
                continue
            if not found or not isinstance(found[0].get("answer"), str):
                report.bad(where, "active question without an active answer")
                continue
            part = image_part(f"{images}/{q.get('img_id')}.tif")
            meta = {"rule": "contain", "category": qtype, "img_id": q.get("img_id")}
            yield EvalSample.build(
                self.name, qid, _short_question(part, question), found[0]["answer"], meta
            )

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        return rsvqa_report(scores, [str(s.meta["category"]) for s in samples])


# --- VRSBench VQA ------------------------------------------------------------------------------


class VRSBenchVQA(_RuleBenchmark):
    """``VRSBench_EVAL_vqa.json``: ``image_id``, ``question``, ``ground_truth`` (and
    ``question_id`` / ``type`` where present); contain-acc, ``{"acc"}``."""

    name = "vrsbench_vqa"
    task = "vqa"
    metric = "acc"
    files = "VRSBench_EVAL_vqa.json at the root, images in Images_val/"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        file = require_file(root, "VRSBench_EVAL_vqa.json", self.name)
        for n, (where, row) in enumerate(iter_rows(file, report)):
            image, question, gt = row.get("image_id"), row.get("question"), row.get("ground_truth")
            if not isinstance(image, str) or not isinstance(question, str) or gt is None:
                report.bad(where, "entry without image_id, question or ground_truth")
                continue
            qid = row.get("question_id", n)
            meta = {"rule": "contain", "category": row.get("type")}
            messages = _short_question(image_part(f"Images_val/{image}"), question)
            yield EvalSample.build(self.name, qid, messages, str(gt), meta)

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        return _contain_report(samples, scores, "official: contain-acc, overall only")


# --- VHM ----------------------------------------------------------------------------------------

#: VHM eval files of each benchmark and the rule that scores them (§3.6).
VHM_SETS: dict[str, tuple[tuple[str, str], ...]] = {
    "vhm_rsvqa": (
        ("RSVQA_HR-comp_RSVQA.json", "two_way"),
        ("RSVQA_HR-presence_RSVQA.json", "two_way"),
        ("RSVQA_LR-comp_RSVQA.json", "two_way"),
        ("RSVQA_LR-presence_RSVQA.json", "two_way"),
        ("RSVQA_LR-rural_urban_RSVQA.json", "two_way"),
    ),
    "vhm_hnstd_qa": (
        ("presence_mo_dota.json", "presence"),
        ("color_dota-test_fair1m-val_open.json", "colour"),
        ("abspos_dota-test_mc.json", "mcq_vhm"),
        ("relpos_dota-test_mc.json", "mcq_vhm"),
    ),
    "vhm_open_ended_qa": (
        ("counting_dota-test_open.json", "count"),
        ("imgType_mcq.json", "mcq_vhm"),
        ("obj_meas_dota_test.json", "measure"),
    ),
}
VHM_SETS["vhm_open_ended_qa_full"] = (
    *VHM_SETS["vhm_open_ended_qa"],
    ("gsd_dota_fbp.json", "measure"),
)


class VHMQA(_RuleBenchmark):
    """VHM eval files ``datasets_eval/<file>``: ``image``, ``image_path`` (a sub-folder, the
    images' folder — assumed — and the report key of the RSVQA files) and two
    ``conversations`` turns (human question, gpt answer).

    ``vhm_open_ended_qa_full`` reads the GSD file too; its other files (``bfv_crowdai_val``,
    ``mlc_*``) have no scorer in the original (``ValueError`` / ``NotImplementedError``) and
    are not read. A file of the set that is absent is a bad record (the rest still load); none
    present is an :class:`InputError`.
    """

    task = "vqa"

    def __init__(self, name: str) -> None:
        self.name = name
        self.metric = "presence_acc" if name == "vhm_hnstd_qa" else "counting_mae"
        if name == "vhm_rsvqa":
            self.metric = "RSVQA_HR-presence"
        names = ", ".join(f for f, _ in VHM_SETS[name])
        self.files = f"datasets_eval/ holding {names}; images in <image_path>/<image>"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        present = [(f, r) for f, r in VHM_SETS[self.name] if (root / "datasets_eval" / f).is_file()]
        if not present:
            require_file(root, f"datasets_eval/{VHM_SETS[self.name][0][0]}", self.name)
        for file, rule in VHM_SETS[self.name]:
            if (file, rule) not in present:
                report.bad(f"datasets_eval/{file}", "file missing")
                continue
            yield from self._file(root / "datasets_eval" / file, rule, report)

    def _file(self, file: Path, rule: str, report: ReadReport) -> Iterator[EvalSample]:
        for n, (where, row) in enumerate(iter_rows(file, report)):
            turns, image, folder = row.get("conversations"), row.get("image"), row.get("image_path")
            if not isinstance(image, str) or not isinstance(folder, str):
                report.bad(where, "entry without image or image_path")
                continue
            if not isinstance(turns, list) or len(turns) != 2:
                report.bad(where, "conversations is not one question and one answer")
                continue
            question, answer = (t.get("value") if isinstance(t, dict) else None for t in turns)
            if not isinstance(question, str) or answer is None:
                report.bad(where, "conversations without a question or an answer value")
                continue
            group = folder if rule == "two_way" else file.name
            meta = {"rule": rule, "file": file.name, "group": group, "category": group}
            messages = question_messages(image_part(f"{folder}/{image}"), [question.strip()])
            record_id = f"{file.name}:{row.get('id', n)}"
            yield EvalSample.build(self.name, record_id, messages, str(answer), meta)

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        per_file = group_by(list(scores), [str(s.meta["group"]) for s in samples])
        return vhm_report({str(k): v for k, v in per_file.items()})


register("geochat_hrben", lambda: GeoChatVQA("hrben"))
register("geochat_lrben", lambda: GeoChatVQA("lrben"))
register("rsvqa_lr", lambda: RSVQA("lr"))
register("rsvqa_hr", lambda: RSVQA("hr"))
register("rsvqa_hr_phili", lambda: RSVQA("hr", "test_phili", "rsvqa_hr_phili"))
register("vrsbench_vqa", VRSBenchVQA)
for _name in VHM_SETS:
    register(_name, lambda _n=_name: VHMQA(_n))
