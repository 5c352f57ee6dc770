"""The online loader: workers, prefetch, one decode per file per fetch, bad images, resume."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rscovlm.data import loader as loader_mod
from rscovlm.data.build import build_dataset
from rscovlm.data.conversation import chat_text
from rscovlm.data.loader import ConversationLoader, ListStore, ShardStore, fetch_sample
from rscovlm.data.mixture import Mixture, MixtureEntry
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.recipe import Recipe
from rscovlm.data.record import QA, Box, Record
from rscovlm.data.sources.synthetic import generate_scenes, iter_synthetic_records
from rscovlm.data.sources.synthetic_raster import write_large_geotiff
from rscovlm.imaging import image_size


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    """Synthetic scenes (256²) through the real adapters, sizes filled in as a build would."""
    root = tmp_path_factory.mktemp("scenes")
    generate_scenes(root / "synthetic", n=6, size=256, seed=0)
    records = list(iter_synthetic_records(root, "synthetic", n=6, size=256))
    assert all(isinstance(r, Record) for r in records)
    for rec in records:
        for ref in rec.images:
            ref.width, ref.height = image_size(root / ref.path)
    return root, records


def make_loader(root: Path, records: list[Record], **kwargs: object) -> ConversationLoader:
    store = ListStore(records)
    by_task: dict[str, list[Record]] = {}
    for rec in records:
        by_task.setdefault(rec.task, []).append(rec)
    store = ListStore(by_task)
    entries = [MixtureEntry("detection", 2.0), MixtureEntry("vqa", 1.0)]
    entries.append(MixtureEntry("classification", 1.0))
    mix = Mixture(entries, store.sizes(), seed=11)
    policy = RenderPolicy(sources={"synthetic": {"classes": ["airport", "parking_lot"]}})
    return ConversationLoader(mix, store, policy, root, **kwargs)


def snapshot(samples: list) -> list[tuple[str, list[tuple[int, int]], list[bytes]]]:
    return [
        (chat_text(s.conversation), [im.size for im in s.images], [im.tobytes() for im in s.images])
        for s in samples
    ]


def test_samples_are_rendered_with_images_at_their_drawn_sizes(scenes) -> None:
    root, records = scenes
    loader = make_loader(root, records)
    samples = list(loader)
    assert len(samples) == len(loader.mixture) and loader.report.skipped == 0
    assert loader.report.fetched == loader.report.yielded == len(samples)
    for s in samples:
        parts = s.conversation.image_parts()
        assert [im.size for im in s.images] == [p.resized_size for p in parts]
        assert all(im.mode == "RGB" for im in s.images)
        msgs = s.messages()
        assert msgs[-1]["role"] == "assistant"
        images = [c["image"] for m in msgs for c in m["content"] if c["type"] == "image"]
        assert all(isinstance(im, Image.Image) for im in images)
    assert {s.conversation.meta["task"] for s in samples} == {
        "detection",
        "vqa",
        "classification",
    }


def test_workers_give_the_same_samples_in_the_same_order(scenes) -> None:
    root, records = scenes
    serial = snapshot(list(make_loader(root, records)))
    parallel = snapshot(list(make_loader(root, records, num_workers=2, prefetch=2)))
    assert parallel == serial


def test_bad_image_is_reported_and_skipped(scenes, tmp_path: Path) -> None:
    root, records = scenes
    bad = records[0].model_copy(deep=True)
    bad.id = "broken"
    bad.images[0].path = "broken.png"
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 40)
    # Serve the broken record from a root holding a link to the real images.
    (tmp_path / "synthetic").symlink_to(root / "synthetic")
    loader = make_loader(tmp_path, [*records, bad], num_workers=2)
    samples = list(loader)
    report = loader.report
    assert report.skipped >= 1 and report.fetched == report.yielded + report.skipped
    assert report.yielded == len(samples) and report.fetched == len(loader.mixture)
    assert all(uid == "synthetic/broken" for uid, _ in report.skips)
    assert "cannot decode image" in report.skips[0][1] or "not a readable" in report.skips[0][1]


def test_resume_mid_stream_equals_uninterrupted(scenes) -> None:
    root, records = scenes
    full = snapshot(list(make_loader(root, records)))
    first = make_loader(root, records, num_workers=2, prefetch=3)
    head = snapshot(list(itertools.islice(iter(first), 5)))
    state = first.state_dict()
    second = make_loader(root, records)
    second.load_state_dict(state)
    assert head + snapshot(list(second)) == full


def zoom_sample_record(path: str, size: tuple[int, int]) -> Record:
    return Record(
        id="z",
        source="zoom",
        task="vqa",
        images=[{"path": path, "width": size[0], "height": size[1]}],
        qa=[QA(question="What color?", answer="red", category="object color")],
        zoom=[Box.from_hbb([100, 120, 612, 520])],
    )


def test_a_zoom_sample_decodes_its_file_once(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (1100, 1300, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    Image.fromarray(pixels, "RGBA").save(tmp_path / "scene.png")
    calls = []
    real = loader_mod.open_image_checked

    def counting(path, max_pixels):
        calls.append(path)
        return real(path, max_pixels)

    monkeypatch.setattr(loader_mod, "open_image_checked", counting)
    sample = fetch_sample(
        zoom_sample_record("scene.png", (1300, 1100)),
        np.random.default_rng(0),
        RenderPolicy(),
        tmp_path,
    )
    assert len(calls) == 1
    overview, crop = sample.images
    assert crop.size == sample.conversation.image_parts()[1].resized_size
    expected = Image.fromarray(pixels[120:520, 100:612, :3]).resize(
        crop.size, Image.Resampling.BICUBIC
    )
    assert np.array_equal(np.asarray(crop), np.asarray(expected))
    assert overview.size == (1092, 924)  # smart_resize(1100, 1300) in the RSCoVLM band
    full = Image.fromarray(pixels[..., :3]).resize(overview.size, Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(overview), np.asarray(full))


def test_huge_images_are_read_through_windows(tmp_path: Path, monkeypatch) -> None:
    write_large_geotiff(tmp_path / "big.tif", size=2048, n_targets=1, seed=2, block=256)

    def forbidden(*args, **kwargs):
        raise AssertionError("a huge image was decoded whole")

    monkeypatch.setattr(loader_mod, "open_image_checked", forbidden)
    sample = fetch_sample(
        zoom_sample_record("big.tif", (2048, 2048)),
        np.random.default_rng(0),
        RenderPolicy(),
        tmp_path,
        max_decode_pixels=1024 * 1024,
    )
    overview, crop = sample.images
    assert overview.size == (1008, 1008) and crop.size == (504, 392)


def test_shard_store_reads_a_built_dataset(scenes, tmp_path: Path) -> None:
    root, _ = scenes
    recipe = Recipe(
        name="syn",
        sources=[
            {
                "name": "syn",
                "adapter": "synthetic",
                "path": "synthetic",
                "options": {"n": 6, "size": 256},
            }
        ],
    )
    build_dataset(recipe, root, tmp_path / "built", workers=0)
    store = ShardStore(tmp_path / "built")
    sizes = store.sizes()
    assert sizes == {"syn": sizes["syn"]} and sizes["syn"] >= 12
    rec = store.get("syn", 3)
    assert isinstance(rec, Record) and rec.images[0].width == 256
    import pickle

    clone = pickle.loads(pickle.dumps(store))
    assert clone.get("syn", 3) == rec
    mix = Mixture([MixtureEntry("syn", 1.0)], sizes, seed=0)
    policy = RenderPolicy(sources={"syn": {"classes": ["airport", "parking_lot"]}})
    loader = ConversationLoader(mix, store, policy, root)
    assert sum(1 for _ in loader) == sizes["syn"] and loader.report.skipped == 0


class _BrokenStore(ListStore):
    def get(self, source: str, index: int) -> Record:
        raise KeyError("a bug in a store")


def test_a_bug_in_a_worker_is_raised_with_its_traceback(scenes) -> None:
    root, records = scenes
    store = _BrokenStore(records)
    mix = Mixture([MixtureEntry("synthetic", 1.0)], store.sizes())
    loader = ConversationLoader(mix, store, RenderPolicy(), root, num_workers=1)
    with pytest.raises(RuntimeError, match="a bug in a store"):
        list(loader)
