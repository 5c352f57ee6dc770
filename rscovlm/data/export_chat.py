"""Fixed-resolution conversation export for ms-swift and LLaMA-Factory ("messages + images").

Each exported record becomes one JSON line::

    {"messages": [{"role": "system", "content": ...}, {"role": "user", "content": "<image>..."},
                  {"role": "assistant", "content": ...}], "images": ["/abs/path.png"], "id": ...}

Every record is rendered by :func:`rscovlm.data.render.render`, the code online training uses,
under the fixed policy of :func:`export_policy`: ``smart_resize`` into the pixel band (never a
random resize), plain text answers, no proxy or open-ended prompts, one box kind for detection
and grounding, coordinates in the model family's convention. Each record gets its own generator
seeded by ``(seed, uid)``, so an export is reproducible and a record renders the same whatever
else is exported (the draws left are the choice among several captions or referring
expressions).

**Images are written at the size the boxes assume.** Qwen2.5-VL box text is in absolute pixels
of the resized image, and each framework resizes by its own rules: LLaMA-Factory first shrinks
anything above ``image_max_pixels`` (default 768², with ``int()`` sides, not multiples of 28)
and then the checkpoint's processor rounds again; ms-swift resizes through ``qwen_vl_utils``
with its ``MAX_PIXELS``/``MIN_PIXELS`` (default: no upper limit that matters). Fed the original
file, neither gives the size the boxes were written for (DOTA P0706, 1111×1182, boxes for
952×1036: LLaMA-Factory defaults feed 756×784, ms-swift defaults 1120×1176). So every image part
-- whole image or Zoom-in Chain crop -- is written as a PNG into ``{out stem}_images/`` at its
part's ``resized_size``, by :func:`rscovlm.data.loader.load_images` (the pixels online training
sees). A size that is a multiple of 28 and inside every band involved is a fixed point of both
frameworks' resize, so their resize is a no-op when:

- LLaMA-Factory: ``image_max_pixels`` >= the largest exported image and ``image_min_pixels`` <=
  the smallest (its defaults cut the rscovlm band's larger images), and the checkpoint's
  ``preprocessor_config.json`` band contains them (the stock Qwen2.5-VL band 3136..12845056 and
  an rscovlm checkpoint's own band both do);
- ms-swift: ``MAX_PIXELS``/``MIN_PIXELS`` contain them (its defaults already do; the settings
  name the band anyway so a changed default cannot bite).

The export writes those settings beside the JSONL (``llamafactory.yaml``: the YAML keys to add
to a LLaMA-Factory training config; ``swift.sh``: the environment and arguments of ``swift
sft``) and the CLI prints them. ``cutoff_len`` / ``--max_length`` is the longest exported
sample's token count, measured with rscovlm's tokenizer (``measure``; the texts and token ids
are the ones both frameworks build from the sample): LLaMA-Factory's default ``cutoff_len``
2048 silently cuts dense detection answers (P0706 keeps 37 of 536 lines and no
``<|im_end|>``). Samples longer than ``max_length`` follow rscovlm's over-long rule
(:mod:`rscovlm.train.tokenize`), applied here so no framework ever truncates an answer:
``drop`` leaves them out, ``rerender`` renders the record again with the band's ``max_pixels``
halved (never below ``min_pixels``) until it fits, else drops it; both counted.

LLaMA-Factory reads datasets by name from ``dataset_info.json``: the export adds (or replaces)
its own entry and keeps every other one, so several exports can share one folder.

Records that render to no sample are skipped and counted as ``skipped_{task}_{reason}``:
``excluded`` (the options leave it out, e.g. an empty detection), ``invalid`` (the record cannot
be rendered: missing targets or class list), ``video`` (video items have no "messages + images"
form), ``media_tag`` (a literal ``<image>`` or ``<video>`` in the text), ``unreadable`` (an image
could not be read) and ``overlong`` (longer than ``max_length`` at every band tried).
``records = samples + skipped``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rscovlm.data.conversation import Conversation, ImagePart, TextPart
from rscovlm.data.loader import load_images
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import Record
from rscovlm.data.render import SkipSampleError, render
from rscovlm.data.shards import iter_records, read_manifest
from rscovlm.errors import InputError
from rscovlm.files import atomic_write_bytes, atomic_write_text
from rscovlm.resolution import RSCOVLM_BAND, PixelBand, get_family

__all__ = [
    "CHAT_FORMATS",
    "DATASET_INFO",
    "ChatExport",
    "Measure",
    "OverlongMode",
    "band_note",
    "export_chat",
    "export_policy",
    "merge_dataset_info",
    "settings_text",
]

CHAT_FORMATS = ("swift", "llamafactory")
IMAGE_TAG = "<image>"
#: Placeholders the tools read in message text; a literal one in a record's text is skipped.
_MEDIA_TAGS = (IMAGE_TAG, "<video>")
DATASET_INFO = "dataset_info.json"
"""LLaMA-Factory's dataset registry, in the folder named by its ``dataset_dir``."""

