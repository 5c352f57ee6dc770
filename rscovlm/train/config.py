"""The typed training config: one YAML file builds one :class:`TrainConfig`.

A config has six sections (every key has a default except where noted)::

    model:    path (a checkpoint directory or ``tiny:<family>``), dtype, attn, freezing, LoRA
    data:     built shards and the mixture (a mixture config by name/path, or inline)
    optim:    lr (and per-module lrs), schedule, warmup, weight decay, clipping
    train:    epochs / max steps, batch sizes, max length, packing, precision, checkpointing
    dist:     none | ddp | deepspeed (zero1|zero2|zero3 by name) | fsdp
    log:      output dir, jsonl / tensorboard, intervals

A config is a path or a shipped name (``tiny_cpu``: ``rscovlm/configs/train/tiny_cpu.yaml``),
loaded by :mod:`rscovlm.configs` like every other kind. Loading validates everything at once:
an unknown key, a wrong type or a bad value raises :class:`rscovlm.errors.InputError` with one
line naming the key and the file. Dotted overrides
(``optim.lr=1e-5``, ``train.max_steps=10``) are applied before validation, so they are checked
the same way. Values of overrides are parsed as YAML scalars/lists (``true``, ``2e-6``,
``[q_proj, v_proj]``).

The global batch is ``per_device_batch_size × gradient_accumulation_steps × world_size``; give
``global_batch_size`` and the accumulation is derived from the world size at launch
(:meth:`TrainSection.accumulation_steps`), so one file serves 1, 8 or 64 GPUs.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rscovlm import configs, safe_read
from rscovlm.configs import apply_overrides
from rscovlm.data.mixture_config import MixtureConfig, load_mixture_config
from rscovlm.errors import InputError

__all__ = [
    "DEEPSPEED_CONFIGS",
    "DataSection",
    "DeepSpeedFile",
    "DistSection",
    "FreezeSection",
    "LogSection",
    "LoraSection",
    "ModelSection",
    "OptimSection",
    "TinySection",
    "TrainConfig",
    "TrainSection",
    "apply_overrides",
    "check_run_paths",
    "deepspeed_config",
    "deepspeed_config_path",
    "load_train_config",
    "shipped_train_configs",
]

DEEPSPEED_CONFIGS = tuple(configs.shipped("deepspeed"))
"""Names of the shipped DeepSpeed configs (``rscovlm/configs/deepspeed/<name>.json``)."""

_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


def _is_number(annotation: Any) -> bool:
    """Whether a field's annotation takes a number (``int``, ``float``, optional or in a
    union) and not a boolean."""
    args = typing.get_args(annotation) if typing.get_args(annotation) else (annotation,)
    if annotation in (int, float):
        return True
    return bool(args) and annotation not in (bool,) and any(a in (int, float) for a in args)


class _Section(BaseModel):
    # ``lr: .inf`` or ``max_grad_norm: .nan`` would pass ``gt=0`` and end a run in NaNs
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        """``max_steps: true`` is a typo, not step 1 (pydantic's lax mode would take it)."""
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(name)
                if isinstance(value, bool) and _is_number(field.annotation):
                    raise ValueError(f"{name}: expected a number, got {str(value).lower()}")
        return data


class FreezeSection(_Section):
    """Which parts of the model get no gradient (the paper trains all three)."""

    vision_tower: bool = False
    merger: bool = False
    llm: bool = False


class LoraSection(_Section):
    """LoRA adapters via peft on the LLM (off by default: the paper is a full fine-tune)."""

    enabled: bool = False
    r: int = Field(default=16, gt=0)
    alpha: int = Field(default=32, gt=0)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1
    )
    modules_to_save: list[str] = Field(default_factory=list)


