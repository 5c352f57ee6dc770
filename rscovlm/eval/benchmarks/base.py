"""What a benchmark is: a reader of its RELEASED files that yields :class:`EvalSample`s, and the
scorer and aggregates of its official evaluation (EVAL_SUITE.md §3), strict beside official.

A sample never needs its image to exist: listing, sampling and scoring work from the annotation
files alone (images are read only when a model runs). So an :class:`EvalSample` keeps

- ``messages``: the prompt-only chat built by the SAME task builder as training
  (:mod:`rscovlm.data.tasks`), byte-identical with the official eval prompt. Its image parts
  carry the sizes the annotation gives, or ``(0, 0)`` where it gives none: the runner fills the
  real sizes when it reads the pixels (:meth:`EvalSample.conversation`), and the id never
  depends on them;
- ``reference``: the ground truth, JSON-ready;
- ``meta``: the benchmark's own record id (``record_id``, e.g. LRS-VQA's ``question_id``),
  ``category`` / ``source`` where the benchmark reports per category or source, and anything a
  scorer needs (original size, grid, …).

The ``id`` is a content hash (benchmark, record id, prompt text, image paths, reference), stable
across runs and machines, so predictions of one run can be scored by another and a rerun skips
exactly what is done.

Bad records (a missing field, an unreadable line, an empty category) are reported through the
:class:`~rscovlm.eval.read_report.ReadReport` handed to :meth:`Benchmark.samples` and skipped;
a bad model output is scored with a reason (``SampleScore.parsed`` False). Counts add up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rscovlm.data.conversation import Conversation, ImagePart, Message, TextPart, VideoPart
from rscovlm.errors import InputError
from rscovlm.eval.metrics.score import SampleScore
from rscovlm.eval.read_report import ReadReport
from rscovlm.resolution import (
    DEFAULT_FAMILY,
    PixelBand,
    exact_area_resize,
    get_family,
    smart_resize,
)

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "EvalSample",
    "find_file",
    "get_benchmark",
    "iter_json_records",
    "list_benchmarks",
    "register",
    "sample_id",
]

UNKNOWN_SIZE = (0, 0)
"""The size of an image part whose annotation gives none (filled when the image is read)."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _prompt_key(messages: Sequence[Message]) -> list[Any]:
    """What the id hashes of a prompt: roles, texts and image SOURCES (never sizes)."""
    out: list[Any] = []
    for msg in messages:
        parts: list[Any] = []
        for part in msg.content:
            if isinstance(part, TextPart):
                parts.append(["text", part.text])
            elif isinstance(part, ImagePart):
                parts.append(["image", part.source, part.window])
            elif isinstance(part, VideoPart):
                parts.append(["video", [f.source for f in part.frames]])
        out.append([msg.role, parts])
    return out


