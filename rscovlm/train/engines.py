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
  the world size it saved with (the stream positions are per rank). ZeRO-3 builds the model
  partitioned (:func:`partitioned_loading`: ``from_pretrained`` inside ``deepspeed.zero.Init``)
  and exports the consolidated weights. Under fp16 DeepSpeed skips the optimizer and schedule
  step of an overflowing batch; the loop then does not count it (:attr:`Engine.step_skipped`,
  ``skipped_steps`` in the log).

  Bucket sizes of the shipped JSONs: ZeRO-1/2 with ``overlap_comm`` keep about 4.5 × the
  reduce and all-gather bucket sizes of elements in flight, 2 bytes each in bf16 — DeepSpeed's
  usual 5e8 costs 5e8 × 2 B × 2 × 4.5 ≈ 9 GB per GPU, next to a 7B model's ~15 GB of bf16
  weights and ~15 GB of bf16 gradients (ZeRO-1 keeps them whole); 2e8 costs ≈ 3.6 GB and
  still moves buckets of 400 MB (far above what saturates NVLink / InfiniBand). ZeRO-3 uses
  5e7-element reduce and prefetch buckets (≈ 0.9 GB in flight): its buckets follow the
  layers, and the 7B/32B weight matrices are 1.3e7–2.6e7 elements (HF's ``auto`` sizes of
  hidden² land there too).

  Against DDP the weights differ in one systematic way: DeepSpeed's optimizer steps its
  flattened partitions whole, so parameters that got no gradient on any rank (the vision
  tower on text-only steps) are weight-decayed and advance Adam's step counter, where torch's
  AdamW under DDP / FSDP skips them (their gradient is ``None``). Otherwise losses, gradient
  norms and weights are those of DDP to float rounding (DeepSpeed sums squared norms over
  fp32 partitions; ZeRO-3 reduces every micro-batch before accumulating). The tests bound
  both (``tests/train/test_engines.py``, ``DEEPSPEED_TOLERANCES``).

Combinations that cannot run fail at once with one line (:func:`check_engine`): LoRA with
``fsdp`` or ``deepspeed`` (adapters are small: use ``ddp``), DeepSpeed without a launcher.

Text-only micro-batches under FSDP / DeepSpeed: a rank whose micro-batch has no image would
skip the vision tower while another rank runs it, and sharded engines gather and reduce per
module — the ranks would deadlock (ZeRO-3, FSDP) or reduce mismatched gradient buckets
(ZeRO-1/2 reduce buckets filled in the order gradients become ready). :func:`touch_vision_tower`
hooks the input embedding: when any rank has images in this forward, the ranks that have none
run the vision tower on a blank 2×2-patch image at the point where the others run their real
ones (right after the embedding) and add ``0 ×`` its output to the embeddings (Qwen3-VL's
deepstack features after the decoder layers that take them). Forward and backward then run
the same collectives in the same order on every rank, and the gradients are those of DDP
(which all-reduces zeros for locally unused parameters).

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

