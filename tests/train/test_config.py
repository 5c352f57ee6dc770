"""The typed training config: shipped files validate, bad keys fail with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rscovlm.errors import InputError
from rscovlm.train.config import (
    DEEPSPEED_CONFIGS,
    TrainConfig,
    deepspeed_config,
    deepspeed_config_path,
    load_train_config,
    shipped_train_configs,
)

SHIPPED = shipped_train_configs()


def test_the_three_configs_ship() -> None:
    assert {"rscovlm_official", "rscovlm_det", "tiny_cpu"} <= set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_config_validates(name: str) -> None:
    path = SHIPPED[name]
    config = load_train_config(path)
    assert isinstance(config, TrainConfig)
    head = path.read_text(encoding="utf-8").splitlines()
    assert head[0].startswith("# "), "a shipped config opens with a comment"
    comment = "\n".join(line for line in head if line.startswith("#"))
    assert "Needs" in comment and "rscovlm train" in comment


def test_official_recipe_matches_the_paper() -> None:
    c = load_train_config(SHIPPED["rscovlm_official"])
    assert (c.optim.lr, c.optim.schedule, c.optim.warmup_ratio, c.optim.weight_decay) == (
        2e-6,
        "cosine",
        0.05,
        0.1,
    )
    assert c.train.global_batch_size == 32 and c.train.max_length == 6144
    assert c.train.precision == "bf16" and c.train.gradient_checkpointing
    assert c.train.epochs == 1 and c.train.max_steps is None
    assert (c.dist.strategy, c.dist.deepspeed) == ("deepspeed", "zero1")
    assert not any(c.model.freeze.model_dump().values()) and not c.model.lora.enabled
    mixture = c.data.mixture_config()
    assert c.data.mixture == "rscovlm_official" and mixture.name == "rscovlm_official"
    defaults = mixture.render.defaults
    assert (defaults["min_pixels"], defaults["max_pixels"]) == (64 * 28 * 28, 1296 * 28 * 28)
    weights = {e.name: e.weight for e in mixture.entries()}
    assert weights["dota_poly_trainval512"] == 25 and weights["llava_onevision_vl"] == 0.1
    # 32 = 1 × accumulation × world size, for the usual GPU counts
    assert [c.train.accumulation_steps(w) for w in (1, 8, 32)] == [32, 4, 1]


def test_detection_specialist() -> None:
    c = load_train_config(SHIPPED["rscovlm_det"])
    mixture = c.data.mixture_config()
    assert [(e.name, e.weight, e.source) for e in mixture.entries()] == [
        ("dota_poly_trainval512", 1.0, "dota_trainval512")
    ]
    options = mixture.policy().model_dump()
    assert options["defaults"]["min_pixels"] == 256 * 28 * 28
    assert options["defaults"]["random_resize_prob"] == 0.0
    assert options["tasks"]["detection"]["random_resize_prob"] == 0.0


def test_tiny_cpu_is_cpu_fp32() -> None:
    c = load_train_config(SHIPPED["tiny_cpu"])
    assert c.model.tiny_family == "qwen2_5_vl"
    assert (c.train.device, c.train.precision, c.model.dtype) == ("cpu", "fp32", "float32")
    assert c.dist.backend == "gloo"
    assert c.model.tiny.spec_kwargs() == {"rope_theta": 4.0}  # the demo's tiny model sees columns
    assert c.data.mixture_config().policy().tasks["detection"]["eval_prompt_prob"] == 0.5


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _minimal() -> dict:
    return {
        "model": {"path": "tiny:qwen2_5_vl", "dtype": "float32"},
        "data": {"mixture": {"datasets": ["synthetic"]}},
        "train": {"precision": "fp32"},
        "log": {"output_dir": "out"},
    }


@pytest.mark.parametrize(
    ("section", "key", "value", "match"),
    [
        ("optim", "lrr", 1e-5, r"cfg\.yaml: optim\.lrr: unknown key; did you mean 'lr'\?"),
        ("optim", "lr", "fast", r"cfg\.yaml: optim\.lr: "),
        ("optim", "lr", -1.0, r"cfg\.yaml: optim\.lr: .*greater than 0"),
        ("optim", "schedule", "cosin", r"cfg\.yaml: optim\.schedule: "),
        ("train", "per_device_batch_size", 0, r"train\.per_device_batch_size"),
        ("dist", "deepspeed", "zero4", r"cfg\.yaml: dist\.deepspeed: 'zero4'"),
        ("model", "path", "tiny:llama", r"cfg\.yaml: model\.path: unknown tiny family 'llama'"),
        (
            "data",
            "mixture",
            {"datasets": ["dota*x"]},
            r"cfg\.yaml: data\.mixture: datasets\.0: .*'dota\*x'",
        ),
        ("data", "mixture", "official", r"cfg\.yaml: data\.mixture: mixture config 'official' is"),
    ],
)
def test_bad_key_fails_with_one_line(
    tmp_path: Path, section: str, key: str, value: object, match: str
) -> None:
    data = _minimal()
    data.setdefault(section, {})[key] = value
    with pytest.raises(InputError, match=match) as info:
        load_train_config(_write(tmp_path, data))
    assert "\n" not in str(info.value)


def test_unknown_section_and_missing_required(tmp_path: Path) -> None:
    data = _minimal()
    data["optimiser"] = {}
    with pytest.raises(InputError, match=r"optimiser: unknown key; did you mean 'optim'\?"):
        load_train_config(_write(tmp_path, data))
    data = _minimal()
    del data["log"]
    with pytest.raises(InputError, match=r"cfg\.yaml: log: Field required"):
        load_train_config(_write(tmp_path, data))


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_train_config(bad)
    with pytest.raises(InputError, match=r"absent\.yaml' is neither a file nor a shipped"):
        load_train_config(tmp_path / "absent.yaml")


def test_dotted_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, _minimal())
    c = load_train_config(
        path,
        [
            "optim.lr=1e-5",
            "train.max_steps=7",
            "model.freeze.vision_tower=true",
            "model.lora.target_modules=[q_proj, v_proj]",
            "log.loggers=[jsonl, tensorboard]",
        ],
    )
    assert c.optim.lr == 1e-5 and c.train.max_steps == 7 and c.model.freeze.vision_tower
    assert c.model.lora.target_modules == ["q_proj", "v_proj"]
    assert c.log.loggers == ["jsonl", "tensorboard"]
    with pytest.raises(InputError, match=r"cfg\.yaml: optim\.lrr: unknown key"):
        load_train_config(path, ["optim.lrr=1"])
    with pytest.raises(InputError, match="bad override"):
        load_train_config(path, ["optim.lr"])
    with pytest.raises(InputError, match=r"train\.precision is not a section"):
        load_train_config(path, ["train.precision.x=1"])


def test_global_batch_and_per_module_lrs(tmp_path: Path) -> None:
    path = _write(tmp_path, _minimal())
    c = load_train_config(path, ["train.per_device_batch_size=2", "train.global_batch_size=8"])
    assert c.train.accumulation_steps(2) == 2 and c.train.accumulation_steps(4) == 1
    with pytest.raises(InputError, match="does not split"):
        c.train.accumulation_steps(3)
    with pytest.raises(InputError, match="not both"):
        load_train_config(
            path, ["train.global_batch_size=8", "train.gradient_accumulation_steps=2"]
        )
    c = load_train_config(path, ["optim.lr=1e-5", "optim.lr_vision=2e-6"])
    assert c.optim.module_lrs() == {"vision": 2e-6, "merger": 1e-5, "llm": 1e-5}


def test_everything_frozen_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, _minimal())
    frozen = [f"model.freeze.{k}=true" for k in ("vision_tower", "merger", "llm")]
    with pytest.raises(InputError, match="nothing to train"):
        load_train_config(path, frozen)
    assert load_train_config(path, [*frozen, "model.lora.enabled=true"]).model.lora.enabled


@pytest.mark.parametrize("name", DEEPSPEED_CONFIGS)
def test_deepspeed_configs(name: str) -> None:
    raw = json.loads(deepspeed_config_path(name).read_text(encoding="utf-8"))
    assert raw["zero_optimization"]["stage"] == int(name[-1])
    c = load_train_config(SHIPPED["rscovlm_official"], [f"dist.deepspeed={name}"])
    ds = deepspeed_config(c, world_size=8)
    assert ds["train_batch_size"] == 32 and ds["gradient_accumulation_steps"] == 4
    assert ds["train_micro_batch_size_per_gpu"] == 1 and ds["bf16"]["enabled"] is True
    assert "auto" not in json.dumps(ds)


def test_deepspeed_unknown_path() -> None:
    with pytest.raises(InputError, match="neither"):
        deepspeed_config_path("/nonexistent/ds.json")


def test_tiny_sizes() -> None:
    plain = load_train_config(SHIPPED["tiny_cpu"], ["model.tiny.rope_theta=null"])
    assert plain.model.tiny.spec_kwargs() == {}
    c = load_train_config(
        SHIPPED["tiny_cpu"], ["model.tiny.rope_theta=8", "model.tiny.num_layers=3"]
    )
    assert c.model.tiny.spec_kwargs() == {"rope_theta": 8.0, "num_layers": 3}
    with pytest.raises(InputError, match="hidden"):
        load_train_config(SHIPPED["tiny_cpu"], ["model.tiny.hiden_size=8"])
