"""The training loop: a plain, readable torch loop in the torchtune manner.

:func:`run` reads top to bottom: set up the process group, build the model (freezing, LoRA,
gradient checkpointing), the optimizer with per-module learning rates, the warmup + cosine
schedule, restore the last checkpoint if there is one, then loop — gather the micro-batches of
one optimizer step, forward/backward each with the loss normalised by the supervised tokens of
the whole global batch, clip, step, log, save.

The data is a :class:`SampleStream`: an iterator of per-sample tensors (see
:mod:`rscovlm.train.collate`) that is deterministic, sharded by rank and resumable through
``state_dict`` / ``load_state_dict``. :class:`ListStream` serves pre-encoded samples; the
mixture of the online data engine plugs in through the same protocol.

The run folder (``log.output_dir``) is explicit (:mod:`rscovlm.train.run_dir`): a start
resumes the folder's newest checkpoint only when its saved config matches in everything that
changes training; otherwise it is refused unless ``resume`` or ``overwrite`` says what to do.
A resume re-derives every parameter group's lr from the config and the schedule
(:mod:`rscovlm.train.schedule`: warmup kept, decay against the new total) instead of trusting
the lr the optimizer state was saved with. Before the first step rank 0 prints a start-up
summary, and samples left out (over-long, unreadable) are said on screen per source
(:mod:`rscovlm.train.report`).

A checkpoint (``<output_dir>/checkpoints/step_<k>/``) holds the model and optimizer states, the
schedule, every RNG and the data stream's position, so a resumed run sees the same batches
and reproduces the same losses as an uninterrupted one.

Distributed: launch with ``torchrun``; on CPU the gloo backend runs the same code. What wraps
the model — nothing, DDP, FSDP2 or DeepSpeed (``dist.strategy``) — is an
:class:`rscovlm.train.engines.Engine`; its module docstring has the launch commands.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rscovlm import safe_read
from rscovlm.errors import InputError
from rscovlm.extras import require, require_torch
from rscovlm.files import atomic_write_text
from rscovlm.train.allocator import keep_freed_memory
from rscovlm.train.checkpoint import (
    prune_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)
from rscovlm.train.collate import (
    IGNORE_INDEX,
    CollatedBatch,
    add_packed_positions,
    pack_collate,
    pad_collate,
)
from rscovlm.train.config import TrainConfig
from rscovlm.train.engines import build_engine, check_engine, partitioned_loading
from rscovlm.train.export import training_manifest
from rscovlm.train.report import Say, drop_line, drop_summary, startup_summary, stderr_say
from rscovlm.train.run_dir import prepare_run_dir
from rscovlm.train.schedule import LrSchedule, lr_factor

__all__ = [
    "ListStream",
    "RunResult",
    "SampleStream",
    "build_model",
    "build_optimizer",
    "count_parameters",
    "lr_factor",
    "module_of",
    "run",
]


class SampleStream(Protocol):
    """A deterministic, rank-sharded, resumable stream of per-sample tensors.

    A stream may also have ``sources()`` (per mixture entry: records, samples per epoch — the
    start-up summary lists them), ``drops()`` and ``seen`` (samples left out per source and
    reason — said on screen); :class:`rscovlm.train.stream.EncodedStream` has all three.
    """

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def __len__(self) -> int:
        """Samples this rank sees per epoch."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def counts(self) -> dict[str, int]:
        """Cumulative counts the trainer logs each step (samples skipped, dropped, …)."""
        ...


class ListStream:
    """Pre-encoded samples, reshuffled every epoch with ``seed + epoch``, sharded by rank.

    Rank ``r`` of ``w`` takes positions ``r, r + w, …`` of each epoch's permutation (the
    remainder that does not split evenly is dropped, so ranks step in lockstep).
    """

    def __init__(
        self, samples: Sequence[dict[str, Any]], seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        if not samples:
            raise InputError("the sample stream is empty")
        self.samples = list(samples)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch, self.index = 0, 0

    def __len__(self) -> int:
        return len(self.samples) // self.world_size

    def _order(self) -> list[int]:
        perm = np.random.default_rng(self.seed + self.epoch).permutation(len(self.samples))
        return [int(i) for i in perm[self.rank :: self.world_size]][: len(self)]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            order = self._order()
            while self.index < len(order):
                sample = self.samples[order[self.index]]
                self.index += 1
                yield sample
            self.epoch, self.index = self.epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])

    def counts(self) -> dict[str, int]:
        """Nothing to count: every pre-encoded sample is served."""
        return {}


