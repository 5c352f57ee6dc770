"""The evaluation chain as ONE product, through ``rscovlm.cli.main`` only: ``eval run`` (replay
backend over REAL model outputs) → ``eval status`` → ``eval score RUN`` → ``eval report RUN
--html`` and ``eval report RUN_A RUN_B``.

Three tasks in one run, each with its own ``--root``: AID classification with the REAL EarthDial
answers, GeoChat referring (grounding) with the REAL EarthDial boxes, and DOTA detection on the
real DOTA images and labels (answers made from the ground truth with objects dropped: no real
detection outputs are shipped). A second run replays perturbed answers, for the comparison; a
third runs real LRS-VQA questions on real DOTA rasters through the Zoom-in Chain (``--zoom
ours``), replaying a recorded two-turn chain (a zoom call, then an answer) per sample.

Images the EarthDial releases do not ship (AID scenes, GeoChat tiles) are symlinks to the real
aerial demo images, so the runner reads real pixels and the report draws them from the root.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from rscovlm.cli import main
from rscovlm.data.conversation import ImagePart
from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.benchmarks.run import read_benchmark
from rscovlm.resolution import RSCOVLM_BAND, CoordMap

pytestmark = pytest.mark.integration

N_AID, N_GEO = 30, 24
ZOOM_BOX = [40, 60, 200, 260]


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _jsonl(path: Path) -> list[Any]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.symlink_to(target)


def _roots(real: Path, tmp: Path) -> dict[str, Path]:
    """Each benchmark's root in its released layout, ground truth from the real files."""
    demo = real / "demo" / "demo.jpg"
    classes = json.loads((real / "scene_cls/class_lists.json").read_text())["AID"]["classes"]
    aid = _jsonl(real / "model_outputs/earthdial_aid_classification.jsonl")[:N_AID]
    cls = tmp / "aid"
    gt = [
        {
            "image_id": f"{r['annotation']}/{r['annotation'].lower()}_{i}.jpg",
            "classes": ",".join(sorted(classes)) + ".",
            "ground_truth": r["annotation"],
        }
        for i, r in enumerate(aid)
    ]
    (cls / "scene_cls").mkdir(parents=True)
    (cls / "scene_cls/cls_aid_test.json").write_text(json.dumps(gt))
    geo = _jsonl(real / "model_outputs/earthdial_geochat_referring_300.jsonl")[:N_GEO]
    lines = [
        {
            "question_id": i,
            "image_id": f"{i}.jpg",
            "question": r["question"],
            "ground_truth": r["gt_bbox"],
            "size_group": r["size_group"],
            "type": r["task_type"],
            "obj_ids": list(range(r["gt_bbox"].count("[["))) or [0],
        }
        for i, r in enumerate(geo)
    ]
    _write_jsonl(tmp / "geo/referring.jsonl", lines)
    roots = {"cls_aid": cls, "geochat_referring": tmp / "geo", "dota_test512": tmp / "dota"}
    for name, root in roots.items():  # every image a sample names, as a real aerial image
        if name == "dota_test512":
            continue
        samples, _ = read_benchmark(get_benchmark(name), root)
        for s in samples:
            for msg in s.messages:
                for part in msg.content:
                    if isinstance(part, ImagePart):
                        _link(root / part.source, demo)
    # DOTA: the real labels of the two real images (the other five have no pixels)
    for stem in ("P0706", "P1888"):
        _link(tmp / f"dota/images/{stem}.png", real / f"dota/images/{stem}.png")
        _link(tmp / f"dota/labelTxt/{stem}.txt", real / f"dota/labelTxt/{stem}.txt")
    return roots


def _replay(real: Path, roots: dict[str, Path], variant: int, path: Path) -> Path:
    """A predictions JSONL the replay backend serves: run A the real EarthDial answers, run B
    with every third AID answer spoiled and every fourth GeoChat box made right."""
    rows: list[dict[str, Any]] = []
    aid = _jsonl(real / "model_outputs/earthdial_aid_classification.jsonl")
    samples, _ = read_benchmark(get_benchmark("cls_aid"), roots["cls_aid"])
    for k, (s, r) in enumerate(zip(samples, aid, strict=False)):
        rows.append({"id": s.id, "output": "no idea" if variant and k % 3 == 0 else r["answer"]})
    geo = _jsonl(real / "model_outputs/earthdial_geochat_referring_300.jsonl")
    bench = get_benchmark("geochat_referring")
    samples, _ = read_benchmark(bench, roots["geochat_referring"])
    # the right answer in the pixels the model is shown (the demo image, resized by the band)
    demo = CoordMap.for_image(*Image.open(real / "demo" / "demo.jpg").size, RSCOVLM_BAND)
    for k, (s, r) in enumerate(zip(samples, geo, strict=False)):
        right = bench.perfect_output(s.with_sizes(demo.orig_size, demo.resized_size))
        rows.append({"id": s.id, "output": right if variant and k % 4 == 0 else r["answer"]})
    bench = get_benchmark("dota_test512")
    samples, _ = read_benchmark(bench, roots["dota_test512"])
    for k, s in enumerate(samples):
        lines = bench.perfect_output(s).splitlines()
        text = "\n".join(x for j, x in enumerate(lines) if j % 3 != variant)
        rows.append({"id": s.id, "output": "garbled ]][[" if k % 5 == 2 else text})
    return _write_jsonl(path, rows)