OverlongMode = Literal["drop", "rerender"]
Measure = Callable[[Conversation], int]
"""``measure(conversation) -> tokens``: the length of a rendered sample as the model reads it."""

#: LLaMA-Factory's and ms-swift's template names per model family.
_LLAMAFACTORY_TEMPLATES = {"qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_vl", "qwen3_vl": "qwen3_vl"}
_SWIFT_TEMPLATES = {"qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl"}

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


def _check_text(conv: Conversation) -> None:
    """Raise :class:`_SkipError` for a conversation with no "messages + images" form: a video
    item (``video``) or a literal ``<image>`` / ``<video>`` in the text, which the tools would
    take for media (``media_tag``)."""
    for msg in conv.messages:
        for part in msg.content:
            if isinstance(part, TextPart):
                if any(tag in part.text for tag in _MEDIA_TAGS):
                    raise _SkipError("media_tag")
            elif not isinstance(part, ImagePart):
                raise _SkipError("video")


def _to_chat(conv: Conversation, paths: list[str]) -> dict[str, Any]:
    """One rendered conversation as a messages + images sample; ``paths`` has one file per
    image part, in order."""
    messages: list[dict[str, str]] = []
    for msg in conv.messages:
        text = [p.text if isinstance(p, TextPart) else IMAGE_TAG for p in msg.content]
        messages.append({"role": msg.role, "content": "".join(text)})
    return {"messages": messages, "images": list(paths), "id": conv.meta.get("uid")}


def _record_rng(seed: int, uid: str) -> np.random.Generator:
    key = int.from_bytes(hashlib.blake2b(uid.encode("utf-8"), digest_size=8).digest(), "big")
    return np.random.default_rng([seed, key])


def _image_name(part: ImagePart) -> str:
    """The file of an image part at its resized size: the source's name, a short hash of
    ``(source, window, size)`` so distinct parts never collide, the window and the size."""
    width, height = part.resized_size
    key = json.dumps([part.source, part.window, [width, height]])
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=4).hexdigest()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(part.source).stem)[:80]
    window = "".join(f"_{v}" for v in part.window) if part.window is not None else ""
    return f"{safe}-{digest}{window}_{width}x{height}.png"