@dataclass
class RunResult:
    """What a run did."""

    output_dir: Path
    steps: int
    """The last optimizer step reached (counting resumed ones)."""
    losses: list[float] = field(default_factory=list)
    """Loss per optimizer step run in this process (resumed steps not repeated)."""
    model: Any = None
    """The trained model (unwrapped from DDP / DeepSpeed; FSDP leaves it sharded), in train
    mode. A finished run also writes a loadable checkpoint directory to ``<output_dir>/final``."""


def module_of(name: str) -> str:
    """``vision`` | ``merger`` | ``llm``: which part of a Qwen-VL model a parameter is in."""
    if ".visual.merger." in f".{name}" or ".visual.deepstack_merger" in f".{name}":
        return "merger"
    if ".visual." in f".{name}":
        return "vision"
    return "llm"


def _setup_distributed(cfg: TrainConfig) -> tuple[Any, int, int, Any]:
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    want = cfg.train.device
    cuda = want == "cuda" or (want == "auto" and torch.cuda.is_available())
    if world > 1 and not dist.is_initialized():
        backend = cfg.dist.backend
        if backend == "auto":
            backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend=backend)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    return dist, rank, world, device


def build_model(cfg: TrainConfig, device: Any) -> Any:
    """Load (or build, for ``tiny:<family>``) the model, then freeze / LoRA / checkpointing.

    Returns the :class:`rscovlm.model.LoadedModel` with ``.model`` in train mode on ``device``.
    """
    from rscovlm.model import TinySpec, build_tiny_model, load_checkpoint

    path = cfg.model.path
    if cfg.model.tiny_family is not None:
        import torch.distributed as dist

        later = dist.is_initialized() and dist.get_rank() != 0
        if later:
            dist.barrier()  # rank 0 builds the tiny checkpoint; the others find it built
        path = str(
            build_tiny_model(
                cfg.model.tiny_family,
                Path(cfg.log.output_dir) / "tiny_base",
                seed=cfg.train.seed,
                spec=TinySpec(**cfg.model.tiny.spec_kwargs()),
            )
        )
        if dist.is_initialized() and not later:
            dist.barrier()
    attn = "sdpa" if cfg.model.attn == "auto" else cfg.model.attn
    loaded = load_checkpoint(path, dtype=cfg.model.dtype, device=str(device), attn=attn)
    model = loaded.model
    frozen = {
        "vision": cfg.model.freeze.vision_tower,
        "merger": cfg.model.freeze.merger,
        "llm": cfg.model.freeze.llm,
    }
    for name, param in model.named_parameters():
        param.requires_grad_(not frozen[module_of(name)])
    if cfg.model.lora.enabled:
        peft = require("peft", "train")
        lora = cfg.model.lora
        model = peft.get_peft_model(
            model,
            peft.LoraConfig(
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=lora.target_modules,
                modules_to_save=lora.modules_to_save or None,
            ),
        )
    if cfg.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model.train()
    loaded.model = model
    return loaded


def build_optimizer(model: Any, cfg: TrainConfig) -> Any:
    """AdamW with one group per (module, decay) pair: per-module lrs, no decay on 1-D params."""
    import torch

    lrs = cfg.optim.module_lrs()
    groups: dict[tuple[str, bool], list[Any]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            decay = param.ndim >= 2
            groups.setdefault((module_of(name), decay), []).append(param)
    params = [
        {
            "params": ps,
            "lr": lrs[module],
            "weight_decay": cfg.optim.weight_decay if decay else 0.0,
            "name": f"{module}{'' if decay else '_no_decay'}",
        }
        for (module, decay), ps in sorted(groups.items())
    ]
    return torch.optim.AdamW(params, betas=cfg.optim.betas, eps=cfg.optim.eps)


def _collate(cfg: TrainConfig, samples: list[dict[str, Any]], model: Any) -> CollatedBatch:
    if cfg.train.packing:
        budget = cfg.train.pack_budget or cfg.train.max_length
        return add_packed_positions(model, pack_collate(samples, budget))
    return pad_collate(samples, max_length=cfg.train.max_length)


def _token_loss_sum(model: Any, batch: CollatedBatch, device: Any, precision: str) -> Any:
    """Sum over the batch's supervised tokens of the next-token cross-entropy (float32)."""
    inputs = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.inputs.items()}
    return supervised_loss_sum(model, inputs, precision=precision, device_type=device.type)


