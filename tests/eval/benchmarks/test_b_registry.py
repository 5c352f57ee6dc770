"""The official names of the VQA, UHR, caption, TEOChatlas and segmentation families are
registered, each with its task, headline metric and a sentence saying where its files go."""

from __future__ import annotations

import pytest

from rscovlm.eval.benchmarks import BENCHMARKS, get_benchmark

FAMILIES = {
    "vqa": ["geochat_hrben", "geochat_lrben", "rsvqa_lr", "rsvqa_hr", "rsvqa_hr_phili",
            "vrsbench_vqa", "vhm_rsvqa", "vhm_hnstd_qa", "vhm_open_ended_qa",
            "vhm_open_ended_qa_full"],
    "uhr_vqa": ["lrsvqa", "lrsvqa_visual_cot", "mme_realworld_remote_sensing",
                "mme_realworld_remote_sensing_visual_cot", "xlrs_bench"],
    "caption": ["cap_rsicd", "cap_ucm_caption", "cap_sydney_caption", "cap_nwpu_caption",
                "cap_rsitmd", "vrsbench_caption", "geochat_grounding_description",
                "geochat_region_captioning"],
    "classification": ["teochatlas_geochat", "teochatlas_fmow_high_res",
                       "teochatlas_fmow_low_res", "teochatlas_cdvqa", "teochatlas_abcd"],
    "segmentation": ["res_rrsisd_refer"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("task", "name"), [(task, name) for task, names in FAMILIES.items() for name in names]
)
def test_registered(task: str, name: str) -> None:
    assert name in BENCHMARKS
    bench = get_benchmark(name)
    assert (bench.name, bench.task) == (name, task)
    assert bench.metric and bench.files