@dataclass
class _ImageWriter:
    """Writes each distinct image part once, at its resized size, into ``folder``."""

    root: Path
    folder: Path
    written: dict[str, tuple[int, int]] = field(default_factory=dict)
    """File name -> resized size (width, height), of every image written so far."""

    def __call__(self, conv: Conversation) -> list[str]:
        """The files of ``conv``'s image parts, writing those not yet written.

        Raises:
            _SkipError: An image cannot be read (reason ``unreadable``).
        """
        parts = conv.image_parts()
        names = [_image_name(p) for p in parts]  # type: ignore[arg-type]
        if any(n not in self.written for n in names):
            try:
                pixels = load_images(conv, self.root)
            except (InputError, OSError) as exc:
                raise _SkipError("unreadable") from exc
            self.folder.mkdir(parents=True, exist_ok=True)
            for name, img, part in zip(names, pixels, parts, strict=True):
                if name in self.written:
                    continue
                if img.size != tuple(part.resized_size):  # pragma: no cover - loader contract
                    raise AssertionError(f"{name}: loaded {img.size}, not {part.resized_size}")
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                atomic_write_bytes(self.folder / name, buf.getvalue())
                self.written[name] = img.size
        return [str(self.folder / n) for n in names]


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


def _sizes(conv: Conversation) -> tuple[tuple[int, int], ...]:
    return tuple(tuple(p.resized_size) for p in conv.image_parts())  # type: ignore[misc]


@dataclass
class ChatExport:
    """What :func:`export_chat` wrote: counts, the measured longest sample, the settings."""

    counts: dict[str, int]
    """``{"records", "samples", "images", "crops", "overlong_rerendered",
    "skipped_<task>_<reason>", ...}``: ``records = samples + skipped``."""
    path: Path
    """The JSONL."""
    settings_path: Path
    """The framework settings file (``{stem}.yaml`` for LLaMA-Factory, ``{stem}.sh`` swift)."""
    settings: str
    """Its text (what the CLI prints)."""
    longest: int | None
    """Tokens of the longest exported sample, ``None`` when no ``measure`` was given."""
    band: dict[str, Any] | None = None
    """What the boxes assume (:func:`band_note`); LLaMA-Factory: also in ``dataset_info.json``."""


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
    measure: Measure | None = None,
    max_length: int | None = None,
    overlong: OverlongMode = "drop",
    on_sample: Callable[[Conversation, dict[str, Any]], None] | None = None,
) -> ChatExport:
    """Write the JSONL, its images, the framework settings (and LLaMA-Factory's
    ``dataset_info.json`` entry); see the module docstring.

    Args:
        built_dir: A folder written by the build.
        out: The JSONL; its stem names the images folder, the settings and the dataset.
        fmt: ``swift`` or ``llamafactory``.
        band, family, kind, source, seed: The render (see :func:`export_policy`).
        measure: Token count of a rendered sample; without it nothing is measured, so neither
            the over-long rule nor ``cutoff_len`` can be applied (the settings say so).
        max_length: Longest sample kept, in tokens (``None``: no limit).
        overlong: ``drop`` or ``rerender`` a sample longer than ``max_length``.
        on_sample: Called with each exported conversation and its JSON sample.

    Raises:
        InputError: Unknown format, not a built dataset, or an unreadable ``dataset_info.json``.
    """
    if fmt not in CHAT_FORMATS:
        raise InputError(f"unknown chat format {fmt!r}; supported: {', '.join(CHAT_FORMATS)}")
    if overlong not in ("drop", "rerender"):
        raise InputError(f"overlong must be drop or rerender, got {overlong!r}")
    manifest = read_manifest(built_dir)
    root = Path(manifest["data_root"]).resolve()
    out = Path(out)
    writer = _ImageWriter(root, (out.parent / f"{out.stem}_images").resolve())
    scenes = [
        (r.source, r.label) for r in iter_records(built_dir, source) if r.task == "classification"
    ]
    layers = _entry_layers(manifest, scenes)
    policy = export_policy(band, family, kind, layers)
    lines: list[str] = []
    counts: Counter[str] = Counter()
    longest: int | None = None
    for rec in iter_records(built_dir, source):
        counts["records"] += 1
        try:
            conv = render(rec, _record_rng(seed, rec.uid), policy, root=root, dataset=_entry(rec))
            _check_text(conv)
            tokens: int | None = None
            if measure is not None:
                conv, tokens, rerendered = _fit(
                    rec, conv, measure, max_length, overlong,
                    lambda b: export_policy(b, family, kind, layers), band, seed, root,
                )  # fmt: skip
                counts["overlong_rerendered"] += rerendered
            sample = _to_chat(conv, writer(conv))
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
            if tokens is not None:
                longest = max(longest or 0, tokens)
            if on_sample is not None:
                on_sample(conv, sample)
            continue
        counts[f"skipped_{rec.task}_{reason}"] += 1
    atomic_write_text(out, "".join(line + "\n" for line in lines))
    areas = [w * h for w, h in writer.written.values()]
    pixels = (min(areas), max(areas)) if areas else None
    if fmt == "llamafactory":
        merge_dataset_info(
            out.parent / DATASET_INFO, out.stem, out.name, band=band_note(band, family, pixels)
        )
    text = settings_text(
        fmt,
        out.resolve(),
        family=family,
        band=band,
        image_pixels=pixels,
        longest=longest,
        max_length=max_length,
    )
    settings_path = out.parent / (f"{out.stem}.yaml" if fmt == "llamafactory" else f"{out.stem}.sh")
    atomic_write_text(settings_path, text)
    skipped = sorted((k, v) for k, v in counts.items() if k.startswith("skipped_"))
    head = {
        "records": counts["records"],
        "samples": len(lines),
        "images": len(writer.written),
        "crops": counts["crops"],
        "overlong_rerendered": counts["overlong_rerendered"],
    }
    note = band_note(band, family, pixels)
    return ChatExport({**head, **dict(skipped)}, out, settings_path, text, longest, note)


