"""The one stub the interop checks need, shared by both framework venvs.

Pip's torchvision 0.28 wheel (the release for torch 2.13) is the CUDA build: its ops library
links ``libtorch_cuda.so`` and cannot load on the CPU torch 2.13 of /opt/wheels, and its import
then fails on the two op schemas it registers fake kernels for (``operator torchvision::nms
does not exist``). :func:`stub_torchvision_ops` defines those two schemas, with no kernel (NMS
is never called: only the pure-Python transforms that transformers' Qwen2-VL video processor
and ``qwen_vl_utils`` import are used), so ``import torchvision`` works. Call it before
anything imports torchvision.
"""

from __future__ import annotations

from typing import Any

_KEEP: list[Any] = []


def stub_torchvision_ops() -> None:
    """Define ``torchvision::nms`` and ``torchvision::qnms`` (schemas only) once."""
    if _KEEP:
        return
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    _KEEP.append(lib)
