"""The scene-classification benchmarks (EVAL_SUITE.md §3.5), read from their released files.

Every prompt is ``"Classify the image within one of the given classes:" + class_string``
(no system), built by the question task builder; the scorer is
:class:`~rscovlm.eval.metrics.classification.SceneClassifier` (official contain-acc beside the
strict one-class match) and every aggregate carries the confusion matrix.

- ``cls_aid``, ``cls_resisc``: the authors' local jsons ``{name}_test.json`` (``image_id``,
  ``classes``, ``ground_truth``); the class string is the file's, verbatim. Their split cannot
  be redrawn (the AID one was unseeded), so only the file defines them.
- ``cls_aid_full`` and the class-per-folder sets (``cls_ucm``, ``cls_nwpu_resisc45``,
  ``cls_whu_rs19``, ``cls_siri_whu``, ``cls_eurosat``, ``cls_meter_ml``): the folders
  themselves (:func:`~rscovlm.data.sources.scene_folder.iter_scene_folder_records`); the class
  string is the sorted folder names. ``cls_aid_full`` is every image (as the original); the
  others have no official split, so the test split is a seeded draw (20 % per class, seed 0),
  recorded in each sample's ``meta``.
- ``geochat_aid``, ``geochat_ucmerced``: GeoChat-Bench ``aid.jsonl`` / ``UCmerced.jsonl``;
  the class string is the ``Classes:`` line of the question, lower-cased, and the GT is
  lower-cased with the ``gt`` suffix and CamelCase undone (``MediumResidentialgt`` →
  ``medium residential``), as the original's converter did. Converted files (with
  ``classes``) are read as they are.
- ``vhm_scene_cls``: VHM ``datasets_eval/cls_*.json`` (LLaVA-style conversations); the question
  minus ``"Answer with one word or short phrase."``; official is VHM's two-way containment,
  reported per file (``cls_AID`` …) with no overall (an overall is added on the strict side).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rscovlm.data.conversation import ImagePart
from rscovlm.data.record import Record
from rscovlm.data.sources.scene_folder import iter_scene_folder_records
from rscovlm.data.tasks import classification_question, question_messages
from rscovlm.errors import InputError
from rscovlm.eval.benchmarks.base import (
    UNKNOWN_SIZE,
    Benchmark,
    EvalSample,
    find_file,
    iter_json_records,
    register,
)
from rscovlm.eval.metrics.classification import SceneClassifier, confusion_matrix, scene_report
from rscovlm.eval.metrics.score import SampleScore, build_report
from rscovlm.eval.metrics.text import two_way_contain_match
from rscovlm.eval.read_report import ReadReport
from rscovlm.formats import scene_cls_prompt
from rscovlm.formats.qa_prompts import vhm_scene_cls_question

__all__ = [
    "FOLDER_SETS",
    "GeoChatScene",
    "LocalSceneJson",
    "SceneFolder",
    "VhmSceneCls",
    "class_list",
    "geochat_class_name",
]

SPLIT_RATIOS = {"train": 0.8, "test": 0.2}
SPLIT_SEED = 0

FOLDER_SETS: dict[str, tuple[str, ...]] = {
    "cls_ucm": ("UCMerced_LandUse/Images", "UCMerced_LandUse", "UCM"),
    "cls_nwpu_resisc45": ("NWPU-RESISC45",),
    "cls_whu_rs19": ("WHU-RS19",),
    "cls_siri_whu": ("SIRI-WHU",),
    "cls_eurosat": ("EuroSAT/2750", "EuroSAT"),
    "cls_meter_ml": ("METER-ML",),
}
"""Folder sets with no official split: name → accepted folders under ``--root``."""


def class_list(class_string: str) -> list[str]:
    """The classes of a prompt's class string (``","``-joined, final period).

    Examples:
        >>> class_list("Airport,BareLand,Viaduct.")
        ['Airport', 'BareLand', 'Viaduct']
    """
    text = class_string.strip()
    if text.endswith("."):
        text = text[:-1]
    return [c.strip() for c in text.split(",") if c.strip()]


def geochat_class_name(gt: str) -> str:
    """A GeoChat-Bench label as the original's converter leaves it.

    Examples:
        >>> geochat_class_name("MediumResidentialgt")
        'medium residential'
        >>> geochat_class_name("Beach")
        'beach'
    """
    text = gt.strip()
    if text.endswith("gt") and len(text) > 2 and text[-3].isalpha():
        text = text[:-2]
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text).lower().strip()


def _image(source: str) -> ImagePart:
    return ImagePart(source, UNKNOWN_SIZE, UNKNOWN_SIZE)


class _Scene(Benchmark):
    """Shared scoring: the strict class match, contain-acc, per-class accuracy, confusion."""

    task: ClassVar[str] = "classification"
    metric: ClassVar[str] = "acc"

    def _classifier(self, sample: EvalSample) -> SceneClassifier:
        key = tuple(sample.meta["classes"])
        cache: dict[tuple[str, ...], SceneClassifier] = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = SceneClassifier(key)
        return cache[key]

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        return self._classifier(sample).score(output, str(sample.reference))

    def perfect_output(self, sample: EvalSample) -> str:
        return str(sample.reference)

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        classes = list(dict.fromkeys(c for s in samples for c in s.meta["classes"]))
        return scene_report(scores, classes)

    def _build(
        self, record_id: Any, source: str, class_string: str, gt: str, meta: dict[str, Any]
    ) -> EvalSample:
        messages = question_messages(_image(source), [scene_cls_prompt(class_string)])
        return EvalSample.build(
            self.name, record_id, messages, gt, {"classes": class_list(class_string), **meta}
        )


class LocalSceneJson(_Scene):
    """``cls_aid`` / ``cls_resisc``: the authors' ``{name}_test.json``."""

    def __init__(self, name: str, image_root: str) -> None:
        self.name = name  # type: ignore[misc]
        self.image_root = image_root
        self.files = (  # type: ignore[misc]
            f"scene_cls/{name}_test.json (image_id, classes, ground_truth); images under "
            f"{image_root}/"
        )

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        path = find_file(
            root, [f"scene_cls/{self.name}_test.json", f"{self.name}_test.json"], self.name
        )
        for i, entry in iter_json_records(path, report):
            where = f"{path.name}[{i}]"
            image, classes, gt = (
                entry.get("image_id"),
                entry.get("classes"),
                entry.get("ground_truth"),
            )
            if not isinstance(image, str) or not image:
                report.bad(where, "no image_id")
            elif not isinstance(classes, str) or not class_list(classes):
                report.bad(where, "no classes string")
            elif not isinstance(gt, str) or not gt.strip():
                report.bad(where, "no ground_truth")
            else:
                yield self._build(i, f"{self.image_root}/{image}", classes, gt, {"image": image})