def _fit(
    rec: Record,
    conv: Conversation,
    measure: Measure,
    max_length: int | None,
    mode: OverlongMode,
    policy_for: Callable[[PixelBand], RenderPolicy],
    band: PixelBand,
    seed: int,
    root: Path,
) -> tuple[Conversation, int, int]:
    """rscovlm's over-long rule (:mod:`rscovlm.train.tokenize`) at export time.

    Returns:
        ``(conversation, tokens, 1 if it was re-rendered else 0)``.

    Raises:
        _SkipError: Longer than ``max_length`` (``drop``), or at every band down to
            ``min_pixels`` (``rerender``): reason ``overlong``.
    """
    tokens = measure(conv)
    if max_length is None or tokens <= max_length:
        return conv, tokens, 0
    if mode == "rerender":
        sizes, halvings = _sizes(conv), 0
        while sizes and band.max_pixels >> halvings > band.min_pixels:
            halvings += 1
            lower = PixelBand(band.min_pixels, max(band.min_pixels, band.max_pixels >> halvings))
            again = render(
                rec, _record_rng(seed, rec.uid), policy_for(lower), root=root, dataset=_entry(rec)
            )
            if _sizes(again) == sizes:
                continue  # the images were already below the lowered band
            sizes, tokens = _sizes(again), measure(again)
            if tokens <= max_length:
                return again, tokens, 1
    raise _SkipError("overlong")


def band_note(band: PixelBand, family: str, image_pixels: tuple[int, int] | None) -> dict[str, Any]:
    """What the exported boxes assume, for whoever trains on the export: the ``rscovlm`` entry
    of ``dataset_info.json``.

    Qwen2.5-VL boxes are absolute pixels of the image as written, so a trainer that resizes the
    images again (its own default band) silently mislabels every box; this says which band and
    which image sizes the boxes were written for. LLaMA-Factory reads only the keys it knows
    from an entry (``DatasetAttr.join``), so the extra key is ignored there.
    """
    return {
        "family": get_family(family).name,
        "pixel_band": [band.min_pixels, band.max_pixels],
        "image_pixels": list(image_pixels) if image_pixels else None,
        "boxes": "absolute pixels of the exported images (feed them unresized)",
    }


