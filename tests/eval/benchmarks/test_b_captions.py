"""The caption family read from its released layouts, made from the real caption sets (the
VT-RSBS CSVs reshaped into Karpathy / NWPU jsons, the VRSBench captions, EarthDial's UCM and
RSITMD test captions) and scored at corpus level through the benchmarks' aggregates."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import pytest

from rscovlm.data.conversation import TextPart
from rscovlm.errors import InputError
from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.benchmarks.captions import aggregate_captions
from rscovlm.eval.metrics.captions import STRICT_METRICS, java_path, official_cider
from rscovlm.eval.read_report import ReadReport

CAPTION_PROMPT = "Describe the image"  # EVAL_SUITE.md §3.8, copied from the document


def read(name: str, root: Path):
    bench, report = get_benchmark(name), ReadReport(name)
    return bench, list(bench.samples(root, report)), report


def user_texts(sample) -> list[str]:
    assert [m.role for m in sample.messages] == ["user"]  # no system message
    return [p.text for p in sample.messages[0].content if isinstance(p, TextPart)]


def csv_rows(real_data: Path, name: str) -> list[dict]:
    with (real_data / "captions" / f"{name}.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["sentences"] = ast.literal_eval(row["sentence"])
    return rows


def write_karpathy(path: Path, rows: list[dict]) -> None:
    """The Karpathy ``dataset_*.json`` layout: images[{filename, imgid, split, sentences}]."""
    images = [
        {"filename": r["filename"], "imgid": i, "split": r["split"],
         "sentences": [{"raw": f" {s} ", "tokens": s.lower().split()} for s in r["sentences"]]}
        for i, r in enumerate(rows)
    ]  # fmt: skip
    path.write_text(json.dumps({"images": images, "dataset": path.stem}))


@pytest.mark.parametrize(
    ("name", "csv_name", "json_name", "image_dir"),
    [
        ("cap_ucm_caption", "UCM_captions", "dataset.json", "imgs"),
        ("cap_sydney_caption", "SIDNEY", "dataset_sydney.json", "imgs"),
        ("cap_rsitmd", "RSITMD", "dataset_RSITMD.json", "images"),
        ("cap_rsicd", "RSICD_test_VT-RSBS", "dataset_rsicd.json", "RSICD_images"),
    ],
)
def test_karpathy_sets(
    real_data: Path, tmp_path: Path, name: str, csv_name: str, json_name: str, image_dir: str
) -> None:
    rows = csv_rows(real_data, csv_name)
    write_karpathy(tmp_path / json_name, rows)
    # two bad test entries: no filename, no sentences
    data = json.loads((tmp_path / json_name).read_text())
    data["images"] += [{"split": "test"}, {"filename": "x.tif", "split": "test", "sentences": []}]
    (tmp_path / json_name).write_text(json.dumps(data))
    _, samples, report = read(name, tmp_path)
    tests = [r for r in rows if r["split"] == "test"]
    assert len(samples) == len(tests) and report.n_bad == 2
    for s, row in zip(samples, tests, strict=True):
        assert user_texts(s) == [CAPTION_PROMPT]
        assert s.reference == [t.strip() for t in row["sentences"]]
        assert s.image_parts()[0].source == f"{image_dir}/{row['filename']}"
    assert [s.id for s in samples] == [s.id for s in read(name, tmp_path)[1]]
    assert len({s.id for s in samples}) == len(samples)


def test_nwpu_layout(real_data: Path, tmp_path: Path) -> None:
    rows = csv_rows(real_data, "RSITMD")
    nwpu: dict[str, list[dict]] = {}
    for r in rows:
        entry = {"filename": r["filename"], "split": r["split"], "raw": r["sentences"][0]}
        entry |= {f"raw_{k}": s for k, s in enumerate(r["sentences"][1:], start=1)}
        nwpu.setdefault(r["label"], []).append(entry)
    (tmp_path / "dataset_nwpu.json").write_text(json.dumps(nwpu))
    _, samples, report = read("cap_nwpu_caption", tmp_path)
    tests = {(r["label"], r["filename"]): r for r in rows if r["split"] == "test"}
    assert len(samples) == len(tests) and report.n_bad == 0
    for s in samples:
        _, label, filename = s.image_parts()[0].source.split("/")
        assert s.reference == tests[(label, filename)]["sentences"]


def test_vrsbench_captions_ask_the_file_question(real_data: Path, tmp_path: Path) -> None:
    lines = (real_data / "vrsbench" / "val_captions_with_baseline.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    question = "Describe the image in detail."
    cap = [{"image_id": r["image"], "question": question, "ground_truth": r["reference"],
            "question_id": i} for i, r in enumerate(rows)]  # fmt: skip
    (tmp_path / "VRSBench_EVAL_Cap.json").write_text(json.dumps([*cap, {"image_id": "x"}]))
    _, samples, report = read("vrsbench_caption", tmp_path)
    assert len(samples) == len(rows) == 5 and report.n_bad == 1
    assert user_texts(samples[0]) == [question]
    assert samples[0].reference == [rows[0]["reference"]]
    assert samples[0].image_parts()[0].source == f"Images_val/{rows[0]['image']}"


def test_geochat_region_and_description(real_data: Path, tmp_path: Path) -> None:
    lines = real_data / "model_outputs" / "earthdial_geochat_region_captions_300.jsonl"
    rows = [json.loads(x) for x in lines.read_text().splitlines()[:20]]
    region = []
    for i, r in enumerate(rows):
        box = json.loads(r["question"].split("<box>")[1].split("</box>")[0])[0]
        where = "{" + "".join(f"<{v}>" for v in box[:4]) + f"|<{box[4]}>" + "}"
        region.append({"question_id": i, "image_id": f"P{i:04d}.tif", "question": where,
                       "ground_truth": r["annotation"]})  # fmt: skip
    (tmp_path / "region_captioning.jsonl").write_text("\n".join(map(json.dumps, region)) + "\n")
    _, samples, report = read("geochat_region_captioning", tmp_path)
    assert len(samples) == 20 and report.n_bad == 0
    prompt = f"[identify] What is the object present at {region[0]['question']}"
    assert user_texts(samples[0]) == [prompt]
    assert samples[0].image_parts()[0].source == "images/P0000.png"  # forced to .png
    desc = [{"question_id": 0, "image_id": "P0001.png", "description": "A harbor with ships."},
            {"question_id": 1, "image_id": "P0002"}]  # fmt: skip
    (tmp_path / "grounding_description.jsonl").write_text("\n".join(map(json.dumps, desc)))
    _, samples, report = read("geochat_grounding_description", tmp_path)
    assert len(samples) == 1 and report.n_bad == 1
    assert user_texts(samples[0]) == [CAPTION_PROMPT]
    assert samples[0].reference == ["A harbor with ships."]


def test_per_sample_score_only_records_the_caption(real_data: Path, tmp_path: Path) -> None:
    write_karpathy(tmp_path / "dataset_sydney.json", csv_rows(real_data, "SIDNEY"))
    bench, samples, _ = read("cap_sydney_caption", tmp_path)
    for output, parsed in (("a road", True), ("", False), (" \n|| ", False)):
        s = bench.score(samples[0], output)
        assert (s.parsed, s.strict, s.official, s.extra["caption"]) == (parsed, None, None, output)


def earthdial_set(real_data: Path, root: Path, name: str, json_name: str):
    lines = (real_data / "model_outputs" / f"earthdial_{name}_captions.jsonl").read_text()
    rows = [json.loads(x) for x in lines.splitlines()]
    images = [
        {"filename": f"ed_{i}.tif", "imgid": i, "split": "test",
         "sentences": [{"raw": r[f"caption{k}"]} for k in range(5)]}
        for i, r in enumerate(rows)
    ]  # fmt: skip
    (root / json_name).write_text(json.dumps({"images": images}))
    return rows


@pytest.fixture(scope="module")
def corpus(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """All Java-backed scoring of this module in ONE tokeniser run and ONE METEOR process."""
    if java_path() is None:
        pytest.fail("java is not on PATH; the caption metrics need it")
    out: dict = {"runs": {}}
    for bench_name, name, json_name in (
        ("cap_ucm_caption", "ucm", "dataset.json"),
        ("cap_rsitmd", "rsitmd", "dataset_RSITMD.json"),
    ):
        root = tmp_path_factory.mktemp(name)
        rows = earthdial_set(real_data, root, name, json_name)
        bench, samples, _ = read(bench_name, root)
        scores = [bench.score(s, r["answer"]) for s, r in zip(samples, rows, strict=True)]
        out["runs"][bench_name] = (samples, scores)
        out[bench_name] = rows
    root = tmp_path_factory.mktemp("vrs")
    rows = [json.loads(x) for x in (real_data / "vrsbench" / "val_captions_with_baseline.jsonl")
            .read_text().splitlines()]  # fmt: skip
    cap = [{"image_id": r["image"], "question": "Describe.", "ground_truth": r["reference"]}
           for r in rows]  # fmt: skip
    (root / "VRSBench_EVAL_Cap.json").write_text(json.dumps(cap))
    bench, samples, _ = read("vrsbench_caption", root)
    out["runs"]["perfect"] = (samples, [bench.score(s, s.reference[0]) for s in samples])
    junk = ["", " ", "|||", "\x00", ""]
    out["runs"]["garbage"] = (
        samples,
        [bench.score(s, g) for s, g in zip(samples, junk, strict=True)],
    )
    out["reports"] = aggregate_captions(out["runs"])
    return out


@pytest.mark.parametrize("name", ["cap_ucm_caption", "cap_rsitmd"])
def test_real_earthdial_captions_end_to_end(corpus: dict, name: str) -> None:
    report, rows = corpus["reports"][name], corpus[name]
    assert set(STRICT_METRICS) <= set(report["strict"])
    for key in STRICT_METRICS:
        assert 0.0 < report["strict"][key] < 100.0 or key == "CIDEr"
    # the official CIDEr is the untokenised one on the same references
    preds = [r["answer"] for r in rows]
    refs = [[r[f"caption{k}"] for k in range(5)] for r in rows]
    assert report["official"]["CIDEr"] == pytest.approx(official_cider(preds, refs)[0])
    assert report["counts"]["n_in"] == len(rows) and report["counts"]["n_failed"] == 0
    assert report["strict"]["CIDEr"] > 0.0


def test_perfect_and_garbage_captions(corpus: dict) -> None:
    perfect, garbage = corpus["reports"]["perfect"], corpus["reports"]["garbage"]
    assert perfect["strict"]["Bleu_4"] == pytest.approx(100.0, abs=1e-3)
    assert perfect["strict"]["ROUGE_L"] == pytest.approx(100.0)
    assert perfect["counts"]["n_failed"] == 0
    assert garbage["counts"]["n_failed"] == 5
    assert garbage["counts"]["failure_reasons"] == {"empty caption": 5}
    assert garbage["strict"]["CIDEr"] == 0.0 and garbage["strict"]["Bleu_1"] == pytest.approx(0.0)


def test_aggregate_is_the_corpus_scorer(corpus: dict) -> None:
    """``Benchmark.aggregate`` of one set equals that set's part of the shared run (METEOR off
    here: its JVM start-up is the slow part, and the shared run covers it)."""
    samples, scores = corpus["runs"]["perfect"]
    bench = get_benchmark("vrsbench_caption")
    bench.meteor = False
    alone = bench.aggregate(samples, scores)
    shared = dict(corpus["reports"]["perfect"]["strict"])
    assert "METEOR" not in alone["strict"] and shared.pop("METEOR") > 0
    assert alone["strict"] == shared
    assert alone["official"] == corpus["reports"]["perfect"]["official"]
    with pytest.raises(InputError, match="scores for"):
        aggregate_captions({"x": (samples, scores[:2])})


@pytest.mark.parametrize(
    "name",
    ["cap_rsicd", "cap_ucm_caption", "cap_sydney_caption", "cap_rsitmd", "cap_nwpu_caption",
     "vrsbench_caption", "geochat_grounding_description", "geochat_region_captioning"],
)  # fmt: skip
def test_empty_root_is_one_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="expected"):
        read(name, tmp_path)
