"""The shipped configs and the one loader every config kind goes through.

The files live in one folder per schema: ``recipes/`` (data build recipes), ``mixtures/``
(co-training mixtures and their render policy), ``train/`` (training runs), ``deepspeed/``
(DeepSpeed JSONs chosen by ``dist.deepspeed``) and ``eval/`` (evaluation options). Each kind is
resolved, read, overridden and validated by :mod:`rscovlm.configs.loader`, so a name, a path, a
``key=value`` override and an error message mean the same thing for every kind::

    from rscovlm.configs import load, shipped
    shipped("train")                  # {"rscovlm_det": Path(...), "rscovlm_official": ..., ...}
    load("train", "tiny_cpu", ["train.max_steps=5"])  # after rscovlm.train.config registered

``rscovlm config ls | cp | validate`` is the same on the command line.
"""

from rscovlm.configs.loader import (
    KINDS,
    ConfigKind,
    apply_overrides,
    describe,
    error_line,
    header,
    header_commands,
    infer_kind,
    load,
    read_mapping,
    register,
    resolve,
    schema_of,
    shipped,
    shipped_dir,
    validate,
)

__all__ = [
    "KINDS",
    "ConfigKind",
    "apply_overrides",
    "describe",
    "error_line",
    "header",
    "header_commands",
    "infer_kind",
    "load",
    "read_mapping",
    "register",
    "resolve",
    "schema_of",
    "shipped",
    "shipped_dir",
    "validate",
]
