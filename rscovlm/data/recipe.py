"""The build recipe: which sources to read, from where, with which options and limits.

A recipe is a YAML file::

    # rscovlm data build this.yaml --out built/
    name: demo
    root: data            # data root, relative to this file; every image must lie inside it
    max_pixels: 268435456 # largest image accepted (16384²)
    shard_size: 1000      # records (and rejected entries) per shard
    sources:
      - name: dota_train  # unique; becomes Record.source
        adapter: dota     # a key of rscovlm.data.sources.ADAPTERS
        path: DOTA/train  # folder or file under root
        split: train
        classes: dota1.0  # class list name, a list of names, or omitted (adapter default)
        options: {version: "1.0"}

Shipped recipes live in ``rscovlm/configs/recipes/`` and load by name (``synthetic_demo``).
A shipped recipe's relative root is the working directory, not its folder: the installed package
is read-only to rscovlm (generated scenes written beside the recipe would land inside it, and
are refused there). A recipe file of your own keeps its root relative to itself, so a recipe and
its data move together. A root that does not exist yet is created when the recipe has a
generated (``synthetic``) source, since the build is what fills it.
Loading goes through :mod:`rscovlm.configs` and builds the typed :class:`Recipe`; an unknown
key, a wrong type or an unknown adapter fails at once with one line naming the key and the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

import rscovlm
from rscovlm import configs
from rscovlm.data.sources import ADAPTERS, check_options
from rscovlm.errors import InputError
from rscovlm.imaging import DEFAULT_MAX_PIXELS

__all__ = ["GENERATED_ADAPTERS", "Recipe", "SourceConfig", "load_recipe"]


class SourceConfig(BaseModel):
    """One source of a recipe."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.]+$")
    adapter: str
    path: str = ""
    split: str | None = None
    classes: str | list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("adapter")
    @classmethod
    def _known_adapter(cls, value: str) -> str:
        if value not in ADAPTERS:
            raise ValueError(f"unknown adapter {value!r}; known: {', '.join(ADAPTERS)}")
        return value

    @model_validator(mode="after")
    def _known_options(self) -> SourceConfig:
        # an unknown or mistyped option fails here, at --validate, not as a TypeError deep in
        # the build; InputError is a ValueError, so pydantic reports it under this source
        check_options(self.adapter, self.options)
        return self


class Recipe(BaseModel):
    """A build recipe (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "dataset"
    root: str = "."
    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, gt=0)
    shard_size: int = Field(default=1000, gt=0)
    sources: list[SourceConfig] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, value: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {', '.join(dupes)}")
        return value

    def root_path(self, base: Path | None = None) -> Path:
        """The data root, resolved against ``base`` (the recipe's folder) when relative."""
        root = Path(self.root).expanduser()
        return root if root.is_absolute() or base is None else (base / root)


configs.register("recipe", Recipe)

GENERATED_ADAPTERS: frozenset[str] = frozenset({"synthetic"})
"""Adapters that write their inputs under the root while building (its folder is created)."""


def load_recipe(
    path: str | Path, root: str | Path | None = None, check_root: bool = True
) -> tuple[Recipe, Path]:
    """Load and validate a recipe (a YAML path or a shipped name); returns it with its data root.

    ``root`` overrides the recipe's ``root`` (relative to the current directory, not the file).
    Without it, a shipped recipe's relative root is the current directory and a recipe file's
    is its folder (see the module docstring); a missing root is created for generated sources.
    ``check_root=False`` skips the check that the root is a directory: validating a recipe
    (``rscovlm data build --validate``) must not depend on the data being on this machine.

    Raises:
        InputError: No such file or shipped name, not YAML, a key that fails validation
            (named, with the file), or a root that is not a directory.
    """
    path = configs.resolve("recipe", path)
    recipe = configs.load("recipe", path, schema=Recipe)
    package = Path(rscovlm.__file__).resolve().parent
    if root is not None:
        recipe = recipe.model_copy(update={"root": str(root)})
        resolved = Path(root).expanduser().resolve()
    elif path.resolve().is_relative_to(package):
        resolved = recipe.root_path(Path.cwd()).resolve()
    else:
        resolved = recipe.root_path(path.parent).resolve()
    generated = any(src.adapter in GENERATED_ADAPTERS for src in recipe.sources)
    if generated and check_root and resolved.is_relative_to(package):
        raise InputError(
            f"recipe {path}: root {resolved} is inside the installed rscovlm package; "
            "give --root DIR for the generated scenes"
        )
    if generated and check_root:
        resolved.mkdir(parents=True, exist_ok=True)
    if check_root and not resolved.is_dir():
        raise InputError(f"recipe {path}: root {recipe.root!r} is not a directory ({resolved})")
    return recipe, resolved
