"""Stale build locks of JIT-compiled DeepSpeed ops: fail fast instead of hanging forever.

DeepSpeed on the CPU compiles its shared-memory collective (``deepspeed_shm_comm``) with
torch's extension builder the first time a process group starts. The builder guards the build
with a plain ``lock`` file and, when one exists, waits for it to vanish — with no timeout. A
build that was killed (Ctrl-C, a pre-empted job, a CI timeout) leaves the file behind, and every
later run sits silent at start-up, all ranks, until someone notices. The build itself takes about
a minute, so a lock far older than that is an interrupted build; we name it and stop.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rscovlm.errors import InputError

STALE_AFTER_S = 15 * 60


def extensions_dir() -> Path:
    """Where torch's extension builder puts (and locks) its builds, as it computes it."""
    configured = os.environ.get("TORCH_EXTENSIONS_DIR")
    if configured:
        return Path(configured)
    from torch.utils.cpp_extension import _get_build_directory

    # the builder's own rule: the per-interpreter folder holding one folder per op
    return Path(_get_build_directory("probe", verbose=False)).parent


def check_stale_build_locks(root: Path | None = None, *, now: float | None = None) -> None:
    """Refuse to start when an op's build lock is older than :data:`STALE_AFTER_S`.

    Raises:
        InputError: Naming the lock, its age and the one command that clears it.
    """
    root = extensions_dir() if root is None else root
    now = time.time() if now is None else now
    if not root.is_dir():
        return
    for lock in sorted(root.glob("*/lock")):
        try:
            age = now - lock.stat().st_mtime
        except FileNotFoundError:  # a build just finished
            continue
        if age > STALE_AFTER_S:
            raise InputError(
                f"DeepSpeed's op build lock {lock} is {age / 60:.0f} min old: an interrupted "
                f"build left it and the builder would wait for it forever. If no build is "
                f"running, remove it (rm {lock}) and rerun"
            )
