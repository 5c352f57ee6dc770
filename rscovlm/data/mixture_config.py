"""Mixture configs: a YAML recipe of datasets plus how to render them.

::

    name: rscovlm_official
    seed: 0
    family: qwen2_5_vl                 # model family: pixel factor and coordinate convention
    render:                            # RenderPolicy layers (rscovlm.data.policy)
      defaults: {min_pixels: 50176, max_pixels: 1016064}
      tasks: {detection: {random_resize_prob: 1.0}}
    datasets:
      - vhm_dataset*8                  # name*K, name%P or name
      - spec: refgeo_poly*1            # the same, with more keys:
        source: refgeo_poly            #   record source it draws from (default: the name)
        render: {box_kind: quad}       #   render options of this entry only
      - {name: extra_set, weight: 0.5} # an explicit weight

Shipped configs live in ``rscovlm/configs/mixtures/`` and load by name
(:func:`load_mixture_config("rscovlm_official")`). Loading goes through :mod:`rscovlm.configs`
and validates everything: an unknown key, a bad entry string or a bad render option fails with
one line naming the key and the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rscovlm import configs
from rscovlm.data.mixture import MixtureEntry, parse_entry
from rscovlm.data.policy import RenderPolicy
from rscovlm.errors import InputError
from rscovlm.resolution import DEFAULT_FAMILY

__all__ = ["SHIPPED_DIR", "EntryConfig", "MixtureConfig", "load_mixture_config"]

SHIPPED_DIR = configs.shipped_dir("mixture")
"""The folder of the shipped mixture configs."""


class EntryConfig(BaseModel):
    """One dataset of a mixture config: ``spec`` (``name*K`` …) or ``name`` + ``weight``."""

    model_config = ConfigDict(extra="forbid")

    spec: str | None = None
    name: str | None = None
    weight: float | None = Field(default=None, gt=0)
    source: str | None = None
    render: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_way(self) -> EntryConfig:
        if (self.spec is None) == (self.name is None):
            raise ValueError("give either spec (name*K, name%P) or name (+ weight)")
        if self.spec is not None and self.weight is not None:
            raise ValueError("weight goes with name, not with spec")
        try:
            self.entry()
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return self

    def entry(self) -> MixtureEntry:
        """The :class:`~rscovlm.data.mixture.MixtureEntry` this config describes."""
        if self.spec is not None:
            name, weight = parse_entry(self.spec)
            spec = self.spec
        else:
            name, weight = str(self.name), self.weight if self.weight is not None else 1.0
            spec = f"{name} (weight {weight:g})"
        return MixtureEntry(name, weight, self.source or name, spec, dict(self.render))


class RenderConfig(BaseModel):
    """The policy layers of a mixture config (``datasets`` come from the entries)."""

    model_config = ConfigDict(extra="forbid")

    defaults: dict[str, Any] = Field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] | None = None
    sources: dict[str, dict[str, Any]] = Field(default_factory=dict)


class MixtureConfig(BaseModel):
    """A validated mixture config (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "mixture"
    seed: int = 0
    family: str = DEFAULT_FAMILY
    render: RenderConfig = Field(default_factory=RenderConfig)
    datasets: list[EntryConfig] = Field(min_length=1)

    @field_validator("datasets", mode="before")
    @classmethod
    def _strings_are_specs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"spec": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _entries_and_policy(self) -> MixtureConfig:
        names = [e.name for e in self.entries()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"entry names must be unique, repeated: {', '.join(dupes)}")
        self.policy()  # validates every render option
        return self

    def entries(self) -> list[MixtureEntry]:
        """The mixture entries, in order."""
        return [item.entry() for item in self.datasets]

    def policy(self) -> RenderPolicy:
        """The render policy: the config's layers plus each entry's options."""
        layers: dict[str, Any] = {
            "family": self.family,
            "defaults": self.render.defaults,
            "sources": self.render.sources,
            "datasets": {e.name: dict(e.render) for e in self.entries() if e.render},
        }
        if self.render.tasks is not None:
            layers["tasks"] = self.render.tasks
        return RenderPolicy(**layers)


configs.register("mixture", MixtureConfig)


def load_mixture_config(name_or_path: str | Path) -> MixtureConfig:
    """Load a mixture config from a YAML path or a shipped config's name.

    Raises:
        InputError: No such file or shipped name, not YAML, or a key that fails validation
            (named, with the file).
    """
    return configs.load("mixture", name_or_path, schema=MixtureConfig)