def supervised_loss_sum(
    model: Any, inputs: dict[str, Any], *, precision: str = "fp32", device_type: str = "cpu"
) -> Any:
    """Sum over supervised tokens of the next-token cross-entropy (float32).

    ``inputs`` are model inputs with ``labels`` (-100 where unsupervised); it is not modified.
    Only the positions whose next token is supervised go through the LM head
    (``logits_to_keep`` as a boolean mask): the 151k-word vocabulary makes the full
    ``(tokens × vocab)`` logits the largest tensor of a step, and most positions (images,
    prompts) have no label.

    ``bf16`` / ``fp16`` run the forward under autocast: with ``model.dtype: float32`` that is
    mixed precision with fp32 master weights (what an lr of 2e-6 needs; pure bf16 weights
    would round most updates away).
    """
    import torch

    inputs = dict(inputs)
    labels = inputs.pop("labels")
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    with torch.autocast(device_type, dtype=half or torch.float32, enabled=half is not None):
        logits = model(**inputs, logits_to_keep=keep).logits  # (supervised, vocab)
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels[:, 1:][keep[:, :-1]], reduction="sum"
    )


def heldout_loss(loaded: Any, conversations: list[Any], root: str | Path | None = None) -> float:
    """Mean next-token loss over the supervised tokens of ``conversations`` (one at a time).

    ``loaded`` is a :class:`rscovlm.model.loading.LoadedModel` (or anything with ``model``,
    ``tokenizer``, ``image_processor`` and ``wants_mm_token_type_ids``); the model is put in
    eval mode and no gradient is kept.
    """
    import torch

    from rscovlm.model.encoding import encode

    total, count = 0.0, 0
    model = loaded.model.eval()
    with torch.no_grad():
        for conv in conversations:
            enc = encode(
                [conv],
                loaded.tokenizer,
                loaded.image_processor,
                root=root,
                add_generation_prompt=False,
                labels=True,
                padding_side="right",
            )
            inputs = dict(enc.inputs)
            if not getattr(loaded, "wants_mm_token_type_ids", True):
                inputs.pop("mm_token_type_ids", None)
            total += float(supervised_loss_sum(model, inputs))
            count += int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())
    return total / max(count, 1)


def trim_log(path: Path, step: int) -> None:
    """Drop the lines of ``log.jsonl`` written after checkpoint ``step`` (by a killed run).

    A resumed run repeats the steps between its checkpoint and the kill; without this the log
    would hold those steps twice. Lines of step ``<= step`` stay (a skipped-step line carries
    the step count before it, so one at ``step`` itself came after the checkpoint); a line
    that is not JSON (torn by the kill) goes.
    """
    if not path.is_file():
        return
    kept, dropped = [], 0
    for _lineno, record, _reason in safe_read.iter_jsonl_lines(path, "training log"):
        done = isinstance(record, dict) and isinstance(record.get("step"), int)
        if done and (
            record["step"] < step or (record["step"] == step and not record.get("skipped"))
        ):
            kept.append(json.dumps(record) + "\n")
        else:
            dropped += 1
    if dropped:
        atomic_write_text(path, "".join(kept))


def count_parameters(model: Any) -> tuple[int, int]:
    """``(total, trainable)`` parameter counts; ZeRO-3 partitioned parameters by their full
    size (``ds_numel``), FSDP's DTensors by their global one."""
    total = trainable = 0
    for param in model.parameters():
        n = int(getattr(param, "ds_numel", 0) or param.numel())
        total += n
        trainable += n if param.requires_grad else 0
    return total, trainable