class TinySection(_Section):
    """Sizes of a ``tiny:<family>`` model that differ from
    :class:`rscovlm.model.tiny.TinySpec`'s defaults (every key unset: the shared tiny model of
    the tests). A demo may want a different tiny model than the fixtures; the checkpoint's
    recipe records the sizes, so a rebuild with other sizes never reuses a stale one."""

    hidden_size: int | None = Field(default=None, gt=0)
    intermediate_size: int | None = Field(default=None, gt=0)
    num_layers: int | None = Field(default=None, gt=0)
    num_heads: int | None = Field(default=None, gt=0)
    num_kv_heads: int | None = Field(default=None, gt=0)
    vision_hidden_size: int | None = Field(default=None, gt=0)
    vision_intermediate_size: int | None = Field(default=None, gt=0)
    vision_depth: int | None = Field(default=None, gt=0)
    vision_heads: int | None = Field(default=None, gt=0)
    rope_theta: float | None = Field(default=None, gt=1)
    """Base of the LLM's M-RoPE (see :attr:`rscovlm.model.tiny.TinySpec.rope_theta`)."""

    def spec_kwargs(self) -> dict[str, Any]:
        """The set keys, as keyword arguments of :class:`~rscovlm.model.tiny.TinySpec`."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ModelSection(_Section):
    """The model to train."""

    path: str = Field(min_length=1)
    """A checkpoint directory, or ``tiny:<family>`` for a tiny random model built offline."""
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    attn: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    freeze: FreezeSection = Field(default_factory=FreezeSection)
    tiny: TinySection = Field(default_factory=TinySection)
    """Sizes of the ``tiny:<family>`` model (ignored for a checkpoint path)."""
    lora: LoraSection = Field(default_factory=LoraSection)

    @field_validator("path")
    @classmethod
    def _known_tiny(cls, value: str) -> str:
        if value.startswith("tiny:") and value[5:] not in _FAMILIES:
            raise ValueError(f"unknown tiny family {value[5:]!r}; known: {', '.join(_FAMILIES)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> ModelSection:
        freeze = self.freeze
        if freeze.vision_tower and freeze.merger and freeze.llm and not self.lora.enabled:
            raise ValueError(
                "freeze: vision_tower, merger and llm all frozen leaves nothing to train"
            )
        return self

    @property
    def tiny_family(self) -> str | None:
        """The family of a ``tiny:<family>`` path, else ``None``."""
        return self.path[5:] if self.path.startswith("tiny:") else None


class DataSection(_Section):
    """The online data: built shards and the mixture over them (with its render policy)."""

    built: str | None = None
    """Directory of shards written by ``rscovlm data build``. Paths in a config are relative to
    the current directory."""
    build_recipe: str | None = None
    """A data build recipe (shipped name under ``configs/recipes`` or a path), built into
    ``built`` on first use when ``built`` holds no manifest (procedural data)."""
    mixture: str | MixtureConfig
    """A mixture config — a shipped name (``rscovlm_official``) or a path — or one written
    inline with the same keys (``datasets`` of ``name*K`` / ``name%P`` entries, ``render``
    policy with the pixel band and random resize). Validated by
    :mod:`rscovlm.data.mixture_config`, the one parser of mixture strings."""
    overlong: Literal["drop", "rerender"] = "drop"
    """A sample longer than ``train.max_length`` is never cut: ``drop`` leaves it out (counted
    in the log), ``rerender`` renders it again with the pixel band's ``max_pixels`` halved
    (down to ``min_pixels``) until it fits, and drops it only if it never does."""

    @field_validator("build_recipe")
    @classmethod
    def _resolvable(cls, value: str | None) -> str | None:
        if value is not None:
            configs.resolve("recipe", value)  # InputError (a ValueError) names the problem
        return value

    @field_validator("mixture", mode="before")
    @classmethod
    def _loadable(cls, value: Any) -> Any:
        if isinstance(value, str):
            load_mixture_config(value)  # InputError (a ValueError) names the problem
        elif isinstance(value, dict):
            try:
                return MixtureConfig.model_validate(value)
            except ValidationError as exc:  # one line naming the inner key
                raise ValueError(configs.error_line(exc, MixtureConfig)) from None
        return value

    def mixture_config(self) -> MixtureConfig:
        """The mixture config (loaded when given by name or path)."""
        if isinstance(self.mixture, MixtureConfig):
            return self.mixture
        return load_mixture_config(self.mixture)


class OptimSection(_Section):
    """AdamW with a warmup then cosine (or linear / constant) schedule."""

    lr: float = Field(default=2e-6, gt=0)
    lr_vision: float | None = Field(default=None, gt=0)
    """Learning rate of the vision tower (``None``: ``lr``)."""
    lr_merger: float | None = Field(default=None, gt=0)
    """Learning rate of the vision-language merger (``None``: ``lr``)."""
    lr_llm: float | None = Field(default=None, gt=0)
    """Learning rate of the language model (``None``: ``lr``)."""
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(default=0.05, ge=0.0, lt=1.0)
    min_lr_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    weight_decay: float = Field(default=0.1, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0)
    max_grad_norm: float | None = Field(default=1.0, gt=0)

    def module_lrs(self) -> dict[str, float]:
        """``{"vision": lr, "merger": lr, "llm": lr}`` with the per-module overrides applied."""
        return {
            "vision": self.lr_vision or self.lr,
            "merger": self.lr_merger or self.lr,
            "llm": self.lr_llm or self.lr,
        }


class TrainSection(_Section):
    """Length of the run, batch geometry and numerics."""

    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    """Optimizer steps; when set it wins over ``epochs``."""
    per_device_batch_size: int = Field(default=1, gt=0)
    gradient_accumulation_steps: int | None = Field(default=None, gt=0)
    global_batch_size: int | None = Field(default=None, gt=0)
    """Samples per optimizer step over all ranks; the accumulation is derived from it."""
    max_length: int = Field(default=6144, gt=0)
    packing: bool = False
    pack_budget: int | None = Field(default=None, gt=0)
    """Tokens per packed row (``None``: ``max_length``)."""
    precision: Literal["bf16", "fp16", "fp32"] = "bf16"
    gradient_checkpointing: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_workers: int = Field(default=0, ge=0)
    seed: int = 0
    save_every: int | None = Field(default=None, gt=0)
    """Save a resumable checkpoint every N optimizer steps (``None``: only at the end)."""
    keep_last: int = Field(default=2, gt=0)

    @model_validator(mode="after")
    def _check(self) -> TrainSection:
        if self.gradient_accumulation_steps is not None and self.global_batch_size is not None:
            raise ValueError("give gradient_accumulation_steps or global_batch_size, not both")
        if (
            self.global_batch_size is not None
            and self.global_batch_size % self.per_device_batch_size
        ):
            raise ValueError(
                f"global_batch_size {self.global_batch_size} is not a multiple of "
                f"per_device_batch_size {self.per_device_batch_size}"
            )
        return self

    def accumulation_steps(self, world_size: int) -> int:
        """Micro-batches per optimizer step on each rank for ``world_size`` ranks.

        Raises:
            InputError: ``global_batch_size`` does not split evenly over the ranks.
        """
        if self.global_batch_size is None:
            return self.gradient_accumulation_steps or 1
        per_step = self.per_device_batch_size * world_size
        if self.global_batch_size % per_step:
            raise InputError(
                f"train.global_batch_size {self.global_batch_size} does not split into "
                f"per_device_batch_size {self.per_device_batch_size} × {world_size} ranks"
            )
        return self.global_batch_size // per_step


class DistSection(_Section):
    """Distributed strategy; DeepSpeed and FSDP configs are chosen by name."""

    strategy: Literal["none", "ddp", "deepspeed", "fsdp"] = "ddp"
    """``ddp`` also covers a single process (it is only wrapped when world_size > 1)."""
    deepspeed: str = "zero1"
    """``zero1`` | ``zero2`` | ``zero3`` (shipped) or a path to a DeepSpeed JSON file."""
    fsdp: Literal["full_shard", "shard_grad_op", "hybrid_shard"] = "full_shard"
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    """``auto``: nccl on CUDA, gloo on CPU."""

    @field_validator("deepspeed")
    @classmethod
    def _known_deepspeed(cls, value: str) -> str:
        if value not in DEEPSPEED_CONFIGS and not value.endswith(".json"):
            raise ValueError(
                f"{value!r}: expected one of {', '.join(DEEPSPEED_CONFIGS)} or a .json path"
            )
        return value


class LogSection(_Section):
    """Where outputs go and what is logged."""

    output_dir: str = Field(min_length=1)
    loggers: list[Literal["jsonl", "tensorboard"]] = Field(default_factory=lambda: ["jsonl"])
    log_every: int = Field(default=1, gt=0)
    progress: bool = True


class TrainConfig(_Section):
    """A complete training run (see the module docstring)."""

    model: ModelSection
    data: DataSection
    optim: OptimSection = Field(default_factory=OptimSection)
    train: TrainSection = Field(default_factory=TrainSection)
    dist: DistSection = Field(default_factory=DistSection)
    log: LogSection

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.train.precision == "fp32" and self.model.dtype != "float32":
            raise ValueError("train.precision fp32 needs model.dtype float32")
        if self.train.pack_budget is not None and self.train.pack_budget < self.train.max_length:
            raise ValueError(
                f"train.pack_budget {self.train.pack_budget} is below train.max_length "
                f"{self.train.max_length}: a full-length sample would not fit a row"
            )
        return self


class _DeepSpeedZero(BaseModel):
    model_config = ConfigDict(extra="allow")

    stage: int = Field(default=0, ge=0, le=3)


class DeepSpeedFile(BaseModel):
    """The keys of a DeepSpeed JSON that rscovlm fills or reads; the rest go to DeepSpeed as is.

    ``"auto"`` values are filled from the run config by :func:`deepspeed_config`.
    """

    model_config = ConfigDict(extra="allow")

    train_micro_batch_size_per_gpu: int | Literal["auto"] = "auto"
    gradient_accumulation_steps: int | Literal["auto"] = "auto"
    train_batch_size: int | Literal["auto"] = "auto"
    gradient_clipping: float | Literal["auto"] = "auto"
    zero_optimization: _DeepSpeedZero = Field(default_factory=_DeepSpeedZero)


def _describe_deepspeed(data: dict[str, Any]) -> str:
    """The one-line description of a DeepSpeed JSON (JSON has no comment header)."""
    zero = data.get("zero_optimization") or {}
    offload = [k.removeprefix("offload_") for k in ("offload_optimizer", "offload_param")]
    offload = [k for k in offload if (zero.get(f"offload_{k}") or {}).get("device") == "cpu"]
    extra = f", {' and '.join(offload)} offloaded to the CPU" if offload else ""
    return f"DeepSpeed ZeRO stage {zero.get('stage', 0)}{extra}; set dist.deepspeed to its name"


configs.register("train", TrainConfig)
configs.register("deepspeed", DeepSpeedFile, describe=_describe_deepspeed)


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Load, override and validate a training config (a YAML path or a shipped name).

    Args:
        path: The YAML file, or the name of a shipped config (``tiny_cpu``).
        overrides: Dotted ``key=value`` strings applied before validation.

    Raises:
        InputError: No such file or name, not YAML, a bad override, or a key that fails
            validation (one line naming the key and the file).
    """
    return configs.load("train", path, list(overrides or []), schema=TrainConfig)


