"""The ultra-high-resolution family: the full real LRS-VQA file, MME-RealWorld-RS in its
release layout (the author notebook's item 0) and XLRS-Bench in the VLMEvalKit layout."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from rscovlm.data.conversation import TextPart
from rscovlm.errors import InputError
from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.metrics.lrsvqa import LRSVQA_SOURCES, LRSVQA_TASKS
from rscovlm.eval.read_report import ReadReport

# EVAL_SUITE.md §3.7, copied from the document
ZOOM_SHA256 = "582d01257e5bfcfbe01427c996d06966d97db93c87a25d3cb433cd46bf8269a4"
ZOOM_SUFFIX = "\nZoom in to the region of interest and answer the question."
MME_ITEM0 = (
    "What color is the roof of the square building in the lower right area of the picture? The "
    "choices are listed below: \n(A) Yellow\n(B) Blue\n(C) Gray\n(D) White\n(E) The image does "
    "not feature the color.\nSelect the best answer to the above multiple-choice question based "
    "on the image. Respond with only the letter (A, B, C, D, or E) of the correct option.\nThe "
    "best answer is:"
)


def read(name: str, root: Path):
    bench, report = get_benchmark(name), ReadReport(name)
    return bench, list(bench.samples(root, report)), report


def texts(sample, role: str) -> list[str]:
    return [p.text for m in sample.messages if m.role == role for p in m.content
            if isinstance(p, TextPart)]  # fmt: skip


@pytest.fixture(scope="module")
def lrs(real_data: Path):
    root = real_data / "lrs_vqa"
    lines = [json.loads(x) for x in (root / "LRS_VQA_merged.jsonl").read_text().splitlines()]
    return root, lines, read("lrsvqa", root), read("lrsvqa_visual_cot", root)


def test_lrsvqa_all_7333_questions_with_their_categories(lrs) -> None:
    _, lines, (_, samples, report), _ = lrs
    assert len(samples) == len(lines) == 7333 and report.n_bad == 0
    cats = Counter(s.meta["category"] for s in samples)
    assert cats == Counter(x["category"] for x in lines)
    assert set(cats) == set(LRSVQA_TASKS) and sum(cats.values()) == 7333
    sources = Counter(s.meta["source"] for s in samples)
    assert set(sources) == set(LRSVQA_SOURCES) and sum(sources.values()) == 7333
    assert len({s.id for s in samples}) == 7333
    for s, line in zip(samples[:200], lines[:200], strict=True):
        assert texts(s, "user") == [line["text"]]  # verbatim, suffix included
        assert not texts(s, "system") and s.meta["zoom"] is False
        assert s.image_parts()[0].source == line["image"]
        assert s.image_parts()[0].orig_size == tuple(line["image_size"])


def test_lrsvqa_zoom_variant(lrs) -> None:
    _, lines, (_, plain, _), (_, cot, _) = lrs
    assert len(cot) == 7333 and {s.id for s in cot}.isdisjoint({s.id for s in plain})
    for s, line in zip(cot, lines, strict=True):
        if line["category"] == "count":
            assert s.meta["zoom"] is False and texts(s, "user") == [line["text"]]
            assert line["text"].endswith(" \nAnswer the question using a single word or phrase.")
        else:
            assert s.meta["zoom"] is True and s.meta["skip_zoom"] == ["count"]
            (system,) = texts(s, "system")
            assert hashlib.sha256(system.encode()).hexdigest() == ZOOM_SHA256
            assert texts(s, "user") == [line["text"] + ZOOM_SUFFIX]
    assert sum(s.meta["zoom"] for s in cot) == sum(x["category"] != "count" for x in lines)


def test_lrsvqa_perfect_and_garbage(lrs) -> None:
    _, _, (bench, samples, _), _ = lrs
    perfect = bench.aggregate(samples, [bench.score(s, s.reference) for s in samples])
    for side in ("strict", "official"):
        assert perfect[side]["overall acc"] == perfect[side]["Average Acc"] == 1.0
        for src in LRSVQA_SOURCES:
            assert perfect[side][f"Overall Acc (Source {src})"] == 1.0
    part = samples[:300]
    garbage = bench.aggregate(part, [bench.score(s, "") for s in part])
    assert garbage["strict"]["overall acc"] == 0.0
    assert garbage["counts"]["n_failed"] == 300


def test_lrsvqa_bad_lines_are_counted(real_data: Path, tmp_path: Path) -> None:
    lines = (real_data / "lrs_vqa" / "LRS_VQA_merged.jsonl").read_text().splitlines()[:50]
    no_cat = json.loads(lines[0]) | {"question_id": "FAIR_x", "category": ""}
    body = [*lines, "{broken", json.dumps(no_cat), json.dumps({"question_id": "STAR_y"})]
    (tmp_path / "LRS_VQA_merged.jsonl").write_text("\n".join(body) + "\n")
    _, samples, report = read("lrsvqa", tmp_path)
    assert len(samples) == 50 and report.n_bad == 3
    assert len(samples) + report.n_bad == len(body)


MME_ROWS = [
    {"Question_id": "perception/remote_sensing/color/0",
     "Image": "remote_sensing/03553_Toronto.png",
     "Text": "What color is the roof of the square building in the lower right area of the "
             "picture?", "Question Type": "Multiple Choice",
     "Answer choices": ["(A) Yellow", "(B) Blue", "(C) Gray", "(D) White",
                        "(E) The image does not feature the color."],
     "Ground truth": "C", "Category": "color", "Subtask": "Remote Sensing", "Task": "Perception"},
    {"Question_id": "count/1", "Image": "remote_sensing/1.png", "Text": "How many cars?",
     "Answer choices": ["(A) 1", "(B) 2", "(C) 3", "(D) 4", "(E) 5"], "Ground truth": "A",
     "Category": "count"},
    {"Question_id": "position/2", "Image": "remote_sensing/2.png", "Text": "Where is the ship?",
     "Answer choices": ["(A) left", "(B) right"], "Ground truth": "B", "Category": "position"},
    {"Question_id": "bad/3", "Image": "remote_sensing/3.png", "Text": "No choices",
     "Ground truth": "B", "Category": "position"},
]  # fmt: skip


@pytest.mark.parametrize("zoom", [False, True])
def test_mme_realworld_rs(tmp_path: Path, zoom: bool) -> None:
    (tmp_path / "MME_RealWorld_remote_sensing.json").write_text(json.dumps(MME_ROWS))
    name = "mme_realworld_remote_sensing" + ("_visual_cot" if zoom else "")
    bench, samples, report = read(name, tmp_path)
    assert len(samples) == 3 and report.n_bad == 1
    color, count, position = samples
    assert texts(color, "user") == [MME_ITEM0 + (ZOOM_SUFFIX if zoom else "")]
    assert color.meta["zoom"] is zoom and bool(texts(color, "system")) is zoom
    for s in (count, position):  # asked plainly even with the Zoom-in Chain
        assert s.meta["zoom"] is False and not texts(s, "system")
        assert s.meta["skip_zoom"] == ["count", "position"]
    perfect = bench.aggregate(samples, [bench.score(s, s.reference) for s in samples])
    for key in ("acc", "count_acc", "color_acc", "position_acc"):
        assert perfect["strict"][key] == perfect["official"][key] == 1.0
    garbage = bench.aggregate(samples, [bench.score(s, "") for s in samples])
    assert garbage["strict"]["acc"] == 0.0 and garbage["counts"]["n_failed"] == 3
    # the official contain-acc quirk (§3.7): 'a' is in 'cars'
    lenient = bench.score(count, "B. 12 cars are parked")
    assert (lenient.strict, lenient.official) == (0.0, 1.0)


def test_xlrs_bench_tsv(tmp_path: Path) -> None:
    rows = [
        {"index": "0", "question": "How many planes are parked?", "A": "2", "B": "3", "C": "4",
         "D": "", "answer": "B", "category": "counting", "l2-category": "perception",
         "image_path": "images/0.png", "image": "aGk="},
        {"index": "1", "question": "Is the area urban?", "A": "yes", "B": "no", "C": "", "D": "",
         "answer": "A", "category": "land use", "l2-category": "reasoning",
         "image_path": "images/1.png", "image": ""},
        {"index": "2", "question": "Only one choice", "A": "x", "B": "", "C": "", "D": "",
         "answer": "A", "category": "x", "l2-category": "x", "image_path": "images/2.png",
         "image": ""},
    ]  # fmt: skip
    with (tmp_path / "XLRS-Bench-lite.tsv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    bench, samples, report = read("xlrs_bench", tmp_path)
    assert len(samples) == 2 and report.n_bad == 1
    assert texts(samples[0], "user")[0].startswith(
        "How many planes are parked? The choices are listed below: \n(A) 2\n(B) 3\n(C) 4\n"
    )
    perfect = bench.aggregate(samples, [bench.score(s, f"({s.reference})") for s in samples])
    assert perfect["strict"]["acc"] == 1.0 and perfect["official"]["acc"] is None
    assert perfect["counts"]["official_missing_reasons"] == {
        "no official rule (not in RSCoVLM eval)": 2
    }
    garbage = [bench.score(s, bad) for s, bad in zip(samples, ["B or C", ""], strict=True)]
    assert [g.parsed for g in garbage] == [False, False]


@pytest.mark.parametrize(
    "name", ["lrsvqa", "lrsvqa_visual_cot", "mme_realworld_remote_sensing", "xlrs_bench"]
)
def test_empty_root_is_one_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="expected"):
        read(name, tmp_path)
