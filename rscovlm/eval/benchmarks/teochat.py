"""TEOChatlas evaluation files the original can score (EVAL_SUITE.md §3.9): the single-image
GeoChat-derived set and the temporal classification / QA files.

Layout (HF ``jirvin16/TEOChatlas``): ``eval/<File>.json``, a list of ``{id, video: [frame
paths], conversations: [human, gpt], dataset?, task?, timestamps?}``; frame paths start with
``TEOChatlas/``, which is dropped so they are relative to the root.

- ``teochatlas_geochat`` (``AID``, ``UCMerced``, ``HRBEN``, ``LRBEN``): ``user[video[0],
  question]`` with the official question
  (:func:`rscovlm.formats.teochat_eval.teochat_geochat_question`, a literal ``<image>``
  left in the text). The original never runs it (its reader is a generator that returns an
  empty pipe): rscovlm does.
- ``teochatlas_<file>`` for ``fMoW_High_Res``, ``fMoW_Low_Res``, ``CDVQA``, ``ABCD``: the human
  turn split at its ``<image>`` / ``<video>`` placeholders (a ``<video>`` is all frames as one
  video item), each text cleaned as in training (``'. ?'``→``'.'``, ``'.. '``→``'.'``,
  stripped). ``timestamps`` are kept in ``meta`` (the original crashes on them). A question
  with a bracketed box is a bad record: it belongs to a detection task these files don't hold.
  The detection / change-detection files are not registered: their official metrics crash or
  give NaN (§3.9).

Scoring: TEOChat exact match after lower-casing and removing punctuation, no strip
(:func:`rscovlm.eval.metrics.classification.score_teochat`), reported as
``{dataset}_{task}_accuracy``; officially a task with 0 correct vanishes, strictly it stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rscovlm.data.conversation import ImagePart, Message, Part, TextPart, VideoPart
from rscovlm.data.sources.llava_instruct import TEOCHAT_BOX_RE
from rscovlm.data.tasks import question_messages
from rscovlm.eval.benchmarks._files import image_part, iter_rows, require_file
from rscovlm.eval.benchmarks.base import Benchmark, EvalSample, register
from rscovlm.eval.metrics.classification import score_teochat, teochat_report
from rscovlm.eval.metrics.score import SampleScore
from rscovlm.eval.read_report import ReadReport
from rscovlm.formats import TEOCHAT_USER_REPLACEMENTS
from rscovlm.formats.teochat_eval import teochat_geochat_question

__all__ = ["GEOCHAT_FILES", "TEMPORAL_FILES", "TEOChatlas"]

GEOCHAT_FILES = ("AID", "UCMerced", "HRBEN", "LRBEN")
TEMPORAL_FILES = ("fMoW_High_Res", "fMoW_Low_Res", "CDVQA", "ABCD")
_PREFIX = "TEOChatlas/"
_SPLIT = re.compile(r"(<image>|<video>)")


def _frame(path: str) -> str:
    return path[len(_PREFIX) :] if path.startswith(_PREFIX) else path


def _clean(text: str) -> str:
    for old, new in TEOCHAT_USER_REPLACEMENTS:
        text = text.replace(old, new)
    return text.strip()


def _temporal_parts(value: str, frames: list[str]) -> list[Part]:
    """The user parts of a temporal question (see the module docstring)."""
    value = value.replace("<image>\n", "<image>").replace("<video>\n", "<video>").strip()
    parts: list[Part] = []
    for piece in _SPLIT.split(value):
        if piece == "<video>":
            parts.append(VideoPart(tuple(image_part(f) for f in frames)))
        elif piece == "<image>":
            parts.append(image_part(frames[0]))
        elif _clean(piece):
            parts.append(TextPart(_clean(piece)))
    if not any(isinstance(p, ImagePart | VideoPart) for p in parts):
        parts.insert(0, VideoPart(tuple(image_part(f) for f in frames)))
    return parts


class TEOChatlas(Benchmark):
    """One TEOChatlas eval set (see the module docstring)."""

    task = "classification"
    metric = "accuracy"

    def __init__(self, name: str, files: Sequence[str], geochat: bool) -> None:
        self.name, self.file_stems, self.geochat = name, tuple(files), geochat
        self.files = "eval/{" + ",".join(self.file_stems) + "}.json under the root"

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        present = [f for f in self.file_stems if (root / "eval" / f"{f}.json").is_file()]
        if not present:
            require_file(root, f"eval/{self.file_stems[0]}.json", self.name)
        for stem in self.file_stems:
            if stem not in present:
                report.bad(f"eval/{stem}.json", "file missing")
                continue
            yield from self._file(root / "eval" / f"{stem}.json", stem, report)

    def _file(self, file: Path, stem: str, report: ReadReport) -> Iterator[EvalSample]:
        for n, (where, row) in enumerate(iter_rows(file, report)):
            frames, turns = row.get("video", row.get("image")), row.get("conversations")
            if isinstance(frames, str):
                frames = [frames]
            if (
                not isinstance(frames, list)
                or not frames
                or not all(isinstance(f, str) and f for f in frames)
            ):
                report.bad(where, "entry without video frames")
                continue
            if not isinstance(turns, list) or len(turns) != 2:
                report.bad(where, "conversations is not one question and one answer")
                continue
            question, answer = (t.get("value") if isinstance(t, dict) else None for t in turns)
            if not isinstance(question, str) or not isinstance(answer, str):
                report.bad(where, "conversations without a question or an answer value")
                continue
            frames = [_frame(f) for f in frames]
            if self.geochat:
                messages = question_messages(
                    image_part(frames[0]), [teochat_geochat_question(question)]
                )
            else:
                if TEOCHAT_BOX_RE.search(question):
                    report.bad(where, "question with a box (a detection task, not scorable)")
                    continue
                messages = [Message("user", tuple(_temporal_parts(question, frames)))]
            meta: dict[str, Any] = {
                "dataset": str(row.get("dataset") or stem).lower(),
                "task_name": str(row.get("task") or "cls"),
                "file": file.name,
            }
            if row.get("timestamps"):
                meta["timestamps"] = row["timestamps"]
            record_id = f"{stem}:{row.get('id', n)}"
            yield EvalSample.build(self.name, record_id, messages, answer, meta)

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        return score_teochat(output if isinstance(output, str) else "", sample.reference)

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        tasks = [f"{s.meta['dataset']}_{s.meta['task_name']}" for s in samples]
        return teochat_report(scores, tasks)


register("teochatlas_geochat", lambda: TEOChatlas("teochatlas_geochat", GEOCHAT_FILES, True))
for _stem in TEMPORAL_FILES:
    register(
        f"teochatlas_{_stem.lower()}",
        lambda _s=_stem: TEOChatlas(f"teochatlas_{_s.lower()}", (_s,), False),
    )