class SceneFolder(_Scene):
    """A class-per-folder set; ``split=None`` reads every image (``cls_aid_full``)."""

    def __init__(self, name: str, folders: Sequence[str], split: str | None = "test") -> None:
        self.name = name  # type: ignore[misc]
        self.folders = tuple(folders)
        self.split = split
        where = " or ".join(f"{f}/" for f in self.folders)
        drawn = (
            "every image"
            if split is None
            else f"seeded {int(SPLIT_RATIOS['test'] * 100)}% test split"
        )
        self.files = f"{where} with one folder per class ({drawn})"  # type: ignore[misc]

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        base = find_file(root, list(self.folders), self.name)
        classes = sorted(p.name for p in base.iterdir() if p.is_dir())
        if not classes:
            raise InputError(f"{self.name}: {base} holds no class folders")
        class_string = classification_question(classes)[len(scene_cls_prompt("")) :]
        ratios = {"all": 1.0} if self.split is None else SPLIT_RATIOS
        meta_split = (
            {} if self.split is None else {"split_seed": SPLIT_SEED, "split_ratios": SPLIT_RATIOS}
        )
        for item in iter_scene_folder_records(
            base, "", source=self.name, split=self.split, ratios=ratios, seed=SPLIT_SEED
        ):
            if not isinstance(item, Record):
                report.bad(item.id, item.reason)
                continue
            rel = base.relative_to(root).as_posix()
            path = item.images[0].path
            source = f"{rel}/{path}" if rel != "." else path
            yield self._build(item.id, source, class_string, str(item.label), dict(meta_split))


class GeoChatScene(_Scene):
    """GeoChat-Bench ``aid.jsonl`` / ``UCmerced.jsonl``."""

    def __init__(self, name: str, file: str, image_root: str, force_jpg: bool) -> None:
        self.name = name  # type: ignore[misc]
        self.file, self.image_root, self.force_jpg = file, image_root, force_jpg
        self.files = (  # type: ignore[misc]
            f"{file} (GeoChat-Bench: image_id, text with 'Classes: …', ground_truth); images "
            f"under {image_root}/"
        )

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        path = find_file(root, [self.file, f"converted/{self.file}"], self.name)
        for i, entry in iter_json_records(path, report):
            where = f"{path.name}:{i + 1}"
            image, gt = entry.get("image_id"), entry.get("ground_truth")
            if not isinstance(image, str) or not image:
                report.bad(where, "no image_id")
                continue
            if not isinstance(gt, str) or not gt.strip():
                report.bad(where, "no ground_truth")
                continue
            if isinstance(entry.get("classes"), str):  # the original's converted file
                classes, label = entry["classes"], gt.lower()
            else:
                text = entry.get("text", entry.get("question"))
                if not isinstance(text, str) or "Classes:" not in text:
                    report.bad(where, "no 'Classes:' in the question text")
                    continue
                classes = text.rsplit("Classes:")[1].rsplit("\n")[0].strip().lower()
                label = geochat_class_name(gt)
            if not class_list(classes):
                report.bad(where, "empty class list")
                continue
            if self.force_jpg:
                image = image.rsplit(".", 1)[0] + ".jpg"
            record_id = entry.get("question_id", i)
            yield self._build(record_id, f"{self.image_root}/{image}", classes, label, {})


