"""Fixtures of the detection evaluation tests: the real DOTA labels, read once."""

from __future__ import annotations

from pathlib import Path

import pytest

from rscovlm.eval.detection_io import GroundTruth, read_ground_truth
from rscovlm.formats.classes import DOTA_V1_0


@pytest.fixture(scope="session")
def dota_label_dir(real_data: Path) -> Path:
    """The seven real DOTA-v1.0 label files (P0706, P0770, ...)."""
    return real_data / "dota" / "labelTxt"


@pytest.fixture(scope="session")
def dota_gt(dota_label_dir: Path) -> GroundTruth:
    """The real DOTA labels as ground truth with the DOTA-v1.0 class list."""
    return read_ground_truth(dota_label_dir, DOTA_V1_0)
