"""``read_regions``: several windows of one file, the same pixels as ``read_region``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rscovlm.errors import InputError
from rscovlm.imaging import read_region, read_regions


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_same_pixels_as_read_region(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / f"img{suffix}"
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(path)
    windows = [(0, 0, 200, 150), (350, 250, 450, 330), None, (10, 20, 66, 76)]
    sizes = [(196, 140), None, (224, 168), (56, 56)]
    got = read_regions(path, windows, sizes)
    for img, window, size in zip(got, windows, sizes, strict=True):
        want = read_region(path, window, size)
        assert img.mode == "RGB" and img.size == want.size
        assert np.array_equal(np.asarray(img), np.asarray(want))
    assert got[1].size == (100, 80)  # past the border: black fill, as read_region
    assert not np.asarray(got[1])[60:, 60:].any()


def test_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "img.png"
    Image.new("RGB", (50, 40)).save(path)
    with pytest.raises(InputError, match="windows for"):
        read_regions(path, [(0, 0, 5, 5)], [])
    with pytest.raises(InputError, match="empty window"):
        read_regions(path, [(5, 5, 5, 9)], [None])
    with pytest.raises(InputError, match="not found"):
        read_regions(tmp_path / "missing.png", [None], [None])