def check_run_paths(config: TrainConfig) -> None:
    """Check the paths a run of ``config`` will open, before anything is loaded.

    The schema cannot know whether ``model.path`` is a checkpoint on this machine; a run
    would find out only after minutes of start-up (or hours, on a queue). ``--validate`` calls
    this, so a typo in a path fails at once.

    Raises:
        InputError: One line naming every path that is missing or of the wrong kind.
    """
    problems = []
    model = Path(config.model.path).expanduser()
    if config.model.tiny_family is None and not (model / "config.json").is_file():
        what = "does not exist" if not model.exists() else "holds no config.json"
        problems.append(f"model.path {config.model.path!r} {what} (a checkpoint directory)")
    data = config.data
    if data.built is not None:
        built = Path(data.built).expanduser()
        if built.exists() and not built.is_dir():
            problems.append(f"data.built {data.built!r} is a file, not a folder")
        elif data.build_recipe is None and not (built / "manifest.json").is_file():
            problems.append(
                f"data.built {data.built!r} holds no manifest.json (run `rscovlm data build`)"
            )
    elif data.build_recipe is None:
        problems.append("data.built is not set and no data.build_recipe builds it")
    if config.dist.strategy == "deepspeed":
        try:
            deepspeed_config_path(config.dist.deepspeed)
        except InputError as exc:
            problems.append(f"dist.deepspeed: {exc}")
    output = Path(config.log.output_dir).expanduser()
    if output.exists() and not output.is_dir():
        problems.append(f"log.output_dir {config.log.output_dir!r} is a file, not a folder")
    if problems:
        raise InputError("; ".join(problems))


