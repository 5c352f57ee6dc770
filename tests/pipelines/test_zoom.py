"""The Zoom-in Chain agent: scripted outputs (replay) and the tiny model on a 20480² GeoTIFF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from rscovlm.data.sources._synthetic_draw import COLOURS
from rscovlm.formats import ZOOM_FOLLOW_UP, ZOOM_SYSTEM_PROMPT, encode_zoom_call
from rscovlm.geometry import quad_to_hbb
from rscovlm.model.backends import GenerationParams, ReplayBackend
from rscovlm.pipelines.zoom import ZoomAgent, ZoomQuery, draw_trace
from rscovlm.resolution import RSCOVLM_BAND, CoordMap


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2800×2000 grey image with a 30×20 red patch at (2000, 1500)."""
    arr = np.full((2000, 2800, 3), 120, np.uint8)
    arr[1500:1520, 2000:2030] = (200, 40, 40)
    path = tmp_path_factory.mktemp("zoom") / "scene.png"
    Image.fromarray(arr).save(path)
    return path


def _cmap(size: tuple[int, int]) -> CoordMap:
    return CoordMap.for_image(size[0], size[1], RSCOVLM_BAND)


def test_good_call_crops_original_pixels_and_answers(scene: Path) -> None:
    cmap = _cmap((2800, 2000))  # overview 1232×868 (w×h)
    box = cmap.to_model([[1900, 1400, 2100, 1600]], "hbb")[0].tolist()
    backend = ReplayBackend([encode_zoom_call(box), "red"])
    result = ZoomAgent(backend).ask(scene, "What colour is the patch?")
    assert result.answer == "red" and result.stop == "answered" and len(result.hops) == 2
    x1, y1, x2, y2 = result.windows[0]
    assert x1 <= 1900 <= 2100 <= x2 and y1 <= 1400 <= 1600 <= y2 and x2 - x1 < 210
    convs, images = backend.calls[1]
    msgs = convs[0].messages
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[0].text == ZOOM_SYSTEM_PROMPT and msgs[3].text == ZOOM_FOLLOW_UP
    crop_part = convs[0].image_parts()[1]
    assert crop_part.window == result.windows[0]
    crop = np.asarray(images[0][1])
    assert crop.shape[:2] == crop_part.resized_size[::-1]
    red = (np.abs(crop.astype(int) - (200, 40, 40)).sum(-1) < 40).sum()
    assert red > 400  # the 30×20 patch at native scale (≥ ~600 px after band resize)
    assert result.hops[0].image_tokens == cmap.visual_tokens


def test_prose_around_call_degenerate_outside_and_no_call(scene: Path) -> None:
    script = {
        "prose": [
            'Let me look. <tool_call>\n{"name": "image_zoom_in", "arguments": '
            '{"bbox": [900, 600, 1000, 700]}}\n</tool_call> ok',
            "red",
        ],
        "degenerate": [encode_zoom_call([10, 10, 50, 60]).replace("50, 60", "10, 60"), "grey"],
        "outside": [encode_zoom_call([5000, 5000, 5100, 5100]), "grey"],
        "unreadable": ["<tool_call>\nnot json at all\n</tool_call>", "grey"],
        "nocall": ["It is grey."],
    }
    backend = ReplayBackend(script)
    queries = [ZoomQuery(scene, "q?", id=k) for k in script]
    results = {r.id: r for r in ZoomAgent(backend).run(queries)}
    assert results["prose"].windows and results["prose"].answer == "red"
    for name in ("degenerate", "outside", "unreadable"):
        r = results[name]
        assert r.windows == [] and r.hops[0].fallback and r.answer == "grey", name
    assert "degenerate" in results["degenerate"].hops[0].fallback
    assert "outside" in results["outside"].hops[0].fallback
    assert results["nocall"].answer == "It is grey." and len(results["nocall"].hops) == 1
    # the fallback fed the overview again, recorded; per-sample images stayed with their sample
    convs, images = backend.calls[1]
    assert [c.meta["id"] for c in convs] == ["prose", "degenerate", "outside", "unreadable"]
    assert images[1][1] is images[1][0]
    assert images[0][1].size != images[0][0].size


