"""Real DIOR-R and HRSC annotations survive the box-kind conversions without loss."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from rscovlm.geometry import canonical_quad, obb_to_quad, quad_iou_matrix, quad_to_obb


def _same_polygon(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(canonical_quad(a), canonical_quad(b), atol=1e-6)


def test_dior_r_quads_round_trip_through_obb(real_data: Path) -> None:
    xml = real_data / "dior" / "Annotations" / "Oriented Bounding Boxes" / "00001.xml"
    keys = [
        "x_left_top",
        "y_left_top",
        "x_right_top",
        "y_right_top",
        "x_right_bottom",
        "y_right_bottom",
        "x_left_bottom",
        "y_left_bottom",
    ]
    quads = np.array(
        [[float(box.findtext(k)) for k in keys] for box in ET.parse(xml).iter("robndbox")]
    ).reshape(-1, 4, 2)
    assert len(quads) >= 1
    back = obb_to_quad(quad_to_obb(quads))
    for original, restored in zip(quads, back, strict=True):
        _same_polygon(original, restored)


def test_hrsc_obb_round_trips_through_quad(real_data: Path) -> None:
    root = ET.parse(real_data / "hrsc" / "Annotations" / "100000006.xml").getroot()
    rows = []
    for obj in root.iter("HRSC_Object"):
        cx, cy, w, h = (float(obj.findtext(k)) for k in ("mbox_cx", "mbox_cy", "mbox_w", "mbox_h"))
        angle = math.degrees(float(obj.findtext("mbox_ang")))
        rows.append([cx, cy, w, h, angle])
    obb = np.array(rows)
    # HRSC's angle turns the mbox_w side; bring it to [-90, 90) with w the long side.
    quads = obb_to_quad(obb)
    restored = quad_to_obb(quads)
    np.testing.assert_allclose(restored[:, :2], obb[:, :2], atol=1e-6)
    np.testing.assert_allclose(restored[:, 2:4], np.sort(obb[:, 2:4], axis=1)[:, ::-1], atol=1e-6)
    np.testing.assert_allclose(np.diag(quad_iou_matrix(quads, obb_to_quad(restored))), 1.0)
    assert np.all((restored[:, 4] >= -90) & (restored[:, 4] < 90))
