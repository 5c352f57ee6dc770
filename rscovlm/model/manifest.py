"""What a checkpoint remembers about how it was trained: family and pixel band.

A model answers best on images of the sizes it was trained on. A checkpoint written by rscovlm
(:func:`rscovlm.train.export.export_model`) therefore carries its training band twice:

- in ``preprocessor_config.json``, as ``min_pixels``/``max_pixels`` (what transformers 4.x and
  vLLM read) and ``size: {shortest_edge, longest_edge}`` (what transformers 5's
  ``Qwen2VLImageProcessor(Pil)`` reads and writes), so tools outside rscovlm resize alike;
- in ``rscovlm.json`` (:data:`MANIFEST_NAME`): family, band, the base model it was trained
  from, the rscovlm version and a hash of the training config — the record of provenance.

:func:`checkpoint_band` is the one reader every backend and :func:`~rscovlm.model.loading.
load_checkpoint` use for their default band: the manifest, else the processor config (a
released or third-party checkpoint), else RSCoVLM's 224²–1008². An explicit ``band=`` given to a
backend always wins over all three.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rscovlm import __version__
from rscovlm.errors import InputError
from rscovlm.files import atomic_write_json
from rscovlm.model.tiny import FAMILY_ARCHITECTURES
from rscovlm.resolution import RSCOVLM_BAND, PixelBand

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "CheckpointManifest",
    "checkpoint_band",
    "processor_band",
    "read_manifest",
    "write_manifest",
]

MANIFEST_NAME = "rscovlm.json"
MANIFEST_VERSION = 1
_PROCESSOR_CONFIG = "preprocessor_config.json"


@dataclass(frozen=True)
class CheckpointManifest:
    """How a checkpoint was trained (the content of ``rscovlm.json``).

    Attributes:
        family: The model family (``qwen2_5_vl`` …).
        band: The pixel band of the training data (the render policy's).
        base_model: The checkpoint training started from (a path, hub id or ``tiny:<family>``).
        rscovlm_version: The rscovlm that wrote the checkpoint.
        config_hash: ``sha256`` of the training config (JSON), to tell runs apart.
    """

    family: str
    band: PixelBand
    base_model: str | None = None
    rscovlm_version: str = __version__
    config_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``rscovlm.json``."""
        return {
            "format_version": MANIFEST_VERSION,
            "family": self.family,
            "band": {"min_pixels": self.band.min_pixels, "max_pixels": self.band.max_pixels},
            "base_model": self.base_model,
            "rscovlm_version": self.rscovlm_version,
            "config_hash": self.config_hash,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = MANIFEST_NAME) -> CheckpointManifest:
        """Parse what :meth:`to_dict` wrote.

        Raises:
            InputError: Not an object, an unknown family, or no valid band (named with
                ``where``).
        """
        if not isinstance(data, dict):
            raise InputError(f"{where}: not a JSON object")
        family = data.get("family")
        if family not in FAMILY_ARCHITECTURES:
            raise InputError(f"{where}: family {family!r} is not a supported family")
        band = data.get("band")
        if not isinstance(band, dict):
            raise InputError(f"{where}: band must be {{min_pixels, max_pixels}}")
        try:
            pixel_band = PixelBand(band.get("min_pixels"), band.get("max_pixels"))
        except (InputError, TypeError) as exc:
            raise InputError(f"{where}: band: {exc}") from None
        base, version = data.get("base_model"), data.get("rscovlm_version")
        digest = data.get("config_hash")
        return cls(
            str(family),
            pixel_band,
            None if base is None else str(base),
            "unknown" if version is None else str(version),
            None if digest is None else str(digest),
        )


def read_manifest(path: str | os.PathLike[str]) -> CheckpointManifest | None:
    """The manifest of the checkpoint directory ``path``; ``None`` if it has none (a checkpoint
    not written by rscovlm).

    Raises:
        InputError: The manifest exists but cannot be read or is malformed — a checkpoint
            that claims a band must not be run silently at another one.
    """
    file = Path(path) / MANIFEST_NAME
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{file} is not valid JSON: {exc}") from exc
    return CheckpointManifest.from_dict(data, str(file))


def processor_band(path: str | os.PathLike[str]) -> PixelBand | None:
    """The band in the checkpoint's ``preprocessor_config.json`` (WIRE §7.1), ``None`` if it
    states none. ``min_pixels``/``max_pixels`` win over ``size`` (transformers 4.x reads
    those; 5.x turns them into ``size`` on load)."""
    config = Path(path) / _PROCESSOR_CONFIG
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    size = data.get("size") if isinstance(data.get("size"), dict) else {}
    lo, hi = data.get("min_pixels"), data.get("max_pixels")
    lo = lo if isinstance(lo, int) else size.get("shortest_edge")
    hi = hi if isinstance(hi, int) else size.get("longest_edge")
    if isinstance(lo, int) and isinstance(hi, int) and 0 < lo <= hi:
        return PixelBand(lo, hi)
    return None


def checkpoint_band(path: str | os.PathLike[str]) -> PixelBand:
    """The band to run the checkpoint ``path`` at: its manifest's, else its processor config's,
    else RSCoVLM's 224²–1008² (:data:`~rscovlm.resolution.RSCOVLM_BAND`).

    Raises:
        InputError: A malformed ``rscovlm.json``.
    """
    manifest = read_manifest(path)
    if manifest is not None:
        return manifest.band
    return processor_band(path) or RSCOVLM_BAND


def write_manifest(path: str | os.PathLike[str], manifest: CheckpointManifest) -> Path:
    """Write ``rscovlm.json`` into the checkpoint directory ``path`` and state the manifest's
    band in its ``preprocessor_config.json`` (which must exist: the processor is saved first).

    Returns the manifest's path.

    Raises:
        InputError: ``path`` has no ``preprocessor_config.json`` to carry the band.
    """
    directory = Path(path)
    config_path = directory / _PROCESSOR_CONFIG
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot state the band in {config_path}: {exc}") from exc
    lo, hi = manifest.band.min_pixels, manifest.band.max_pixels
    config.update(min_pixels=lo, max_pixels=hi)
    config["size"] = {**(config.get("size") or {}), "shortest_edge": lo, "longest_edge": hi}
    atomic_write_json(config_path, config)
    target = directory / MANIFEST_NAME
    atomic_write_json(target, manifest.to_dict())
    return target
