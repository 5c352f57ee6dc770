"""The dynamic-resolution policy: bands, random resize, families, and box alignment."""

from __future__ import annotations

import numpy as np
import pytest

from rscovlm.data.policy import RenderOptions, RenderPolicy
from rscovlm.data.record import QA, Box, Instance, Record
from rscovlm.data.render import render
from rscovlm.errors import InputError
from rscovlm.formats import parse_detections
from rscovlm.geometry import obb_to_quad, quad_iou_matrix, quad_to_hbb
from rscovlm.resolution import DETECTION_BAND, RSCOVLM_BAND, smart_resize

W, H = 640, 480  # non-square, so a width/height mix-up shows


def det_record(quads: list[np.ndarray]) -> Record:
    return Record(
        id="d",
        source="dota",
        task="detection",
        images=[{"path": "a.png", "width": W, "height": H}],
        objects=[Instance(class_name="plane", box=Box.from_quad(q)) for q in quads],
        meta={"class_list": "dota1.0"},
    )


def sizes(record: Record, policy: RenderPolicy, n: int) -> np.ndarray:
    out = [
        render(record, np.random.default_rng(seed), policy).image_parts()[0].resized_size
        for seed in range(n)
    ]
    return np.array(out)


def test_random_resize_areas_are_uniform_in_the_band() -> None:
    n = 1500
    got = sizes(det_record([]), RenderPolicy.paper(), n)
    areas = np.sort(got[:, 0] * got[:, 1])
    lo, hi = RSCOVLM_BAND.min_pixels, RSCOVLM_BAND.max_pixels
    assert areas.min() >= lo and areas.max() <= hi
    assert (got % 28 == 0).all()
    # Kolmogorov-Smirnov distance to U[lo, hi]; snapping sides to 28 px adds a small bias, and
    # the 1 % critical value at n = 1500 is 0.042.
    cdf = (areas - lo) / (hi - lo)
    ecdf = np.arange(1, n + 1) / n
    assert np.max(np.abs(ecdf - cdf)) < 0.05
    # The original bug (area ratio used as a side scale) clamps most 640×480 draws to the top.
    assert np.mean(areas > 0.9 * hi) < 0.2


def test_without_random_resize_the_size_is_smart_resize() -> None:
    policy = RenderPolicy(tasks={"detection": {"random_resize_prob": 0.0}})
    got = sizes(det_record([]), policy, 5)
    h, w = smart_resize(H, W, 28, RSCOVLM_BAND.min_pixels, RSCOVLM_BAND.max_pixels)
    assert (got == [w, h]).all()


def test_detection_specialist_band_and_no_random_resize() -> None:
    policy = RenderPolicy.detection_specialist()
    small = det_record([])
    small.images[0].width = small.images[0].height = 300
    got = sizes(small, policy, 5)
    h, w = smart_resize(300, 300, 28, DETECTION_BAND.min_pixels, DETECTION_BAND.max_pixels)
    assert (got == [w, h]).all() and w * h >= DETECTION_BAND.min_pixels


def test_qwen3_family_uses_factor_32() -> None:
    got = sizes(det_record([]), RenderPolicy(family="qwen3_vl"), 50)
    assert (got % 32 == 0).all()