def test_depth_limit_count_skip_and_batched_state(scene: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.png"
    Image.new("RGB", (1400, 1000), (0, 0, 255)).save(other)
    call = encode_zoom_call([100, 100, 300, 300])
    script = {"a": [call, call + " still looking"], "b": [call, "blue"], "c": ["3"]}
    backend = ReplayBackend(script)
    agent = ZoomAgent(backend, max_hops=1)
    ra, rb, rc = agent.run(
        [
            ZoomQuery(scene, "q", id="a"),
            ZoomQuery(other, "q", id="b"),
            ZoomQuery(other, "How many?", category="count", id="c"),
        ]
    )
    assert ra.stop == "depth_limit" and ra.answer == "still looking" and len(ra.windows) == 1
    assert rb.answer == "blue" and rb.stop == "answered"
    assert rc.stop == "skipped" and rc.answer == "3" and not rc.windows
    count_conv = backend.calls[0][0][2]
    assert count_conv.messages[0].role == "user" and count_conv.messages[0].text == "How many?"
    # each sample cropped its own image: the blue image's crop is blue, the scene's grey
    crops = backend.calls[1][1]
    assert np.asarray(crops[1][1]).mean(axis=(0, 1))[2] > 200
    assert abs(np.asarray(crops[0][1]).mean() - 120) < 5
    # windows map from each sample's own overview size
    assert ra.windows[0] != rb.windows[0]
    two = ZoomAgent(ReplayBackend([call, call, "x"]), max_hops=2).ask(scene, "q")
    assert len(two.windows) == 2 and two.answer == "x"
    w1, w2 = two.windows
    assert w1[0] <= w2[0] and w2[2] <= w1[2]  # the second hop zooms inside the first crop


def test_target_visible_in_crop_of_huge_geotiff_and_tiny_model_end_to_end(
    big_geotiff: tuple[Path, list[Any]], tiny_lm: Any, tmp_path: Path
) -> None:
    from rscovlm.model.backends.hf import HFBackend

    path, targets = big_geotiff
    target = targets[0]
    hbb = quad_to_hbb(target.quad)[0]
    centre = hbb.reshape(2, 2).mean(0)
    around = [centre[0] - 100, centre[1] - 100, centre[0] + 100, centre[1] + 100]
    cmap = _cmap((20480, 20480))
    box = cmap.to_model([around], "hbb")[0].tolist()
    backend = ReplayBackend([encode_zoom_call(box), target.colour])
    result = ZoomAgent(backend).ask(path, "What colour is the small vehicle?")
    rgb = np.array(COLOURS[target.colour])
    overview = np.asarray(backend.calls[0][1][0][0]).astype(int)
    crop = np.asarray(backend.calls[1][1][0][1]).astype(int)
    in_crop = (np.abs(crop - rgb).sum(-1) < 30).sum()
    in_overview = (np.abs(overview - rgb).sum(-1) < 30).sum()
    assert in_crop > 100 and in_crop > 20 * max(in_overview, 1)
    assert result.answer == target.colour
    # the real tiny model: whatever it emits, an answer and a trace
    agent = ZoomAgent(HFBackend(tiny_lm), params=GenerationParams(max_new_tokens=4))
    real = agent.ask(path, "What colour is the small vehicle?")
    assert isinstance(real.answer, str) and real.hops and real.stop in ("answered", "depth_limit")
    assert real.overview_size == (1008, 1008) and real.to_dict()["hops"]
    out = draw_trace(result, tmp_path / "trace.png")
    drawn = np.asarray(Image.open(out).convert("RGB")).astype(int)
    x1, y1, _, _ = (
        CoordMap((20480, 20480), (1008, 1008)).to_resized([result.windows[0]], "hbb")[0].astype(int)
    )
    assert tuple(drawn[y1 + 1, x1 + 1]) == (255, 60, 60)  # hop 1's box outline


def test_replay_can_leave_images_unrecorded() -> None:
    from rscovlm.data.conversation import Conversation, Message, TextPart
    from rscovlm.model.backends.replay import ReplayBackend

    conv = Conversation([Message("user", [TextPart("hi")])])
    keep, drop = ReplayBackend(["a"]), ReplayBackend(["a"], record_images=False)
    keep.generate([conv], images=[["pixels"]])
    drop.generate([conv], images=[["pixels"]])
    assert keep.calls[0][1] == [["pixels"]]
    assert drop.calls[0][1] == []
    assert drop.calls[0][0] == [conv]
