"""The run manifest: what a run is, frozen in ``RUN/manifest.json`` before any sample runs.

It records every sample id per benchmark with a hash of its prompt, the pixel band images are
resized into, the model fingerprint, the resolved generation params, the shard count, the zoom
mode and the rscovlm version. A rerun computes its own manifest and compares: results made
under a different model, band, prompt or decoding would be mixed silently otherwise, so the
runner refuses, naming what differs (:func:`differences`), unless asked to mix.

The model fingerprint is CHEAP by design (a 7B checkpoint is 15 GB; hashing it on every start
would cost minutes): each config/index JSON is hashed in full, each weight file by its size
and the SHA-256 of its first and last MiB. That tells apart any two checkpoints that differ in
shape, config or the tensors stored at either end; it does not catch an edit in the middle of
a file that keeps its size (no training run produces one).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscovlm import __version__
from rscovlm.errors import InputError
from rscovlm.eval.benchmarks.base import EvalSample
from rscovlm.files import atomic_write_json
from rscovlm.safe_read import read_json

__all__ = [
    "MANIFEST_FILE",
    "RunManifest",
    "differences",
    "model_fingerprint",
    "prompt_hash",
    "read_run_manifest",
]

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_CONFIG_SUFFIXES = (".json", ".jinja", ".txt", ".model", ".tiktoken")
_EDGE = 1 << 20  # bytes hashed at each end of a weight file
_COMPARED = ("format", "rscovlm_version", "family", "band", "params", "model", "n_shards", "zoom")


def prompt_hash(sample: EvalSample) -> str:
    """16 hex digits of SHA-256 over the sample's prompt-only chat (text and image sources)."""
    messages = sample.to_json()["messages"]
    key = json.dumps([sample.family, messages, sample.meta.get("fixed_side")], sort_keys=True)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    h = hashlib.sha256()
    with path.open("rb") as fh:
        if path.suffix in _WEIGHT_SUFFIXES and size > 2 * _EDGE:
            h.update(fh.read(_EDGE))
            fh.seek(size - _EDGE)
            h.update(fh.read(_EDGE))
            h.update(str(size).encode())
        else:
            h.update(fh.read())
    return h.hexdigest()[:16]


def _tree(path: Path) -> dict[str, Any]:
    """``{file: digest}`` of a checkpoint directory's weights and configs (or of one file)."""
    if path.is_file():
        return {path.name: _file_digest(path)}
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and p.suffix in (*_WEIGHT_SUFFIXES, *_CONFIG_SUFFIXES)
    )
    return {p.name: _file_digest(p) for p in files}


def model_fingerprint(
    model: str, backend: str, adapter: str | None = None, base_url: str | None = None
) -> dict[str, Any]:
    """What identifies the model of a run (see the module docstring for what is hashed).

    A served model (``openai``) is known only by its name: the server owns the weights. A
    replay file is hashed in full.
    """
    out: dict[str, Any] = {"name": Path(model).name if Path(model).exists() else model}
    path = Path(model)
    if backend != "openai" and path.exists():
        out["files"] = _tree(path)
        digest = hashlib.sha256(json.dumps(out["files"], sort_keys=True).encode()).hexdigest()
        out["digest"] = digest[:16]
    if adapter is not None:
        out["adapter"] = _tree(Path(adapter))
    if base_url is not None:
        out["served"] = True
    return out


