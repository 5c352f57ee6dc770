"""Make PyPI's torchvision importable beside the CPU torch in .venv-vllm (``make vllm-venv``).

transformers' Qwen-VL image processing module, which vLLM imports, needs torchvision; PyPI's
torchvision wheel is built against CUDA torch, so its compiled ops cannot load, and 0.28 then
fails on import registering a fake kernel for ``torchvision::nms``. This removes the unloadable
libraries and installs a ``.pth`` hook that declares the op schemas torchvision registers
against, so the pure-Python transforms (all that vLLM and transformers use here) import.
"""

import sys
import sysconfig
from pathlib import Path

site = Path(sysconfig.get_paths()["purelib"])
for name in ("_C.so", "image.so"):
    (site / "torchvision" / name).unlink(missing_ok=True)
hook = site / "rscovlm_torchvision_cpu.py"
hook.write_text(
    '"""Declare torchvision op schemas whose CUDA-built library cannot load here."""\n'
    "import torch\n"
    "_lib = torch.library.Library('torchvision', 'DEF')\n"
    "for _schema in (\n"
    "    'nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',\n"
    "    'qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',\n"
    "    'roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, '\n"
    "    'SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor',\n"
    "    '_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, '\n"
    "    'SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, '\n"
    "    'SymInt height, SymInt width, int sampling_ratio, bool aligned) -> Tensor',\n"
    "    'ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, '\n"
    "    'SymInt pooled_width, int sampling_ratio) -> (Tensor, Tensor)',\n"
    "    '_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, '\n"
    "    'float spatial_scale, SymInt pooled_height, SymInt pooled_width, int sampling_ratio, '\n"
    "    'SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor',\n"
    "    'roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, '\n"
    "    'SymInt pooled_width) -> (Tensor, Tensor)',\n"
    "    '_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, '\n"
    "    'SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, '\n"
    "    'SymInt height, SymInt width) -> Tensor',\n"
    "    'ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, '\n"
    "    'SymInt pooled_width) -> (Tensor, Tensor)',\n"
    "    '_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, '\n"
    "    'float spatial_scale, SymInt pooled_height, SymInt pooled_width, SymInt batch_size, '\n"
    "    'SymInt channels, SymInt height, SymInt width) -> Tensor',\n"
    "    'deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, '\n"
    "    'SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, '\n"
    "    'SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> Tensor',\n"
    "):\n"
    "    _lib.define(_schema)\n",
    encoding="utf-8",
)
(site / "rscovlm_torchvision_cpu.pth").write_text("import rscovlm_torchvision_cpu\n")
print(f"torchvision made importable without its ops in {site}", file=sys.stderr)
