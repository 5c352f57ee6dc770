"""The one safe way to read a JSON, JSONL, YAML or text file that someone else wrote.

Every reader of rscovlm that takes a file from outside — dataset annotations, prediction files,
recipes and configs, run folders — reads it here, so a hostile or broken file fails the same
way everywhere: as an :class:`~rscovlm.errors.InputError` naming the file and the reason (the
callers turn it into a reported bad entry, or one line and exit 2), never a traceback, never
unbounded memory, never code run. The limits (:class:`Limits`):

* size: a file (and one JSONL line) larger than the limit is refused before it is read;
* text: bytes that are not UTF-8 are an error (or replaced, where the caller says so);
* depth: containers nested deeper than ``max_depth`` are refused *before* parsing (the stdlib
  parsers recurse, and a 100,000-deep ``[[[...`` would otherwise end in ``RecursionError``,
  while a 900-deep one would pass and crash whatever walks it later);
* numbers: an integer literal longer than ``max_digits`` is refused (a 400-digit "id" overflows
  every float conversion after it);
* YAML: only plain data (``yaml.SafeLoader``: no ``!!python/object``), and the document as
  expanded through its aliases may hold at most ``max_nodes`` nodes, which stops the
  "billion laughs" alias tree (520 bytes that expand to gigabytes) at composition time.

:func:`confine` bounds every read to a folder: inside it, a path whose resolved location lies
outside the folder (through a symlink or ``..``) is refused, unless symlinks are explicitly
followed.

>>> loads_json('{"a": [1, 2.5, "x"]}', "example")
{'a': [1, 2.5, 'x']}
>>> loads_json("[" * 200 + "]" * 200, "example")
Traceback (most recent call last):
rscovlm.errors.InputError: example: nested deeper than 64 levels
>>> loads_json("1" * 400, "example")
Traceback (most recent call last):
rscovlm.errors.InputError: example: a number of 400 digits (at most 64 are read)
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where YAML is read: 17 ms no JSON reader should pay
    import yaml

from rscovlm.errors import InputError

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "check_inside",
    "confine",
    "iter_jsonl_lines",
    "json_depth_exceeds",
    "loads_json",
    "loads_yaml",
    "printable",
    "read_bytes",
    "read_json",
    "read_text",
    "read_yaml",
]


@dataclass(frozen=True)
class Limits:
    """Bounds on what one read may cost (see the module docstring)."""

    max_bytes: int = 4 << 30
    """Largest file read whole (4 GiB: the largest released COCO-style annotation is ~1 GiB)."""
    max_line_bytes: int = 64 << 20
    """Largest single JSONL line."""
    max_depth: int = 64
    """Deepest container nesting; real annotation and config files stay below 10."""
    max_digits: int = 64
    """Longest integer literal (a 64-bit id has 20 digits)."""
    max_nodes: int = 1_000_000
    """Most YAML nodes after alias expansion (a large inline mixture has a few thousand)."""


_BLOCK = 1 << 24
"""Bytes read per call (files are read block by block)."""

DEFAULT_LIMITS = Limits()
CONFIG_LIMITS = Limits(max_bytes=64 << 20, max_nodes=200_000)
"""Limits of configs and recipes: small hand-written files."""


def printable(text: str | os.PathLike[str]) -> str:
    """``text`` with any undecodable byte of a file name shown as ``\\xNN``.

    File names that are not valid UTF-8 reach Python as lone surrogates, which no UTF-8
    writer accepts (pydantic's serializer, ``json.dumps(ensure_ascii=False)``, a log file).

    >>> printable("P\\udcff01.png")
    'P\\\\xff01.png'
    """
    raw = os.fsencode(os.fspath(text))
    return raw.decode("utf-8", errors="backslashreplace")


# --- confinement to a folder ----------------------------------------------------------------


@dataclass(frozen=True)
class _Confinement:
    root: Path
    follow_symlinks: bool


_CONFINED: contextvars.ContextVar[_Confinement | None] = contextvars.ContextVar(
    "rscovlm_confined", default=None
)


@contextlib.contextmanager
def confine(root: str | Path, *, follow_symlinks: bool = False) -> Iterator[None]:
    """Within the block, every read of this module must stay inside ``root``.

    ``follow_symlinks=True`` checks the path only lexically (``..`` still cannot leave), so
    datasets linked into the root are read where the links point.
    """
    token = _CONFINED.set(_Confinement(Path(os.path.abspath(root)), follow_symlinks))
    try:
        yield
    finally:
        _CONFINED.reset(token)


def check_inside(path: str | Path, root: str | Path, *, follow_symlinks: bool = False) -> str:
    """``""`` when ``path`` lies inside ``root``, else the reason it does not.

    Without ``follow_symlinks`` both sides are resolved, so a symlink inside the root that
    points out of it counts as outside; with it, only ``..`` and absolute paths are refused.
    """
    root_abs = Path(os.path.abspath(root))
    lexical = Path(os.path.normpath(os.path.join(root_abs, path)))
    if not lexical.is_relative_to(root_abs):
        return f"{printable(path)} escapes the data root"
    if follow_symlinks:
        return ""
    if not lexical.resolve().is_relative_to(root_abs.resolve()):
        return (
            f"{printable(path)} is a symlink out of the data root "
            "(data build --follow-symlinks reads such links)"
        )
    return ""


def _check_confined(path: Path) -> None:
    confinement = _CONFINED.get()
    if confinement is None:
        return
    reason = check_inside(path, confinement.root, follow_symlinks=confinement.follow_symlinks)
    if reason:
        raise InputError(reason)


# --- bytes and text ---------------------------------------------------------------------------


def read_bytes(path: str | Path, label: str = "file", limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The bytes of ``path``, within the size limit and the confinement.

    Raises:
        InputError: Outside the confinement, not a readable file, or larger than the limit.
    """
    path = Path(path)
    _check_confined(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limits.max_bytes:
                raise InputError(
                    f"{label} {printable(path)} is {size} bytes, over the limit {limits.max_bytes}"
                )
            # read in blocks: ``read(limit)`` would allocate the whole limit up front, and a
            # file that grows while it is read must still stop at the limit
            blocks, total = [], 0
            step = min(max(size + 1, 1 << 16), _BLOCK)  # the file's size, when it tells
            while block := handle.read(min(step, limits.max_bytes + 1 - total)):
                blocks.append(block)
                total += len(block)
                if total > limits.max_bytes:
                    raise InputError(
                        f"{label} {printable(path)} grew over the limit {limits.max_bytes} bytes"
                    )
            return b"".join(blocks)
    except IsADirectoryError:
        raise InputError(f"{label} {printable(path)} is a folder, not a file") from None
    except OSError as exc:
        raise InputError(f"cannot read {label} {printable(path)}: {exc.strerror or exc}") from None


def _decode(data: bytes, where: str, errors: str = "strict") -> str:
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{where} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
        ) from None


def read_text(
    path: str | Path,
    label: str = "file",
    *,
    errors: str = "strict",
    limits: Limits = DEFAULT_LIMITS,
) -> str:
    """The UTF-8 text of ``path`` (``errors="replace"`` for formats that tolerate bad bytes).

    Raises:
        InputError: As :func:`read_bytes`, or not UTF-8 (with ``errors="strict"``).
    """
    return _decode(read_bytes(path, label, limits), f"{label} {printable(path)}", errors)


# --- JSON ---------------------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_CHUNK = 1 << 24


def json_depth_exceeds(text: str, max_depth: int) -> bool:
    """Whether JSON ``text`` nests containers deeper than ``max_depth`` (strings ignored).

    Cheap on ordinary files: a text with fewer brackets than the limit is not scanned; the scan
    itself is a regex and a running counter per chunk, linear in the text.
    """
    opens = text.count("[") + text.count("{")
    if opens <= max_depth:
        return False
    import numpy as np  # numpy is a core dependency; imported here, only for bracket-rich texts

    stripped = _JSON_STRING.sub("", text).encode("utf-8")  # brackets in strings do not nest
    step = np.zeros(256, dtype=np.int8)
    step[[ord("["), ord("{")]] = 1
    step[[ord("]"), ord("}")]] = -1
    depth = 0
    for start in range(0, len(stripped), _CHUNK):
        chunk = np.frombuffer(stripped, dtype=np.uint8, count=min(_CHUNK, len(stripped) - start),
                              offset=start)  # fmt: skip
        running = np.cumsum(step[chunk], dtype=np.int64) + depth
        if len(running) and int(running.max()) > max_depth:
            return True
        depth = int(running[-1]) if len(running) else depth
    return False


class _NumberTooLongError(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def _parse_int(limits: Limits) -> Any:
    def parse(literal: str) -> int:
        digits = len(literal.lstrip("-"))
        if digits > limits.max_digits:
            raise _NumberTooLongError(digits)
        return int(literal)

    return parse


def _parse_float(limits: Limits) -> Any:
    def parse(literal: str) -> float:
        if len(literal) > limits.max_digits * 2:
            raise _NumberTooLongError(len(literal))
        return float(literal)

    return parse


def loads_json(text: str, where: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Parse JSON ``text`` within the limits.

    ``NaN`` and ``Infinity`` are read as floats (readers check finiteness where it matters and
    report the entry); everything else that is not plain JSON is an error.

    Raises:
        InputError: ``where: reason`` — not JSON (with line and column), too deep, a number
            too long.
    """
    if json_depth_exceeds(text, limits.max_depth):
        raise InputError(f"{where}: nested deeper than {limits.max_depth} levels")
    try:
        return json.loads(text, parse_int=_parse_int(limits), parse_float=_parse_float(limits))
    except _NumberTooLongError as exc:
        raise InputError(
            f"{where}: a number of {exc.digits} digits (at most {limits.max_digits} are read)"
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise InputError(f"{where}: nested too deeply") from None


def read_json(path: str | Path, label: str = "json file", limits: Limits = DEFAULT_LIMITS) -> Any:
    """The JSON document of a file (UTF-8, within the limits).

    Raises:
        InputError: Unreadable, not UTF-8, not JSON or over a limit; the message names the file.
    """
    text = read_text(path, label, limits=limits)
    return loads_json(text, f"{label} {printable(path)}", limits)


def iter_jsonl_lines(
    path: str | Path, label: str = "JSONL file", limits: Limits = DEFAULT_LIMITS
) -> Iterator[tuple[int, Any, str | None]]:
    """``(line number, value, None)`` per JSON line, ``(line number, None, reason)`` per bad one.

    Blank lines are skipped. One bad line (not JSON, not UTF-8, too deep, too long) never
    stops the file; only a file that cannot be opened at all raises.

    Raises:
        InputError: The file cannot be opened, or is outside the confinement.
    """
    path = Path(path)
    _check_confined(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the ``with`` below
    except IsADirectoryError:
        raise InputError(f"{label} {printable(path)} is a folder, not a file") from None
    except OSError as exc:
        raise InputError(f"cannot read {label} {printable(path)}: {exc.strerror or exc}") from None
    with handle:
        lineno = 0
        while True:
            raw = handle.readline(limits.max_line_bytes + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > limits.max_line_bytes and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                    raw = handle.readline(limits.max_line_bytes + 1)
                yield lineno, None, f"line longer than {limits.max_line_bytes} bytes"
                continue
            if not raw.strip():
                continue
            try:
                text = _decode(raw, f"line {lineno}")
                yield lineno, loads_json(text, f"line {lineno}", limits), None
            except InputError as exc:
                yield lineno, None, str(exc).removeprefix(f"line {lineno}: ")


# --- YAML ---------------------------------------------------------------------------------------


@functools.cache
def _bounded_loader() -> type[yaml.SafeLoader]:
    """``yaml.SafeLoader`` that stops at ``max_depth`` nesting while composing (built on first
    use, so that importing this module does not import PyYAML)."""
    import yaml

    class _BoundedLoader(yaml.SafeLoader):
        max_depth = DEFAULT_LIMITS.max_depth

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self._depth += 1
            try:
                if self._depth > self.max_depth:
                    mark = self.peek_event().start_mark
                    raise InputError(
                        f"nested deeper than {self.max_depth} levels (line {mark.line + 1})"
                    )
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return _BoundedLoader


def _expanded_size(root: yaml.Node, cap: int) -> int:
    """Nodes of the document with every alias expanded (stops counting past ``cap``).

    Aliases compose to the same node object, so sizes are memoised per node: the count is
    linear in the composed graph, never in its (possibly exponential) expansion.
    """
    import yaml

    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if children_done:
            size[id(node)] = min(cap + 1, 1 + sum(size[id(c)] for c in children))
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    return size[id(root)]


def loads_yaml(text: str, where: str, limits: Limits = CONFIG_LIMITS) -> Any:
    """Parse one YAML document of plain data within the limits (``None`` for an empty one).

    Raises:
        InputError: ``where: reason`` — not YAML (with line and column), a tag that is not plain
            data (``!!python/object``), too deep, or too large once its aliases are expanded.
    """
    import yaml

    loader_cls = type("_Loader", (_bounded_loader(),), {"max_depth": limits.max_depth})
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, limits.max_nodes) > limits.max_nodes:
            raise InputError(
                f"{where}: over {limits.max_nodes} values once its aliases are expanded "
                "(an alias tree?)"
            )
        return loader.construct_document(node)
    except InputError as exc:
        message = str(exc)
        raise InputError(message if message.startswith(where) else f"{where}: {message}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{where} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise InputError(f"{where}: nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: the problem and where it is."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"


def read_yaml(path: str | Path, label: str = "YAML file", limits: Limits = CONFIG_LIMITS) -> Any:
    """The YAML (or JSON) document of a file, as plain data, within the limits.

    Raises:
        InputError: Unreadable, not UTF-8, not YAML or over a limit; the message names the file.
    """
    text = read_text(path, label, limits=limits)
    return loads_yaml(text, f"{label} {printable(path)}", limits)
