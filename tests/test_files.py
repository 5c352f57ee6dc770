"""Atomic writes: the new file's mode follows the umask (``mkstemp`` alone gives 0600)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rscovlm.files import atomic_write_bytes, atomic_write_json, atomic_write_text, atomic_writer


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_follow_the_umask(tmp_path: Path, umask: int, expected: int) -> None:
    old = os.umask(umask)
    try:
        written = [
            atomic_write_text(tmp_path / "a.txt", "a\n"),
            atomic_write_bytes(tmp_path / "b.bin", b"b"),
            atomic_write_json(tmp_path / "c.json", {"c": 1}),
        ]
        with atomic_writer(tmp_path / "d.zip") as tmp:
            tmp.write_bytes(b"d")
        written.append(tmp_path / "d.zip")
    finally:
        os.umask(old)
    assert {p.stat().st_mode & 0o777 for p in written} == {expected}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "c.json", "d.zip"]


def test_replacing_a_file_gives_the_umask_mode_and_an_explicit_mode_wins(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    target.write_text("old")
    target.chmod(0o600)
    old = os.umask(0o022)
    try:
        atomic_write_text(target, "new")
        assert target.stat().st_mode & 0o777 == 0o644 and target.read_text() == "new"
        atomic_write_text(target, "secret", mode=0o600)
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o600