def apply_schedule(optimizer: Any, scheduler: Any, cfg: TrainConfig, factor: float) -> None:
    """Set every parameter group from ``cfg`` with the lr multiplier ``factor``.

    A restored optimizer state carries the hyper-parameters it was saved with (lr, weight
    decay, betas, eps) and the lr of the OLD schedule's last step; a resume under a changed
    config (``--resume``) must train with the new ones, and a longer run must not take a step
    at the old schedule's end value.
    """
    lrs = cfg.optim.module_lrs()
    for group in optimizer.param_groups:
        name = str(group.get("name", "llm"))
        base = lrs[name.removesuffix("_no_decay")]
        group["initial_lr"] = base
        group["lr"] = base * factor
        group["weight_decay"] = 0.0 if name.endswith("_no_decay") else cfg.optim.weight_decay
        group["betas"], group["eps"] = cfg.optim.betas, cfg.optim.eps
    scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def run(
    cfg: TrainConfig,
    stream: SampleStream | None = None,
    *,
    stop_after: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    say: Say | None = None,
) -> RunResult:
    """Train ``cfg`` on ``stream`` in the run folder ``log.output_dir``.

    The folder's newest checkpoint is resumed when its config matches (module docstring).

    Args:
        cfg: The validated config.
        stream: This rank's sample stream (already sharded); ``None`` builds it from
            ``cfg.data`` (:func:`rscovlm.train.stream.build_data_stream`).
        stop_after: Stop (after saving) once this optimizer step is done — to test resume.
        resume: Continue the folder's checkpoint even though the config changed (``--resume``).
        overwrite: Start at step 0; the folder's old run is moved aside (``--overwrite``).
        say: Where rank 0's screen lines go (default: stderr).

    Raises:
        MissingExtraError: torch or transformers is missing (extra ``train``).
        InputError: The folder holds a run of another config and neither ``resume`` nor
            ``overwrite`` is given (one line naming the differing fields).
    """
    torch = require_torch()  # the entry point: a core install stops here, with one line

    check_engine(cfg, int(os.environ.get("WORLD_SIZE", "1")))  # one line, before any loading
    dist, rank, world, device = _setup_distributed(cfg)
    if device.type == "cpu":
        keep_freed_memory()  # ~1.7x faster CPU steps: no mmap/munmap of buffers every step
    output_dir = Path(cfg.log.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tell: Say = (say or stderr_say) if rank == 0 else (lambda _line: None)
    # before any loading: a refused start costs nothing
    plan = prepare_run_dir(
        cfg,
        output_dir,
        world_size=world,
        rank=rank,
        resume=resume,
        overwrite=overwrite,
        barrier=dist.barrier if world > 1 else (lambda: None),
    )
    for line in plan.messages:
        tell(line)
    random.seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)

    # model, optimizer, schedule
    with partitioned_loading(cfg, world, device):  # ZeRO-3: each rank allocates only its shard
        loaded = build_model(cfg, device)
    model = loaded.model
    params = count_parameters(model)
    if stream is None:
        from rscovlm.train.stream import build_data_stream

        if world > 1 and rank != 0:
            dist.barrier()  # rank 0 builds procedural data first
        stream = build_data_stream(cfg, loaded, rank, world)
        if world > 1 and rank == 0:
            dist.barrier()
    engine = build_engine(cfg, model, device, rank, world)  # ddp | fsdp | deepspeed
    optimizer = build_optimizer(engine.module, cfg)
    accumulation = cfg.train.accumulation_steps(world)
    per_step = cfg.train.per_device_batch_size * accumulation
    total = cfg.train.max_steps or max(1, int(cfg.train.epochs * len(stream) // per_step))
    schedule = LrSchedule.planned(total, cfg.optim)
    saved_schedule = plan.saved_state.get("schedule")
    if isinstance(saved_schedule, dict) and isinstance(saved_schedule.get("warmup_steps"), int):
        schedule = LrSchedule(**saved_schedule).extended(total, cfg.optim)  # warmup kept
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.factor)
    engine.prepare(optimizer, scheduler)
    model = engine.model  # DeepSpeed wraps here

    # resume
    step = 0
    if plan.checkpoint is not None:
        step = restore_checkpoint(plan.checkpoint, engine, stream, rank)
        apply_schedule(scheduler.optimizer, scheduler, cfg, schedule.factor(step))
    sources = stream.sources() if hasattr(stream, "sources") else None
    band = cfg.data.mixture_config().policy().band
    for line in startup_summary(
        cfg,
        family=loaded.family,
        params=params,
        sources=sources,
        samples_per_epoch=len(stream),
        world_size=world,
        accumulation=accumulation,
        schedule=schedule,
        band=band,
    ):
        tell(line)
    if plan.checkpoint is not None and step < total:
        tell(f"resuming from step {step} of {total} ({plan.checkpoint})")
    elif plan.checkpoint is not None:
        tell(
            f"{output_dir} already finished at step {step} of {total}: nothing to train "
            "(raise train.max_steps and pass --resume to extend it)"
        )
    else:
        tell(f"starting a new run in {output_dir}: {total} steps")
    meta = {"world_size": world, "schedule": schedule.as_dict()}
    if rank == 0:
        trim_log(output_dir / "log.jsonl", step)
    log = (output_dir / "log.jsonl").open("a", encoding="utf-8") if rank == 0 else None
    board = None
    if rank == 0 and "tensorboard" in cfg.log.loggers:
        board = require("torch.utils.tensorboard", "train").SummaryWriter(str(output_dir / "tb"))
    progress = None
    if rank == 0 and cfg.log.progress:
        progress = require("tqdm", "train").tqdm(total=total, initial=step, desc="train")
    drops_said: set[tuple[str, str]] = set()

    # the loop
    samples = iter(stream)
    losses: list[float] = []
    while step < total:
        started = time.perf_counter()
        micro = [
            _collate(cfg, [next(samples) for _ in range(cfg.train.per_device_batch_size)], model)
            for _ in range(accumulation)
        ]
        # every token of the global batch weighs the same: divide by the global count
        counts = torch.tensor(
            [float(sum(int((b.inputs["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro))],
            device=device,  # nccl reduces CUDA tensors only
        )
        if world > 1:
            dist.all_reduce(counts)
        supervised = max(1.0, float(counts[0]))
        loss_total = 0.0
        for i, batch in enumerate(micro):
            with engine.accumulating(last=i == len(micro) - 1):  # DDP syncs on the last only
                loss = _token_loss_sum(model, batch, device, cfg.train.precision) / supervised
                engine.backward(loss)  # × world: data-parallel wrappers average over ranks
            loss_total += float(loss.detach())
        if world > 1:
            reduced = torch.tensor([loss_total], device=device)
            dist.all_reduce(reduced)
            loss_total = float(reduced[0])
        lr = engine.lr
        grad_norm = engine.step(cfg.optim.max_grad_norm)  # clip, optimizer and schedule step
        engine.zero_grad()
        if engine.step_skipped:
            # fp16 overflow: DeepSpeed applied no update and left the schedule where it was, so
            # the step is not counted (its batch is spent; the stream moves on)
            if log is not None:
                skipped = {"step": step, "skipped": True, "loss": loss_total, "lr": lr}
                log.write(json.dumps({**skipped, "skipped_steps": engine.skipped_steps}) + "\n")
                log.flush()
            continue
        step += 1
        losses.append(loss_total)

        elapsed = time.perf_counter() - started
        tokens = sum(b.num_tokens for b in micro)
        padding = sum(b.num_padding for b in micro)
        if log is not None and step % cfg.log.log_every == 0:
            record = {
                "step": step,
                "loss": loss_total,
                "lr": lr,
                "grad_norm": grad_norm,
                "skipped_steps": engine.skipped_steps,  # fp16 overflows (DeepSpeed)
                "tokens_per_s": tokens * world / elapsed if elapsed else None,
                "padding_fraction": padding / (tokens + padding) if tokens + padding else 0.0,
                "samples": sum(b.num_samples for b in micro) * world,
                "dropped": sum(b.dropped for b in micro),
                # cumulative counts of the data stream (unencodable, over-long, re-rendered)
                **stream.counts(),
            }
            log.write(json.dumps(record) + "\n")
            log.flush()
            if board is not None:
                for key, value in record.items():
                    if key != "step" and value is not None:
                        board.add_scalar(f"train/{key}", value, step)
        for drops in stream.drops() if hasattr(stream, "drops") else []:
            if (drops.source, drops.kind) not in drops_said:  # said once; summed at the end
                drops_said.add((drops.source, drops.kind))
                line = drop_line(drops, cfg.train.max_length)
                if say is None and progress is not None:
                    progress.write(line, file=sys.stderr)  # above the bar, not through it
                else:
                    tell(line)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss_total:.4f}", lr=f"{lr:.2e}")
        due = cfg.train.save_every is not None and step % cfg.train.save_every == 0
        if due or step in (total, stop_after):
            where = output_dir / "checkpoints" / f"step_{step}"
            save_checkpoint(where, step, engine, stream, rank, meta)
            if world > 1:
                dist.barrier()
            if rank == 0:
                prune_checkpoints(output_dir, cfg.train.keep_last)
        if step == stop_after:
            break
    for closable in (log, board, progress):
        if closable is not None:
            closable.close()
    if hasattr(stream, "drops"):
        seen = getattr(stream, "seen", {})
        for line in drop_summary(stream.drops(), seen, cfg.train.max_length, world):
            tell(line)
    if step >= total:
        manifest = training_manifest(cfg, loaded.family)  # the band it was trained at
        engine.export(loaded, output_dir / "final", manifest)  # rank 0 writes; shards gather
    return RunResult(output_dir, step, losses, engine.module)