def sample_id(benchmark: str, record_id: Any, messages: Sequence[Message], reference: Any) -> str:
    """The content hash of a sample: 16 hex digits of SHA-256.

    >>> m = [Message("user", (TextPart("Is there a ship?"),))]
    >>> sample_id("demo", 7, m, "yes") == sample_id("demo", 7, list(m), "yes")
    True
    >>> sample_id("demo", 7, m, "yes") == sample_id("demo", 7, m, "no")
    False
    """
    key = _canonical([benchmark, record_id, _prompt_key(messages), reference])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class EvalSample:
    """One benchmark question (see the module docstring).

    Attributes:
        id: The content hash (:func:`sample_id`).
        benchmark: The registry name.
        messages: The prompt-only chat (no assistant turn).
        reference: The ground truth (JSON-ready).
        meta: ``record_id`` and whatever the scorer and the report need.
        family: The model family whose coordinate convention the prompt text uses.
    """

    id: str
    benchmark: str
    messages: tuple[Message, ...]
    reference: Any
    meta: dict[str, Any] = field(default_factory=dict)
    family: str = DEFAULT_FAMILY

    @classmethod
    def build(
        cls,
        benchmark: str,
        record_id: Any,
        messages: Sequence[Message],
        reference: Any,
        meta: dict[str, Any] | None = None,
        family: str = DEFAULT_FAMILY,
    ) -> EvalSample:
        """A sample with its id computed; ``meta['record_id']`` is set to ``record_id``."""
        return cls(
            sample_id(benchmark, record_id, messages, reference),
            benchmark,
            tuple(messages),
            reference,
            {"record_id": record_id, **(meta or {})},
            family,
        )

    def image_parts(self) -> list[ImagePart]:
        """Every image of the prompt, video frames included, in order."""
        out: list[ImagePart] = []
        for msg in self.messages:
            for part in msg.content:
                if isinstance(part, ImagePart):
                    out.append(part)
                elif isinstance(part, VideoPart):
                    out.extend(part.frames)
        return out

    def conversation(
        self, band: PixelBand | None = None, sizes: Sequence[tuple[int, int]] | None = None
    ) -> Conversation:
        """The prompt as a :class:`Conversation`, images resized into ``band``.

        Args:
            band: The pixel band the model sees (``None``: keep the parts' resized sizes).
            sizes: The original ``(width, height)`` of each image part in order, where the
                annotation gave none (read from the files by the caller).
        """
        family = get_family(self.family)
        known = iter(sizes) if sizes is not None else None
        fixed = self.meta.get("fixed_side")  # fixed-resolution variants: the exact S × S size

        def fix(part: ImagePart) -> ImagePart:
            orig = part.orig_size
            if known is not None:
                orig = next(known)
            if orig == UNKNOWN_SIZE:
                raise InputError(f"sample {self.id}: image {part.source} has no known size")
            if band is None and orig == part.orig_size:
                return part
            w, h = orig
            if fixed is not None:
                rh, rw = exact_area_resize(h, w, int(fixed), family.factor)
                resized = (rw, rh)
            elif band is not None:
                rh, rw = smart_resize(h, w, family.factor, band.min_pixels, band.max_pixels)
                resized = (rw, rh)
            else:
                resized = part.resized_size
            return dataclasses.replace(part, orig_size=(w, h), resized_size=resized)

        messages = []
        for msg in self.messages:
            if not any(isinstance(p, ImagePart | VideoPart) for p in msg.content):
                messages.append(msg)  # frozen and image-free: shared, not rebuilt
                continue
            content = []
            for part in msg.content:
                if isinstance(part, ImagePart):
                    part = fix(part)
                elif isinstance(part, VideoPart):
                    part = VideoPart(tuple(fix(f) for f in part.frames))
                content.append(part)
            messages.append(Message(msg.role, tuple(content)))
        return Conversation(messages, family, {"sample_id": self.id, **self.meta})

    def with_sizes(
        self, orig_size: Sequence[int] | None, resized_size: Sequence[int] | None
    ) -> EvalSample:
        """The sample with the image sizes a run recorded (``meta['orig_size']`` and
        ``meta['resized_size']``), which the scorers of box tasks map coordinates with; the
        id is unchanged (sizes never enter it)."""
        meta = dict(self.meta)
        if orig_size is not None:
            meta["orig_size"] = [int(v) for v in orig_size]
        if resized_size is not None:
            meta["resized_size"] = [int(v) for v in resized_size]
        return dataclasses.replace(self, meta=meta)

    def to_json(self) -> dict[str, Any]:
        """``{id, benchmark, messages, reference, meta}``: the line ``rscovlm eval samples``
        writes (messages in the Qwen/OpenAI chat shape, images by path)."""
        return {
            "id": self.id,
            "benchmark": self.benchmark,
            "messages": Conversation(list(self.messages)).to_messages(),
            "reference": self.reference,
            "meta": self.meta,
        }