def shipped_train_configs() -> dict[str, Path]:
    """``{name: path}`` of the training configs shipped in ``rscovlm/configs/train``."""
    return configs.shipped("train")


def deepspeed_config_path(name: str) -> Path:
    """The DeepSpeed JSON of a shipped name (``zero1`` | ``zero2`` | ``zero3``) or a path.

    Raises:
        InputError: Neither a shipped name nor an existing file.
    """
    return configs.resolve("deepspeed", name)


def deepspeed_batch_values(config: TrainConfig, world_size: int) -> dict[str, Any]:
    """The DeepSpeed keys the run config decides: micro batch, accumulation, global batch, clip.

    Raises:
        InputError: The global batch does not split over ``world_size`` ranks.
    """
    accumulation = config.train.accumulation_steps(world_size)
    micro = config.train.per_device_batch_size
    return {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accumulation,
        "train_batch_size": micro * accumulation * world_size,
        "gradient_clipping": config.optim.max_grad_norm or 0.0,
    }


def deepspeed_config(config: TrainConfig, world_size: int) -> dict[str, Any]:
    """The run's DeepSpeed config: the named JSON with every ``"auto"`` filled from ``config``.

    Raises:
        InputError: Unknown name, unreadable file, or a batch that does not split over ranks.
    """
    path = deepspeed_config_path(config.dist.deepspeed)
    ds = safe_read.read_json(path, "deepspeed config")
    if not isinstance(ds, dict):
        raise InputError(f"deepspeed config {path}: expected a JSON object")
    for key, value in deepspeed_batch_values(config, world_size).items():
        if ds.get(key) == "auto":
            ds[key] = value
    for key, on in (
        ("bf16", config.train.precision == "bf16"),
        ("fp16", config.train.precision == "fp16"),
    ):
        if isinstance(ds.get(key), dict) and ds[key].get("enabled") == "auto":
            ds[key]["enabled"] = on
    zero = ds.get("zero_optimization", {})
    for key in (
        "reduce_bucket_size",
        "stage3_prefetch_bucket_size",
        "stage3_param_persistence_threshold",
    ):
        if zero.get(key) == "auto":
            zero.pop(key)  # DeepSpeed's own default; the HF integration sizes it from hidden_size
    return ds
