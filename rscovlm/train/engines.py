"""Engines: how the training loop runs the model on one process, DDP, FSDP or DeepSpeed.

The loop in :mod:`rscovlm.train.trainer` talks to one :class:`Engine` and never to a wrapper
directly::

    engine = build_engine(cfg, model, device, rank, world)   # wraps / shards the model
    optimizer = build_optimizer(engine.module, cfg)          # on the (sharded) parameters
    engine.prepare(optimizer, scheduler)
    for each micro-batch:
        with engine.accumulating(last):                      # DDP: no_sync but on the last
            engine.backward(loss)                            # loss of this rank's tokens / global
    grad_norm = engine.step(max_grad_norm)                   # clip, optimizer, schedule
    engine.zero_grad()

``dist.strategy`` picks the engine:

* ``ddp`` / ``none`` — :class:`DDPEngine`: the plain model on one process, wrapped in
  ``DistributedDataParallel`` (``find_unused_parameters``) when ``WORLD_SIZE > 1``.
* ``fsdp`` — :class:`FSDPEngine`: PyTorch's FSDP2 (``torch.distributed.fsdp.fully_shard``), which
  runs on CUDA/nccl and on CPU/gloo alike. Every decoder layer and every vision block (the
  model's ``_no_split_modules``) is its own shard unit, the root unit holds the rest (embeddings,
  lm head, patch embedding, merger). ``dist.fsdp``: ``full_shard`` (reshard after forward),
  ``shard_grad_op`` (keep gathered until backward), ``hybrid_shard`` (shard inside a node,
  replicate across nodes; a ``(nodes, LOCAL_WORLD_SIZE)`` mesh). Mixed precision: with
  ``train.precision`` bf16/fp16 on CUDA the shards are fp32 master weights (a bf16
  ``model.dtype`` is upcast) gathered in the half type for compute and reduced in fp32; on the
  CPU everything stays in the model's dtype. Gradients are reduce-scattered on every
  micro-batch (no ``no_sync``: keeping unsharded gradients would cost the memory FSDP saves).
  Checkpoints hold the *full* (unsharded) model and optimizer states, gathered to and written
  by rank 0 and broadcast back shard by shard on resume (the file layout of the DDP engine;
  the optimizer state is keyed by parameter name). With one process there is nothing to
  shard: a warning is issued and :class:`DDPEngine` runs the same math unsharded.
* ``deepspeed`` — :class:`DeepSpeedEngine` (needs ``pip install 'rscovlm[deepspeed]'``):
  ``deepspeed.initialize`` with the named JSON (``zero1`` | ``zero2`` | ``zero3`` or a path)
  whose ``"auto"`` values :func:`rscovlm.train.config.deepspeed_config` fills from the config
  (micro batch, accumulation, ``train_batch_size`` = micro × accumulation × world, bf16/fp16
  from ``train.precision``, ``gradient_clipping`` from ``optim.max_grad_norm``). The optimizer
  (AdamW with per-module lrs and no decay on 1-D parameters) and the warmup + cosine schedule
  are always ours and are handed to DeepSpeed, which wraps them (ZeRO partitions the optimizer
  state, keeps fp32 masters under bf16 and steps our schedule): a JSON with an ``optimizer``
  or ``scheduler`` block, or an explicit value that disagrees with the config, is refused.
  DeepSpeed checkpoints go to ``step_<k>/deepspeed/`` (its own partitioned layout); the
  data-stream positions and RNGs stay in the trainer's ``rank<r>.pt``. Every engine resumes on
  the world size it saved with (the stream positions are per rank).

Combinations that cannot run fail at once with one line (:func:`check_engine`): LoRA with
``fsdp`` or ``deepspeed`` (adapters are small: use ``ddp``), DeepSpeed without a launcher.

Text-only micro-batches under FSDP / DeepSpeed: a rank whose micro-batch has no image would
skip the vision tower while another rank runs it, and sharded engines gather and reduce per
module — the ranks would deadlock. :func:`touch_vision_tower` registers a hook that, when any
rank has images in this forward, runs the vision tower on a blank 2×2-patch image on the ranks
that have none and adds ``0 ×`` its output to the logits: the ranks stay in lockstep, the
gradients are exactly those of DDP (which all-reduces zeros for locally unused parameters).

Launch (one process per GPU; the config's ``dist`` section picks the engine)::

    # one node, 8 GPUs
    torchrun --nproc_per_node 8 -m rscovlm train rscovlm_official \\
        model.path=<Qwen2.5-VL-7B-Instruct dir> data.built=<built shards> log.output_dir=<run dir>
    # N nodes: the same command on every node, node_rank 0 … N-1, one rendezvous host:port
    torchrun --nnodes N --node_rank <i> --nproc_per_node 8 \\
        --rdzv_backend c10d --rdzv_endpoint <host of node 0>:29500 \\
        -m rscovlm train rscovlm_official <overrides as above>
    # FSDP instead of DeepSpeed, on the same launch: append  dist.strategy=fsdp
    # CPU, gloo, 2 processes (what the tests run):
    torchrun --standalone --nproc_per_node 2 -m rscovlm train tiny_cpu dist.strategy=fsdp

``python -m deepspeed.launcher`` / the ``deepspeed`` launcher work too (they set the same
``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` variables). The output directory must be on a file
system every node sees (checkpoints are written by several ranks and read back on resume).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rscovlm.errors import InputError
from rscovlm.extras import require
from rscovlm.train._wrapped import find_wrapped
from rscovlm.train.config import deepspeed_batch_values, deepspeed_config
from rscovlm.train.export import export_model

if TYPE_CHECKING:
    from rscovlm.model.manifest import CheckpointManifest
    from rscovlm.train.config import TrainConfig

__all__ = [
    "DDPEngine",
    "DeepSpeedEngine",
    "Engine",
    "FSDPEngine",
    "blank_vision_loss",
    "build_engine",
    "check_deepspeed_config",
    "check_engine",
    "shard_units",
    "touch_vision_tower",
]


class Engine:
    """The single-process engine and the interface of all engines.

    Attributes:
        module: The unwrapped model (``save_pretrained``, parameter names, rope index).
        model: What the loop calls for the forward pass (a wrapper or ``module`` itself).
        optimizer: The torch optimizer built on ``module``'s parameters (set by :meth:`prepare`).
        scheduler: Its lr schedule (set by :meth:`prepare`).
    """

    name: ClassVar[str] = "local"

    def __init__(self, model: Any, device: Any, rank: int = 0, world: int = 1) -> None:
        self.module = model
        self.model = model
        self.device, self.rank, self.world = device, rank, world
        self.optimizer: Any = None
        self.scheduler: Any = None

    # -- set-up -----------------------------------------------------------------------------
    def prepare(self, optimizer: Any, scheduler: Any) -> None:
        """Attach the optimizer (built on ``self.module``) and its schedule."""
        self.optimizer, self.scheduler = optimizer, scheduler

    # -- one optimizer step -----------------------------------------------------------------
    def accumulating(self, last: bool) -> contextlib.AbstractContextManager[Any]:
        """Context of one micro-batch's forward + backward (``last``: the step's final one)."""
        return contextlib.nullcontext()

    def backward(self, loss: Any) -> None:
        """Backward of this rank's share of the global-batch loss.

        ``loss`` is this rank's supervised-token loss sum divided by the token count of the
        whole global batch, so the gradient wanted is the *sum* over ranks; data-parallel
        wrappers average, hence the factor ``world``.
        """
        (loss * self.world).backward()

    def clip_grad_norm(self, max_norm: float | None) -> float | None:
        """Clip the gradients to ``max_norm`` (``None``: no clipping, no norm)."""
        import torch

        if max_norm is None:
            return None
        norm = torch.nn.utils.clip_grad_norm_(self.module.parameters(), max_norm)
        if hasattr(norm, "full_tensor"):  # a DTensor under FSDP2
            norm = norm.full_tensor()
        return float(norm)

    def step(self, max_grad_norm: float | None) -> float | None:
        """Clip, step the optimizer and the schedule; the pre-clip gradient norm (or ``None``)."""
        norm = self.clip_grad_norm(max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        return norm

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    @property
    def lr(self) -> float:
        """The current lr of the first parameter group (the one the next step uses)."""
        return float(self.optimizer.param_groups[0]["lr"])

    # -- checkpoints --------------------------------------------------------------------------
    def save(self, where: Path) -> None:
        """Write model, optimizer and schedule states into ``where`` (collective)."""
        import torch

        if self.rank == 0:
            torch.save(
                {
                    "model": self.module.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                },
                where / "train_state.pt",
            )

    def load(self, where: Path) -> None:
        """Restore what :meth:`save` wrote (collective)."""
        import torch

        shared = torch.load(where / "train_state.pt", map_location=self.device, weights_only=False)
        self.module.load_state_dict(shared["model"])
        self.optimizer.load_state_dict(shared["optimizer"])
        self.scheduler.load_state_dict(shared["scheduler"])

    def export(self, loaded: Any, where: Path, manifest: CheckpointManifest) -> None:
        """Write the trained model as a loadable checkpoint directory that records how it was
        trained (``manifest``: band, family; collective)."""
        if self.rank == 0:
            export_model(self.module, loaded, where, manifest=manifest)

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


class DDPEngine(Engine):
    """``DistributedDataParallel`` when ``world > 1``, else the plain model."""

    name: ClassVar[str] = "ddp"

    def __init__(self, model: Any, device: Any, rank: int = 0, world: int = 1) -> None:
        super().__init__(model, device, rank, world)
        if world > 1:
            import torch

            # a micro-batch without images leaves the vision tower without gradients on a rank
            self.model = torch.nn.parallel.DistributedDataParallel(
                model, find_unused_parameters=True
            )

    def accumulating(self, last: bool) -> contextlib.AbstractContextManager[Any]:
        if self.world > 1 and not last:
            return self.model.no_sync()
        return contextlib.nullcontext()


def shard_units(model: Any) -> list[Any]:
    """The submodules FSDP shards one by one: decoder layers and vision blocks.

    Taken from the model's ``_no_split_modules`` (``Qwen2_5_VLDecoderLayer``,
    ``Qwen2_5_VLVisionBlock``, …), with a name-based fallback for models without it.
    """
    names = set(getattr(model, "_no_split_modules", None) or [])

    def wanted(module: Any) -> bool:
        kind = type(module).__name__
        if names:
            return kind in names
        return kind.endswith(("DecoderLayer", "VisionBlock"))

    return [m for m in model.modules() if m is not model and wanted(m)]


def _visual_owner(model: Any) -> Any | None:
    """The module holding ``.visual`` and ``get_image_features`` (or ``None``)."""
    return find_wrapped(model, lambda m: hasattr(m, "visual") and hasattr(m, "get_image_features"))


def _tensors(value: Any) -> Iterator[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def blank_vision_loss(model: Any, device: Any) -> Any:
    """``0 ×`` the vision tower's output on a blank image of one merged 2×2-patch cell.

    Zero-valued, but its backward reaches every vision parameter (with zero gradients).
    """
    import torch

    owner = _visual_owner(model)
    if owner is None:
        raise TypeError(f"{type(model).__name__} has no vision tower (not a Qwen-VL model?)")
    vision = owner.visual.config

    def size(value: Any) -> int:
        return int(value[0] if isinstance(value, (list, tuple)) else value)

    merge = size(vision.spatial_merge_size)
    channels = size(getattr(vision, "in_channels", getattr(vision, "in_chans", 3)))
    dim = channels * size(vision.temporal_patch_size) * size(vision.patch_size) ** 2
    pixels = torch.zeros(merge * merge, dim, device=device)
    grid = torch.tensor([[1, merge, merge]], device=device)
    features = owner.get_image_features(pixel_values=pixels, image_grid_thw=grid)
    total = torch.zeros((), device=device)
    for tensor in _tensors(features):
        if tensor.is_floating_point() and tensor.requires_grad:
            total = total + tensor.float().sum() * 0.0
    return total


def touch_vision_tower(model: Any, device: Any) -> list[Any]:
    """Keep the ranks of a sharded engine in lockstep over the vision tower (module docstring).

    A forward pre-hook on ``model`` runs the blank image through the vision tower at the point
    where a rank with images runs its real ones (before the language model, so the sharded
    units are gathered in the same order on every rank); a forward hook adds the zero to the
    logits. Register before sharding, so the hooks run inside the root's gathered window.
    Returns the two hook handles.
    """
    import torch
    import torch.distributed as dist

    pending: list[Any] = []

    def before(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        pending.clear()
        if not torch.is_grad_enabled():
            return
        mine = kwargs.get("pixel_values") is not None
        anyone = torch.tensor([float(mine)], device=device)
        dist.all_reduce(anyone, op=dist.ReduceOp.MAX)
        if not mine and float(anyone[0]):
            pending.append(blank_vision_loss(module, device))

    def after(module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> Any:
        if not pending:
            return None
        output.logits = output.logits + pending.pop().to(output.logits.dtype)
        return output

    return [
        model.register_forward_pre_hook(before, with_kwargs=True),
        model.register_forward_hook(after, with_kwargs=True),
    ]


class FSDPEngine(Engine):
    """FSDP2 (``fully_shard``) over decoder layers and vision blocks (module docstring)."""

    name: ClassVar[str] = "fsdp"

    def __init__(
        self, model: Any, device: Any, rank: int, world: int, *, mode: str, precision: str
    ) -> None:
        import torch
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        super().__init__(model, device, rank, world)
        floats = [p.dtype for p in model.parameters() if p.is_floating_point()]
        self.export_dtype = floats[0] if floats else torch.float32
        half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        if device.type == "cuda" and half is not None:
            model.float()  # fp32 master shards; compute gathers them in the half type
            policy = MixedPrecisionPolicy(param_dtype=half, reduce_dtype=torch.float32)
        else:
            policy = MixedPrecisionPolicy()
        mesh = _fsdp_mesh(mode, device, world)
        reshard = mode != "shard_grad_op"
        self._hook = touch_vision_tower(model, device)
        for unit in shard_units(model):
            fully_shard(unit, mesh=mesh, reshard_after_forward=reshard, mp_policy=policy)
        fully_shard(model, mesh=mesh, reshard_after_forward=reshard, mp_policy=policy)

    def _options(self, **kwargs: Any) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, **kwargs)

    def save(self, where: Path) -> None:
        import torch
        from torch.distributed.checkpoint.state_dict import get_state_dict

        # gathered on every rank, kept (on the CPU) by rank 0 only
        model, optim = get_state_dict(
            self.module, self.optimizer, options=self._options(cpu_offload=True)
        )
        if self.rank == 0:
            torch.save(
                {"model": model, "optimizer": optim, "scheduler": self.scheduler.state_dict()},
                where / "train_state.pt",
            )

    def load(self, where: Path) -> None:
        import torch
        import torch.distributed as dist
        from torch.distributed.checkpoint.state_dict import (
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        shared: dict[str, Any] = {"model": {}, "optimizer": {}, "scheduler": None}
        if self.rank == 0:  # read once, broadcast shard by shard
            shared = torch.load(where / "train_state.pt", map_location="cpu", weights_only=False)
        options = self._options(broadcast_from_rank0=True)
        set_model_state_dict(self.module, shared["model"], options=options)
        # parameters that never had a gradient (an unused vision tower) have no state yet
        lenient = self._options(broadcast_from_rank0=True, strict=False)
        set_optimizer_state_dict(self.module, self.optimizer, shared["optimizer"], options=lenient)
        small = [shared["scheduler"], sorted(shared["optimizer"].get("state", {}))]
        dist.broadcast_object_list(small, src=0)
        schedule, with_state = small[0], set(small[1])
        for name, param in self.module.named_parameters():
            state = self.optimizer.state.get(param)
            if state is None:
                continue
            if name not in with_state:
                # the loader initialises missing states with a dummy step (``step`` 1): drop
                # them, so the first real gradient starts AdamW from scratch as it would have
                del self.optimizer.state[param]
            elif isinstance(state.get("step"), torch.Tensor):
                # the broadcast leaves the ``step`` counters aliased (torch 2.13: one optimizer
                # step advanced them twice); give each parameter its own
                state["step"] = state["step"].clone()
        self.scheduler.load_state_dict(schedule)
        for group, lr in zip(
            self.optimizer.param_groups, self.scheduler.get_last_lr(), strict=True
        ):
            group["lr"] = lr

    def full_state_dict(self, *, rank0_only: bool = True) -> dict[str, Any]:
        """The unsharded model state (collective; on the CPU; empty off rank 0 if
        ``rank0_only``)."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        if rank0_only:
            return get_model_state_dict(self.module, options=self._options(cpu_offload=True))
        return {
            k: v.cpu()
            for k, v in get_model_state_dict(self.module, options=self._options()).items()
        }

    def export(self, loaded: Any, where: Path, manifest: CheckpointManifest) -> None:
        state = self.full_state_dict()
        if self.rank == 0:
            state = {
                k: v.to(self.export_dtype) if v.is_floating_point() else v for k, v in state.items()
            }
            export_model(self.module, loaded, where, state_dict=state, manifest=manifest)


