"""Explicit run folders (issue 16, item 3): a rerun resumes only a matching config; --resume
continues a changed one with the schedule extended by the documented rule; --overwrite moves
the old run aside; the start-up summary says what will be trained."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rscovlm.errors import InputError
from rscovlm.train.config import TrainConfig
from rscovlm.train.run_dir import config_changes, prepare_run_dir
from rscovlm.train.schedule import LrSchedule

torch = pytest.importorskip("torch")


def _cfg(out: Path, model: str, **changes: Any) -> TrainConfig:
    """The smallest run: 2 × 2 micro-batches, 4 steps; ``changes`` are dotted overrides."""
    data: dict[str, Any] = {
        "model": {"path": model, "dtype": "float32", "attn": "sdpa"},
        "data": {"mixture": {"datasets": ["colours"]}},
        "optim": {"lr": 1e-2, "warmup_ratio": 0.3, "weight_decay": 0.0},
        "train": {
            "max_steps": 4,
            "per_device_batch_size": 2,
            "gradient_accumulation_steps": 2,
            "max_length": 64,
            "precision": "fp32",
            "gradient_checkpointing": False,
            "device": "cpu",
        },
        "dist": {"backend": "gloo"},
        "log": {"output_dir": str(out), "progress": False},
    }
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return TrainConfig.model_validate(data)


def _samples(tokenizer: Any, n: int = 8) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        prompt = f"<|im_start|>user\nColour {i % 4}?<|im_end|>\n<|im_start|>assistant\n"
        a = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        b = tokenizer(f"{['red', 'green', 'blue', 'white'][i % 4]}<|im_end|>")["input_ids"]
        out.append({"input_ids": torch.tensor(a + b), "labels": torch.tensor([-100] * len(a) + b)})
    return out


def _run(cfg: TrainConfig, tiny: Any, **kwargs: Any) -> tuple[Any, list[str]]:
    from rscovlm.train.trainer import ListStream, run

    said: list[str] = []
    result = run(cfg, ListStream(_samples(tiny.tokenizer), seed=1), say=said.append, **kwargs)
    return result, said


def _log(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


# --- the schedule rule ------------------------------------------------------------------------


def test_extended_schedule_keeps_the_warmup_and_decays_to_the_new_total() -> None:
    from rscovlm.train.config import OptimSection

    optim = OptimSection(lr=1e-2, warmup_ratio=0.3)
    first = LrSchedule.planned(4, optim)
    assert first.warmup_steps == 2  # ceil(0.3 · 4)
    assert first.factor(3) == pytest.approx(0.5 * (1 + math.cos(math.pi * 1 / 2)))
    longer = first.extended(8, optim)
    assert longer.warmup_steps == 2  # not ceil(0.3 · 8) = 3: the warmup is never redone
    expected = {
        1: 1.0,  # the warmup's last step, as planned
        2: 1.0,  # decay starts at the run's own warmup end
        4: 0.5 * (1 + math.cos(math.pi * 2 / 6)),  # = 0.75
        6: 0.5 * (1 + math.cos(math.pi * 4 / 6)),  # = 0.25: step 7 of the run
        7: 0.5 * (1 + math.cos(math.pi * 5 / 6)),
    }
    for step, value in expected.items():
        assert longer.factor(step) == pytest.approx(value), step
    assert longer.factor(6) == pytest.approx(0.25)
    assert LrSchedule.planned(8, optim).factor(6) != pytest.approx(0.25)  # not a re-plan
    assert first.factor(6) == 0.0  # the old schedule's end: what step 7 used to train at


# --- refusal, by class of field (no model is loaded before the refusal) -----------------------


@pytest.fixture(scope="module")
def finished(tiny_qwen25: Any, tiny_qwen25_dir: Path, tmp_path_factory: Any) -> Path:
    """A run folder stopped at step 2 of 4 (never modified by the tests that use it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    result, _ = _run(_cfg(out, str(tiny_qwen25_dir)), tiny_qwen25, stop_after=2)
    assert result.steps == 2
    return out


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"optim.lr": 5e-3}, "optim.lr"),
        ({"optim.warmup_ratio": 0.1}, "optim.warmup_ratio"),
        ({"train.per_device_batch_size": 1}, "train.per_device_batch_size"),
        ({"train.gradient_accumulation_steps": 1}, "train.gradient_accumulation_steps"),
        ({"train.max_steps": 8}, "train.max_steps"),
        ({"train.seed": 7}, "train.seed"),
        ({"data.mixture": {"datasets": ["colours*2"]}}, "data.mixture.datasets"),
        (
            {
                "data.mixture": {
                    "datasets": ["colours"],
                    "render": {"defaults": {"max_pixels": 200704}},
                }
            },
            "data.mixture.render.defaults.max_pixels",  # the pixel band
        ),
        ({"model.path": "tiny:qwen2_5_vl"}, "model.path"),
        ({"model.freeze.vision_tower": True}, "model.freeze.vision_tower"),
    ],
)
def test_changed_training_field_is_refused_with_one_line(
    finished: Path, tiny_qwen25_dir: Path, change: dict[str, Any], named: str
) -> None:
    from rscovlm.train.trainer import run

    before = (finished / "config.json").read_text()
    cfg = _cfg(finished, str(tiny_qwen25_dir), **change)
    with pytest.raises(InputError) as info:
        run(cfg, None, say=lambda _line: None)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert f"({named} differ)" in message
    assert "--resume" in message and "--overwrite" in message and "run.old-1" in message
    assert (finished / "config.json").read_text() == before  # nothing written
    assert not list(finished.glob("config.*.json"))


