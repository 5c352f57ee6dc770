"""VQA adapters: the full real LRS-VQA benchmark; LRS-VQA training, MME-RealWorld, RSVQA files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rscovlm.data.record import BadEntry, Record
from rscovlm.data.sources.lrs_vqa import LRS_VQA_CATEGORIES, iter_lrs_vqa_records
from rscovlm.data.sources.mme_realworld import iter_mme_realworld_records
from rscovlm.data.sources.rsvqa import iter_rsvqa_records


def test_lrs_vqa_benchmark_all_questions(real_data: Path) -> None:
    path = real_data / "lrs_vqa" / "LRS_VQA_merged.jsonl"
    raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    recs = list(iter_lrs_vqa_records(real_data, "lrs_vqa/LRS_VQA_merged.jsonl"))
    assert len(raw) == len(recs) == 7333
    assert all(isinstance(r, Record) for r in recs)
    assert Counter(r.qa[0].category for r in recs) == Counter(e["category"] for e in raw)
    assert set(Counter(r.qa[0].category for r in recs)) == set(LRS_VQA_CATEGORIES)
    for entry, rec in zip(raw, recs, strict=True):
        (qa,) = rec.qa
        assert rec.id == entry["question_id"] and rec.split == "test" and rec.task == "vqa"
        assert qa.question == entry["text"] and qa.answer == str(entry["ground_truth"])
        assert [rec.images[0].width, rec.images[0].height] == entry["image_size"]
        assert rec.images[0].path == f"lrs_vqa/{entry['image']}"
        if "hbox" in entry:
            (box,) = qa.evidence
            assert box.hbb == entry["hbox"]
            assert [v for p in box.quad for v in p] == entry["rbox"]
            assert rec.meta["size_bin"] == entry["size_bin"]
        else:
            assert entry["category"] == "count" and qa.evidence == []
    prefixes = Counter(r.id.split("_")[0] for r in recs)
    assert set(prefixes) == {"FAIR", "STAR", "GLH-Bridge"}


def test_lrs_vqa_training_files(tmp_path: Path) -> None:
    rows = [
        {"question_id": 1, "image": "img/a.tif", "image_ori_width": 4096, "image_ori_height": 2048,
         "question": "What color is the car?", "answer": "red",
         "bbox_info": {"crop_hbox": [[953, 236, 1401, 796]], "rbox": [1, 2, 3, 2, 3, 4, 1, 4]}},
        {"question_id": 2, "image": "img/a.tif", "image_size": [4096, 2048],
         "Text": "Which?\n Answer the question using a single word or phrase.",
         "Answer choices": ["(A) x", "(B) y"], "Ground truth": "B",
         "bbox_info": {"crop_hbox": [[0, 0, 5, 5], [6, 6, 9, 9]],
                       "rbox": [[0, 0, 5, 0, 5, 5, 0, 5]]}},
        {"question_id": 3, "image": "img/a.tif", "question": "q", "answer": "a",
         "bbox_info": {"crop_hbox": [[0, 0, "x", 5]]}},
    ]  # fmt: skip
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    first, mcq, bad_box, bad_line = list(iter_lrs_vqa_records(tmp_path, "train.jsonl"))
    assert isinstance(first, Record) and first.split == "train"
    assert first.images[0].width == 4096 and first.zoom[0].hbb == [953, 236, 1401, 796]
    assert first.qa[0].evidence[0].quad == [[1, 2], [3, 2], [3, 4], [1, 4]]
    assert isinstance(mcq, Record) and mcq.qa[0].choices == ["(A) x", "(B) y"]
    assert mcq.qa[0].answer == "B" and len(mcq.zoom) == 2
    assert isinstance(bad_box, BadEntry) and bad_box.id == "3" and "not numbers" in bad_box.reason
    assert isinstance(bad_line, BadEntry) and "not valid JSON" in bad_line.reason


def test_mme_realworld(tmp_path: Path) -> None:
    rows = [
        {"Question_id": "rs/1", "Image": "rs/1.jpg", "Text": "What color is the roof?",
         "Answer choices": ["(A) Yellow", "(B) Blue"], "Ground truth": "A", "Category": "color"},
        {"Question_id": "rs/2", "Image": "rs/2.jpg", "Text": "Count?", "Ground truth": "A",
         "Answer choices": "A,B"},
    ]  # fmt: skip
    (tmp_path / "mme.json").write_text(json.dumps(rows))
    rec, bad = list(iter_mme_realworld_records(tmp_path, "mme.json", image_root="imgs"))
    assert isinstance(rec, Record) and rec.images[0].path == "imgs/rs/1.jpg"
    assert rec.qa[0].category == "color" and rec.qa[0].answer == "A"
    assert isinstance(bad, BadEntry) and "Answer choices" in bad.reason


def test_rsvqa_active_entries(tmp_path: Path) -> None:
    questions = [
        {"id": 0, "img_id": 7, "type": "presence", "question": "Is there a road?",
         "answers_ids": [0], "active": True},
        {"id": 1, "img_id": 7, "type": "count", "question": "How many?", "answers_ids": [1],
         "active": False},
        {"id": 2, "img_id": 8, "type": "rural_urban", "question": "Rural or urban?",
         "answers_ids": [2], "active": True},
    ]  # fmt: skip
    answers = [
        {"id": 0, "question_id": 0, "answer": "yes", "active": True},
        {"id": 1, "question_id": 1, "answer": "3", "active": True},
        {"id": 2, "question_id": 2, "answer": "rural", "active": False},
    ]
    (tmp_path / "Images_LR").mkdir()
    (tmp_path / "LR_split_val_questions.json").write_text(json.dumps({"questions": questions}))
    (tmp_path / "LR_split_val_answers.json").write_text(json.dumps({"answers": answers}))
    rec, bad = list(iter_rsvqa_records(tmp_path, split="val", prefix="LR_split_"))
    assert isinstance(rec, Record) and rec.qa[0].answer == "yes"
    assert rec.qa[0].category == "presence" and rec.images[0].path == "Images_LR/7.tif"
    assert isinstance(bad, BadEntry) and bad.id == "2"
    (missing,) = iter_rsvqa_records(tmp_path, split="test")
    assert isinstance(missing, BadEntry) and "cannot read split files" in missing.reason


def test_one_invalid_entry_never_costs_the_entries_after_it(tmp_path: Path) -> None:
    good = {
        "Question_id": "rs/1",
        "Image": "rs/1.jpg",
        "Text": "Which?",
        "Answer choices": ["(A) x", "(B) y"],
        "Ground truth": "A",
        "Category": "color",
    }
    invalid = {**good, "Question_id": "rs/2", "Category": 7}  # not a string: Record refuses it
    rows = [good, invalid, {**good, "Question_id": "rs/3"}]  # fmt: skip
    (tmp_path / "mme.json").write_text(json.dumps(rows))
    items = list(iter_mme_realworld_records(tmp_path, "mme.json"))
    assert [type(i).__name__ for i in items] == ["Record", "BadEntry", "Record"]
    assert items[1].id == "mme:1" and "invalid entry" in items[1].reason
    assert items[2].id == "rs/3"
