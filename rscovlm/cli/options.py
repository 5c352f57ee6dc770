"""The command line's one vocabulary: typed choices, the model option group, example blocks.

Every option that several commands share is defined here once, so it means the same thing and
offers the same choices everywhere:

- choices are ``str`` enums: ``--help`` lists them (``--box <quad|hbb|obb>``) and typer rejects
  a wrong value with its usage error and exit code 2 — the one way choices are checked;
- ``--out`` is always a folder; a command that writes one file writes a fixed, documented name
  inside it;
- :func:`model_options` gives ``chat``, ``zoom``, ``detect`` and ``serve`` the same
  ``--model/--backend/--base-url/--api-key-env/--family/--device/--dtype/--adapter`` group and
  builds the backend from it, refusing an option the chosen backend cannot take;
- :func:`examples` turns command lines into the help's ``Examples:`` block, kept line by line
  (click rewraps every other paragraph, which merged examples into one uncopyable line).

The enums copy their values from library constants that live on floors whose import would cost
``--help`` most of a second; ``tests/cli/test_options.py`` checks that they stay equal.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from rscovlm.errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from rscovlm.model.backends import Backend

__all__ = [
    "BackendName",
    "BoxKind",
    "DType",
    "DetectBox",
    "DetectFormat",
    "Family",
    "ModelOptions",
    "PlainConsole",
    "announce_generation",
    "examples",
    "make_console",
    "make_text_console",
    "max_new_tokens_option",
    "model_options",
    "out_option",
    "quiet_progress_bars",
    "still_working",
]

F = TypeVar("F", bound=Callable[..., Any])


class BackendName(str, Enum):
    """:data:`rscovlm.model.backends.BACKENDS`."""

    hf = "hf"
    vllm = "vllm"
    openai = "openai"
    replay = "replay"


class DType(str, Enum):
    """:data:`rscovlm.model.loading.DTYPE_CHOICES` (``auto``: as stored in the checkpoint)."""

    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class Family(str, Enum):
    """:data:`rscovlm.resolution.MODEL_FAMILIES`: box coordinates and image sizes follow it."""

    qwen2_vl = "qwen2_vl"
    qwen2_5_vl = "qwen2_5_vl"
    qwen3_vl = "qwen3_vl"


class BoxKind(str, Enum):
    """The box kinds of :mod:`rscovlm.geometry`."""

    quad = "quad"
    hbb = "hbb"
    obb = "obb"


class Overlong(str, Enum):
    """What to do with a sample longer than the token limit (``data.overlong``)."""

    drop = "drop"
    rerender = "rerender"


class DetectFormat(str, Enum):
    """:data:`rscovlm.pipelines.detect_outputs.DETECT_FORMATS`, and ``all`` of them."""

    all = "all"
    jsonl = "jsonl"
    task1 = "task1"
    coco = "coco"
    geojson = "geojson"


class GeoCrs(str, Enum):
    """``rscovlm.formats.results.GEOJSON_CRS``: RFC 7946 WGS 84, or the raster's own CRS."""

    wgs84 = "wgs84"
    native = "native"


class DetectBox(str, Enum):
    """The box kinds the detection pipeline prompts for (``pipelines.detect.DetectBox``)."""

    quad = "quad"
    hbb = "hbb"


DEFAULT_MAX_NEW_TOKENS = 16384
"""``rscovlm.model.backends.base.MAX_NEW_TOKENS_CAP``, repeated here for the help text: importing
the backends would make every ``--help`` pay for the data layer (tests/cli/test_help.py checks
the two agree)."""

LOG_WIDTH = 100
"""Console width when the stream is not a terminal. Prose is never wrapped there (``soft_wrap``:
a log line cut at 80 columns breaks ``grep | awk``); the width only sizes rules (section
headings). rscovlm's tables are plain text from :mod:`rscovlm.tables`, never cut by it."""


