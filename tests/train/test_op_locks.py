"""A killed DeepSpeed op build must not hang every later run: the stale lock is named."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rscovlm.errors import InputError
from rscovlm.train.op_locks import STALE_AFTER_S, check_stale_build_locks, extensions_dir


def _lock(root: Path, op: str, age_s: float) -> Path:
    lock = root / op / "lock"
    lock.parent.mkdir(parents=True)
    lock.touch()
    then = time.time() - age_s
    os.utime(lock, (then, then))
    return lock


def test_an_old_lock_is_refused_with_its_path_and_age(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "deepspeed_shm_comm", STALE_AFTER_S + 37 * 60)
    with pytest.raises(InputError) as raised:
        check_stale_build_locks(tmp_path)
    message = str(raised.value)
    assert str(lock) in message and "52 min old" in message and f"rm {lock}" in message


def test_a_fresh_lock_is_a_build_in_progress_and_is_waited_for(tmp_path: Path) -> None:
    _lock(tmp_path, "deepspeed_shm_comm", 30)
    check_stale_build_locks(tmp_path)  # no error: the builder's own wait is right here
    check_stale_build_locks(tmp_path / "absent")


def test_the_folder_is_the_one_torch_builds_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from torch.utils.cpp_extension import _get_build_directory

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    assert extensions_dir() == tmp_path
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    built = Path(_get_build_directory("deepspeed_shm_comm", verbose=False)).parent
    assert extensions_dir() == built and built.is_relative_to(tmp_path / "home")
