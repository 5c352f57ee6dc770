"""DOTA label files and split-patch names, on the real samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rscovlm.data.patches import format_patch_name, parse_patch_name
from rscovlm.data.sources.dota import parse_dota_labels, read_dota_labels
from rscovlm.errors import InputError


def test_real_label_files_read_whole(real_data: Path) -> None:
    files = sorted((real_data / "dota" / "labelTxt").glob("*.txt"))
    parsed = [read_dota_labels(f) for f in files]
    objects = [o for p in parsed for o in p.objects]
    assert len(files) == 7
    assert len(objects) == 984  # as documented in shared/data/real/README.md
    assert len({o.class_name for o in objects}) == 12  # the README says 14; the files hold 12
    assert all(not p.bad_lines for p in parsed)
    raw_lines = sum(
        1
        for f in files
        for line in f.read_text().splitlines()
        if line.strip() and not line.startswith(("imagesource:", "gsd:"))
    )
    assert raw_lines == len(objects)
    difficult = sum(o.difficult for o in objects)
    flags = [line.split()[-1] for f in files for line in f.read_text().splitlines()[2:]]
    assert difficult == flags.count("1")


def test_header_lines_are_metadata(real_data: Path) -> None:
    label = read_dota_labels(real_data / "dota" / "labelTxt" / "P0706.txt")
    assert label.imagesource == "GoogleEarth"
    assert label.gsd == pytest.approx(0.255589285596)
    first = label.objects[0]
    assert first.class_name == "ship" and first.difficult
    np.testing.assert_array_equal(
        first.quad, [[1054, 1028], [1063, 1011], [1111, 1040], [1112, 1062]]
    )


def test_bad_lines_are_reported_not_fatal() -> None:
    text = "\n".join(
        [
            "gsd:abc",
            "1 2 3 4 5 6 7 8 plane 0",
            "1 2 3 4 5 6 7",
            "1 2 3 x 5 6 7 8 plane 0",
            "1 2 3 nan 5 6 7 8 plane 0",
            "1 2 3 4 5 6 7 8 plane 7",
            "1 2 3 4 5 6 7 8 Small Car 1",
            "1 2 3 4 5 6 7 8 harbor",
        ]
    )
    label = parse_dota_labels(text)
    assert [o.class_name for o in label.objects] == ["plane", "Small Car", "harbor"]
    assert [o.difficult for o in label.objects] == [False, True, False]
    reasons = [reason for _, _, reason in label.bad_lines]
    assert len(reasons) == 5
    assert "gsd" in reasons[0] and "fields" in reasons[1] and "not numbers" in reasons[2]
    assert "non-finite" in reasons[3] and "difficult" in reasons[4]


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read DOTA label file"):
        read_dota_labels(tmp_path / "nope.txt")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("P2805__1024__0___0", ("P2805", 1.0, 0, 0)),
        ("P0004__1__0___0.png", ("P0004", 1.0, 0, 0)),
        ("P0001__0.5__824___1648", ("P0001", 0.5, 824, 1648)),
        ("P0001__1.5__0___512.txt", ("P0001", 1.5, 0, 512)),
        ("my__odd__name__800__100___200", ("my__odd__name", 1.0, 100, 200)),
    ],
)
def test_patch_names(name: str, expected: tuple[str, float, int, int]) -> None:
    patch = parse_patch_name(name)
    assert patch is not None
    assert (patch.base, patch.rate, patch.x, patch.y) == expected


@pytest.mark.parametrize("name", ["P0001", "P0001__a__0___0", "P0001__0__1___2", "x.png"])
def test_plain_names_are_not_patches(name: str) -> None:
    assert parse_patch_name(name) is None


def test_patch_name_round_trip_and_mapping() -> None:
    name = format_patch_name("P0001", 0.5, 824, 100)
    patch = parse_patch_name(name)
    assert patch is not None
    np.testing.assert_allclose(
        patch.to_original(np.array([[0.0, 0.0], [10.0, 20.0]])), [[1648.0, 200.0], [1668.0, 240.0]]
    )
