"""The one config loader: names and paths resolve alike, every kind fails with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import rscovlm.data.mixture_config
import rscovlm.data.recipe
import rscovlm.train.config  # the schema owners register their kinds
from rscovlm import configs
from rscovlm.data.recipe import Recipe
from rscovlm.errors import InputError
from rscovlm.train.config import TrainConfig

PKG = Path(rscovlm.__file__).parent
ALL_SHIPPED = [(kind, name) for kind in configs.KINDS for name in configs.shipped(kind)]


def _train(tmp_path: Path, **sections: object) -> Path:
    data = {
        "model": {"path": "tiny:qwen2_5_vl"},
        "data": {"mixture": {"datasets": ["a"]}},
        "log": {"output_dir": "runs/x"},
    }
    data.update(sections)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_every_kind_has_its_folder_and_files() -> None:
    assert list(configs.KINDS) == ["recipe", "mixture", "train", "deepspeed", "eval"]
    assert sorted(configs.shipped("recipe")) == ["rs_cotrain_example", "synthetic_demo"]
    assert sorted(configs.shipped("mixture")) == ["rscovlm_official"]
    assert sorted(configs.shipped("deepspeed")) == ["zero1", "zero2", "zero3"]
    assert (PKG / "configs" / "eval").is_dir()
    for kind, name in ALL_SHIPPED:
        path = configs.shipped(kind)[name]
        assert path.parent == configs.shipped_dir(kind)
        assert configs.infer_kind(path) == kind  # the contents agree with the folder


@pytest.mark.parametrize(("kind", "name"), ALL_SHIPPED)
def test_every_shipped_config_validates_and_describes_itself(kind: str, name: str) -> None:
    model = configs.load(kind, name)
    assert isinstance(model, configs.schema_of(kind))
    description = configs.describe(configs.shipped(kind)[name], kind)
    assert description and "\n" not in description and len(description) <= 100


def test_package_data_ships_every_config() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((PKG.parent / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["rscovlm"]
    shipped = {path for pattern in globs for path in PKG.glob(pattern)}
    for kind, name in ALL_SHIPPED:
        assert configs.shipped(kind)[name] in shipped


def test_names_and_old_paths_resolve(tmp_path: Path) -> None:
    tiny = configs.shipped("train")["tiny_cpu"]
    assert configs.resolve("train", "tiny_cpu") == tiny
    assert configs.resolve("train", "tiny_cpu.yaml") == tiny  # what the old header said
    demo = configs.shipped("recipe")["synthetic_demo"]
    assert configs.resolve("recipe", "rscovlm/configs/data/synthetic_demo.yaml") == demo
    official = configs.shipped("mixture")["rscovlm_official"]
    assert configs.resolve("mixture", "rscovlm/configs/data/rscovlm_official.yaml") == official
    own = tmp_path / "tiny_cpu.yaml"
    own.write_text(tiny.read_text(encoding="utf-8"), encoding="utf-8")
    assert configs.resolve("train", own) == own  # a file wins over a shipped name
    # A path that does not exist never falls back to the shipped file of the same stem.
    with pytest.raises(InputError, match=r"'runs/x/tiny_cpu\.yaml' is neither a file"):
        configs.resolve("train", "runs/x/tiny_cpu.yaml")


def test_unknown_name_lists_the_shipped_ones() -> None:
    with pytest.raises(InputError, match=r"shipped: zero1, zero2, zero3\)$"):
        configs.resolve("deepspeed", "zero4")
    with pytest.raises(InputError, match="unknown config kind 'data'; known: recipe"):
        configs.shipped("data")
    with pytest.raises(InputError, match="shipped mixture and a shipped train config; give"):
        configs.infer_kind("rscovlm_official")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", r"optim\.lrr: unknown key; did you mean 'lr'\?$"),
        ("optimiser.lr=1", r"optimiser: unknown key; did you mean 'optim'\?$"),
        ("xyz=1", r"xyz: unknown key; expected one of: model, data, optim, train, dist, log$"),
        ("model.freeze.visiontower=true", r"model\.freeze\.visiontower: .*'vision_tower'\?$"),
        ("optim.lr=fast", r"optim\.lr: Input should be a valid number.*\(got 'fast'\)$"),
        ("data.mixture.datasets=[{spec: a, wieght: 1}]", r"data\.mixture: datasets\.0\.wieght: "),
        ("model.path=tiny:llama", r"model\.path: unknown tiny family 'llama'"),
    ],
)
def test_train_errors_are_one_line_with_file_and_key(
    tmp_path: Path, override: str, message: str
) -> None:
    path = _train(tmp_path)
    with pytest.raises(InputError, match=message) as info:
        configs.load("train", path, [override])
    text = str(info.value)
    assert text.startswith(f"train config {path}: ") and "\n" not in text
    assert "Value error" not in text


def test_inline_mixture_gets_a_did_you_mean_too(tmp_path: Path) -> None:
    path = _train(tmp_path, data={"mixture": {"datasets": [{"spec": "a", "wieght": 1}]}})
    with pytest.raises(InputError, match=r"datasets\.0\.wieght: unknown key; did you mean 'we"):
        configs.load("train", path)


def test_recipe_errors_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("shard_sise: 3\nsources: [{name: a, adapter: dota}]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"^recipe .*r\.yaml: shard_sise: .*'shard_size'\?$"):
        configs.load("recipe", path)
    path.write_text("sources: [{name: a, adaptr: dota}]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"sources\.0\.adaptr: .*did you mean 'adapter'\?$"):
        configs.load("recipe", path)
    path.write_text("sources: [{name: a, adapter: nope}]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r": sources\.0\.adapter: unknown adapter 'nope'"):
        configs.load("recipe", path)  # the validator's words, no "Value error, " before them
    path.write_text("sources: [{name: a, adapter: dota}]\n", encoding="utf-8")
    recipe = configs.load("recipe", path, ["shard_size=5"], schema=Recipe)
    assert recipe.shard_size == 5  # overrides work for every kind, not only train


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- model\n- data\n", r": \(top level\): expected a mapping of keys, got list$"),
        ("", r": \(top level\): the file is empty$"),
        ("model: [unclosed\n", r" is not valid YAML: .*\(line \d+, column \d+\)$"),
    ],
)
def test_file_that_is_no_mapping_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        configs.load("train", path, schema=TrainConfig)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_folder_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a file"):
        configs.resolve("train", tmp_path)


def test_header_commands_join_continued_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "# Title line.\n# prose mentioning `rscovlm train x` is not a command\n"
        "#   torchrun --nproc_per_node 8 -m rscovlm train x \\\n#       a=1 \\\n#       b=2\n"
        "#   rscovlm data stats out   # a comment\nmodel: {}\n# not header\n",
        encoding="utf-8",
    )
    assert configs.describe(path) == "Title line."
    assert configs.header_commands(path) == [
        "torchrun --nproc_per_node 8 -m rscovlm train x a=1 b=2",
        "rscovlm data stats out   # a comment",
    ]


def test_deepspeed_schema_checks_the_stage(tmp_path: Path) -> None:
    path = tmp_path / "ds.json"
    path.write_text('{"zero_optimization": {"stage": 4}, "custom": 1}', encoding="utf-8")
    with pytest.raises(InputError, match=r"zero_optimization\.stage: .*less than or equal to 3"):
        configs.load("deepspeed", path)
    path.write_text('{"zero_optimization": {"stage": 2}, "custom": 1}', encoding="utf-8")
    assert configs.load("deepspeed", path).zero_optimization.stage == 2  # unknown keys pass