def _lrs_root(real: Path, tmp: Path) -> Path:
    """Real LRS-VQA questions (five per image, one ``count``) on the two real DOTA rasters."""
    root = tmp / "lrs"
    lines = _jsonl(real / "lrs_vqa" / "LRS_VQA_merged.jsonl")
    counts = [x for x in lines if x["category"] == "count"][:2]
    others = [x for x in lines if x["category"] != "count"][:8]
    out = []
    for k, name in enumerate(("P0706.png", "P1888.png")):
        _link(root / "img" / name, real / "dota" / "images" / name)
        with Image.open(root / "img" / name) as im:
            size = list(im.size)
        for rec in [counts[k], *others[4 * k : 4 * k + 4]]:
            out.append({**rec, "image": f"img/{name}", "image_size": size})
    _write_jsonl(root / "LRS_VQA_merged.jsonl", out)
    return root


def _zoom_replay(root: Path, path: Path) -> Path:
    """A recorded two-turn chain per sample: a zoom call on the overview, then "No" (wrong for
    most LRS-VQA answers, so the gallery shows them)."""
    call = '<tool_call>\n{"name": "image_zoom_in", "arguments": {"bbox": %s}}\n</tool_call>'
    samples, _ = read_benchmark(get_benchmark("lrsvqa_visual_cot"), root)
    rows = [{"id": s.id, "output": "No", "turns": [call % json.dumps(ZOOM_BOX), "No"]}
            for s in samples]  # fmt: skip
    return _write_jsonl(path, rows)


def _gallery_cards(page: str, bench: str) -> list[str]:
    section = page.split(f'id="bench-{bench}"', 1)[1].split("</section>", 1)[0]
    return section.split('<div class="card">')[1:]


