"""Images read once per image and resized once by rscovlm; LRS-VQA-style UHR samples through
the Zoom-in Chain, ours (crop from the original raster) beside the official loop (crop of the
resized overview, fallback to the whole first image). Real DOTA images, real LRS-VQA questions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from rscovlm.data.conversation import Conversation
from rscovlm.eval.benchmarks import get_benchmark
from rscovlm.eval.benchmarks.run import read_benchmark
from rscovlm.eval.runner.batching import Job, plan_batches, prepare
from rscovlm.eval.runner.manifest import RunManifest
from rscovlm.eval.runner.shards import WorkerSlot
from rscovlm.eval.runner.store import scan_run
from rscovlm.eval.runner.worker import run_worker
from rscovlm.eval.runner.zoom import zoom_runner
from rscovlm.model.backends import ReplayBackend
from rscovlm.model.backends.base import GenerationParams
from rscovlm.model.encoding import load_part_image
from rscovlm.resolution import RSCOVLM_BAND, CoordMap


@pytest.fixture(scope="module")
def lrs_root(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An LRS-VQA root: real questions (5 per image, one ``count``), on two real DOTA images."""
    root = tmp_path_factory.mktemp("lrs")
    (root / "img").mkdir()
    lines = [json.loads(x) for x in
             (real_data / "lrs_vqa" / "LRS_VQA_merged.jsonl").read_text().splitlines()]  # fmt: skip
    counts = [x for x in lines if x["category"] == "count"][:2]
    others = [x for x in lines if x["category"] != "count"][:8]
    out = []
    for k, name in enumerate(("P0706.png", "P1888.png")):
        (root / "img" / name).symlink_to(real_data / "dota" / "images" / name)
        with Image.open(root / "img" / name) as im:
            size = list(im.size)
        for rec in [counts[k], *others[4 * k : 4 * k + 4]]:
            out.append({**rec, "image": f"img/{name}", "image_size": size})
    (root / "LRS_VQA_merged.jsonl").write_text("".join(json.dumps(x) + "\n" for x in out))
    return root


def _jobs(name: str, root: Path) -> list[Job]:
    samples, read = read_benchmark(get_benchmark(name), root)
    assert read.n_bad == 0 and len(samples) == 10
    return [Job(name, s, root) for s in samples]


def _new_run(run: Path, jobs: list[Job], zoom: str = "ours") -> None:
    table = RunManifest.sample_table(j.sample for j in jobs)
    RunManifest({jobs[0].bench: {"root": str(jobs[0].root), "samples": table}}, "qwen2_5_vl",
                {}, {}, {"name": "replay"}, 4, zoom=zoom).write(run)  # fmt: skip


def test_each_image_decoded_once_and_every_backend_gets_the_same_pixels(
    lrs_root: Path, tmp_path: Path
) -> None:
    jobs = _jobs("lrsvqa", lrs_root)
    prepared = [prepare(j, RSCOVLM_BAND) for j in reversed(jobs)]  # order does not matter
    batches = plan_batches(prepared, 3)
    keys = [p.image_key for b in batches for p in b]
    assert keys == sorted(keys, key=keys.index)  # one image's questions are contiguous
    tokens = [p.tokens for b in batches for p in b]
    assert tokens == sorted(tokens)

    backend = ReplayBackend(lambda conv: "yes")
    run = tmp_path / "run"
    _new_run(run, jobs)
    summary = run_worker(
        run, jobs, zoom_runner(backend, GenerationParams()), band=RSCOVLM_BAND,
        backend_name="replay", slot=WorkerSlot(0, 1), n_shards=4, batch_size=3, progress=False,
    )  # fmt: skip
    assert summary.n_done == 10 and summary.n_decoded == 2  # two images, ten questions
    for convs, images in backend.calls:
        for conv, imgs in zip(convs, images, strict=True):
            (part,) = conv.image_parts()
            assert imgs[0].size == part.resized_size  # resized once, by rscovlm
            cmap = CoordMap.for_image(*part.orig_size, RSCOVLM_BAND)
            assert part.resized_size == cmap.resized_size
            ref = load_part_image(part, lrs_root)
            assert imgs[0].tobytes() == ref.tobytes()
    lines = scan_run(run).done.values()
    assert all(x["orig_size"] and x["resized_size"] for x in lines)
    assert {tuple(x["orig_size"]) for x in lines} == {
        Image.open(lrs_root / "img" / n).size for n in ("P0706.png", "P1888.png")
    }


def _zoom_script(bbox: list[int], prose: str = "") -> Any:
    call = '<tool_call>\n{"name": "image_zoom_in", "arguments": {"bbox": %s}}\n</tool_call>'

    def reply(conv: Conversation) -> str:
        if len(conv.image_parts()) == 1:  # the first turn: ask for a crop
            return prose + call % json.dumps(bbox)
        return "yes"

    return reply


@pytest.mark.parametrize("mode", ["ours", "official"])
def test_zoom_modes_crop_where_each_says(lrs_root: Path, tmp_path: Path, mode: str) -> None:
    jobs = _jobs("lrsvqa_visual_cot", lrs_root)
    run = tmp_path / mode
    _new_run(run, jobs, mode)
    backend = ReplayBackend(_zoom_script([10, 20, 110, 220]))
    summary = run_worker(
        run, jobs, zoom_runner(backend, GenerationParams(), mode), band=RSCOVLM_BAND,
        backend_name="replay", slot=WorkerSlot(0, 1), n_shards=4, batch_size=4, progress=False,
    )  # fmt: skip
    assert summary.n_done == 10 and summary.n_errors == 0
    done = scan_run(run).done
    by_id = {j.sample.id: j for j in jobs}
    for (_, sid), line in done.items():
        sample = by_id[sid].sample
        if not sample.meta["zoom"]:  # count: one plain turn, the call text is the answer
            assert "zoom" not in line and "<tool_call>" in line["output"]
            continue
        assert line["output"] == "yes"
        orig, resized = line["orig_size"], line["resized_size"]
        if mode == "ours":  # the box on the shown image, mapped to ORIGINAL pixels
            (hop, _) = line["zoom"]["hops"]
            sx, sy = orig[0] / resized[0], orig[1] / resized[1]
            x1, _y1, _x2, y2 = hop["window"]
            assert abs(x1 - 10 * sx) <= 1 and abs(y2 - 220 * sy) <= 1
        else:  # a crop of the resized overview, as the original loop cut it
            (hop,) = line["zoom"]["hops"]
            assert hop["bbox_model"] == [10, 20, 110, 220] and hop["crop_size"] == [100, 200]
            assert hop["fallback"] is None


def test_official_zoom_falls_back_to_the_whole_first_image(lrs_root: Path, tmp_path: Path) -> None:
    jobs = _jobs("lrsvqa_visual_cot", lrs_root)
    run = tmp_path / "run"
    _new_run(run, jobs, "official")
    # prose before the call breaks the original's character-set strips
    backend = ReplayBackend(_zoom_script([10, 20, 110, 220], prose="Let me look. "))
    run_worker(
        run, jobs, zoom_runner(backend, GenerationParams(), "official"), band=RSCOVLM_BAND,
        backend_name="replay", slot=WorkerSlot(0, 1), n_shards=4, batch_size=4, progress=False,
    )  # fmt: skip
    zoomed = [x for x in scan_run(run).done.values() if "zoom" in x]
    assert len(zoomed) == 8
    for line in zoomed:
        (hop,) = line["zoom"]["hops"]
        assert hop["fallback"] == "unreadable tool call"
        assert hop["crop_size"] == line["resized_size"]  # the whole resized overview again
