"""Session fixtures of the training tests: the tiny Qwen2.5-VL, loaded once under sdpa.

Built with the same builders as ``tests/model/conftest.py`` (``build_tiny_model`` with seed 0,
``build_qwen2_tokenizer``), into a private temporary directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rscovlm.model import build_tiny_model, load_checkpoint


@pytest.fixture(scope="session")
def tiny_qwen25_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of the tiny Qwen2.5-VL checkpoint (seed 0)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("tiktoken")
    root = tmp_path_factory.mktemp("train-tiny")
    return build_tiny_model("qwen2_5_vl", root / "qwen2_5_vl", seed=0, cache_dir=root / "tok")


@pytest.fixture(scope="session")
def tiny_qwen25(tiny_qwen25_dir: Path) -> Any:
    """The tiny Qwen2.5-VL as a ``LoadedModel`` (fp32, CPU, sdpa, eval mode)."""
    return load_checkpoint(tiny_qwen25_dir, dtype="float32", device="cpu", attn="sdpa")
