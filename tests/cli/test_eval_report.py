"""``rscovlm eval report`` through ``rscovlm.cli.main``: a run scored by the real ``eval score``
on the REAL EarthDial GeoChat referring outputs, its printed table and files, a comparison,
and the bad inputs (missing folder, no scores), each one clear line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rscovlm.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _geochat_run(
    real_data: Path, tmp: Path, capsys: pytest.CaptureFixture[str], blank: int
) -> Path:
    """A run folder with ``scores/geochat_referring`` from 40 real EarthDial answers (every
    ``blank``-th one emptied)."""
    path = real_data / "model_outputs/earthdial_geochat_referring_300.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()[:40]]
    (tmp / "geo").mkdir(parents=True, exist_ok=True)
    gt = [
        {
            "question_id": i,
            "image_id": f"{i}.jpg",
            "question": r["question"],
            "ground_truth": r["gt_bbox"],
            "size_group": r["size_group"],
            "type": r["task_type"],
            "obj_ids": [0],
        }
        for i, r in enumerate(rows)
    ]
    (tmp / "geo/referring.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gt))
    run = tmp / f"run{blank}"
    code, _, err = _run(
        ["eval", "samples", "--benchmark", "geochat_referring", "--root", str(tmp / "geo"),
         "--out", str(run / "s")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    ids = [json.loads(line)["id"] for line in (run / "s/samples.jsonl").read_text().splitlines()]
    preds = [
        {"id": i, "output": "" if k % blank == 0 else r["answer"]}
        for k, (i, r) in enumerate(zip(ids, rows, strict=True))
    ]
    (run / "preds.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    code, _, err = _run(
        ["eval", "score", "--benchmark", "geochat_referring", "--root", str(tmp / "geo"),
         "--pred", str(run / "preds.jsonl"), "--out", str(run / "scores/geochat_referring")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    return run


def test_eval_report_prints_and_writes(
    real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_a = _geochat_run(real_data, tmp_path, capsys, blank=1000)
    run_b = _geochat_run(real_data, tmp_path, capsys, blank=3)
    out = tmp_path / "report"
    code, text, err = _run(
        ["eval", "report", str(run_a), str(run_b), "--html", "--out", str(out)], capsys
    )
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    row = results["benchmarks"][0]
    assert row["benchmark"] == "geochat_referring" and row["n"] == 40
    assert repr(row["strict"]) in text and "parse failures" in text  # printed in full
    diff = json.loads((out / "comparison.json").read_text())["benchmarks"][0]
    assert diff["n_shared"] == 40 and diff["mean_diff"] <= 0
    for name in ("results.md", "report.html", "comparison.md"):
        assert (out / name).is_file() and f"wrote {out / name}" in text
    # a single `eval score --out` folder is a run too
    code, text, err = _run(
        ["eval", "report", str(run_a / "scores/geochat_referring"), "--out", str(tmp_path / "r1")],
        capsys,
    )
    assert code == 0, err
    assert not (tmp_path / "r1/report.html").exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [("missing", "not found"), ("empty", "holds no scores"), ("second_missing", "not found")],
)
def test_eval_report_bad_run_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str
) -> None:
    run = tmp_path / "run"
    args = ["eval", "report", str(run)]
    if setup != "missing":
        (run / "scores/cls_aid").mkdir(parents=True)
    if setup == "second_missing":
        (run / "scores.json").write_text(json.dumps({"benchmark": "x", "report": {}}))
        args.append(str(tmp_path / "nope"))
    code, out, err = _run([*args, "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rscovlm: error: ") and message in lines[0]


def test_eval_report_corrupt_scores_json_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run/scores.json").write_text("{not json")
    code, _, err = _run(["eval", "report", str(tmp_path / "run"), "--out", str(tmp_path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "scores file" in err
