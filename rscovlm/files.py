"""Writing files so that nothing is ever half-written, and the file kinds every floor recognises.

Every output of rscovlm — shards, manifests, predictions, reports, caches — goes through
:func:`atomic_writer`: the bytes go to a temporary file with a unique name beside the target (two
writers of one target never share a temporary file), are flushed and fsynced, and the file is
renamed into place, so a reader sees the old file or the new one, never a torn one, even after a
crash or a kill. The new file gets the permissions an ordinary ``open`` would give under the
process's umask (``mkstemp`` alone would leave it 0600, unreadable to colleagues on a shared
cluster).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(folder / "a" / "b.txt", "hello\\n").read_text()
'hello\\n'
>>> sorted(p.name for p in (folder / "a").iterdir())  # no temporary file left behind
['b.txt']
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "IMAGE_SUFFIXES",
    "RASTER_SUFFIXES",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_writer",
    "is_image_file",
]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
"""Suffixes of the image files a dataset folder, a prediction's image id or a detect folder may
hold (lower case; compare with ``path.suffix.lower()``)."""

RASTER_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".vrt", ".img", ".jp2")
"""Suffixes read window by window through rasterio (never decoded whole by PIL)."""


def is_image_file(path: str | Path) -> bool:
    """True when ``path`` names an image by its suffix (any case).

    >>> is_image_file("P0706.PNG"), is_image_file("labels.txt")
    (True, False)
    """
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _umask() -> int:
    """The process umask, read without changing it where the kernel says it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)  # pragma: no cover - only where /proc is absent
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_writer(path: str | Path, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a unique temporary path beside ``path``; on a clean exit it is fsynced and renamed
    onto ``path``, on an exception it is removed and ``path`` is left as it was.

    Use it for writers that want a file name (``zipfile``, ``torch.save``); plain text and bytes
    have :func:`atomic_write_text` and :func:`atomic_write_bytes`.

    Args:
        path: The target; its parent folders are created.
        mode: Permission bits of the new file (default: ``0o666`` less the umask, as ``open``).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, (0o666 & ~_umask()) if mode is None else mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself durable where the platform allows
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`); returns ``path``."""
    with atomic_writer(path, mode=mode) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, *, mode: int | None = None) -> Path:
    """Write ``text`` as UTF-8 with ``\\n`` line ends, atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_write_json(path: str | Path, data: Any, *, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON (UTF-8, a final newline), atomically; returns ``path``."""
    return atomic_write_text(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")
