"""TEOChatlas eval files (single-image GeoChat set and temporal classification) and RRSIS-D
referring segmentation, read from their release layouts."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from rscovlm.data.conversation import ImagePart, TextPart, VideoPart
from rscovlm.errors import InputError
from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.benchmarks.segmentation import polygon_mask
from rscovlm.eval.read_report import ReadReport
from rscovlm.formats.rle import encode_rle

# EVAL_SUITE.md §3.9 / §3.10, copied from the document
TEO_GEOCHAT_Q = "<image>Classify the image. Classes: airport, beach."
SEG_SYSTEM = (
    "As an AI assistant, you specialize in segmentation, delivering segmentation results as "
    "Row-wise RLE format. Each row is represented as '<value>*<count>', and rows are separated "
    "by ';'. The last row ends with a semicolon. For example, '0*1,1*2;0*3;' represents the mask."
)


def read(name: str, root: Path):
    bench, report = get_benchmark(name), ReadReport(name)
    return bench, list(bench.samples(root, report)), report


def teo_item(i: int, frames: list[str], question: str, answer: str, **extra) -> dict:
    return {"id": f"s{i}", "video": frames, **extra,
            "conversations": [{"from": "human", "value": question},
                              {"from": "gpt", "value": answer}]}  # fmt: skip


def test_teochatlas_geochat(tmp_path: Path) -> None:
    (tmp_path / "eval").mkdir()
    q = "This is a satellite image: <video> Classify the image. Classes: airport, beach. "
    aid = [teo_item(0, ["TEOChatlas/eval/AID/airport_1.jpg"], q, "airport", dataset="aid"),
           teo_item(1, ["TEOChatlas/eval/AID/beach_1.jpg"], q, "Beach.", dataset="aid"),
           {"id": "bad", "conversations": []}]  # fmt: skip
    (tmp_path / "eval" / "AID.json").write_text(json.dumps(aid))
    ucm = [teo_item(0, ["TEOChatlas/eval/UCMerced/a.tif"], q, "beach", dataset="ucmerced")]
    (tmp_path / "eval" / "UCMerced.json").write_text(json.dumps(ucm))
    bench, samples, report = read("teochatlas_geochat", tmp_path)
    assert len(samples) == 3
    assert report.n_bad == 1 + 2  # one bad entry, HRBEN and LRBEN missing
    (user,) = samples[0].messages
    image, text = user.content
    assert isinstance(image, ImagePart) and image.source == "eval/AID/airport_1.jpg"
    assert isinstance(text, TextPart) and text.text == TEO_GEOCHAT_Q
    perfect = bench.aggregate(samples, [bench.score(s, s.reference) for s in samples])
    assert (
        perfect["strict"]
        == perfect["official"]
        == {
            "aid_cls_accuracy": 1.0,
            "ucmerced_cls_accuracy": 1.0,
        }
    )
    # "Beach." = "beach" (punctuation removed); " beach" is not (no strip)
    assert bench.score(samples[1], "beach").strict == 1.0
    assert bench.score(samples[1], " beach").strict == 0.0
    garbage = bench.aggregate(samples, [bench.score(s, "") for s in samples])
    assert garbage["counts"]["n_failed"] == 3
    assert garbage["strict"] == {"aid_cls_accuracy": 0.0, "ucmerced_cls_accuracy": 0.0}
    assert garbage["official"] == {}  # the original drops tasks with 0 correct


def test_teochatlas_temporal_classification(tmp_path: Path) -> None:
    (tmp_path / "eval").mkdir()
    frames = [f"TEOChatlas/eval/fMoW/x_{k}.jpg" for k in range(3)]
    q = "This is a sequence of satellite images:\n<video>\nWhich class fits best.. ? Choose one."
    rows = [
        teo_item(0, frames, q, "airport", dataset="fMoW_High_Res", task="cls",
                 timestamps=["2016-01-02", "2015-05-06", "2017-03-04"]),
        teo_item(1, frames, "<video> Where is the building [10, 20, 30, 40]?", "left"),
        teo_item(2, frames, "<video>Which class?", "port", task="cls"),
    ]  # fmt: skip
    (tmp_path / "eval" / "fMoW_High_Res.json").write_text(json.dumps(rows))
    bench, samples, report = read("teochatlas_fmow_high_res", tmp_path)
    assert len(samples) == 2 and report.n_bad == 1  # the box question is not scorable
    (user,) = samples[0].messages
    lead, video, question = user.content
    assert lead.text == "This is a sequence of satellite images:"
    assert isinstance(video, VideoPart) and len(video.frames) == 3
    assert video.frames[0].source == "eval/fMoW/x_0.jpg"
    # the training cleanup, as the original applies it: '. ?' -> '.', then '.. ' -> '.'
    assert question.text == "Which class fits best.Choose one."
    assert samples[0].meta["timestamps"] == rows[0]["timestamps"]  # kept, never a crash
    perfect = bench.aggregate(samples, [bench.score(s, s.reference) for s in samples])
    assert perfect["official"] == {"fmow_high_res_cls_accuracy": 1.0}


# --- RRSIS-D ---------------------------------------------------------------------------------


def write_rrsisd(root: Path) -> dict:
    (root / "rrsisd").mkdir(parents=True)
    instances = {
        "images": [{"id": 1, "file_name": "00001.jpg", "width": 8, "height": 6},
                   {"id": 2, "file_name": "00002.jpg", "width": 4, "height": 4}],
        "annotations": [{"id": 10, "image_id": 1, "segmentation": [[2, 1, 6, 1, 6, 4, 2, 4]]},
                        {"id": 11, "image_id": 2, "segmentation": [[0, 0, 3, 0, 3, 3, 0, 3]]},
                        {"id": 12, "image_id": 2, "segmentation": {"counts": "x", "size": [4, 4]}}],
    }  # fmt: skip
    refs = [
        {"ref_id": 5, "ann_id": 10, "image_id": 1, "split": "test",
         "sentences": [{"raw": "The Storage Tank", "sent": "the storage tank"},
                       {"raw": "tank", "sent": "tank"}]},
        {"ref_id": 3, "ann_id": 11, "image_id": 2, "split": "test",
         "sentences": [{"raw": "A ship", "sent": "a ship"}]},
        {"ref_id": 4, "ann_id": 11, "image_id": 2, "split": "train",
         "sentences": [{"sent": "a train ref"}]},
        {"ref_id": 6, "ann_id": 12, "image_id": 2, "split": "test", "sentences": [{"sent": "x"}]},
        {"ref_id": 7, "ann_id": 99, "image_id": 2, "split": "test", "sentences": [{"sent": "y"}]},
    ]  # fmt: skip
    (root / "rrsisd" / "instances.json").write_text(json.dumps(instances))
    (root / "rrsisd" / "refs(unc).p").write_bytes(pickle.dumps(refs))
    return instances


def test_rrsisd_reads_scores_and_reports(tmp_path: Path) -> None:
    instances = write_rrsisd(tmp_path)
    bench, samples, report = read("res_rrsisd_refer", tmp_path)
    assert [s.meta["record_id"] for s in samples] == [3, 5]  # test refs in ref_id order
    assert report.n_bad == 2  # an RLE-only annotation, an annotation not in instances.json
    system, user = samples[1].messages
    assert system.content[0].text == SEG_SYSTEM
    image, text = user.content
    assert text.text == "Locate the the storage tank, output the segmentation mask"
    assert image.source == "images/rrsisd/JPEGImages/00001.jpg" and image.orig_size == (8, 6)

    gts = [polygon_mask(s.reference["segmentation"], tuple(s.reference["size"])) for s in samples]
    assert gts[1].shape == (6, 8) and gts[1].sum() == 5 * 4
    assert gts[1].sum() == polygon_mask(instances["annotations"][0]["segmentation"], (8, 6)).sum()
    perfect = bench.aggregate(
        samples,
        [bench.score(s, encode_rle(g.astype(np.int64))) for s, g in zip(samples, gts, strict=True)],
    )
    for key in ("mIoU", "oIoU", "P@0.5", "P@0.9"):
        assert perfect["strict"][key] == perfect["official"][key] == 100.0
    garbage = bench.aggregate(samples, [bench.score(s, "I cannot segment it") for s in samples])
    assert garbage["strict"]["mIoU"] == 0.0 and garbage["counts"]["n_failed"] == 2


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_rrsisd_refuses_pickled_code(tmp_path: Path) -> None:
    write_rrsisd(tmp_path)
    (tmp_path / "rrsisd" / "refs(unc).p").write_bytes(pickle.dumps([_Evil()]))
    with pytest.raises(InputError, match="plain refs pickle"):
        read("res_rrsisd_refer", tmp_path)


@pytest.mark.parametrize("name", ["teochatlas_geochat", "teochatlas_cdvqa", "res_rrsisd_refer"])
def test_empty_root_is_one_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="expected"):
        read(name, tmp_path)
