"""The command line's typed choices equal the library constants they copy, and the model option
group refuses what a backend cannot take before anything is loaded."""

from __future__ import annotations

from enum import Enum
from typing import Any, get_args

import pytest

from rscovlm import geometry
from rscovlm.cli.config import ConfigKind
from rscovlm.cli.data import ExportFormat
from rscovlm.cli.eval import IouMode, Metric, PredFormat, Ties
from rscovlm.cli.options import (
    BackendName,
    BoxKind,
    DetectBox,
    DetectFormat,
    DType,
    Family,
    ModelOptions,
)
from rscovlm.configs import KINDS
from rscovlm.data.export import EXPORT_FORMATS
from rscovlm.errors import InputError
from rscovlm.eval.detection_io import PRED_FORMATS
from rscovlm.eval.metrics import ap, detection
from rscovlm.model.backends import BACKENDS
from rscovlm.model.loading import DTYPE_CHOICES
from rscovlm.pipelines import detect
from rscovlm.pipelines.detect_outputs import DETECT_FORMATS
from rscovlm.resolution import MODEL_FAMILIES


def _values(enum: type[Enum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


@pytest.mark.parametrize(
    ("enum", "library"),
    [
        (BackendName, BACKENDS),
        (DType, DTYPE_CHOICES),
        (Family, tuple(MODEL_FAMILIES)),
        (BoxKind, get_args(geometry.BoxKind)),
        (DetectBox, get_args(detect.DetectBox)),
        (DetectFormat, ("all", *DETECT_FORMATS)),
        (ExportFormat, EXPORT_FORMATS),
        (PredFormat, PRED_FORMATS),
        (Metric, get_args(ap.Metric)),
        (Ties, get_args(ap.Ties)),
        (IouMode, get_args(detection.IouMode)),
        (ConfigKind, tuple(KINDS)),
    ],
)
def test_choices_equal_the_library(enum: type[Enum], library: tuple[str, ...]) -> None:
    assert set(_values(enum)) == set(library)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": BackendName.openai}, "--backend openai needs --base-url"),
        ({"backend": BackendName.openai, "base_url": "http://h/v1", "adapter": "a"}, "--adapter"),
        ({"backend": BackendName.vllm, "device": "cuda:1"}, "--device cannot be used"),
        ({"backend": BackendName.hf, "api_key_env": "K"}, "--api-key-env cannot be used"),
    ],
)
def test_model_options_refuse_what_the_backend_cannot_take(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        ModelOptions("m", **options).check()


def test_model_options_batch_size_reaches_the_backend() -> None:
    """``build(batch_size=N)``: an openai backend keeps N requests in flight (the hf case runs
    the tiny model: tests/cli/test_eval_run.py); a replay backend takes its batches whole."""
    options = ModelOptions("served", BackendName.openai, base_url="http://127.0.0.1:9/v1")
    assert options.build(batch_size=16).concurrency == 16  # type: ignore[attr-defined]
    assert options.build().concurrency == 4  # type: ignore[attr-defined]


def test_model_options_build_an_openai_backend() -> None:
    backend = ModelOptions(
        "served", BackendName.openai, base_url="http://127.0.0.1:9/v1", family=Family.qwen3_vl
    ).build()
    assert backend.family == "qwen3_vl" and backend.model == "served"  # type: ignore[attr-defined]