def test_run_status_score_report_compare(
    real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roots = _roots(real_data, tmp_path / "roots")
    root_args = [a for name, r in roots.items() for a in ("--root", f"{name}={r}")]
    runs = {}
    for variant, name in ((0, "a"), (1, "b")):
        replay = _replay(real_data, roots, variant, tmp_path / f"replay_{name}.jsonl")
        run = runs[name] = tmp_path / f"run_{name}"
        args = ["eval", "run", *roots, *root_args, "--backend", "replay", "--model", str(replay),
                "--out", str(run), "--no-progress", "--batch-size", "4"]  # fmt: skip
        code, out, err = _cli(args, capsys)
        assert code == 0, err
        n = (
            N_AID
            + N_GEO
            + len(read_benchmark(get_benchmark("dota_test512"), roots["dota_test512"])[0])
        )
        assert f"{n} samples in its shards, 0 already done, {n} done now, 0 errors" in out
        assert "rerun: 0 to run (every sample has a prediction)" in out.splitlines()
        # the exact next commands, printed copyable: score, then the HTML report in RUN/report
        commands = [x.removeprefix("next: ") for x in out.splitlines() if x.startswith("next: ")]
        assert commands == [
            f"rscovlm eval score {run}",
            f"rscovlm eval report {run} --html --out {run / 'report'}",
        ]

        code, out, err = _cli(["eval", "status", str(run)], capsys)
        assert code == 0, err
        row = next(x for x in out.splitlines() if x.startswith("cls_aid"))
        assert row.split()[1:] == [str(N_AID), str(N_AID), "0", "0", "0"]
        assert "rerun: 0 to run (every sample has a prediction)" in out.splitlines()

        for command in commands:  # run exactly what was printed
            code, out, err = _cli(shlex.split(command)[1:], capsys)
            assert code == 0, err
            assert "samples without a prediction" not in out

    page = (runs["a"] / "report" / "report.html").read_text(encoding="utf-8")
    for bench in roots:
        cards = _gallery_cards(page, bench)
        assert cards, bench
        assert not any("(output not recorded)" in c for c in cards), bench
        # every gallery picture drawn from the benchmark root, none on a blank canvas
        assert all('<img class="thumb"' in c for c in cards), bench
        assert not any("image not found" in c for c in cards), bench
    # the recorded outputs are what the page shows: an AID answer EarthDial really gave
    merged = _jsonl(runs["a"] / "scores/cls_aid/predictions.jsonl")
    assert any(f'<pre class="output">{x["output"]}</pre>' in page for x in merged)
    # the fingerprint shown is the run's own manifest
    manifest = json.loads((runs["a"] / "manifest.json").read_text())
    fingerprint = page.split('id="fingerprint"', 1)[1].split("</table>", 1)[0]
    assert f"<th>backend</th><td>{manifest['backend']}</td>" in fingerprint
    assert f"<td>{manifest['model']['name']}</td>" in fingerprint
    assert f"<td>{manifest['model']['digest']}</td>" in fingerprint  # the replay file's hash
    # each sample table is summarised (size and digest), never listed: 100k rows otherwise
    assert f"<th>benchmarks.cls_aid.n_samples</th><td>{N_AID}</td>" in fingerprint
    assert "benchmarks.cls_aid.samples_sha256" in fingerprint
    assert manifest["benchmarks"]["cls_aid"]["samples"][0][0] not in fingerprint

    compare = tmp_path / "compare"
    code, out, err = _cli(
        ["eval", "report", str(runs["a"]), str(runs["b"]), "--html", "--out", str(compare)], capsys
    )
    assert code == 0, err
    diffs = {
        d["benchmark"]: d
        for d in json.loads((compare / "comparison.json").read_text())["benchmarks"]
    }
    assert set(diffs) == set(roots)
    assert diffs["cls_aid"]["n_shared"] == N_AID and diffs["cls_aid"]["mean_diff"] < 0
    assert diffs["geochat_referring"]["mean_diff"] > 0
    assert 'id="compare"' in (compare / "report.html").read_text(encoding="utf-8")


def test_zoom_run_report_shows_the_crops(
    real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _lrs_root(real_data, tmp_path)
    replay = _zoom_replay(root, tmp_path / "zoom_replay.jsonl")
    run = tmp_path / "run"
    code, out, err = _cli(
        ["eval", "run", "lrsvqa_visual_cot", "--root", str(root), "--backend", "replay",
         "--model", str(replay), "--zoom", "ours", "--out", str(run), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "10 done now, 0 errors" in out
    lines = [x for f in (run / "predictions").glob("*.jsonl") for x in _jsonl(f)]
    zoomed = [x for x in lines if "zoom" in x]
    assert len(zoomed) == 8  # the two count questions are not zoomed
    for line in zoomed:
        first, second = line["zoom"]["hops"]
        assert first["window"] is not None and second["output"] == "No"
        assert line["output"] == "No"
    code, _, err = _cli(["eval", "score", str(run)], capsys)
    assert code == 0, err
    code, _, err = _cli(
        ["eval", "report", str(run), "--html", "--out", str(tmp_path / "r")], capsys
    )
    assert code == 0, err
    page = (tmp_path / "r/report.html").read_text(encoding="utf-8")
    cards = _gallery_cards(page, "lrsvqa_visual_cot")
    assert cards and all('<img class="thumb"' in c for c in cards)
    assert not any("image not found" in c for c in cards)
    sample_lines = _jsonl(run / "scores/lrsvqa_visual_cot/sample_scores.jsonl")
    with_crops = {x["id"]: x["crop_boxes"] for x in sample_lines if x.get("crop_boxes")}
    assert len(with_crops) == 8
    # the crop (original pixels) is the model's box on the overview mapped back
    line = next(x for x in zoomed if x["id"] in with_crops)
    assert with_crops[line["id"]] == [line["zoom"]["hops"][0]["window"]]
    # ... and drawn in blue on the zoomed cards' pictures (the crop colour of the legend)
    drawn = 0
    for card in cards:
        sid = re.search(r"id <code>([0-9a-f]+)</code>", card).group(1)  # type: ignore[union-attr]
        uri = re.search(r'src="data:image/png;base64,([^"]+)"', card).group(1)  # type: ignore[union-attr]
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"))
        r, g, b = (pixels[..., k].astype(int) for k in range(3))
        blue = int(((b > 190) & (r < 80) & (g > 60) & (g < 120)).sum())
        if sid in with_crops:
            assert blue > 50, sid
            drawn += 1
    assert drawn >= 1

    # the predictions merged by eval score replay the whole chain again: same crops, same answers
    again = tmp_path / "again"
    code, out, err = _cli(
        ["eval", "run", "lrsvqa_visual_cot", "--root", str(root), "--backend", "replay", "--model",
         str(run / "scores/lrsvqa_visual_cot/predictions.jsonl"), "--out", str(again),
         "--no-progress"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    first = {x["id"]: x for f in (run / "predictions").glob("*.jsonl") for x in _jsonl(f)}
    second = {x["id"]: x for f in (again / "predictions").glob("*.jsonl") for x in _jsonl(f)}
    assert {k: v["output"] for k, v in second.items()} == {k: v["output"] for k, v in first.items()}
    assert {k: v.get("zoom") for k, v in second.items()} == {
        k: v.get("zoom") for k, v in first.items()
    }
