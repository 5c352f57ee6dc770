"""The allocator setting CPU training makes (glibc keeps freed buffers for the next step)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from rscovlm.train.allocator import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_glibc_takes_both_thresholds() -> None:
    assert keep_freed_memory() is True


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_a_freed_large_block_is_kept_not_unmapped() -> None:
    """After the call, a 64 MiB block freed and allocated again reuses the heap: the process's
    mapping count does not grow and shrink with it (it does by default: one mmap per block)."""
    code = (
        "import ctypes, ctypes.util, sys\n"
        "from rscovlm.train.allocator import keep_freed_memory\n"
        "libc = ctypes.CDLL(ctypes.util.find_library('c'))\n"
        "libc.malloc.restype = ctypes.c_void_p; libc.free.argtypes = [ctypes.c_void_p]\n"
        "if sys.argv[1] == 'keep': keep_freed_memory()\n"
        "def maps(): return sum(1 for _ in open('/proc/self/maps'))\n"
        "p = libc.malloc(64 << 20); before = maps(); libc.free(p); after = maps()\n"
        "print(before - after)\n"
    )
    run = lambda mode: int(  # noqa: E731
        subprocess.run(
            [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True
        ).stdout
    )
    assert run("default") > 0  # glibc unmapped the freed block
    assert run("keep") == 0  # kept in the heap for the next step
