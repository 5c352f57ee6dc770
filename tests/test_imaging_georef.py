"""Georeferencing of rasters: ``open_raster``, ``pixel_to_map`` and ``map_to_pixel``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from rscovlm.errors import InputError
from rscovlm.imaging import RasterInfo, map_to_pixel, open_raster, pixel_to_map

rasterio = pytest.importorskip("rasterio")


def _write(path: Path, transform: tuple[float, ...] | None, crs: str | None) -> Path:
    from affine import Affine
    from rasterio.errors import NotGeoreferencedWarning

    profile = {"driver": "GTiff", "width": 40, "height": 30, "count": 1, "dtype": "uint8"}
    if transform is not None:
        profile.update(transform=Affine(*transform), crs=crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.zeros((1, 30, 40), np.uint8))
    return path


def test_known_north_up_affine(tmp_path: Path) -> None:
    # 0.5 m pixels, UTM 50N, top-left corner at (500000, 4000000).
    info = open_raster(
        _write(tmp_path / "utm.tif", (0.5, 0, 500000, 0, -0.5, 4000000), "EPSG:32650")
    )
    assert info.size == (40, 30) and info.crs == "EPSG:32650" and info.georeferenced
    assert info.transform == (0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)
    pix = np.array([[0, 0], [40, 30], [10.5, 2.25]])
    expect = np.array([[500000, 4000000], [500020, 3999985], [500005.25, 3999998.875]])
    assert np.allclose(pixel_to_map(info, pix), expect, rtol=0, atol=1e-9)
    assert np.allclose(map_to_pixel(info, expect), pix, rtol=0, atol=1e-9)
    # Any leading shape of points is taken; a (4, 2) quad gives (4, 2).
    quad = np.array([[1.0, 1.0], [3.0, 1.0], [3.0, 2.0], [1.0, 2.0]])
    assert pixel_to_map(info, quad).shape == (4, 2)


def test_round_trip_with_rotation_terms(tmp_path: Path) -> None:
    transform = (2.0, 0.5, 1000.0, 0.3, -2.0, 5000.0)
    info = open_raster(_write(tmp_path / "rot.tif", transform, "EPSG:3857"))
    assert np.allclose(info.transform, transform)
    rng = np.random.default_rng(0)
    pix = rng.uniform(-100, 100, (50, 2))
    mapped = pixel_to_map(info, pix)
    a, b, c, d, e, f = transform
    assert np.allclose(mapped[:, 0], a * pix[:, 0] + b * pix[:, 1] + c)
    assert np.allclose(mapped[:, 1], d * pix[:, 0] + e * pix[:, 1] + f)
    assert np.allclose(map_to_pixel(info, mapped), pix, rtol=0, atol=1e-9)
    # Agrees with rasterio's own affine on the same file.
    with rasterio.open(info.path) as src:
        xs, ys = src.transform @ (pix[:, 0], pix[:, 1])
    assert np.allclose(mapped, np.column_stack([xs, ys]))


def test_not_georeferenced_and_singular(tmp_path: Path) -> None:
    plain = open_raster(_write(tmp_path / "plain.tif", None, None))
    assert plain.crs is None and plain.transform is None and not plain.georeferenced
    with pytest.raises(InputError, match="not georeferenced"):
        pixel_to_map(plain, [[0, 0]])
    with pytest.raises(InputError, match="not georeferenced"):
        map_to_pixel(plain, [[0, 0]])
    singular = RasterInfo(tmp_path / "x.tif", (1, 1), "EPSG:4326", (1.0, 2.0, 0.0, 2.0, 4.0, 0.0))
    with pytest.raises(InputError, match="singular"):
        map_to_pixel(singular, [[1, 1]])