The ``deepspeed`` launcher works too (``deepspeed --num_gpus 8 --module rscovlm train
rscovlm_official ...``; on CPU ``python -m deepspeed.launcher.launch``): it sets the same
``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` variables and adds a ``--local_rank`` argument, which
the command line accepts and ignores. The output directory must be on a file
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
from rscovlm.train._safe_load import check_deepspeed_files, load_plain
from rscovlm.train._wrapped import find_wrapped
from rscovlm.train.config import deepspeed_batch_values, deepspeed_config
from rscovlm.train.export import export_model
from rscovlm.train.op_locks import check_stale_build_locks

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
    "partitioned_loading",
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
        self.step_skipped = False
        """Whether the last :meth:`step` applied no update (DeepSpeed fp16 overflow)."""

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
    def skipped_steps(self) -> int:
        """Optimizer steps skipped so far (only DeepSpeed's fp16 overflow skips any)."""
        return 0

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

        shared = load_plain(where / "train_state.pt", map_location=self.device)
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


def _zero_of(tensors: Any) -> Any:
    """``0 ×`` the sum of the floating tensors in ``tensors`` that carry a gradient (float32)."""

    total: Any = None
    for tensor in _tensors(tensors):
        if tensor.is_floating_point() and tensor.requires_grad:
            zero = tensor.float().sum() * 0.0
            total = zero if total is None else total + zero
    return total


def _blank_features(owner: Any, device: Any) -> Any:
    """``get_image_features`` of a blank image of one merged 2×2-patch cell."""
    import torch

    vision = owner.visual.config

    def size(value: Any) -> int:
        return int(value[0] if isinstance(value, (list, tuple)) else value)

    merge = size(vision.spatial_merge_size)
    channels = size(getattr(vision, "in_channels", getattr(vision, "in_chans", 3)))
    dim = channels * size(vision.temporal_patch_size) * size(vision.patch_size) ** 2
    pixels = torch.zeros(merge * merge, dim, device=device)
    grid = torch.tensor([[1, merge, merge]], device=device)
    return owner.get_image_features(pixel_values=pixels, image_grid_thw=grid)


def _split_outputs(features: Any) -> tuple[Any, list[Any]]:
    """The image embeddings and the per-layer deepstack features the language model consumes.

    transformers 5 returns a model output whose ``pooler_output`` holds the merged image
    embeddings (and, for Qwen3-VL, ``deepstack_features``, added to the hidden states after
    the first decoder layers); the pre-merger ``last_hidden_state`` is not used by the
    forward, so a blank pass must not add it (it would give the vision blocks a gradient path
    a real image does not have). Older versions return the embeddings themselves.
    """
    if hasattr(features, "pooler_output"):
        return features.pooler_output, list(getattr(features, "deepstack_features", None) or [])
    return features, []


def blank_vision_loss(model: Any, device: Any) -> Any:
    """``0 ×`` the sum of the vision tower's output on a blank image of one merged 2×2 cell.

    Zero-valued, but its backward reaches every vision parameter (with zero gradients), through
    the same modules (patch embedding, blocks, merger, deepstack mergers) as a real image's
    features do.
    """
    import torch

    owner = _visual_owner(model)
    if owner is None:
        raise TypeError(f"{type(model).__name__} has no vision tower (not a Qwen-VL model?)")
    embeds, deep = _split_outputs(_blank_features(owner, device))
    total = _zero_of([embeds, deep])
    return torch.zeros((), device=device) if total is None else total


def touch_vision_tower(model: Any, device: Any) -> list[Any]:
    """Keep the ranks of a sharded engine in lockstep over the vision tower (module docstring).

    Where a rank with images runs its vision tower — right after the input embedding, before
    the language model — a rank without runs the blank image through it, and adds ``0 ×`` the
    sum of its image embeddings to its input embeddings (and, for Qwen3-VL, ``0 ×`` each
    deepstack feature to the output of the decoder layer it is added after). Both the forward
    (ZeRO-3 / FSDP all-gathers of the vision blocks, between the embedding and the first
    decoder layer) and the backward (each vision gradient becomes ready where a real image's
    does, so ZeRO-1/2 fill and reduce their gradient buckets in the same order on every rank)
    then run the same collectives in the same order on every rank. The all-reduce deciding
    whether any rank has images runs at that same point on every rank.

    Hooks: a forward pre-hook on ``model`` only notes whether this forward has images (it runs
    no collective, so where it sits among the engine's own hooks does not matter); a forward
    hook on the input embedding does the rest (and forward hooks on the deepstack layers add
    their zeros). Register after the engine has wrapped the model (``deepspeed.initialize``,
    ``fully_shard``), so these run after the engine's own hooks on the same modules, as the real
    vision pass does. Returns the hook handles.
    """
    import torch
    import torch.distributed as dist

    owner = _visual_owner(model)
    if owner is None:
        raise TypeError(f"{type(model).__name__} has no vision tower (not a Qwen-VL model?)")
    forward: dict[str, bool] = {"armed": False, "mine": False}
    deepstack: list[Any] = []  # per decoder layer: the zero to add after it (Qwen3-VL)

    def note(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        forward["armed"] = torch.is_grad_enabled()
        forward["mine"] = any(
            kwargs.get(key) is not None for key in ("pixel_values", "pixel_values_videos")
        )
        deepstack.clear()

    def embedded(module: Any, args: Any, output: Any) -> Any:
        if not forward["armed"]:
            return None
        forward["armed"] = False  # once per forward (the embedding may be called again)
        mine = forward["mine"]
        anyone = torch.tensor([float(mine)], device=device)
        dist.all_reduce(anyone, op=dist.ReduceOp.MAX)
        if mine or not float(anyone[0]):
            return None
        embeds, deep = _split_outputs(_blank_features(owner, device))
        if len(deep) > len(layers):  # nowhere to add them where the model does: add them here
            embeds, deep = [embeds, deep], []
        deepstack[:] = [_zero_of(d) for d in deep]
        zero = _zero_of(embeds)
        return output if zero is None else output + zero.to(output.dtype)

    def after_layer(index: int) -> Any:
        def hook(module: Any, args: Any, output: Any) -> Any:
            if index >= len(deepstack) or deepstack[index] is None:
                return None
            zero, deepstack[index] = deepstack[index], None
            if isinstance(output, tuple):
                return (output[0] + zero.to(output[0].dtype), *output[1:])
            return output + zero.to(output.dtype)

        return hook

    depth = len(getattr(owner.visual.config, "deepstack_visual_indexes", None) or [])
    layers = list(getattr(getattr(owner, "language_model", None), "layers", None) or [])[:depth]
    handles = [
        model.register_forward_pre_hook(note, with_kwargs=True),
        owner.get_input_embeddings().register_forward_hook(embedded),
    ]
    handles += [layer.register_forward_hook(after_layer(i)) for i, layer in enumerate(layers)]
    return handles


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
        for unit in shard_units(model):
            fully_shard(unit, mesh=mesh, reshard_after_forward=reshard, mp_policy=policy)
        fully_shard(model, mesh=mesh, reshard_after_forward=reshard, mp_policy=policy)
        self._hooks = touch_vision_tower(model, device)  # after the engine's own hooks

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
            shared = load_plain(where / "train_state.pt", map_location="cpu")
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
        check_stale_build_locks()
        self.config = config
        self.backend = backend
        self._hooks: list[Any] = []

    @property
    def zero_stage(self) -> int:
        return int(self.config.get("zero_optimization", {}).get("stage", 0))

    def prepare(self, optimizer: Any, scheduler: Any) -> None:
        import torch.distributed as dist

        super().prepare(optimizer, scheduler)
        if not dist.is_initialized():
            self.deepspeed.init_distributed(dist_backend=self.backend)
        engine, _, _, _ = self.deepspeed.initialize(
            model=self.module, optimizer=optimizer, lr_scheduler=scheduler, config=self.config
        )
        self.model = engine
        # after DeepSpeed's hooks: registered before, the blank pass ran ahead of them and of
        # the embedding, and ZeRO-1/2 reduced wrong gradients, ZeRO-3 deadlocked
        self._hooks = touch_vision_tower(self.module, self.device)

    def backward(self, loss: Any) -> None:
        # DeepSpeed divides by its accumulation and averages over ranks: undo both
        self.model.backward(loss * (self.world * self.model.gradient_accumulation_steps()))
        if not self.model.is_gradient_accumulation_boundary():
            self.model.step()  # only counts the micro-batch

    def clip_grad_norm(self, max_norm: float | None) -> float | None:
        """DeepSpeed clips inside :meth:`step` (``gradient_clipping``); nothing to do here."""
        return None

    def step(self, max_grad_norm: float | None) -> float | None:
        """Clip, step, schedule at the accumulation boundary; the pre-clip global norm.

        Under fp16 a gradient overflow makes DeepSpeed skip the optimizer *and* the schedule
        step (it lowers the loss scale instead): :attr:`step_skipped` tells the loop, which
        then does not count the step either, so the schedule, the step counter and the
        checkpoints stay in agreement with the updates actually applied.
        """
        if not self.model.is_gradient_accumulation_boundary():
            raise RuntimeError(
                "deepspeed: the step's micro-batches do not match gradient_accumulation_steps"
            )
        self.model.step()  # clip, optimizer step, our schedule's step, zero the gradients
        self.step_skipped = not self.model.was_step_applied()
        norm = self.model.get_global_grad_norm()
        return None if norm is None or self.step_skipped else float(norm)

    @property
    def skipped_steps(self) -> int:
        """Optimizer steps DeepSpeed skipped on overflow so far (kept in its checkpoints)."""
        return int(getattr(self.model, "skipped_steps", 0))

    def zero_grad(self) -> None:
        """DeepSpeed zeroes the gradients in its ``step``."""

    def save(self, where: Path) -> None:
        self.model.save_checkpoint(str(where), tag="deepspeed", save_latest=False)

    def load(self, where: Path) -> None:
        check_deepspeed_files(where / "deepspeed")  # DeepSpeed unpickles without weights_only
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


def _deepspeed_backend(cfg: TrainConfig, device: Any) -> str:
    """The process-group backend DeepSpeed initialises (or adopts, under torchrun)."""
    import torch.distributed as dist

    if dist.is_initialized():
        return str(dist.get_backend())
    if cfg.dist.backend != "auto":
        return cfg.dist.backend
    return "nccl" if device.type == "cuda" else "gloo"


@contextlib.contextmanager
def partitioned_loading(cfg: TrainConfig, world: int, device: Any) -> Iterator[None]:
    """Inside, ``from_pretrained`` builds a ZeRO-3 model already partitioned.

    Under ZeRO-3, ``deepspeed.initialize`` partitions a model that every rank has already
    loaded whole — a 32B model in bf16 is 64 GB per rank before it is split. transformers'
    DeepSpeed integration instead builds the model inside ``deepspeed.zero.Init`` (each rank
    allocates only its shard and loads the checkpoint into it) while an ``HfDeepSpeedConfig``
    of a ZeRO-3 config is alive; it is found through a weak reference, so it is held here and
    dropped (the global unset) on exit, leaving later loads in the process unpartitioned.
    ``deepspeed.initialize`` then takes the partitioned parameters as they are. Does nothing
    for every other engine and stage.
    """
    ds = deepspeed_config(cfg, world) if cfg.dist.strategy == "deepspeed" else {}
    if int(ds.get("zero_optimization", {}).get("stage", 0)) != 3:
        yield
        return
    deepspeed = require("deepspeed", "deepspeed")
    check_stale_build_locks()
    from transformers.integrations import HfDeepSpeedConfig
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    # zero.Init partitions over DeepSpeed's process group: set it up (adopting torchrun's)
    deepspeed.init_distributed(dist_backend=_deepspeed_backend(cfg, device))
    alive = HfDeepSpeedConfig(ds)
    try:
        yield
    finally:
        del alive
        unset_hf_deepspeed_config()


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
        check_stale_build_locks()  # before the model loads, not after a silent hang
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
        return DeepSpeedEngine(
            model,
            device,
            rank,
            world,
            config=deepspeed_config(cfg, world),
            backend=_deepspeed_backend(cfg, device),
        )
    return DDPEngine(model, device, rank, world)