def merge_dataset_info(
    path: Path, name: str, file_name: str, *, band: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Add (or replace) the entry ``name`` of LLaMA-Factory's ``dataset_info.json``, keeping
    every other entry: exports that share a folder all stay registered. ``band`` (from
    :func:`band_note`) is stored under the entry's ``rscovlm`` key.

    Raises:
        InputError: The existing file is not a JSON object.
    """
    info: dict[str, Any] = {}
    if path.is_file():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"{path} is not valid JSON ({exc}); fix or remove it") from exc
        if not isinstance(info, dict):
            raise InputError(f"{path} is not a JSON object of datasets; fix or remove it")
    info[name] = {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                 "assistant_tag": "assistant", "system_tag": "system"},
    }  # fmt: skip
    if band is not None:
        info[name]["rscovlm"] = band
    atomic_write_text(path, json.dumps(info, indent=2) + "\n")
    return info


def settings_text(
    fmt: str,
    out: Path,
    *,
    family: str,
    band: PixelBand,
    image_pixels: tuple[int, int] | None,
    longest: int | None,
    max_length: int | None,
) -> str:
    """The settings a framework needs to feed the exported images unchanged and never cut a
    sample (module docstring): LLaMA-Factory YAML keys, or ms-swift's environment and arguments.

    Args:
        fmt: ``llamafactory`` or ``swift``.
        out: The exported JSONL (absolute).
        family: Model family (picks the template).
        band: The export band.
        image_pixels: ``(smallest, largest)`` area of the written images.
        longest: Tokens of the longest sample, if measured.
        max_length: The over-long limit the export applied.
    """
    fam = get_family(family).name
    low = min(band.min_pixels, image_pixels[0]) if image_pixels else band.min_pixels
    high = max(band.max_pixels, image_pixels[1]) if image_pixels else band.max_pixels
    why_len = (
        f"the longest sample is {longest} tokens (rscovlm's tokenizer)"
        + (f";\n#   samples over {max_length} were dropped or re-rendered" if max_length else "")
        if longest is not None
        else "not measured: install rscovlm[train] so the export can count tokens"
    )
    if fmt == "llamafactory":
        lines = [
            f"# LLaMA-Factory settings for {out.name}, written by `rscovlm data export`.",
            f"# Images in {out.stem}_images/ are already at the size the boxes assume; these keys",
            "# keep LLaMA-Factory's own resize a no-op (its default image_max_pixels 589824",
            "# shrinks them). The checkpoint's preprocessor_config.json band must contain",
            f"# {low}..{high} pixels (the stock Qwen2.5-VL 3136..12845056 does).",
            "# cutoff_len: LLaMA-Factory's default 2048 silently cuts dense detection answers;",
            f"#   {why_len}.",
            f"dataset: {out.stem}",
            f"dataset_dir: {out.parent}",
            f"template: {_LLAMAFACTORY_TEMPLATES[fam]}",
            f"image_max_pixels: {high}",
            f"image_min_pixels: {low}",
        ]
        if longest is not None:
            lines.append(f"cutoff_len: {longest}")
        return "\n".join(lines) + "\n"
    args = [f"--dataset {out}", f"--template {_SWIFT_TEMPLATES[fam]}"]
    if longest is not None:
        args.append(f"--max_length {longest}")
    return (
        "\n".join(
            [
                f"# ms-swift settings for {out.name}, written by `rscovlm data export`.",
                f"# Images in {out.stem}_images/ are already at the size the boxes assume;",
                "# MAX_PIXELS and MIN_PIXELS hold them so qwen_vl_utils' resize is a no-op.",
                f"# --max_length: {why_len}.",
                f"export MAX_PIXELS={high}",
                f"export MIN_PIXELS={low}",
                f'SWIFT_ARGS="{" ".join(args)}"',
                "# swift sft --model <checkpoint> $SWIFT_ARGS ...",
            ]
        )
        + "\n"
    )