def _fsdp_mesh(mode: str, device: Any, world: int) -> Any:
    from torch.distributed.device_mesh import init_device_mesh

    if mode == "hybrid_shard":
        local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        if local < 1 or world % local:
            raise InputError(
                f"dist.fsdp hybrid_shard: world size {world} is not a multiple of the "
                f"{local} processes per node"
            )
        return init_device_mesh(
            device.type, (world // local, local), mesh_dim_names=("replicate", "shard")
        )
    return init_device_mesh(device.type, (world,))


class DeepSpeedEngine(Engine):
    """``deepspeed.initialize`` around our model, optimizer and schedule (module docstring).

    ``model`` after :meth:`prepare` is DeepSpeed's engine: ``backward`` scales by the
    accumulation it divides by, ``step`` is called once per micro-batch (DeepSpeed counts them
    and steps the optimizer, clipping per ``gradient_clipping``, at the accumulation boundary).
    """

    name: ClassVar[str] = "deepspeed"

    def __init__(
        self,
        model: Any,
        device: Any,
        rank: int,
        world: int,
        *,
        config: dict[str, Any],
        backend: str,
    ) -> None:
        super().__init__(model, device, rank, world)
        self.deepspeed = require("deepspeed", "deepspeed")
        self.config = config
        self.backend = backend
        self._hook: Any = None

    @property
    def zero_stage(self) -> int:
        return int(self.config.get("zero_optimization", {}).get("stage", 0))

    def prepare(self, optimizer: Any, scheduler: Any) -> None:
        import torch.distributed as dist

        super().prepare(optimizer, scheduler)
        if not dist.is_initialized():
            self.deepspeed.init_distributed(dist_backend=self.backend)
        self._hook = touch_vision_tower(self.module, self.device)
        engine, _, _, _ = self.deepspeed.initialize(
            model=self.module, optimizer=optimizer, lr_scheduler=scheduler, config=self.config
        )
        self.model = engine

    def backward(self, loss: Any) -> None:
        # DeepSpeed divides by its accumulation and averages over ranks: undo both
        self.model.backward(loss * (self.world * self.model.gradient_accumulation_steps()))
        if not self.model.is_gradient_accumulation_boundary():
            self.model.step()  # only counts the micro-batch

    def clip_grad_norm(self, max_norm: float | None) -> float | None:
        """DeepSpeed clips inside :meth:`step` (``gradient_clipping``); nothing to do here."""
        return None

    def step(self, max_grad_norm: float | None) -> float | None:
        if not self.model.is_gradient_accumulation_boundary():
            raise RuntimeError(
                "deepspeed: the step's micro-batches do not match gradient_accumulation_steps"
            )
        self.model.step()  # clip, optimizer step, our schedule's step, zero the gradients
        norm = self.model.get_global_grad_norm()
        return None if norm is None else float(norm)

    def zero_grad(self) -> None:
        """DeepSpeed zeroes the gradients in its ``step``."""

    def save(self, where: Path) -> None:
        self.model.save_checkpoint(str(where), tag="deepspeed", save_latest=False)

    def load(self, where: Path) -> None:
        path, _ = self.model.load_checkpoint(
            str(where),
            tag="deepspeed",
            load_optimizer_states=True,
            load_lr_scheduler_states=True,
        )
        if path is None:
            raise InputError(f"{where}: no DeepSpeed checkpoint (tag 'deepspeed') to resume from")

    def export(self, loaded: Any, where: Path, manifest: CheckpointManifest) -> None:
        state = None
        if self.zero_stage == 3:  # gather the partitioned weights (collective; rank 0 keeps)
            state = self.model._zero3_consolidated_16bit_state_dict()
        if self.rank == 0:
            export_model(self.module, loaded, where, state_dict=state, manifest=manifest)


def check_deepspeed_config(ds: dict[str, Any], cfg: TrainConfig, world: int) -> None:
    """Refuse a DeepSpeed config that disagrees with ``cfg`` (after the ``"auto"`` fill).

    Raises:
        InputError: An ``optimizer`` / ``scheduler`` block (ours are used), or an explicit
            batch, accumulation, precision or clipping value that differs from the config.
    """
    source = f"deepspeed config {cfg.dist.deepspeed}"
    for block in ("optimizer", "scheduler"):
        if block in ds:
            raise InputError(
                f"{source}: remove the {block!r} block; the optimizer and the lr schedule "
                "come from the optim section"
            )
    for key, value in deepspeed_batch_values(cfg, world).items():
        if key in ds and ds[key] != value:
            raise InputError(f"{source}: {key} is {ds[key]!r} but the config gives {value!r}")
    for key in ("bf16", "fp16"):
        enabled = bool((ds.get(key) or {}).get("enabled", False))
        if enabled != (cfg.train.precision == key):
            raise InputError(
                f"{source}: {key}.enabled is {enabled} but train.precision is {cfg.train.precision}"
            )


def check_engine(cfg: TrainConfig, world: int) -> None:
    """Fail early, in one line, on a strategy this environment or config cannot run.

    Raises:
        InputError: LoRA with ``fsdp`` / ``deepspeed``; ``deepspeed`` without a launcher;
            a DeepSpeed config that disagrees with ``cfg``.
        MissingExtraError: ``deepspeed`` is not installed.
    """
    strategy = cfg.dist.strategy
    if strategy in ("fsdp", "deepspeed") and cfg.model.lora.enabled:
        raise InputError(
            f"dist.strategy {strategy} with model.lora: not supported; LoRA adapters are small, "
            "use dist.strategy=ddp"
        )
    if strategy == "deepspeed":
        require("deepspeed", "deepspeed")
        check_deepspeed_config(deepspeed_config(cfg, world), cfg, world)
        if "MASTER_ADDR" not in os.environ:
            raise InputError(
                "dist.strategy deepspeed needs a launcher: torchrun --nproc_per_node N -m rscovlm "
                "train ... (or the deepspeed launcher)"
            )


def build_engine(cfg: TrainConfig, model: Any, device: Any, rank: int, world: int) -> Engine:
    """The engine of ``cfg.dist.strategy`` around ``model`` (see :func:`check_engine`)."""
    check_engine(cfg, world)
    strategy = cfg.dist.strategy
    if strategy == "fsdp":
        if world > 1:
            return FSDPEngine(
                model, device, rank, world, mode=cfg.dist.fsdp, precision=cfg.train.precision
            )
        warnings.warn(
            "dist.strategy fsdp on a single process: nothing to shard, training unsharded "
            "(launch with torchrun --nproc_per_node N to shard)",
            stacklevel=2,
        )
    if strategy == "deepspeed":
        backend = cfg.dist.backend
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        return DeepSpeedEngine(
            model, device, rank, world, config=deepspeed_config(cfg, world), backend=backend
        )
    return DDPEngine(model, device, rank, world)
