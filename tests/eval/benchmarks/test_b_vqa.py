"""The VQA family read from its released layouts: RSVQA (real official jsons), GeoChat-Bench
HRBEN (reshaped from the real RSVQA-HR files), VRSBench VQA and the VHM eval files."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from rscovlm.data.conversation import ImagePart, TextPart
from rscovlm.errors import InputError
from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.read_report import ReadReport

# EVAL_SUITE.md §3.6, copied from the document (not from rscovlm.formats)
SHORT = " Answer the question using a single word or a short phrase."


def read(name: str, root: Path):
    bench, report = get_benchmark(name), ReadReport(name)
    return bench, list(bench.samples(root, report)), report


def user_text(sample) -> str:
    (msg,) = [m for m in sample.messages if m.role == "user"]
    return next(p.text for p in msg.content if isinstance(p, TextPart))


def test_rsvqa_lr_real_official_layout(real_data: Path) -> None:
    root = real_data / "rsvqa" / "LR"
    bench, samples, report = read("rsvqa_lr", root)
    questions = json.loads((root / "LR_split_test_questions.json").read_text())["questions"]
    assert len(samples) == len(questions) == 400 and report.n_bad == 0
    types = Counter(q["type"] for q in questions)
    assert Counter(s.meta["category"] for s in samples) == types
    first = next(s for s in samples if s.meta["record_id"] == questions[0]["id"])
    assert user_text(first) == questions[0]["question"] + SHORT
    assert first.reference == "rural"
    (image,) = first.image_parts()
    assert image.source == "Images_LR/236.tif" and image.orig_size == (0, 0)
    # ids are content hashes: the same on a second read
    assert [s.id for s in samples] == [s.id for s in read("rsvqa_lr", root)[1]]

    perfect = bench.aggregate(samples, [bench.score(s, s.reference) for s in samples])
    assert perfect["strict"]["OA"] == perfect["strict"]["AA"] == 100.0
    assert perfect["official"]["OA"] == 100.0
    assert set(perfect["strict"]) == {*types, "OA", "AA"}

    garbage = [bench.score(s, "") for s in samples]
    report_g = bench.aggregate(samples, garbage)
    assert report_g["strict"]["OA"] == 0.0
    assert report_g["counts"]["n_failed"] == 400
    assert report_g["counts"]["failure_reasons"] == {"empty answer": 400}

    # "yes" to everything: strict per type = share of "yes" references of that type
    yes = bench.aggregate(samples, [bench.score(s, "yes") for s in samples])
    presence = [s for s in samples if s.meta["category"] == "presence"]
    share = 100.0 * sum(s.reference == "yes" for s in presence) / len(presence)
    assert yes["strict"]["presence"] == pytest.approx(share)


def test_rsvqa_hr_needs_no_images_and_counts_bad_records(real_data: Path, tmp_path: Path) -> None:
    for f in (real_data / "rsvqa" / "HR").glob("USGS_split_test_*.json"):
        shutil.copy(f, tmp_path / f.name)
    qfile = tmp_path / "USGS_split_test_questions.json"
    questions = json.loads(qfile.read_text())
    rows = questions["questions"]
    rows[0]["active"] = False  # skipped: not a question of the benchmark
    rows[1]["answers_ids"] = [-1]  # active but unanswered: a bad record
    rows[2]["question"] = None  # a bad record
    qfile.write_text(json.dumps(questions))
    images = json.loads((tmp_path / "USGS_split_test_images.json").read_text())
    off = next(i for i in images["images"] if i["active"] and i["id"] != rows[0]["img_id"])
    off["active"] = False
    (tmp_path / "USGS_split_test_images.json").write_text(json.dumps(images))
    n_off = sum(q["img_id"] == off["id"] for q in rows[3:])
    assert n_off > 0

    _, samples, report = read("rsvqa_hr", tmp_path)
    assert report.n_bad == 2
    assert len(samples) == len(rows) - 1 - 2 - n_off
    assert {s.meta["category"] for s in samples} == {"presence", "comp", "count", "area"}


def _geochat_hrben(real_data: Path, root: Path) -> list[dict]:
    """GeoChat-Bench ``hrben.jsonl`` + RSVQA ``USGSanswers.json`` made from the real HR split:
    ``question_id`` indexes the answers list, ``text`` carries the answer-format line."""
    hr = real_data / "rsvqa" / "HR"
    questions = json.loads((hr / "USGS_split_test_questions.json").read_text())["questions"]
    answers = json.loads((hr / "USGS_split_test_answers.json").read_text())["answers"]
    by_id = {a["id"]: a for a in answers}
    listed, lines = [], []
    for pos, q in enumerate(questions):
        a = dict(by_id[q["answers_ids"][0]], question_id=pos)
        listed.append(a)
        text = q["question"] + "\nAnswer the question using a single word or phrase."
        lines.append({"question_id": pos, "image": f"{q['img_id']}.png", "text": text,
                      "category": q["type"]})  # fmt: skip
    (root / "USGSanswers.json").write_text(json.dumps({"answers": listed}))
    body = "\n".join(json.dumps(line) for line in lines)
    (root / "hrben.jsonl").write_text(body + "\nnot json\n" + json.dumps({"question_id": 10**6,
        "image": "x.png", "text": "q?", "category": "presence"}) + "\n")  # fmt: skip
    return lines


def test_geochat_hrben(real_data: Path, tmp_path: Path) -> None:
    lines = _geochat_hrben(real_data, tmp_path)
    bench, samples, report = read("geochat_hrben", tmp_path)
    assert len(samples) == len(lines) and report.n_bad == 2
    assert user_text(samples[0]) == lines[0]["text"].split("\n")[0].strip().lower() + SHORT
    assert samples[0].image_parts()[0].source == f"Data/{lines[0]['image']}"
    assert samples[0].messages[0].role == "user"  # no system message
    perfect = bench.aggregate(samples, [bench.score(s, s.reference.upper()) for s in samples])
    assert perfect["official"]["acc"] == perfect["strict"]["acc"] == 1.0
    # contain-acc is lenient where strict is not: "no" is in "not sure"
    noes = [s for s in samples if s.reference == "no"]
    s = bench.score(noes[0], "Not sure")
    assert (s.strict, s.official) == (0.0, 1.0)


def test_vrsbench_vqa(tmp_path: Path) -> None:
    rows = [
        {"image_id": "00001.png", "question": "How many ships are there?", "ground_truth": "2",
         "question_id": 7, "type": "object quantity"},
        {"image_id": "00002.png", "question": "What color is the roof?", "ground_truth": "red",
         "question_id": 8, "type": "object color"},
        {"question": "no image"},
    ]  # fmt: skip
    (tmp_path / "VRSBench_EVAL_vqa.json").write_text(json.dumps(rows))
    bench, samples, report = read("vrsbench_vqa", tmp_path)
    assert len(samples) == 2 and report.n_bad == 1
    assert user_text(samples[0]) == "How many ships are there?" + SHORT
    perfect = bench.aggregate(samples, [bench.score(s, s.reference) for s in samples])
    assert perfect["official"]["acc"] == 1.0 and perfect["strict"]["acc_object color"] == 1.0
    wrong = bench.aggregate(samples, [bench.score(s, "12 ships") for s in samples])
    assert wrong["official"]["acc_object quantity"] == 1.0  # "2" in "12 ships"
    assert wrong["strict"]["acc"] == 0.0


def _vhm(root: Path, name: str, rows: list[tuple[str, str, str]]) -> None:
    folder = root / "datasets_eval"
    folder.mkdir(exist_ok=True)
    entries = [
        {"id": i, "image": f"{i}.png", "image_path": Path(name).stem,
         "conversations": [{"from": "human", "value": f"  {q}\n"}, {"from": "gpt", "value": a}]}
        for i, (q, a, _) in enumerate(rows)
    ]  # fmt: skip
    (folder / name).write_text(json.dumps(entries))


HNSTD = {
    "presence_mo_dota.json": [("Is there a ship?", "yes", "no idea"),
                              ("Is there a plane?", "no", "I don't know")],
    "color_dota-test_fair1m-val_open.json": [("What color is the car?", "red, white", "blue")],
    "abspos_dota-test_mc.json": [("Where is the ship? (A) top (B) bottom", "B", "Answer: C")],
    "relpos_dota-test_mc.json": [("Where is the car? (A) left (B) right", "A", "")],
}  # fmt: skip
OPEN = {
    "counting_dota-test_open.json": [("How many cars?", "12", "several"),
                                     ("How many ships?", "3", "")],
    "imgType_mcq.json": [("Which modality? (A) optical (B) SAR", "A", "x")],
    "obj_meas_dota_test.json": [("How long is the ship?", "120 m", "big")],
}  # fmt: skip


@pytest.mark.parametrize(("name", "files"), [("vhm_hnstd_qa", HNSTD), ("vhm_open_ended_qa", OPEN)])
def test_vhm_sets(tmp_path: Path, name: str, files: dict) -> None:
    for fname, rows in files.items():
        _vhm(tmp_path, fname, rows)
    bench, samples, report = read(name, tmp_path)
    n = sum(len(r) for r in files.values())
    assert len(samples) == n and report.n_bad == 0
    first_q = next(iter(files.values()))[0][0]
    assert user_text(samples[0]) == first_q  # verbatim, stripped
    perfect = bench.aggregate(samples, [bench.score(s, s.reference) for s in samples])
    bad = [r[2] for v in files.values() for r in v]
    garbage_scores = [bench.score(s, b) for s, b in zip(samples, bad, strict=True)]
    garbage = bench.aggregate(samples, garbage_scores)
    assert garbage["counts"]["n_in"] == n and garbage["counts"]["n_failed"] > 0
    if name == "vhm_hnstd_qa":
        for key in ("presence_acc", "color_acc", "abspos_position_acc", "relpos_position_acc"):
            assert perfect["strict"][key] == perfect["official"][key] == 1.0
        assert garbage["strict"]["presence_acc"] == 0.0
        assert garbage["official"]["presence_acc"] == 0.5  # "I don't know" reads "no" (know)
    else:
        assert perfect["strict"]["counting_mae"] == perfect["official"]["counting_mae"] == 0.0
        assert perfect["strict"]["geometric_mae"] == 0.0
        assert perfect["official"]["modality_acc"] == 1.0
        # where the original crashes (no number) the sample is counted, not dropped or fatal
        assert garbage["strict"]["counting_mae"] is None
        assert garbage["counts"]["counting_counts"]["n_failed"] == 2


def test_vhm_rsvqa_reports_per_folder_and_counts_missing_files(tmp_path: Path) -> None:
    _vhm(tmp_path, "RSVQA_LR-presence_RSVQA.json", [("Is a road present?", "yes", "")])
    _vhm(tmp_path, "RSVQA_HR-comp_RSVQA.json", [("More roads than houses?", "no", "")])
    bench, samples, report = read("vhm_rsvqa", tmp_path)
    assert len(samples) == 2 and report.n_bad == 3  # three files of the set are missing
    r = bench.aggregate(samples, [bench.score(s, "Yes, it is.") for s in samples])
    assert r["official"]["RSVQA_LR-presence_RSVQA"] == 1.0  # two-way containment
    assert r["strict"]["RSVQA_LR-presence_RSVQA"] == 0.0
    assert r["official"]["RSVQA_HR-comp_RSVQA"] == 0.0


@pytest.mark.parametrize(
    "name",
    ["geochat_hrben", "geochat_lrben", "rsvqa_lr", "rsvqa_hr", "vrsbench_vqa", "vhm_rsvqa",
     "vhm_open_ended_qa_full"],
)  # fmt: skip
def test_empty_root_is_one_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="expected"):
        read(name, tmp_path)


def test_image_parts_carry_no_size_where_the_file_gives_none(real_data: Path) -> None:
    _, samples, _ = read("rsvqa_hr", real_data / "rsvqa" / "HR")
    part = samples[0].image_parts()[0]
    assert isinstance(part, ImagePart) and part.orig_size == (0, 0)
    conv = samples[0].conversation(sizes=[(512, 512)])
    assert conv.image_parts()[0].orig_size == (512, 512)