@dataclass
class RunManifest:
    """The frozen description of a run (the content of ``RUN/manifest.json``).

    Attributes:
        benchmarks: ``{name: {"root": str, "samples": [[id, prompt_hash], ...]}}``.
        family: The model family (coordinates and image sizes follow it).
        band: ``{"min_pixels", "max_pixels"}`` images are resized into.
        params: The generation params resolved with the checkpoint's policy.
        model: :func:`model_fingerprint`.
        n_shards: The fixed shard count (:func:`~rscovlm.eval.runner.shards.shard_of`).
        zoom: ``ours`` or ``official``: how Zoom-in Chain samples run.
        backend: The backend of the first attempt (informative; not compared, since the
            backends are built to give the same answers).
    """

    benchmarks: dict[str, dict[str, Any]]
    family: str
    band: dict[str, int]
    params: dict[str, Any]
    model: dict[str, Any]
    n_shards: int
    zoom: str = "ours"
    backend: str = ""
    rscovlm_version: str = __version__
    format: int = MANIFEST_FORMAT
    history: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def sample_table(samples: Iterable[EvalSample]) -> list[list[str]]:
        """``[[id, prompt_hash], ...]`` in benchmark order."""
        return [[s.id, prompt_hash(s)] for s in samples]

    def ids(self, benchmark: str) -> list[str]:
        """Every sample id of ``benchmark``, in benchmark order."""
        return [row[0] for row in self.benchmarks[benchmark]["samples"]]

    def n_samples(self) -> int:
        """Samples over all benchmarks."""
        return sum(len(b["samples"]) for b in self.benchmarks.values())

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON."""
        return {
            "format": self.format,
            "rscovlm_version": self.rscovlm_version,
            "family": self.family,
            "band": self.band,
            "params": self.params,
            "model": self.model,
            "n_shards": self.n_shards,
            "zoom": self.zoom,
            "backend": self.backend,
            "history": self.history,
            "benchmarks": self.benchmarks,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> RunManifest:
        """Parse a manifest read from ``where``.

        Raises:
            InputError: A field is missing or of the wrong type.
        """
        if not isinstance(data, dict):
            raise InputError(f"{where}: not a run manifest (expected a JSON object)")
        try:
            benchmarks = data["benchmarks"]
            if not isinstance(benchmarks, dict) or not all(
                isinstance(b, dict) and isinstance(b.get("samples"), list)
                for b in benchmarks.values()
            ):
                raise TypeError("benchmarks")
            return cls(
                benchmarks=benchmarks,
                family=str(data["family"]),
                band=dict(data["band"]),
                params=dict(data["params"]),
                model=dict(data["model"]),
                n_shards=int(data["n_shards"]),
                zoom=str(data.get("zoom", "ours")),
                backend=str(data.get("backend", "")),
                rscovlm_version=str(data["rscovlm_version"]),
                format=int(data["format"]),
                history=list(data.get("history", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: not a run manifest (bad or missing {exc})") from None

    def write(self, run: Path) -> Path:
        """``run/manifest.json``, atomically."""
        run.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(run / MANIFEST_FILE, self.to_dict(), indent=1)


def read_run_manifest(run: Path) -> RunManifest | None:
    """The manifest of the run folder ``run``, or ``None`` when it has none yet."""
    path = Path(run) / MANIFEST_FILE
    if not path.is_file():
        return None
    return RunManifest.from_dict(read_json(path), str(path))


def _describe_model(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """A model difference in words: another name, or which files changed."""
    if old.get("name") != new.get("name"):
        return f"model: {old.get('name')} -> {new.get('name')}"
    for part in ("files", "adapter"):
        a, b = old.get(part) or {}, new.get(part) or {}
        changed = sorted(k for k in {*a, *b} if a.get(k) != b.get(k))
        if changed:
            label = "model files" if part == "files" else "adapter files"
            return f"{label} changed: {', '.join(changed[:3])}" + (
                f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
            )
    return _describe("model", dict(old), dict(new), plain=True)


def _describe(key: str, old: Any, new: Any, plain: bool = False) -> str:
    if key == "model" and not plain and isinstance(old, Mapping) and isinstance(new, Mapping):
        return _describe_model(old, new)
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = sorted({*old, *new}, key=str)
        changed = [k for k in keys if old.get(k) != new.get(k)]
        if changed:
            k = changed[0]
            more = f" (+{len(changed) - 1} more)" if len(changed) > 1 else ""
            return f"{key}.{k}: {old.get(k)!r} -> {new.get(k)!r}{more}"
    return f"{key}: {old!r} -> {new!r}"


def differences(old: RunManifest, new: RunManifest) -> list[str]:
    """What differs between two manifests, one short phrase each (empty: the same run).

    >>> a = RunManifest({"b": {"samples": [["x", "h"]]}}, "qwen2_5_vl", {}, {}, {}, 8)
    >>> differences(a, a)
    []
    >>> b = RunManifest({"b": {"samples": [["x", "h2"]]}}, "qwen2_5_vl", {}, {}, {}, 16)
    >>> differences(a, b)
    ['n_shards: 8 -> 16', 'b: prompt of 1 samples changed (e.g. x)']
    """
    out: list[str] = []
    olds, news = old.to_dict(), new.to_dict()
    for key in _COMPARED:
        if olds[key] != news[key]:
            out.append(_describe(key, olds[key], news[key]))
    for name in sorted({*old.benchmarks, *new.benchmarks}):
        if name not in old.benchmarks or name not in new.benchmarks:
            side = "added" if name not in old.benchmarks else "dropped"
            out.append(f"benchmark {name} {side}")
            continue
        a = dict(map(tuple, old.benchmarks[name]["samples"]))
        b = dict(map(tuple, new.benchmarks[name]["samples"]))
        if a.keys() != b.keys():
            gone, extra = len(a.keys() - b.keys()), len(b.keys() - a.keys())
            out.append(f"{name}: sample ids differ ({gone} gone, {extra} new)")
            continue
        changed = [k for k in a if a[k] != b[k]]
        if changed:
            out.append(f"{name}: prompt of {len(changed)} samples changed (e.g. {changed[0]})")
    return out