def make_console(stderr: bool = False) -> Console:
    """The rich console of a command: the terminal's width on a TTY; in a pipe or a log file no
    wrapping, no colour codes, no padding, so every line is one greppable record."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=LOG_WIDTH, soft_wrap=True, no_color=True)


class PlainConsole:
    """What a piped :func:`make_console` does for plain lines (``markup``/``highlight`` off,
    ``soft_wrap`` on), without importing rich (60 ms cold; ``eval det`` is a batch tool whose
    whole run is about a second): each text goes out as it is, one line, no colour codes."""

    def __init__(self, width: int = LOG_WIDTH) -> None:
        self.width = width
        self._stream = sys.stdout

    def print(self, text: str = "", **_: Any) -> None:
        """``console.print(text, markup=False, highlight=False, soft_wrap=True)``."""
        self._stream.write(f"{text}\n")


def make_text_console() -> Console | PlainConsole:
    """:func:`make_console` for commands that print only plain text lines: rich on a terminal,
    :class:`PlainConsole` (the same bytes, no rich import) in a pipe or a log file."""
    return make_console() if sys.stdout.isatty() else PlainConsole()


def quiet_progress_bars() -> None:
    """Silence the hub's and transformers' tqdm bars (loading, saving shards) when stderr is not
    a terminal: in a log they are hundreds of carriage-return fragments interleaved with ours."""
    import os

    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def announce_generation(backend: Any, params: Any, per: str = "") -> None:
    """Say on stderr, before a generation starts, the token cap it runs under (the default cap is
    large: a runaway answer can take minutes on a CPU, and the user should know what bounds it).
    ``per`` names the unit one cap applies to (``"patch"`` for ``detect``: every patch is its own
    generation, so the cap bounds each of them, not the image)."""
    resolved = params.resolve(getattr(backend, "policy", None))
    unit = f" per {per}" if per else ""
    typer.echo(
        f"generating: at most {resolved.max_new_tokens:,} new tokens{unit} (--max-new-tokens)",
        err=True,
    )


@contextlib.contextmanager
def still_working(what: str, every: float = 30.0) -> Iterator[None]:
    """Print ``<what>: still working (N s)`` on stderr every ``every`` seconds until the block
    ends, so a long generation is never minutes of silence in a terminal or a log."""
    import threading
    import time

    stop = threading.Event()
    start = time.monotonic()

    def beat() -> None:
        while not stop.wait(every):
            typer.echo(f"{what}: still working ({time.monotonic() - start:.0f} s)", err=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def out_option(text: str = "Output folder (created).") -> Any:
    """``--out DIR``, required: every command's output goes into a folder."""
    return typer.Option(..., "--out", metavar="DIR", help=text)


def max_new_tokens_option() -> Any:
    """``--max-new-tokens``: the cap on generated tokens (default: the backend's)."""
    return typer.Option(
        None,
        "--max-new-tokens",
        min=1,
        help=f"Tokens generated at most (default: {DEFAULT_MAX_NEW_TOKENS:,}).",
    )


def examples(*lines: str) -> str:
    """The ``Examples:`` epilog of a command: whole command lines, one per line.

    ``\\b`` stops click from rewrapping the block, so every line stays copyable.
    """
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


@dataclass(frozen=True)
class ModelOptions:
    """What the model option group parsed; ``None`` means "not given".

    Attributes:
        model: Checkpoint directory (``openai``: the served model name).
        backend: Which backend runs it.
        base_url: ``openai``: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        api_key_env: ``openai``: environment variable of the API key.
        family: ``openai``: the served model's family (the local backends read it from the
            checkpoint).
        device: ``hf``: torch device (default ``cpu``).
        dtype: ``hf``, ``vllm``: weight dtype (default ``auto``).
        adapter: ``hf``, ``vllm``: PEFT adapter directory (vLLM: LoRA only).
    """

    model: str
    backend: BackendName = BackendName.hf
    base_url: str | None = None
    api_key_env: str | None = None
    family: Family | None = None
    device: str | None = None
    dtype: DType | None = None
    adapter: str | None = None

    def check(self) -> None:
        """Refuse, in one line, an option the chosen backend cannot take or one it lacks.

        Raises:
            InputError: e.g. ``--adapter`` with ``--backend openai``; ``openai`` without
                ``--base-url``.
        """
        takes = _TAKES[self.backend]
        for name in ("base_url", "api_key_env", "family", "device", "dtype", "adapter"):
            if getattr(self, name) is not None and name not in takes:
                flag = "--" + name.replace("_", "-")
                raise InputError(
                    f"{flag} cannot be used with --backend {self.backend.value} "
                    f"(it takes {', '.join('--' + t.replace('_', '-') for t in sorted(takes))})"
                )
        if self.backend is BackendName.openai and not self.base_url:
            raise InputError("--backend openai needs --base-url (the API root, e.g. .../v1)")

    def build(self, *, batch_size: int | None = None) -> Backend:
        """The backend, after :meth:`check`.

        ``batch_size`` is what the command hands the backend per ``generate`` call (``eval
        run --batch-size``): ``hf`` then runs exactly that many conversations per forward
        batch (not its own default of 8, which would split every runner batch), ``openai``
        keeps that many requests in flight; ``vllm`` schedules whatever list it gets and the
        replay backend has no batches, so both take the list as it comes.

        Raises:
            InputError: A bad option (see :meth:`check`).
            MissingExtraError: The backend's stack is missing (``hf``: extra ``train``;
                ``vllm``: extra ``vllm``).
        """
        from rscovlm.model.backends import make_backend

        self.check()
        dtype = (self.dtype or DType.auto).value
        options: dict[str, Any]
        if self.backend is BackendName.hf:
            options = {"device": self.device or "cpu", "dtype": dtype, "adapter": self.adapter}
            if batch_size is not None:
                options["batch_size"] = batch_size
        elif self.backend is BackendName.vllm:
            options = {"dtype": dtype, "adapter": self.adapter}  # LoRA through vLLM
        elif self.backend is BackendName.replay:
            options = {"family": (self.family or Family.qwen2_5_vl).value}
        else:
            family = (self.family or Family.qwen2_5_vl).value
            options = {"base_url": self.base_url, "family": family}
            if self.api_key_env is not None:
                options["api_key_env"] = self.api_key_env
            if batch_size is not None:
                options["concurrency"] = batch_size
        return make_backend(self.backend.value, self.model, **options)


