"""Shared fixtures: the real data samples, and a guard that keeps tests off the network."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_REAL = Path(
    os.environ.get("RSCOVLM_SHARED_REAL", PROJECT_ROOT.parent / "shared" / "data" / "real")
)

_LOOPBACK_PREFIXES = ("127.", "::1", "localhost")


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
