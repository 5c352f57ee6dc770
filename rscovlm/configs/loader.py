"""The one config loader: resolve a name or a path, read the mapping, override, validate.

Every config kind of rscovlm (data build recipes, mixtures, training runs, DeepSpeed JSONs, eval
options) is read by this module, so they all accept the same things and fail the same way:

* a reference is a file path or the name of a shipped config of that kind (``tiny_cpu``, also
  ``tiny_cpu.yaml`` and the former ``rscovlm/configs/data/<name>.yaml`` paths, so commands
  written against the old layout keep working);
* the file is read by :mod:`rscovlm.safe_read` (``yaml.SafeLoader``, UTF-8, bounded size, depth
  and alias expansion; JSON is YAML, so DeepSpeed files go the same way);
* dotted ``key=value`` overrides are applied to the raw mapping *before* validation, so a
  misspelt override fails exactly like a misspelt key in the file;
* validation is the kind's pydantic schema, and any failure is ONE line naming the file and the
  dotted key (``train config cfg.yaml: optim.lrr: unknown key; did you mean 'lr'?``).

The schemas live with their owners on upper floors (``rscovlm.data.recipe`` …); they register
themselves here with :func:`register`, which keeps this module on the ground floor.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from rscovlm import safe_read
from rscovlm.errors import InputError

__all__ = [
    "KINDS",
    "ConfigKind",
    "apply_overrides",
    "describe",
    "error_line",
    "header",
    "header_commands",
    "infer_kind",
    "load",
    "read_mapping",
    "register",
    "resolve",
    "schema_of",
    "shipped",
    "shipped_dir",
    "validate",
]

Model = TypeVar("Model", bound=BaseModel)

SHIPPED_ROOT = Path(__file__).resolve().parent
"""The folder of the shipped configs: one sub-folder per kind (installed as package data)."""


@dataclass(frozen=True)
class ConfigKind:
    """A kind of config: where its shipped files live and how a file of it is recognised."""

    name: str
    label: str
    """How messages name a file of this kind (``train config cfg.yaml: …``)."""
    folder: str
    suffixes: tuple[str, ...]
    markers: tuple[str, ...]
    """Top-level keys that only a file of this kind has (used to infer the kind of a file)."""
    legacy_folders: tuple[str, ...] = ()
    """Former folders of its shipped files, so ``configs/<old>/<name>.yaml`` still resolves."""


KINDS: dict[str, ConfigKind] = {
    kind.name: kind
    for kind in (
        ConfigKind("recipe", "recipe", "recipes", (".yaml", ".yml"), ("sources",), ("data",)),
        ConfigKind(
            "mixture", "mixture config", "mixtures", (".yaml", ".yml"), ("datasets",), ("data",)
        ),
        ConfigKind("train", "train config", "train", (".yaml", ".yml"), ("model",)),
        ConfigKind(
            "deepspeed",
            "deepspeed config",
            "deepspeed",
            (".json",),
            ("zero_optimization", "train_micro_batch_size_per_gpu"),
        ),
        ConfigKind("eval", "eval config", "eval", (".yaml", ".yml"), ()),
    )
}
"""Every config kind, by name (also the order ``rscovlm config ls`` lists them in)."""

_SCHEMAS: dict[str, type[BaseModel]] = {}
_DESCRIBERS: dict[str, Callable[[dict[str, Any]], str]] = {}


def _kind(kind: str) -> ConfigKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise InputError(f"unknown config kind {kind!r}; known: {', '.join(KINDS)}") from None


def register(
    kind: str,
    schema: type[BaseModel],
    describe: Callable[[dict[str, Any]], str] | None = None,
) -> None:
    """Make ``schema`` the validator of ``kind`` (called by the module that owns the schema).

    ``describe`` gives the one-line description of a file without a comment header (JSON).
    """
    _SCHEMAS[_kind(kind).name] = schema
    if describe is not None:
        _DESCRIBERS[kind] = describe


def schema_of(kind: str) -> type[BaseModel]:
    """The registered schema of ``kind``.

    Raises:
        InputError: No schema registered (yet) for this kind.
    """
    if _kind(kind).name not in _SCHEMAS:
        raise InputError(f"no schema is registered for {kind} configs yet")
    return _SCHEMAS[kind]


# --- shipped files and references -------------------------------------------------------------


def shipped_dir(kind: str) -> Path:
    """The folder of the shipped configs of ``kind`` (may not exist when none is shipped)."""
    return SHIPPED_ROOT / _kind(kind).folder


def shipped(kind: str) -> dict[str, Path]:
    """``{name: path}`` of the shipped configs of ``kind``, sorted by name.

    >>> sorted(shipped("train"))
    ['rscovlm_det', 'rscovlm_official', 'tiny_cpu']
    """
    spec = _kind(kind)
    folder = shipped_dir(kind)
    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in spec.suffixes)
    return {p.stem: p for p in files}


def _shipped_name(spec: ConfigKind, ref: str) -> str | None:
    """The shipped name ``ref`` stands for (``x``, ``x.yaml``, ``configs/<legacy>/x.yaml``)."""
    path = Path(ref)
    stem = path.stem if path.suffix in spec.suffixes else path.name
    if len(path.parts) == 1:
        return stem
    parent = path.parent
    if parent.name in spec.legacy_folders and parent.parent.name == "configs":
        return stem
    return None


def resolve(kind: str, ref: str | Path) -> Path:
    """The file ``ref`` names: an existing path, else a shipped config of ``kind``.

    A path that does not exist is never replaced by a shipped file of the same stem (a typo in
    ``runs/x/tiny_cpu.yaml`` must fail, not silently train the demo), except for the old
    ``configs/data/<name>.yaml`` layout of the shipped files.

    Raises:
        InputError: Neither an existing file nor a shipped name (the shipped names listed).
    """
    spec = _kind(kind)
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    files = shipped(kind)
    name = _shipped_name(spec, str(ref))
    if name is not None and name in files:
        return files[name]
    if path.exists():
        raise InputError(f"{spec.label} {str(ref)!r} is not a file")
    known = ", ".join(files) or "none"
    raise InputError(
        f"{spec.label} {str(ref)!r} is neither a file nor a shipped name (shipped: {known})"
    )


def infer_kind(ref: str | Path) -> str:
    """The kind of a config file (from its top-level keys, else its folder) or shipped name.

    Raises:
        InputError: The kind cannot be told, or a shipped name exists in several kinds.
    """
    path = Path(ref).expanduser()
    if path.is_file():
        data = read_mapping(path, "config")
        by_keys = [k.name for k in KINDS.values() if any(m in data for m in k.markers)]
        if len(by_keys) == 1:
            return by_keys[0]
        by_folder = [k.name for k in KINDS.values() if path.parent.name == k.folder]
        if by_folder:
            return by_folder[0]
        by_suffix = [k.name for k in KINDS.values() if k.suffixes == (path.suffix,)]
        if len(by_suffix) == 1:
            return by_suffix[0]
        raise InputError(f"cannot tell which kind of config {path} is; give --kind")
    found = [
        k.name
        for k in KINDS.values()
        if (name := _shipped_name(k, str(ref))) is not None and name in shipped(k.name)
    ]
    if len(found) == 1:
        return found[0]
    if found:
        raise InputError(
            f"{str(ref)!r} is a shipped {' and a shipped '.join(found)} config; give --kind"
        )
    raise InputError(f"{str(ref)!r} is neither a file nor the name of a shipped config")


# --- reading ------------------------------------------------------------------------------------


def read_mapping(path: Path, label: str) -> dict[str, Any]:
    """The top-level mapping of a YAML (or JSON) file, read by :mod:`rscovlm.safe_read`.

    Plain data only (``yaml.SafeLoader``), UTF-8, within the config limits of size, depth and
    alias expansion: a 520-byte alias tree never grows into gigabytes here.

    Raises:
        InputError: Unreadable, not UTF-8, not YAML, over a limit, or not a mapping at the top
            level.
    """
    data = safe_read.read_yaml(path, label)
    if data is None:
        raise InputError(f"{label} {path}: (top level): the file is empty")
    if not isinstance(data, dict):
        raise InputError(
            f"{label} {path}: (top level): expected a mapping of keys, got {type(data).__name__}"
        )
    return data


def apply_overrides(
    data: dict[str, Any], overrides: Iterable[str], source: str = "override"
) -> None:
    """Apply dotted ``key=value`` overrides to the raw mapping ``data`` in place.

    Values are parsed as YAML scalars or lists (``true``, ``2e-6``, ``[q_proj, v_proj]``). A
    missing intermediate section is created; whether the final key exists is left to the
    validation, so a misspelt override fails with the same one-line error as a key in the file.

    Raises:
        InputError: An override is not ``key=value`` or walks into a non-mapping value.
    """
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise InputError(f"{source}: bad override {item!r}; expected dotted.key=value")
        value = safe_read.loads_yaml(raw, f"{source}: override {key}") if raw.strip() else None
        node = data
        *parents, last = key.split(".")
        for i, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InputError(
                    f"{source}: override {key}: {'.'.join(parents[: i + 1])} is not a section"
                )
            node = child
        node[last] = value


# --- validation errors --------------------------------------------------------------------------


def _as_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (directly or as a member of a union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if (model := _as_model(arg)) is not None:
                return model
    return None


def _child(annotation: Any, part: str | int) -> Any:
    """The annotation one step down ``part`` (a field, a list index or a mapping key)."""
    model = _as_model(annotation)
    if isinstance(part, str) and model is not None and part in model.model_fields:
        return model.model_fields[part].annotation
    members = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    for member in members:
        origin = typing.get_origin(member)
        args = typing.get_args(member)
        if isinstance(part, int) and origin in (list, tuple) and args:
            return args[0]
        if isinstance(part, str) and origin in (dict, Mapping) and len(args) == 2:
            return args[1]
    return None


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _unknown_key_hint(schema: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    """``unknown key; did you mean 'lr'?`` (or the keys allowed there) for an extra key."""
    annotation: Any = schema
    for part in loc[:-1]:
        annotation = _child(annotation, part)
    model = _as_model(annotation)
    if model is None:
        return "unknown key"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; expected one of: {', '.join(allowed)}"


def error_line(exc: ValidationError, schema: type[BaseModel]) -> str:
    """``dotted.key: message`` of the first error of ``exc``, on one line.

    The message loses pydantic's ``Value error, `` prefix (validators state the problem
    themselves), an unknown key gets a did-you-mean, and a wrong scalar shows the value read.
    An unknown key is reported before any other error: a misspelt key also makes the key it
    was meant to be "missing", and the misspelling is the cause to show.
    """
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden" and loc:
        msg = _unknown_key_hint(schema, loc)
    else:
        msg = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        value = err.get("input")
        if err["type"] != "value_error" and isinstance(value, (str, int, float, bool)):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            msg = f"{msg} (got {shown})"
    return f"{where}: {' '.join(msg.split())}"


def validate(schema: type[Model], data: Any, source: str) -> Model:
    """``schema.model_validate(data)``, a failure raised as one line starting with ``source``.

    Raises:
        InputError: ``source: dotted.key: message``.
    """
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{source}: {error_line(exc, schema)}") from exc


def load(
    kind: str,
    ref: str | Path,
    overrides: Iterable[str] = (),
    schema: type[Model] | None = None,
) -> Model:
    """Resolve, read, override and validate one config of ``kind``.

    Args:
        kind: A key of :data:`KINDS`.
        ref: A path or the name of a shipped config of that kind.
        overrides: Dotted ``key=value`` strings applied before validation.
        schema: The model to validate with (default: the one registered for ``kind``).

    Raises:
        InputError: One line naming the file (and the dotted key when one is at fault).
    """
    spec = _kind(kind)
    path = resolve(kind, ref)
    data = read_mapping(path, spec.label)
    source = f"{spec.label} {path}"
    apply_overrides(data, overrides, source)
    model: type[Any] = schema if schema is not None else schema_of(kind)
    return validate(model, data, source)


# --- headers ------------------------------------------------------------------------------------


def header(path: Path) -> list[str]:
    """The comment lines a YAML config opens with, without their ``#`` (JSON has none)."""
    lines = []
    try:
        text = safe_read.read_text(path, "config", errors="replace")
    except InputError:
        return []  # an unreadable file has no header; reading it for real reports why
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" "))
    return lines


def describe(path: Path, kind: str | None = None) -> str:
    """The one-line description of a config: its header's first line (or the kind's own)."""
    lines = header(path)
    if lines and lines[0].strip():
        return lines[0].strip()
    if kind in _DESCRIBERS:
        try:
            return _DESCRIBERS[kind](read_mapping(path, _kind(kind).label))
        except InputError:
            return ""
    return ""


def header_commands(path: Path) -> list[str]:
    """The commands a config's header shows, one string each (``\\``-continued lines joined).

    A command is a header line indented by two or more spaces after the ``#`` that starts with
    ``rscovlm`` or ``torchrun``; a trailing ``# comment`` is part of the string.
    """
    commands: list[str] = []
    continuing = False
    for line in header(path):
        text = line.strip()
        if continuing:
            commands[-1] += " " + text.removesuffix("\\").strip()
        elif line.startswith("  ") and text.split(" ", 1)[0] in ("rscovlm", "torchrun"):
            commands.append(text.removesuffix("\\").strip())
        else:
            continue
        continuing = text.endswith("\\")
    return commands