_TAKES: dict[BackendName, frozenset[str]] = {
    BackendName.hf: frozenset({"device", "dtype", "adapter"}),
    BackendName.vllm: frozenset({"dtype", "adapter"}),
    BackendName.openai: frozenset({"base_url", "api_key_env", "family"}),
    BackendName.replay: frozenset({"family"}),
}

_KW = inspect.Parameter.KEYWORD_ONLY
_MODEL_PARAMETERS = [
    inspect.Parameter(
        "model",
        _KW,
        annotation=Annotated[
            str,
            typer.Option(
                "--model",
                help="Checkpoint directory, or a hub id in the local HF cache "
                "(Qingyun/RSCoVLM-7B-2512; see `rscovlm model`); openai: the served model name; "
                "replay: a predictions JSONL.",
            ),
        ],
    ),
    inspect.Parameter(
        "backend",
        _KW,
        default=BackendName.hf,
        annotation=Annotated[BackendName, typer.Option("--backend", help="What runs the model.")],
    ),
    inspect.Parameter(
        "base_url",
        _KW,
        default=None,
        annotation=Annotated[
            str | None, typer.Option("--base-url", help="openai: the API root (http://…/v1).")
        ],
    ),
    inspect.Parameter(
        "api_key_env",
        _KW,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--api-key-env", help="openai: env variable of the API key (OPENAI_API_KEY)."
            ),
        ],
    ),
    inspect.Parameter(
        "family",
        _KW,
        default=None,
        annotation=Annotated[
            Family | None,
            typer.Option(
                "--family", help="openai, replay: the served model's family (qwen2_5_vl)."
            ),
        ],
    ),
    inspect.Parameter(
        "device",
        _KW,
        default=None,
        annotation=Annotated[str | None, typer.Option("--device", help="hf: torch device (cpu).")],
    ),
    inspect.Parameter(
        "dtype",
        _KW,
        default=None,
        annotation=Annotated[
            DType | None, typer.Option("--dtype", help="hf, vllm: weight dtype (auto: as stored).")
        ],
    ),
    inspect.Parameter(
        "adapter",
        _KW,
        default=None,
        annotation=Annotated[
            str | None, typer.Option("--adapter", help="hf, vllm: PEFT (LoRA) adapter directory.")
        ],
    ),
]
_MODEL_FIELDS = tuple(f.name for f in fields(ModelOptions))  # == the parameters, in order


def model_options(command: F) -> F:
    """Give ``command`` the model option group; it receives them as one ``models`` argument.

    The command declares ``models: ModelOptions`` (keyword-only, last) and typer sees the eight
    options in its place, first in ``--help``, so the group is written once for the four
    commands that run a model. (typer passes every parameter by keyword, so reordering them
    changes nothing but the help; the command's arguments keep their relative order.)
    """
    signature = inspect.signature(command)
    own = [p.replace(kind=_KW) for p in signature.parameters.values() if p.name != "models"]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        group = ModelOptions(**{name: kwargs.pop(name) for name in _MODEL_FIELDS})
        return command(**kwargs, models=group)

    wrapper.__signature__ = signature.replace(parameters=[*_MODEL_PARAMETERS, *own])  # type: ignore[attr-defined]
    annotations = {k: v for k, v in command.__annotations__.items() if k != "models"}
    wrapper.__annotations__ = {**annotations, **{p.name: p.annotation for p in _MODEL_PARAMETERS}}
    return wrapper  # type: ignore[return-value]
