"""Fixed-resolution conversation export for ms-swift and LLaMA-Factory ("messages + images").

Each exported record becomes one JSON line::

    {"messages": [{"role": "system", "content": ...}, {"role": "user", "content": "<image>..."},
                  {"role": "assistant", "content": ...}], "images": ["/abs/path.png"], "id": ...}

Every record is rendered by :func:`rscovlm.data.render.render`, the code online training uses,
under the fixed policy of :func:`export_policy`: ``smart_resize`` into the pixel band (never a
random resize), plain text answers, no proxy or open-ended prompts, one box kind for detection
and grounding, coordinates in the model family's convention. Train with the same band (swift
``MIN_PIXELS``/``MAX_PIXELS``, LLaMA-Factory ``image_min_pixels``/``image_max_pixels``) so the
processor resizes to the size the boxes assume. Each record gets its own generator seeded by
``(seed, uid)``, so an export is reproducible and a record renders the same whatever else is
exported (the draws left are the choice among several captions or referring expressions).

Each image part becomes ``<image>`` at its place in the message text and its absolute path in
``images``. A Zoom-in Chain crop (an image part with a ``window``) is cut through
:func:`rscovlm.imaging.read_window` and written as a PNG into ``{out stem}_crops/`` beside the
export, named by record uid and window, so zoom chains export too. Class lists: detection uses
the source's list from the build recipe, else the record's; classification the record's, else
the sorted labels of that source's classification records.

Records that render to no sample are skipped and counted as ``skipped_{task}_{reason}``:
``excluded`` (the options leave it out, e.g. an empty detection), ``invalid`` (the record cannot
be rendered: missing targets or class list), ``video`` (video items have no "messages + images"
form), ``media_tag`` (a literal ``<image>`` or ``<video>`` in the text) and ``unreadable`` (a
zoom crop could not be read). ``records = samples + skipped``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rscovlm.data.conversation import Conversation, ImagePart, TextPart
from rscovlm.data.loader import _from_array
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import Record
from rscovlm.data.render import SkipSampleError, render
from rscovlm.data.shards import iter_records, read_manifest
from rscovlm.errors import InputError
from rscovlm.files import atomic_write_text
from rscovlm.imaging import read_window
from rscovlm.resolution import RSCOVLM_BAND, PixelBand

__all__ = ["CHAT_FORMATS", "export_chat", "export_policy"]

CHAT_FORMATS = ("swift", "llamafactory")
IMAGE_TAG = "<image>"
#: Placeholders the tools read in message text; a literal one in a record's text is skipped.
_MEDIA_TAGS = (IMAGE_TAG, "<video>")

log = logging.getLogger(__name__)


class _SkipError(Exception):
    """A rendered conversation with no "messages + images" form; ``args[0]`` is the reason."""


def export_policy(
    band: PixelBand = RSCOVLM_BAND,
    family: str = "qwen2_5_vl",
    kind: Literal["hbb", "quad", "obb"] = "quad",
    datasets: dict[str, dict[str, Any]] | None = None,
) -> RenderPolicy:
    """The export's fixed-resolution policy (no task layer: the paper's random resize is off).

    Args:
        band: Pixel band every image is ``smart_resize``-d into.
        family: Model family (factor and coordinate convention).
        kind: Box kind of detection and grounding answers.
        datasets: Extra per-entry layers (the export keys them ``{source}:{task}``).
    """
    fixed = {
        "min_pixels": band.min_pixels,
        "max_pixels": band.max_pixels,
        "random_resize_prob": 0.0,
        "json_prob": 0.0,
        "proxy_prob": 0.0,
        "open_ended_prob": 0.0,
        "box_kind": kind,
    }
    return RenderPolicy(family=family, defaults=fixed, tasks={}, datasets=datasets or {})


def _to_chat(conv: Conversation, image_path: Callable[[ImagePart], str]) -> dict[str, Any]:
    """One rendered conversation as a messages + images sample.

    Args:
        conv: A rendered conversation.
        image_path: ``image_path(part) -> str``, the file the sample names for an image part.

    Raises:
        _SkipError: A video item (reason ``video``), a literal ``<image>`` / ``<video>`` in the
            text, which the tools would take for media (``media_tag``), or an unreadable crop.
    """
    messages: list[dict[str, str]] = []
    images: list[str] = []
    for msg in conv.messages:
        text: list[str] = []
        for part in msg.content:
            if isinstance(part, TextPart):
                if any(tag in part.text for tag in _MEDIA_TAGS):
                    raise _SkipError("media_tag")
                text.append(part.text)
            elif isinstance(part, ImagePart):
                text.append(IMAGE_TAG)
                images.append(image_path(part))
            else:
                raise _SkipError("video")
        messages.append({"role": msg.role, "content": "".join(text)})
    return {"messages": messages, "images": images, "id": conv.meta.get("uid")}


def _record_rng(seed: int, uid: str) -> np.random.Generator:
    key = int.from_bytes(hashlib.blake2b(uid.encode("utf-8"), digest_size=8).digest(), "big")
    return np.random.default_rng([seed, key])


def _crop_name(uid: str, window: tuple[int, int, int, int]) -> str:
    # The uid spelled for a file name, plus a short hash so distinct uids never collide.
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", uid)[:80]
    digest = hashlib.blake2b(uid.encode("utf-8"), digest_size=4).hexdigest()
    return f"{safe}-{digest}_" + "_".join(str(v) for v in window) + ".png"


def _image_path(part: ImagePart, *, root: Path, uid: str, crops: Path) -> str:
    """The file of an image part; a window is cut out (black outside the image) as a PNG.

    Raises:
        _SkipError: The window cannot be read (reason ``unreadable``).
    """
    if part.window is None:
        return str(root / part.source)
    x1, y1, x2, y2 = part.window
    path = crops / _crop_name(uid, part.window)
    try:
        pixels = read_window(root / part.source, x1, y1, x2 - x1, y2 - y1)
        crops.mkdir(parents=True, exist_ok=True)
        # The loader's window path: bands past the third dropped, one band made grey RGB.
        _from_array(pixels).save(path)
    except (InputError, OSError) as exc:
        raise _SkipError("unreadable") from exc
    return str(path)


def _entry_layers(
    manifest: dict[str, Any], records: list[tuple[str, str | None]]
) -> dict[str, dict[str, Any]]:
    """Class lists per ``{source}:{task}`` (see the module docstring)."""
    layers: dict[str, dict[str, Any]] = {}
    for src in manifest["recipe"]["sources"]:
        if src.get("classes"):
            layers[f"{src['name']}:detection"] = {"classes": src["classes"]}
    labels: defaultdict[str, set[str]] = defaultdict(set)
    for source, label in records:
        if label is not None:
            labels[source].add(label)
    for source, names in labels.items():
        layers[f"{source}:classification"] = {"classes": sorted(names)}
    return layers


def _entry(rec: Record) -> str | None:
    """The policy entry of a record: its class-list layer, if the record needs one."""
    if rec.task == "detection":
        return f"{rec.source}:detection"
    own = rec.meta.get("class_list") or rec.meta.get("classes")
    return f"{rec.source}:classification" if rec.task == "classification" and not own else None


def export_chat(
    built_dir: str | Path,
    out: str | Path,
    fmt: str,
    *,
    band: PixelBand = RSCOVLM_BAND,
    family: str = "qwen2_5_vl",
    kind: Literal["hbb", "quad", "obb"] = "quad",
    source: str | None = None,
    seed: int = 0,
) -> dict[str, int]:
    """Write the JSONL (and, for LLaMA-Factory, a ``dataset_info.json`` beside it).

    Returns:
        ``{"records": n, "samples": k, "crops": c, "skipped_<task>_<reason>": m, ...}``.
    """
    manifest = read_manifest(built_dir)
    root = Path(manifest["data_root"]).resolve()
    out = Path(out)
    crops = (out.parent / f"{out.stem}_crops").resolve()
    scenes = [
        (r.source, r.label) for r in iter_records(built_dir, source) if r.task == "classification"
    ]
    policy = export_policy(band, family, kind, _entry_layers(manifest, scenes))
    lines: list[str] = []
    counts: Counter[str] = Counter()
    for rec in iter_records(built_dir, source):
        counts["records"] += 1
        try:
            conv = render(rec, _record_rng(seed, rec.uid), policy, root=root, dataset=_entry(rec))
            sample = _to_chat(conv, partial(_image_path, root=root, uid=rec.uid, crops=crops))
        except SkipSampleError:
            reason = "excluded"
        except (InputError, OSError) as exc:
            reason = "invalid"
            log.warning("skipped %s: %s", rec.uid, exc)
        except _SkipError as exc:
            reason = str(exc)
            log.warning("skipped %s: %s", rec.uid, exc.__cause__ or reason)
        else:
            lines.append(json.dumps(sample, ensure_ascii=False))
            counts["crops"] += sum(p.window is not None for p in conv.image_parts())
            continue
        counts[f"skipped_{rec.task}_{reason}"] += 1
    atomic_write_text(out, "".join(line + "\n" for line in lines))
    if fmt == "llamafactory":
        info = {
            out.stem: {
                "file_name": out.name,
                "formatting": "sharegpt",
                "columns": {"messages": "messages", "images": "images"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                         "assistant_tag": "assistant", "system_tag": "system"},
            }
        }  # fmt: skip
        atomic_write_text(out.parent / "dataset_info.json", json.dumps(info, indent=2) + "\n")
    skipped = sorted((k, v) for k, v in counts.items() if k.startswith("skipped_"))
    head = {"records": counts["records"], "samples": len(lines), "crops": counts["crops"]}
    return {**head, **dict(skipped)}
