"""The weighted mixture: entry parsing, proportions, sharding, determinism and resumption."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rscovlm.data.mixture import Mixture, MixtureEntry, parse_entry
from rscovlm.data.mixture_config import load_mixture_config
from rscovlm.errors import InputError

SIZES = {"geochat": 300, "vhm": 200, "llava": 1000, "dota": 120, "lrs": 50}


def entries() -> list[MixtureEntry]:
    specs = ["geochat*6", "vhm*8", "llava%10", "dota*25", "lrs*2"]
    return [MixtureEntry(*parse_entry(s), spec=s) for s in specs] + [
        MixtureEntry("dota_hbb", 0.5, source="dota")
    ]


def keys(items: list) -> list[tuple]:
    return [(i.entry, i.index, i.key) for i in items]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("dota*25", ("dota", 25.0)),
        ("llava_onevision_vl%10", ("llava_onevision_vl", 0.1)),
        ("teochatlas_video", ("teochatlas_video", 1.0)),
        (" refgeo_hbb * 1 ", ("refgeo_hbb", 1.0)),
        ("x%12.5", ("x", 0.125)),
        ("x%100", ("x", 1.0)),
    ],
)
def test_parse_entry(spec: str, expected: tuple[str, float]) -> None:
    assert parse_entry(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "expected name, name\\*K or name%P"),
        ("dota*0", "repeat K must be a positive integer"),
        ("dota*2.5", "repeat K must be a positive integer"),
        ("dota*", "repeat K must be a positive integer"),
        ("dota%0", r"percentage P must be in \(0, 100\]"),
        ("dota%101", r"percentage P must be in \(0, 100\]"),
        ("dota%ten", r"percentage P must be in \(0, 100\]"),
        ("dota*2*3", "repeat K must be a positive integer"),
        ("bad name*2", "bad dataset name 'bad name'"),
    ],
)
def test_parse_entry_errors(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(f"mixture entry {spec!r}: ") + message):
        parse_entry(spec)


def test_counts_follow_the_weights_exactly() -> None:
    mix = Mixture(entries(), SIZES, seed=1)
    assert mix.counts() == {
        "geochat": 1800,
        "vhm": 1600,
        "llava": 100,
        "dota": 3000,
        "lrs": 100,
        "dota_hbb": 60,
    }
    epoch = Counter(i.entry for i in mix.epoch_items(0))
    assert epoch == Counter(mix.counts())
    dota = Counter(i.index for i in mix.epoch_items(0) if i.entry == "dota")
    assert set(dota.values()) == {25} and len(dota) == 120
    rows = mix.summary()
    assert sum(r["proportion"] for r in rows) == pytest.approx(1.0)
    assert "llava%10" in mix.format_summary() and "6660" in mix.format_summary()


def test_percent_subset_is_seeded_and_fixed_across_epochs() -> None:
    mix = Mixture(entries(), SIZES, seed=1, epochs=2)
    subset = [sorted(i.index for i in mix.epoch_items(e) if i.entry == "llava") for e in (0, 1)]
    assert subset[0] == subset[1] and len(set(subset[0])) == 100
    other = Mixture(entries(), SIZES, seed=2).epoch_items(0)
    assert sorted(i.index for i in other if i.entry == "llava") != subset[0]


def test_proportions_of_a_prefix_are_within_sampling_error() -> None:
    mix = Mixture(entries(), SIZES, seed=3)
    m = 1500
    prefix = Counter(i.entry for i in itertools.islice(iter(mix), m))
    total = mix.total
    for name, count in mix.counts().items():
        p = count / total
        sigma = np.sqrt(p * (1 - p) / m)
        assert abs(prefix[name] / m - p) < 4 * sigma + 1e-9, name


def test_same_seed_same_stream_other_seed_other_order() -> None:
    a = keys(list(Mixture(entries(), SIZES, seed=5)))
    b = keys(list(Mixture(entries(), SIZES, seed=5)))
    c = keys(list(Mixture(entries(), SIZES, seed=6)))
    assert a == b and a != c and Counter(x[0] for x in a) == Counter(x[0] for x in c)


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_are_disjoint_and_cover_the_epoch(world_size: int) -> None:
    shards = [
        Mixture(entries(), SIZES, seed=0, rank=r, world_size=world_size).epoch_items(0)
        for r in range(world_size)
    ]
    total = Mixture(entries(), SIZES).total
    sets = [{i.key for i in s} for s in shards]
    assert all(len(s) == total // world_size for s in sets)
    for a, b in itertools.combinations(sets, 2):
        assert not a & b
    assert len(set().union(*sets)) == total // world_size * world_size
    # The (entry, index) samples of all ranks are the epoch's samples, minus the dropped tail.
    whole = Counter((i.entry, i.index) for i in Mixture(entries(), SIZES).epoch_items(0))
    union = Counter((i.entry, i.index) for s in shards for i in s)
    assert not union - whole and sum((whole - union).values()) == total % world_size


def test_without_drop_last_the_order_wraps() -> None:
    sizes = {"a": 5}
    mix = Mixture([MixtureEntry("a", 1.0)], sizes, rank=1, world_size=2, drop_last=False)
    assert len(mix) == 3 and [i.key[1] for i in mix.epoch_items(0)] == [1, 3, 0]


@pytest.mark.parametrize("stop", [0, 1, 777, 3329, 3330, 3331, 5000])
def test_resume_mid_run_equals_uninterrupted(stop: int) -> None:
    def make() -> Mixture:
        return Mixture(entries(), SIZES, seed=9, rank=1, world_size=2, epochs=2)

    full = keys(list(make()))
    first = make()
    head = keys(list(itertools.islice(iter(first), stop)))
    state = first.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    assert head + keys(list(resumed)) == full


def test_endless_stream_and_resume_across_epochs() -> None:
    mix = Mixture([MixtureEntry("a", 1.0)], {"a": 7}, epochs=None, seed=4)
    taken = list(itertools.islice(iter(mix), 20))
    assert [i.epoch for i in taken] == [0] * 7 + [1] * 7 + [2] * 6
    assert sorted(i.index for i in taken[:7]) == list(range(7))
    state = mix.state_dict()
    assert state["epoch"] == 2 and state["position"] == 6
    again = Mixture([MixtureEntry("a", 1.0)], {"a": 7}, epochs=None, seed=4)
    again.load_state_dict(state)
    assert keys(list(itertools.islice(iter(again), 10))) == keys(
        list(itertools.islice(iter(mix), 10))
    )


def test_state_of_another_plan_is_refused() -> None:
    state = Mixture(entries(), SIZES, seed=1).state_dict()
    with pytest.raises(InputError, match="does not match this mixture"):
        Mixture(entries(), SIZES, seed=2).load_state_dict(state)
    with pytest.raises(InputError, match="does not match"):
        Mixture(entries(), SIZES, seed=1, rank=1, world_size=2).load_state_dict(state)


def test_mixture_errors() -> None:
    with pytest.raises(InputError, match="source 'nope' has no records"):
        Mixture([MixtureEntry("nope", 1.0)], SIZES)
    with pytest.raises(InputError, match="repeated: a"):
        Mixture([MixtureEntry("a", 1.0), MixtureEntry("a", 2.0)], {"a": 3})
    with pytest.raises(InputError, match=r"rank 2 is not in \[0, world_size=2\)"):
        Mixture([MixtureEntry("a", 1.0)], {"a": 3}, rank=2, world_size=2)
    with pytest.raises(InputError, match="weight must be > 0"):
        MixtureEntry("a", 0.0)


def test_official_config_is_the_paper_recipe() -> None:
    cfg = load_mixture_config("rscovlm_official")
    specs = [(e.name, e.weight, e.source) for e in cfg.entries()]
    assert specs == [
        ("processed_geochat_from_teochatlas", 6.0, "processed_geochat_from_teochatlas"),
        ("vhm_dataset", 8.0, "vhm_dataset"),
        ("teochatlas_video", 1.0, "teochatlas_video"),
        ("llava_onevision_vl", 0.1, "llava_onevision_vl"),
        ("refgeo_poly", 1.0, "refgeo_poly"),
        ("refgeo_hbb", 1.0, "refgeo_hbb"),
        ("dota_poly_trainval512", 25.0, "dota_trainval512"),
        ("dota_hbb_trainval512", 1.0, "dota_trainval512"),
        ("lrsvqa_train_visual_cot", 2.0, "lrsvqa_train_visual_cot"),
    ]
    policy = cfg.policy()
    assert policy.family == "qwen2_5_vl" and cfg.seed == 0
    from rscovlm.data.record import Record

    def opts(task: str, source: str, dataset: str):
        rec = Record(id="x", source=source, task=task, images=[{"path": "a.png"}])
        return policy.options_for(rec, dataset)

    det = opts("detection", "dota_trainval512", "dota_hbb_trainval512")
    assert (det.min_pixels, det.max_pixels, det.random_resize_prob) == (50176, 1016064, 1.0)
    assert (det.box_kind, det.json_prob, det.proxy_prob, det.keep_empty) == ("hbb", 0, 0, True)
    assert opts("grounding", "refgeo_poly", "refgeo_poly").box_kind == "quad"
    geo = opts(
        "instruction", "processed_geochat_from_teochatlas", "processed_geochat_from_teochatlas"
    )
    assert (geo.instruction_style, geo.random_resize_prob) == ("teochat", 0.0)
    assert opts("vqa", "lrsvqa_train_visual_cot", "lrsvqa_train_visual_cot").zoom


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("datasets: [dota*0]", "datasets.0: mixture entry 'dota\\*0': repeat K"),
        ("datasets: [a, a*2]", "entry names must be unique, repeated: a"),
        (
            "datasets: [{spec: a, colour: 1}]",
            "datasets.0.colour: unknown key; expected one of: spec",
        ),
        ("datasets: [{spec: a, render: {box_kind: x}}]", "datasets.a: box_kind"),
        ("datasets: []", "datasets: List should have at least 1 item"),
        ("sed: 1\ndatasets: [a]", "sed: unknown key; did you mean 'seed'\\?"),
    ],
)
def test_config_errors_name_the_key_and_file(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "mix.yaml"
    path.write_text(body)
    with pytest.raises(InputError, match=f"mixture config {path}: .*{message}"):
        load_mixture_config(path)


def test_unknown_config_name_lists_shipped() -> None:
    with pytest.raises(InputError, match=r"shipped: .*rscovlm_official"):
        load_mixture_config("nope")


def test_docstring_examples() -> None:
    import doctest

    from rscovlm.data import mixture

    assert doctest.testmod(mixture).failed == 0