def test_a_changed_world_size_is_refused(finished: Path, tiny_qwen25_dir: Path) -> None:
    cfg = _cfg(finished, str(tiny_qwen25_dir))
    with pytest.raises(InputError, match=r"world size \(1 → 2\) differ"):
        prepare_run_dir(cfg, finished, world_size=2, rank=1)  # rank 1: reads, never writes


def test_run_only_fields_may_change() -> None:
    old = _cfg(Path("runs/a"), "tiny:qwen2_5_vl").model_dump(mode="json")
    new = _cfg(
        Path("runs/b"), "tiny:qwen2_5_vl", **{"log.log_every": 5, "train.save_every": 2}
    ).model_dump(mode="json")
    changes = config_changes(old, new)
    assert [c.key for c in changes] == ["log.log_every", "log.output_dir", "train.save_every"]
    assert all(c.run_only for c in changes)
    lr = config_changes(old, {**old, "optim": {**old["optim"], "lr": 1.0}})
    assert [(c.key, c.run_only) for c in lr] == [("optim.lr", False)]


# --- what a rerun does ----------------------------------------------------------------------


def test_same_config_resumes_and_run_only_change_is_kept_in_history(
    tiny_qwen25: Any, tiny_qwen25_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    first, said = _run(_cfg(out, str(tiny_qwen25_dir)), tiny_qwen25, stop_after=2)
    assert first.steps == 2 and "starting a new run in" in said[-1]
    again = _cfg(out, str(tiny_qwen25_dir), **{"log.log_every": 2})
    second, said = _run(again, tiny_qwen25, stop_after=3)
    assert second.steps == 3 and len(second.losses) == 1
    assert f"resuming from step 2 of 4 ({out / 'checkpoints' / 'step_2'})" in said
    assert f"the previous config.json is kept as {out / 'config.1.json'}" in said
    assert json.loads((out / "config.1.json").read_text())["log"]["log_every"] == 1
    assert json.loads((out / "config.json").read_text())["log"]["log_every"] == 2


def test_resume_extends_the_schedule_with_the_new_config(
    tiny_qwen25: Any, tiny_qwen25_dir: Path, tmp_path: Path
) -> None:
    """4 steps done (decayed to 0 at the end); --resume with max_steps 8 and half the lr trains
    steps 5-8 on the extended schedule at the NEW lr — the logged lr of each step is exact."""
    out = tmp_path / "run"
    _run(_cfg(out, str(tiny_qwen25_dir)), tiny_qwen25)
    longer = _cfg(out, str(tiny_qwen25_dir), **{"train.max_steps": 8, "optim.lr": 5e-3})
    result, said = _run(longer, tiny_qwen25, resume=True)
    assert result.steps == 8 and len(result.losses) == 4
    assert "resuming from step 4 of 8" in " ".join(said)
    changed = next(line for line in said if line.startswith("--resume:"))
    assert "optim.lr 0.01 → 0.005" in changed and "train.max_steps 4 → 8" in changed
    lrs = {r["step"]: r["lr"] for r in _log(out)}
    for step in range(5, 9):  # log step k used the factor of 0-based step k - 1
        want = 5e-3 * 0.5 * (1 + math.cos(math.pi * (step - 1 - 2) / (8 - 2)))
        assert lrs[step] == pytest.approx(want, rel=1e-9), step
    assert lrs[7] == pytest.approx(5e-3 * 0.25)
    assert json.loads((out / "config.1.json").read_text())["train"]["max_steps"] == 4
    state = json.loads((out / "checkpoints" / "step_8" / "state.json").read_text())
    assert state["schedule"]["warmup_steps"] == 2 and state["schedule"]["total"] == 8


def test_overwrite_moves_the_old_run_aside_and_starts_at_zero(
    tiny_qwen25: Any, tiny_qwen25_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    _run(_cfg(out, str(tiny_qwen25_dir)), tiny_qwen25, stop_after=2)
    result, said = _run(
        _cfg(out, str(tiny_qwen25_dir), **{"optim.lr": 5e-3}),
        tiny_qwen25,
        overwrite=True,
        stop_after=1,
    )
    assert result.steps == 1 and len(result.losses) == 1  # from step 0
    aside = tmp_path / "run.old-1"
    assert f"was moved to {aside}" in said[0] and said[0].startswith("--overwrite:")
    assert (aside / "checkpoints" / "step_2" / "state.json").is_file()
    assert json.loads((aside / "config.json").read_text())["optim"]["lr"] == 1e-2
    assert [r["step"] for r in _log(aside)] == [1, 2]
    assert [r["step"] for r in _log(out)] == [1]
    assert json.loads((out / "config.json").read_text())["optim"]["lr"] == 5e-3
    assert not list(out.glob("config.*.json"))


def test_resume_and_overwrite_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not both"):
        prepare_run_dir(_cfg(tmp_path, "tiny:qwen2_5_vl"), tmp_path, resume=True, overwrite=True)


def test_startup_summary_lines(tiny_qwen25: Any, tiny_qwen25_dir: Path, tmp_path: Path) -> None:
    result, said = _run(_cfg(tmp_path / "run", str(tiny_qwen25_dir)), tiny_qwen25, stop_after=1)
    total = sum(p.numel() for p in result.model.parameters())
    assert total > 1_000_000  # the real 151k vocabulary
    assert said[0] == (
        f"model: {tiny_qwen25_dir} (qwen2_5_vl), {total:,} parameters, {total:,} trainable (100.0%)"
    )
    assert said[1] == "data: 8 pre-encoded samples per rank and epoch"
    assert said[2] == "batch: 2 per device × 2 accumulation × 1 rank = effective batch 4"
    assert said[3].startswith("pixel band: ")
    assert said[4] == "max length: 64 tokens (longer samples: drop, never cut)"
    assert said[5] == "steps: 4 (train.max_steps)"
    assert said[6] == "lr: 0.01 cosine, warmup 2 steps, floor 0× lr"