def test_sft_and_vqa_samples_are_not_randomly_resized_by_default() -> None:
    rec = Record(
        id="q",
        source="rsvqa",
        task="vqa",
        images=[{"path": "a.png", "width": W, "height": H}],
        qa=[QA(question="Is it urban?", answer="yes")],
    )
    got = sizes(rec, RenderPolicy.paper(), 5)
    assert len({tuple(s) for s in got}) == 1
    forced = RenderPolicy(tasks={"vqa": {"random_resize_prob": 1.0}})
    assert len({tuple(s) for s in sizes(rec, forced, 20)}) > 5


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl", "qwen3_vl"])
def test_boxes_stay_aligned_with_the_resized_image(family: str) -> None:
    rng = np.random.default_rng(3)
    obbs = np.column_stack(
        [
            rng.uniform(150, 490, 40),
            rng.uniform(150, 330, 40),
            rng.uniform(8, 260, 40),
            rng.uniform(8, 140, 40),
            rng.uniform(-90, 90, 40),
        ]
    )
    quads = obb_to_quad(obbs)
    rec = det_record(list(quads))
    policy = RenderPolicy(family=family)
    for seed in range(15):  # random resize across the whole band
        conv = render(rec, np.random.default_rng(seed), policy)
        cmap = conv.image_parts()[0].coord_map(family)
        parsed = parse_detections(conv.messages[2].text, kind="quad")
        assert len(parsed.objects) == len(quads) and not parsed.rejected
        back = cmap.to_original([o.coords for o in parsed.objects], "quad")
        iou = quad_iou_matrix(back, quads)
        best = iou.max(axis=1)
        # Truncation is the whole error: at most one model unit per coordinate, in original px.
        unit = np.array(cmap.orig_size) / (
            np.array(cmap.resized_size) if cmap.family.coords == "absolute" else 1000.0
        )
        match = iou.argmax(axis=1)
        err = np.abs(quad_to_hbb(back) - quad_to_hbb(quads[match])).reshape(-1, 2, 2)
        assert (err <= unit + 1e-9).all()
        side = obbs[match, 2:4].min(axis=1) / unit.max()  # short side in model units
        assert (best[side >= 100] > 0.95).all() and (best > 0.5).all()


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl", "qwen3_vl"])
def test_large_objects_map_back_with_iou_above_0_99(family: str) -> None:
    # Truncation moves each value by up to one model unit, so IoU > 0.99 needs objects of a few
    # hundred units a side: the worst case for an s×s box shifted by one unit per axis is
    # (s-1)²/(2s² - (s-1)²), above 0.99 from s = 400.
    quads = obb_to_quad([[320, 240, 560, 420, 0.0], [330, 250, 460, 440, 30.0]])
    rec = det_record(list(quads))
    policy = RenderPolicy(family=family, defaults={"min_pixels": 900 * 900})
    for seed in range(10):
        conv = render(rec, np.random.default_rng(seed), policy)
        cmap = conv.image_parts()[0].coord_map(family)
        coords = [o.coords for o in parse_detections(conv.messages[2].text, kind="quad").objects]
        back = cmap.to_original(coords, "quad")
        assert quad_iou_matrix(back, quads).max(axis=1).min() > 0.99


def test_layering_most_specific_wins() -> None:
    rec = det_record([])
    policy = RenderPolicy(
        defaults={"box_kind": "hbb", "json_prob": 0.5},
        tasks={"detection": {"box_kind": "obb"}},
        sources={"dota": {"json_prob": 0.25}},
        datasets={"dota_hbb": {"box_kind": "hbb", "random_resize_prob": 0.0}},
    )
    opts = policy.options_for(rec)
    assert (opts.box_kind, opts.json_prob, opts.random_resize_prob) == ("obb", 0.25, 0.0)
    opts = policy.options_for(rec, "dota_hbb")
    assert (opts.box_kind, opts.json_prob, opts.random_resize_prob) == ("hbb", 0.25, 0.0)
    paper = RenderPolicy.paper().options_for(rec)
    assert (paper.random_resize_prob, paper.box_kind, paper.json_prob) == (1.0, "quad", 0.0)


def test_bad_options_fail_with_the_key_named() -> None:
    with pytest.raises(ValueError, match=r"sources\.dota: box_kind"):
        RenderPolicy(sources={"dota": {"box_kind": "circle"}})
    with pytest.raises(ValueError, match=r"defaults: colour"):
        RenderPolicy(defaults={"colour": 1})
    with pytest.raises(ValueError, match="unknown model family"):
        RenderPolicy(family="llava")
    with pytest.raises(InputError, match="min_pixels 9 > max_pixels 4"):
        RenderOptions().updated({"min_pixels": 9, "max_pixels": 4}, "x")