class Benchmark(ABC):
    """One benchmark of the registry: reader, scorer and aggregates.

    Subclasses set the class attributes and implement the three methods; a benchmark with
    options (a subset, a resolution) takes them in ``__init__`` and is registered once per
    official name (``register("geoground_dota", lambda: GeoGround("dota"))``).
    """

    name: ClassVar[str] = ""
    task: ClassVar[str] = ""  # grounding | classification | vqa | uhr_vqa | caption | ...
    metric: ClassVar[str] = ""  # the official headline key, e.g. "acc@0.5", "OA", "CIDEr"
    files: ClassVar[str] = ""  # where its released files go under --root (a short sentence)

    @abstractmethod
    def samples(self, root: Path, report: ReadReport) -> Iterator[EvalSample]:
        """The benchmark's samples from its released layout under ``root``; bad records are
        counted in ``report`` and skipped.

        Raises:
            InputError: ``root`` does not hold the benchmark's files at all (one line saying
                which file was expected).
        """

    @abstractmethod
    def score(self, sample: EvalSample, output: str) -> SampleScore:
        """The strict and the official score of one model output (never raises on it)."""

    def perfect_output(self, sample: EvalSample) -> str:
        """The answer a perfect model would give (in the model's coordinates where boxes are
        involved): what the end-to-end checks and ``rscovlm eval samples`` users compare
        against. The default is the reference as text."""
        ref = sample.reference
        return ref if isinstance(ref, str) else json.dumps(ref)

    @abstractmethod
    def aggregate(self, samples: Sequence[EvalSample], scores: Sequence[SampleScore]) -> dict:
        """The report under the official key names, strict beside official
        (:func:`rscovlm.eval.metrics.score.build_report`)."""


BENCHMARKS: dict[str, Callable[[], Benchmark]] = {}
"""The closed registry: official name -> factory. Filled by the family modules on import of
:mod:`rscovlm.eval.benchmarks`."""


def register(name: str, factory: Callable[[], Benchmark]) -> None:
    """Add one benchmark under its official name (a name is registered once)."""
    if name in BENCHMARKS:
        raise ValueError(f"benchmark {name!r} is registered twice")
    BENCHMARKS[name] = factory


def list_benchmarks() -> list[str]:
    """Every registered name, sorted."""
    return sorted(BENCHMARKS)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark registered as ``name``.

    Raises:
        InputError: An unknown name (with the closest registered names).
    """
    factory = BENCHMARKS.get(name)
    if factory is None:
        from rapidfuzz import process

        close = [m[0] for m in process.extract(name, list(BENCHMARKS), limit=3, score_cutoff=60)]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"unknown benchmark {name!r}{hint} (rscovlm eval list shows them all)")
    return factory()


def find_file(root: Path, candidates: Sequence[str], benchmark: str) -> Path:
    """The first of ``candidates`` (paths under ``root``) that exists.

    Raises:
        InputError: None exists (one line naming what was expected).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{benchmark}: --root {root} is not a folder")
    for rel in candidates:
        path = root / rel
        if path.exists():
            return path
    raise InputError(f"{benchmark}: expected {' or '.join(candidates)} under {root}")


def iter_json_records(path: Path, report: ReadReport) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, record)`` of a json list or a JSONL file, in file order; a line or item that
    is not a JSON object is counted in ``report`` (with its line) and skipped.

    The index is the record's position (the line number from 0 for JSONL): the benchmark's own
    record id where the file gives none.
    """
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if path.suffix == ".json" or stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
        if isinstance(data, dict):  # {"images"/"data"/…: [...]} or {id: record}
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else list(data.values())
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a JSON list of records")
        for i, item in enumerate(data):
            if isinstance(item, dict):
                yield i, item
            else:
                report.bad(f"{path.name}[{i}]", "not a JSON object")
        return
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            report.bad(f"{path.name}:{i + 1}", f"not JSON ({err.msg})")
            continue
        if isinstance(item, dict):
            yield i, item
        else:
            report.bad(f"{path.name}:{i + 1}", "not a JSON object")