class VhmSceneCls(_Scene):
    """VHM ``datasets_eval/cls_*.json``: two-way containment per file (§3.5)."""

    name: ClassVar[str] = "vhm_scene_cls"
    files: ClassVar[str] = (
        "datasets_eval/cls_{AID,METER_ML,NWPU_RESISC45,SIRI_WHU,WHU_RS19}.json (VHM eval, "
        "LLaVA-style conversations)"
    )
    FILES: ClassVar[tuple[str, ...]] = (
        "cls_AID",
        "cls_METER_ML",
        "cls_NWPU_RESISC45",
        "cls_SIRI_WHU",
        "cls_WHU_RS19",
    )

    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        found = [root / "datasets_eval" / f"{f}.json" for f in self.FILES]
        found = [p for p in found if p.exists()]
        if not found:
            find_file(root, ["datasets_eval/cls_AID.json"], self.name)  # raises the one line
        for path in found:
            records = []
            for i, entry in iter_json_records(path, report):
                where = f"{path.name}[{i}]"
                conv = entry.get("conversations")
                image = entry.get("image", entry.get("image_path"))
                if not isinstance(image, str) or not image:
                    report.bad(where, "no image")
                elif (
                    not isinstance(conv, list)
                    or len(conv) < 2
                    or not all(
                        isinstance(t, dict) and isinstance(t.get("value"), str) for t in conv[:2]
                    )
                ):
                    report.bad(where, "no question/answer conversation")
                elif not conv[1]["value"].strip():
                    report.bad(where, "empty answer")
                else:
                    records.append((entry.get("id", i), image, conv[0]["value"], conv[1]["value"]))
            classes = sorted({gt for *_, gt in records})
            for record_id, image, question, gt in records:
                text = vhm_scene_cls_question(question).replace("<image>", "").strip()
                messages = question_messages(_image(f"datasets_eval/images/{image}"), [text])
                meta = {"classes": classes, "file": path.stem}
                yield EvalSample.build(self.name, f"{path.stem}:{record_id}", messages, gt, meta)

    def score(self, sample: EvalSample, output: str) -> SampleScore:
        s = self._classifier(sample).score(output, str(sample.reference))
        official = float(two_way_contain_match(output, str(sample.reference)))
        return SampleScore(s.strict, official, s.parsed, s.reason, s.extra)

    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        files = [str(s.meta["file"]) for s in samples]
        entries: dict[str, list[SampleScore]] = {}
        for f, score in zip(files, scores, strict=True):
            entries.setdefault(f, []).append(score)
        report = build_report(
            entries, scores, notes=["official: two-way containment per file, no overall"]
        )
        report["strict"]["overall"] = build_report({"o": list(scores)}, scores)["strict"]["o"]
        report["confusion"] = {}
        for f in entries:
            idx = [i for i, name in enumerate(files) if name == f]
            classes = list(samples[idx[0]].meta["classes"])
            matrix, cols = confusion_matrix([scores[i] for i in idx], classes)
            report["confusion"][f] = {"rows": classes, "cols": cols, "matrix": matrix.tolist()}
        return report


def _register() -> None:
    register("cls_aid", lambda: LocalSceneJson("cls_aid", "AID"))
    register("cls_resisc", lambda: LocalSceneJson("cls_resisc", "NWPU-RESISC45"))
    register("cls_aid_full", lambda: SceneFolder("cls_aid_full", ("AID",), split=None))
    for name, folders in FOLDER_SETS.items():
        register(name, lambda name=name, folders=folders: SceneFolder(name, folders))
    register("geochat_aid", lambda: GeoChatScene("geochat_aid", "aid.jsonl", "AID", True))
    register(
        "geochat_ucmerced",
        lambda: GeoChatScene("geochat_ucmerced", "UCmerced.jsonl", "UCMerced", False),
    )
    register("vhm_scene_cls", VhmSceneCls)


_register()
